"""The file formats geo_comuna reads and writes, and how GDAL (through pyogrio) opens each.

A file is opened only as the format its name gives, after io/sniff.py has checked its first
bytes, and where GDAL takes a driver prefix (``GeoJSON:``, ``GPKG:``, ``CSV:``) the path names
the driver too; pyogrio here is the hardened one (geo_comuna/gdal.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geo_comuna import gdal
from geo_comuna.errors import InvalidFile, Said, Unsupported
from geo_comuna.io import sniff

pyogrio = gdal.vector()


@dataclass(frozen=True)
class Format:
    name: str
    driver: str
    suffix: str
    media_type: str
    #: True when the format is always lon/lat WGS 84 (RFC 7946 GeoJSON, KML)
    wgs84_only: bool = False
    #: the prefix that makes GDAL open a path with this driver only, where GDAL has one
    prefix: str = ""
    #: GDAL's options for a file this format creates
    creation: tuple[tuple[str, str], ...] = ()

    @property
    def dataset_options(self) -> dict[str, str] | None:
        return dict(self.creation) or None


FORMATS = {
    "geojson": Format(
        "geojson", "GeoJSON", ".geojson", "application/geo+json", True, prefix="GeoJSON:"
    ),
    # GeoPackage 1.2, as GDAL 3.6 (Debian 12, QGIS 3.22) writes it: it warns on opening the
    # 1.4 that newer GDAL writes ("may only be partially supported"), and 1.2 has all we use
    "gpkg": Format(
        "gpkg",
        "GPKG",
        ".gpkg",
        "application/geopackage+sqlite3",
        prefix="GPKG:",
        creation=(("VERSION", "1.2"),),
    ),
    "shp": Format("shp", "ESRI Shapefile", ".zip", "application/zip"),
    "kml": Format("kml", "KML", ".kml", "application/vnd.google-earth.kml+xml", True),
    "csv": Format("csv", "CSV", ".csv", "text/csv", prefix="CSV:"),
}
#: each format's check of a file's first bytes (a zipped Shapefile's is gdal_source's)
_SNIFF: dict[str, Callable[[Path], None]] = {
    "geojson": sniff.geojson,
    "gpkg": sniff.gpkg,
    "kml": sniff.kml,
    "csv": sniff.csv,
}
_SUFFIXES = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "shp",
    ".shp": "shp",
    ".kml": "kml",
    ".csv": "csv",
}

#: how GDAL's CSV driver finds geometry: a WKT column, or lon/lat columns. Lines of any length:
#: at GDAL's own limit (10 MB) it stopped reading, and the features before a long cell were
#: imported as the whole file (the upload's size bounds a line anyway)
CSV_OPEN_OPTIONS = {
    "GEOM_POSSIBLE_NAMES": "wkt,WKT,geometry,geom,the_geom",
    "X_POSSIBLE_NAMES": "lon,longitude,lng,long,x",
    "Y_POSSIBLE_NAMES": "lat,latitude,y",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
    "MAX_LINE_SIZE": "0",
}
#: a CSV's geometry columns as written (reading.unread_geometry): WKT and lon/lat as text
CSV_AS_WRITTEN = {
    **CSV_OPEN_OPTIONS,
    "KEEP_GEOM_COLUMNS": "YES",
    "X_POSSIBLE_NAMES": "",
    "Y_POSSIBLE_NAMES": "",
    "AUTODETECT_TYPE": "NO",
}


#: what pyogrio raises when GDAL cannot read or write a file (a 4xx, never a 500)
GDAL_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
)


#: GDAL's words for a file it cannot read that tell a person nothing they can act on (a
#: server setting to change), and what they mean
_GDAL_SAYS = {
    "GeoJSON object too complex/large": Said(
        "one of its features is too large or complex for the GeoJSON reader (a geometry of "
        "hundreds of thousands of vertices, say): split it into smaller features",
        "una de sus entidades es demasiado grande o compleja para el lector de GeoJSON (una "
        "geometría de cientos de miles de vértices, por ejemplo): divídala en entidades más "
        "pequeñas",
    ),
}


def gdal_reason(exc: Exception) -> Said:
    """Why GDAL could not read a file, in both languages where GDAL's words say nothing a
    person can act on; else GDAL's own."""
    text = str(exc)
    for words, said in _GDAL_SAYS.items():
        if words in text:
            return said
    return Said(text, text)


def unreadable(name: str, driver: str, exc: Exception) -> InvalidFile:
    """The refusal of a file GDAL could not read as ``driver``, saying why (gdal_reason)."""
    why = gdal_reason(exc)
    return InvalidFile(
        Said(
            f"cannot read {name} as {driver}: {why}",
            f"no se puede leer {name} como {driver}: {why.es}",
        )
    )


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise Unsupported(
            Said(
                f"unknown format {name!r}; use one of {', '.join(FORMATS)}",
                f"formato desconocido {name!r}; use uno de {', '.join(FORMATS)}",
            )
        ) from None


def detect(path: Path) -> Format:
    """The format of a file by its name; its first bytes are checked by gdal_source."""
    name = _SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise Unsupported(
            Said(
                f"{path.name}: unsupported file type {path.suffix!r}; use GeoJSON, "
                "GeoPackage, zipped Shapefile, KML or CSV",
                f"{path.name}: tipo de archivo no admitido {path.suffix!r}; use GeoJSON, "
                "GeoPackage, Shapefile comprimido en zip, KML o CSV",
            )
        )
    if path.stat().st_size == 0:
        raise InvalidFile(Said(f"{path.name} is empty", f"{path.name} está vacío"))
    return FORMATS[name]


def gdal_source(
    path: Path, fmt: Format, max_unpacked: int, *, dates_read_as_text: bool = False
) -> str:
    """What to hand GDAL for ``path``, once its bytes are those of ``fmt``: the path with the
    format's driver prefix, or a zipped Shapefile's .shp read in place through /vsizip/.
    ``max_unpacked``: bytes a zip may unpack to; ``dates_read_as_text``: the caller reads a
    GeoPackage's dates as text and checks them itself (sniff.gpkg's ``dates``)."""
    if fmt.name == "shp":
        if path.suffix.lower() != ".zip":  # a local .shp beside its sidecars (the CLI)
            sniff.shapefile(path)
            return str(path)
        return f"/vsizip/{path}/{sniff.shapefile_zip(path, max_unpacked)}"
    if fmt.name == "gpkg":
        sniff.gpkg(path, dates=not dates_read_as_text)
    else:
        _SNIFF[fmt.name](path)
    return f"{fmt.prefix}{path}"
