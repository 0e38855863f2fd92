"""The first step of an import: GDAL reads the file into Arrow (pyogrio's read_arrow).

GDAL does not hold Python's GIL while it reads, so the CLI starts this step in a thread
(``start``) before it loads the rest of the importer and connects to the database: the file is
read while Python imports psycopg, Arrow's compute functions and geo_comuna's own modules,
instead of after (~0.1 s of a 200,000-parcel import). Everything the thread uses is imported
with this module, so the thread itself imports nothing alongside the caller's imports. The
importer calls ``read_raw`` itself otherwise (uploads).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio

from geo_comuna.errors import InvalidFile, TooLarge
from geo_comuna.io.formats import CSV_OPEN_OPTIONS, GDAL_ERRORS, Format, detect, gdal_source
from geo_comuna.layers import Layer
from geo_comuna.settings import Settings

SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: 'CSV UTF-8'); the encoding is never guessed"


@dataclass
class RawFile:
    """A file as GDAL read it: its attribute and geometry columns, and how it was opened."""

    fmt: Format
    source: str  # the path as handed to GDAL (/vsizip/... for a zipped Shapefile)
    meta: dict[str, Any]  # pyogrio's: geometry_name, geometry_type, crs...
    table: pa.Table


def _pick_layer(path: str, fmt: Format, layer: Layer) -> str | None:
    if fmt.name != "gpkg":
        return None
    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    if len(names) == 1:
        return names[0]
    if layer.name in names:
        return layer.name
    raise InvalidFile(f"the GeoPackage holds layers {names}; none is named {layer.name!r}")


def read_raw(path: Path, layer: Layer, settings: Settings) -> RawFile:
    """Read ``path`` for ``layer``; a file too big, unreadable, empty, without geometry or not
    of the format its name gives is refused here, before anything else is done with it."""
    fmt = detect(path)
    source = gdal_source(path, fmt, settings.max_unpacked_bytes)
    options = CSV_OPEN_OPTIONS if fmt.name == "csv" else {}
    try:
        name = _pick_layer(source, fmt, layer)
        info = pyogrio.read_info(source, layer=name, **options)
        if info["features"] > settings.max_features_per_import:
            raise TooLarge(
                f"{path.name} holds {info['features']} features; the limit is "
                f"{settings.max_features_per_import}"
            )
        meta, table = pyogrio.read_arrow(source, layer=name, datetime_as_string=True, **options)
    except GDAL_ERRORS as exc:
        raise InvalidFile(f"cannot read {path.name} as {fmt.driver}: {exc}") from None
    except UnicodeDecodeError:  # a column name, decoded by pyogrio (values stay bytes)
        raise InvalidFile(f"{path.name} is not UTF-8 text; {SAVE_AS_UTF8}") from None
    if table.num_rows == 0:
        raise InvalidFile(f"{path.name} has no features")
    geometry = meta["geometry_name"] or "wkb_geometry"
    if meta["geometry_type"] is None or geometry not in table.column_names:
        raise InvalidFile(
            f"{path.name} has no geometry (CSV: give a WKT column or lon/lat columns)"
        )
    return RawFile(fmt, source, meta, table)


def start(path: Path, layer: Layer, settings: Settings) -> Future[RawFile]:
    """read_raw in a thread of its own; the future holds the file or the error refusing it."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-comuna-read")
    try:
        return pool.submit(read_raw, path, layer, settings)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task
