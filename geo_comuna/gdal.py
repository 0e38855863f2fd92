"""GDAL as geo_comuna lets it run: only the drivers of the formats we read and write, no network.

Uploads are hostile. GDAL picks a driver by looking at a file's bytes, and several of its
drivers make a file point elsewhere: a VRT (or GDALG, GTI, WMS, WFS...) dataset names other
files, /vsicurl/ URLs or servers, so an upload named ``x.geojson`` holding VRT XML read
``/etc/passwd`` into a layer. io/sniff.py checks each upload's first bytes against the format
its name claims; this module is the second wall: in both GDALs of the process (pyogrio and
rasterio each bundle their own) every driver but ``VECTOR`` / ``RASTER`` is deregistered, and
network access and raw raster bands are switched off.

``vector()`` and ``raster()`` harden the library on first use and return it; the modules that
import pyogrio (io/formats.py) or rasterio (io/dems.py, analysis/toolkit/dem.py,
maps/overview.py) call them at import, so no code of ours opens a file with an unhardened
GDAL. Each checks what GDAL then reports and refuses to go on (RuntimeError) if a driver
outside its list is still there: a future GDAL that ignored the setting would stop the
service, not open it.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from types import ModuleType

#: what pyogrio's GDAL may open or write: the import and export formats (io/formats.py);
#: LIBKML reads the attributes (ExtendedData) the KML driver skips
VECTOR = frozenset({"GeoJSON", "GPKG", "ESRI Shapefile", "KML", "LIBKML", "CSV"})
#: what rasterio's GDAL may open or write: DEMs (GeoTIFF), PNG pictures, in-memory grids
RASTER = frozenset({"GTiff", "PNG", "MEM"})

#: set in both GDALs. A proxy on a closed port makes any HTTP request GDAL might still try fail
#: at once; it does not hold when a no_proxy environment variable names the host, which is why
#: the drivers that fetch are gone and io/sniff.py refuses a GeoJSON "link" CRS before GDAL.
CONFIG = {
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".geo-comuna-no-network",
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_HTTPS_PROXY": "127.0.0.1:9",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_NETRC": "NO",
    "CPL_CURL_ENABLE_VSIMEM": "NO",
}


def _skip(names: set[str], allowed: frozenset[str]) -> dict[str, str]:
    """OGR_SKIP (comma-separated, so names with spaces work) of every driver not allowed."""
    return {"OGR_SKIP": ",".join(sorted(names - allowed)), "GDAL_SKIP": ""}


def _check(kind: str, left: set[str], allowed: frozenset[str]) -> None:
    extra = left - allowed
    if extra:
        raise RuntimeError(
            f"{kind} GDAL still offers drivers {sorted(extra)} after hardening; refusing to run "
            "with drivers that can read other files or the network"
        )


@functools.cache
def vector() -> ModuleType:
    """pyogrio, with only the VECTOR drivers and no network."""
    # pyogrio looks for pyproj as it loads, for nothing it reads or writes with (a flag its
    # GeoDataFrame functions define and never read); kept from finding it, pyproj is loaded
    # only where a CRS must be understood, which an import of a file in EPSG:4326 never does
    # (~0.25 s and ~11 MB of the command, bench/README.md)
    hidden = "pyproj" not in sys.modules
    if hidden:
        sys.modules["pyproj"] = None  # type: ignore[assignment]  # import: ImportError
    try:
        import pyogrio
        import pyogrio.core
    finally:
        if hidden:
            del sys.modules["pyproj"]

    pyogrio.set_gdal_config_options({**CONFIG, **_skip(set(pyogrio.list_drivers()), VECTOR)})
    with warnings.catch_warnings():  # "unable to find driver X to unload": already gone
        warnings.simplefilter("ignore", RuntimeWarning)
        # GDALAllRegister again: it ends by deregistering what OGR_SKIP names
        pyogrio.core._register_drivers()
    _check("pyogrio's", set(pyogrio.list_drivers()), VECTOR)
    _offline_proj()
    return pyogrio


@functools.cache
def raster() -> ModuleType:
    """rasterio, with only the RASTER drivers and no network."""
    import rasterio
    import rasterio._env
    import rasterio.env

    with rasterio.Env() as env:
        names = set(env.drivers())
    for key, value in {**CONFIG, **_skip(names, RASTER)}.items():
        rasterio.env.set_gdal_config(key, value)
    # rasterio registers GDAL's drivers once, at its first Env; make the next Env register
    # again so that GDALAllRegister applies OGR_SKIP
    rasterio._env._have_registered_drivers = False
    with rasterio.Env() as env:
        left = set(env.drivers())
    _check("rasterio's", left, RASTER)
    _offline_proj()
    return rasterio


def _offline_proj() -> None:
    """PROJ never downloads grids (a CRS in an upload must not make the server fetch). When
    pyproj is not loaded yet (an import of a file in EPSG:4326 never loads it: ~0.25 s and
    ~11 MB, bench/README.md), PROJ_NETWORK says so to every PROJ context it makes later, as
    pyproj's own ``set_network_enabled()`` without an argument reads it too."""
    if "pyproj" not in sys.modules:
        os.environ["PROJ_NETWORK"] = "OFF"
        return
    import pyproj.network

    pyproj.network.set_network_enabled(active=False)
