"""Reading a stored DEM (io/dems.py) for an analysis or a picture: the commune's DEM, a window
of it as a north-up Grid, and elevations at points.

Stored DEMs are opened as GeoTIFF only, and each request reads at most
Limits.max_raster_window_cells cells (a larger window is read at coarser cells, averaged, and
the Grid says by how much). Elevations are metres above the DEM's own vertical datum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyproj
import rasterio.errors
import rasterio.windows
from affine import Affine
from psycopg import AsyncConnection
from rasterio.enums import Resampling
from rasterio.io import DatasetReader, MemoryFile

from geo_comuna import gdal, work
from geo_comuna.analysis.base import commune_code
from geo_comuna.analysis.toolkit.zonal import Grid
from geo_comuna.errors import InvalidFile, NotFound, Said
from geo_comuna.io import sniff
from geo_comuna.io.dems import Dem, for_commune, open_geotiff

rasterio = gdal.raster()


async def dem_for(conn: AsyncConnection, commune_id: int) -> Dem:
    """The commune's DEM (io/dems.for_commune's choice), or NotFound naming the two ways to
    add one."""
    dem = await for_commune(conn, commune_id)
    if dem is None:
        code = await commune_code(conn, commune_id)
        raise NoDem(
            Said(
                f"commune {code} has no DEM; add one with `geo-comuna dem add {code} "
                f"FILE.tif` or POST /communes/{code}/dems",
                f"la comuna {code} no tiene MDE (modelo digital de elevación); agregue uno con "
                f"`geo-comuna dem add {code} ARCHIVO.tif` o POST /communes/{code}/dems",
            )
        )
    return dem


class NoDem(NotFound):
    """A commune without a DEM. The API's reason says how to add one; a page says it to the
    public without the commands (``people``)."""

    people = Said(
        "there is no elevation model (DEM) of this commune yet; its editors can add one",
        "todavía no hay modelo de elevación (MDE) de esta comuna; sus editores pueden agregar uno",
    )


@contextmanager
def opened(dem: Dem) -> Iterator[DatasetReader]:
    """The stored DEM, as a GeoTIFF only: a row stored before uploads were written again, that
    holds anything else, is refused (upload the DEM again), never handed to another driver."""
    if not dem.tiff.startswith(sniff.TIFF_MAGIC):
        raise InvalidFile(
            Said(
                f"the stored DEM {dem.name!r} is not a GeoTIFF; an editor must upload it again",
                f"el MDE guardado {dem.name!r} no es un GeoTIFF; un editor debe subirlo de nuevo",
            )
        )
    with MemoryFile(dem.tiff) as mem, open_geotiff(mem, f"DEM {dem.name!r}") as src:
        yield src


def read_window(
    dem: Dem,
    bounds: tuple[float, float, float, float] | None = None,
    max_cells: int | None = None,
    dtype: type = np.float64,
) -> Grid:
    """The DEM (or its window around ``bounds``, in the DEM's CRS, plus a 2-cell halo) as a
    north-up grid of ``dtype`` (float64: analyses; float32 is plenty for a picture and half
    the memory) with NaN for nodata. A window of more than ``max_cells`` cells
    (default: the request's Limits) is read at coarser cells, each the average of the DEM cells
    it covers; ``Grid.coarsened`` says by how much. Raises rasterio's WindowError when
    ``bounds`` misses the DEM."""
    max_cells = max_cells or work.limits().max_raster_window_cells
    with opened(dem) as src:
        t = src.transform
        window = rasterio.windows.Window(0, 0, src.width, src.height)
        if bounds is not None:
            exact = rasterio.windows.from_bounds(*bounds, transform=t)
            col, row = math.floor(exact.col_off) - 2, math.floor(exact.row_off) - 2
            window = rasterio.windows.Window(
                col,
                row,
                math.ceil(exact.col_off + exact.width) + 2 - col,
                math.ceil(exact.row_off + exact.height) + 2 - row,
            )
            window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        width, height = int(window.width), int(window.height)
        factor = max(1.0, math.sqrt(width * height / max_cells))
        shape = (max(1, math.floor(height / factor)), max(1, math.floor(width / factor)))
        z = (
            src.read(1, window=window, out_shape=shape, masked=True, resampling=Resampling.average)
            .astype(dtype)
            .filled(np.nan)
        )
        transform = src.window_transform(window) @ Affine.scale(width / shape[1], height / shape[0])
        crs = src.crs
    if transform.e > 0:  # south-up: flip to north-up
        z = np.ascontiguousarray(z[::-1])
        transform = transform @ Affine.translation(0, z.shape[0]) @ Affine.scale(1, -1)
    return Grid(z, transform, crs, coarsened=width / shape[1])


def coarsened_warning(dem: Dem, grid: Grid) -> list[str]:
    """What a result says when its DEM window was read at coarser cells."""
    if grid.coarsened <= 1:
        return []
    times = f"{grid.coarsened:.1f}"
    return [
        Said(
            f"the DEM {dem.name!r} was read at cells {times} times coarser (averaged) "
            "to stay within the cells one request may read (GEO_COMUNA_MAX_RASTER_WINDOW_CELLS)",
            f"el modelo de elevación {dem.name!r} se leyó con celdas {times.replace('.', ',')} "
            "veces más gruesas (promediadas) para no pasar las celdas que puede leer una "
            "petición (GEO_COMUNA_MAX_RASTER_WINDOW_CELLS)",
        )
    ]


def elevations(
    dem: Dem, *points: tuple[np.ndarray, np.ndarray]
) -> tuple[list[np.ndarray], Grid | None]:
    """Elevation (m) at each set of lon/lat points, bilinear between cell centres; NaN outside
    the DEM or on nodata. One window is read, around all the points (clipped to the DEM);
    the grid read is returned too (None when no point is on the DEM)."""
    with opened(dem) as src:
        to_dem = pyproj.Transformer.from_crs(4326, src.crs.to_wkt(), always_xy=True)
    xys = [
        tuple(np.asarray(v, float) for v in to_dem.transform(np.asarray(lon, float), lat))
        for lon, lat in points
    ]
    outs = [np.full(len(x), np.nan) for x, _ in xys]
    xs = np.concatenate([x for x, _ in xys]) if xys else np.empty(0)
    ys = np.concatenate([y for _, y in xys]) if xys else np.empty(0)
    finite = np.isfinite(xs) & np.isfinite(ys)
    if not finite.any():
        return outs, None
    try:
        grid = read_window(
            dem, (xs[finite].min(), ys[finite].min(), xs[finite].max(), ys[finite].max())
        )
    except rasterio.errors.WindowError:  # no point on the DEM
        return outs, None
    for (x, y), out in zip(xys, outs, strict=True):
        out[:] = _bilinear(grid, x, y)
    return outs, grid


def _bilinear(grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    col, row = ~grid.transform * (x, y)
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5  # cell centres at .5
    inside = np.isfinite(col) & np.isfinite(row)
    c0 = np.floor(np.where(inside, col, -2)).astype(int)
    r0 = np.floor(np.where(inside, row, -2)).astype(int)
    fc, fr = col - c0, row - r0
    h, w = grid.z.shape
    out = np.full(len(x), np.nan)
    ok = (c0 >= 0) & (r0 >= 0) & (c0 + 1 < w) & (r0 + 1 < h)
    c, r, a, b = c0[ok], r0[ok], fc[ok], fr[ok]
    z = grid.z
    out[ok] = (
        z[r, c] * (1 - a) * (1 - b)
        + z[r, c + 1] * a * (1 - b)
        + z[r + 1, c] * (1 - a) * b
        + z[r + 1, c + 1] * a * b
    )
    return out
