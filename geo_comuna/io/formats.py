"""The file formats geo_comuna reads and writes, and how GDAL (through pyogrio) opens each."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyogrio.errors

from geo_comuna.errors import InvalidFile, Unsupported


@dataclass(frozen=True)
class Format:
    name: str
    driver: str
    suffix: str
    media_type: str
    #: True when the format is always lon/lat WGS 84 (RFC 7946 GeoJSON, KML)
    wgs84_only: bool = False


FORMATS = {
    "geojson": Format("geojson", "GeoJSON", ".geojson", "application/geo+json", True),
    "gpkg": Format("gpkg", "GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "shp": Format("shp", "ESRI Shapefile", ".zip", "application/zip"),
    "kml": Format("kml", "KML", ".kml", "application/vnd.google-earth.kml+xml", True),
    "csv": Format("csv", "CSV", ".csv", "text/csv"),
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

#: how GDAL's CSV driver finds geometry: a WKT column, or lon/lat columns
CSV_OPEN_OPTIONS = {
    "GEOM_POSSIBLE_NAMES": "wkt,WKT,geometry,geom,the_geom",
    "X_POSSIBLE_NAMES": "lon,longitude,lng,long,x",
    "Y_POSSIBLE_NAMES": "lat,latitude,y",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
}


#: what pyogrio raises when GDAL cannot read or write a file (a 4xx, never a 500)
GDAL_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
)


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise Unsupported(f"unknown format {name!r}; use one of {', '.join(FORMATS)}") from None


def detect(path: Path) -> Format:
    """The format of a file by its name, confirmed by its first bytes."""
    name = _SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise Unsupported(
            f"{path.name}: unsupported file type {path.suffix!r}; use GeoJSON, "
            "GeoPackage, zipped Shapefile, KML or CSV"
        )
    if path.stat().st_size == 0:
        raise InvalidFile(f"{path.name} is empty")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if name == "gpkg" and not head.startswith(b"SQLite format 3"):
        raise InvalidFile(f"{path.name} is not a GeoPackage (no SQLite header): corrupt?")
    if name == "shp" and path.suffix.lower() == ".zip" and not zipfile.is_zipfile(path):
        raise InvalidFile(f"{path.name} is not a readable zip archive: corrupt?")
    return FORMATS[name]


def gdal_path(path: Path, fmt: Format) -> str:
    """What to hand GDAL: a zipped Shapefile is read in place through /vsizip/."""
    if fmt.name == "shp" and path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            shps = [
                n
                for n in zf.namelist()
                if n.lower().endswith(".shp") and not n.startswith("__MACOSX")
            ]
            if len(shps) != 1:
                raise InvalidFile(f"{path.name} must hold exactly one .shp; found {len(shps)}")
            total = sum(i.file_size for i in zf.infolist())
            if total > 8 * 1024**3:
                raise InvalidFile(f"{path.name} unpacks to {total} bytes; refusing (zip bomb?)")
        return f"/vsizip/{path}/{shps[0]}"
    return str(path)
