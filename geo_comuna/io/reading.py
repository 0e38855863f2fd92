"""The first step of an import: GDAL reads the file into Arrow (pyogrio's read_arrow).

GDAL does not hold Python's GIL while it reads, so the CLI starts this step in a thread
(``start``) before it loads the rest of the importer and connects to the database: the file is
read while Python imports psycopg, Arrow's compute functions and geo_comuna's own modules,
instead of after (~0.1 s of a 200,000-parcel import). Everything the thread uses is imported
with this module, so the thread itself imports nothing alongside the caller's imports.

An upload is read by ``read_isolated``: GDAL reads it in a child process that sends its
batches over a pipe and is killed when one takes longer than its bound (work.Streaming).
io/sniff closes every way of making GDAL's reading slow that is known (names counted before a
GeoJSON is read, a Shapefile's index checked...), but a thread cannot be stopped: a new one
would hold it, and its CPU, for as long as GDAL reads. With a reader started ahead, an
upload pays ~0.1-0.2 s for it (bench/README.md).

A file is read in batches (``batch_size``): only the first one is read here, the importer's
worker reads each next one as the pieces before are stored, so memory holds a couple of
batches whatever the file's size (a whole 1,000,000-parcel file as one Arrow table took
~900 MB). CSV is read whole: its text columns may need a second reading (importer).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from geo_comuna import work
from geo_comuna.child import Pieces
from geo_comuna.errors import InvalidFile, Said, TooLarge
from geo_comuna.io.formats import (
    CSV_AS_WRITTEN,
    CSV_OPEN_OPTIONS,
    GDAL_ERRORS,
    Format,
    detect,
    gdal_source,
    pyogrio,  # the hardened one
    unreadable,
)
from geo_comuna.layers import Layer
from geo_comuna.settings import Settings

#: features per batch a file is read in (io/pieces.CHUNK: one COPY piece each). Peak memory
#: of a 200,000-parcel import: 234 MB at 20,000, 201 MB at 10,000, 185 MB at 5,000 (the
#: command's libraries alone take ~135 MB); bench/README.md, "Import at every size"
BATCH = 5_000
# GDAL reads a GeoPackage's next batches ahead in threads of its own: batches held that a
# piece-by-piece import does not wait for (~19 MB at 20,000 features a batch); PostgreSQL and
# the import's worker keep the CPUs busy meanwhile
pyogrio.set_gdal_config_options({"OGR_GPKG_NUM_THREADS": "1"})
#: what to do with an upload its reader could not read in time, or at all (work.Streaming)
SAVE_AGAIN = Said(
    "save it again with QGIS or ogr2ogr, or split it",
    "vuelva a guardarlo con QGIS u ogr2ogr, o divídalo",
)
SAVE_AS_UTF8 = Said(
    "save it as UTF-8 (in Excel: 'CSV UTF-8'); the encoding is never guessed",
    "guárdelo como UTF-8 (en Excel: 'CSV UTF-8'); la codificación nunca se adivina",
)


@dataclass
class RawFile:
    """A file as GDAL read it: its attribute and geometry columns, and how it was opened."""

    fmt: Format
    source: str  # the path as handed to GDAL (/vsizip/... for a zipped Shapefile)
    meta: dict[str, Any]  # pyogrio's: geometry_name, geometry_type, crs...
    table: pa.Table  # the whole file, or its first batch
    features: int = 0  # in the whole file, as GDAL counts them
    #: the batches after the first, read as they are asked for (None: ``table`` is all)
    more: pa.RecordBatchReader | None = None
    layer: str | None = None  # the GeoPackage layer read
    #: read by a child process (read_isolated): a CSV's text columns already as written
    isolated: bool = False
    _open: ExitStack = field(default_factory=ExitStack)

    def close(self) -> None:
        """Let GDAL close the file (a streamed one stays open until the import ends)."""
        self.more = None
        self._open.close()

    @contextmanager
    def attributes(self, batch_size: int, name: str) -> Iterator[Any]:
        """The file (``name``) read again from its start, its attribute columns only, in
        batches of ``batch_size`` (``read_next_batch()``), in a child process if it was read
        so."""
        if self.isolated:
            stream = work.Streaming(
                name,
                SAVE_AGAIN,
                _attributes_in_child,
                self.source,
                self.layer,
                batch_size,
                again=True,
            )
            try:
                yield _Piecewise(stream)
            finally:
                stream.close()
            return
        with _attribute_reader(self.source, self.layer, batch_size) as (_, batches):
            yield batches

    def unread_geometry(self, position: int, path: Path) -> Said | None:
        """Why the feature at ``position`` (1-based, in the file's order) came without a
        geometry, when the file holds one that GDAL could not read: a CSV's WKT or lon/lat
        as written, a GeoPackage's damaged geometry blob. None when it holds none (or its
        format cannot tell): then it is missing. In a child process if the file (``path``) was
        read so. Blocking."""
        if self.fmt.name not in ("csv", "gpkg"):
            return None
        args = (self.source, self.fmt.name, self.layer, self.meta["geometry_name"], position)
        if self.isolated:
            size = path.stat().st_size
            return work.in_child(path.name, SAVE_AGAIN, size, _unread_in_child, *args)
        return _unread(*args)


#: the formats whose files hold several layers: a GeoPackage's tables, a KML's folders
_HOLDS = {
    "gpkg": Said("the GeoPackage holds layers", "el GeoPackage contiene las capas"),
    "kml": Said("the KML holds folders", "el KML contiene las carpetas"),
}


def _pick_layer(path: str, fmt: Format, layer: Layer) -> str | None:
    """The layer of the file to read: its only one; of a GeoPackage's several, the one named
    as ``layer`` (none so named: refused, naming them); of a KML's folders, the one that
    holds features (_kml_folder). GDAL would read the first, the others left out unsaid."""
    holds = _HOLDS.get(fmt.name)
    if holds is None:  # one layer (a zip of Shapefiles is refused with two .shp)
        return None
    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    if len(names) == 1:
        return names[0]
    if fmt.name == "kml":
        return _kml_folder(path, names, holds)
    if layer.name in names:
        return layer.name
    raise InvalidFile(
        Said(
            f"{holds} {names}; none is named {layer.name!r}: give the one to import that "
            f"name, or put all the features in one",
            f"{holds.es} {names}; ninguna se llama {layer.name!r}: dé ese nombre a la que "
            f"quiere importar, o reúna todas las entidades en una",
        )
    )


#: the most folders of a KML whose features are counted (GDAL reads the whole file for each)
MAX_KML_FOLDERS = 20


def _kml_folder(path: str, names: list[str], holds: Said) -> str:
    """The one folder of a KML that holds features; a KML whose features are in several is
    refused naming them and what each holds. A KML's folders are a way to sort placemarks,
    not layers: found from outside, a folder named as the layer was read and another one
    beside it left out unsaid, and so was a second folder of the same name (GDAL's
    'parcels (#2)'). Placemarks outside any folder are GDAL's layer named after the file."""
    if len(names) > MAX_KML_FOLDERS:
        raise InvalidFile(
            Said(
                f"the KML holds {len(names)} folders, and at most {MAX_KML_FOLDERS} are read: "
                "put the features to import in one, and leave the empty ones out",
                f"el KML contiene {len(names)} carpetas, y se leen {MAX_KML_FOLDERS} como "
                "mucho: reúna las entidades a importar en una, y quite las vacías",
            )
        )
    counts = {n: pyogrio.read_info(path, layer=n)["features"] for n in names}
    holding = [n for n in names if counts[n]]
    if len(holding) <= 1:
        return (holding or names)[0]
    outside = Path(path).stem

    def listed(lang: str) -> str:
        loose = "placemarks outside any folder" if lang == "en" else "fuera de toda carpeta"
        return ", ".join(
            f"{loose if n == outside else repr(n[:80])}: {counts[n]}" for n in holding
        )  # a name cut short: found from outside, 200,000 characters went back whole

    raise InvalidFile(
        Said(
            f"{holds} of features ({listed('en')}): put the features to import in one",
            f"{holds.es} con entidades ({listed('es')}): reúna las entidades a importar en una",
        )
    )


def read_raw(
    path: Path, layer: Layer, settings: Settings, batch_size: int | None = None
) -> RawFile:
    """Read ``path`` for ``layer``: all of it, or with ``batch_size`` its first batch of that
    many features (CSV: all of it anyway), the rest left to ``RawFile.more``. A file too big,
    unreadable, empty, without geometry or not of the format its name gives is refused here,
    before anything else is done with it."""
    fmt = detect(path)
    if fmt.name == "csv":
        _one_place_column_each(path)
    source = gdal_source(path, fmt, settings.max_unpacked_bytes)
    options = CSV_OPEN_OPTIONS if fmt.name == "csv" else {}
    opened = ExitStack()
    try:
        name = _pick_layer(source, fmt, layer)
        info = pyogrio.read_info(source, layer=name, **options)
        if info["features"] > settings.max_features_per_import:
            raise TooLarge(
                Said(
                    f"{path.name} holds {info['features']} features; the limit is "
                    f"{settings.max_features_per_import}",
                    f"{path.name} contiene {info['features']} entidades; el límite es "
                    f"{settings.max_features_per_import}",
                )
            )
        _one_column_per_name(path.name, list(info["fields"]))
        if batch_size is None or fmt.name == "csv":
            meta, table = pyogrio.read_arrow(source, layer=name, datetime_as_string=True, **options)
            more = None
        else:
            meta, more = opened.enter_context(
                pyogrio.open_arrow(
                    source,
                    layer=name,
                    datetime_as_string=True,
                    batch_size=batch_size,
                    use_pyarrow=True,
                )
            )
            table = pa.Table.from_batches([_first(more)], more.schema)
    except GDAL_ERRORS as exc:
        opened.close()
        raise unreadable(path.name, fmt.driver, exc) from None
    except UnicodeDecodeError:  # a column name, decoded by pyogrio (values stay bytes)
        opened.close()
        raise InvalidFile(
            Said(
                f"{path.name} is not UTF-8 text; {SAVE_AS_UTF8}",
                f"{path.name} no es texto UTF-8; {SAVE_AS_UTF8.es}",
            )
        ) from None
    except BaseException:
        opened.close()
        raise
    if table.num_rows == 0:
        opened.close()
        raise InvalidFile(
            Said(f"{path.name} has no features", f"{path.name} no contiene entidades")
        )
    geometry = meta["geometry_name"] or "wkb_geometry"
    if meta["geometry_type"] is None or geometry not in table.column_names:
        opened.close()
        raise InvalidFile(
            Said(
                f"{path.name} has no geometry (CSV: give a WKT column or lon/lat columns)",
                f"{path.name} no tiene geometría (CSV: incluya una columna WKT o columnas lon/lat)",
            )
        )
    if table.column_names.count(geometry) > 1:  # a CSV's WKT,WKT: found from outside, a 500
        opened.close()
        raise InvalidFile(
            Said(
                f"{path.name} has {table.column_names.count(geometry)} geometry columns (a CSV's "
                "WKT columns): keep one, or rename the others",
                f"{path.name} tiene {table.column_names.count(geometry)} columnas de geometría "
                "(las columnas WKT de un CSV): deje una, o cambie el nombre de las demás",
            )
        )
    return RawFile(fmt, source, meta, table, info["features"], more, name, _open=opened)


#: the CSV columns GDAL takes a place from (CSV_OPEN_OPTIONS), by what they give
_PLACE_COLUMNS = {
    what: {n.lower() for n in CSV_OPEN_OPTIONS[option].split(",")}
    for what, option in (
        (Said("the WKT", "el WKT"), "GEOM_POSSIBLE_NAMES"),
        (Said("the longitude (x)", "la longitud (x)"), "X_POSSIBLE_NAMES"),
        (Said("the latitude (y)", "la latitud (y)"), "Y_POSSIBLE_NAMES"),
    )
}
#: the separators GDAL may take a CSV's to be (it guesses from the first line)
_SEPARATORS = (",", ";", "\t", " ")


def _one_place_column_each(path: Path) -> None:
    """A CSV giving its features' place in two columns of one kind (two WKT columns, x and
    lon) is refused naming them, before GDAL reads it. Found from outside: GDAL 3.6 and 3.12
    crash (a segfault) on x,lon,lat,y, and took the_geom beside an empty geometry for a
    second geometry. GDAL guesses the separator from the first line, and its versions guess
    differently, so the header is read as a CSV's first record (quotes, a quoted line break,
    any length) with each separator GDAL may take, and refused if any reading finds two."""
    for separator in _SEPARATORS:
        names = _header(path, separator)
        for what, accepted in _PLACE_COLUMNS.items():
            found = [n for n in names if n.lower() in accepted]
            if len(found) > 1:
                raise InvalidFile(
                    Said(
                        f"{path.name} gives {what} of its features in {len(found)} columns "
                        f"({', '.join(found)}): keep one, or rename the others",
                        f"{path.name} da {what.es} de sus entidades en {len(found)} columnas "
                        f"({', '.join(found)}): deje una, o cambie el nombre de las demás",
                    )
                )


def _header(path: Path, separator: str) -> list[str]:
    """A CSV's first record as column names, read with ``separator``. A name past the csv
    module's bound (128 KB) is refused: it cannot be read to be checked."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        try:
            first = next(csv.reader(f, delimiter=separator), [])
        except csv.Error:
            raise InvalidFile(
                Said(
                    f"{path.name}: a column name of its first line is over 128 KB long",
                    f"{path.name}: un nombre de columna de su primera línea tiene más de 128 KB",
                )
            ) from None
    return [name.lstrip("\ufeff").strip() for name in first]


def _one_column_per_name(name: str, columns: list[str]) -> None:
    """A file with two columns of one name (in any case: columns are matched to properties
    so) is refused: which of the two holds the value? A CSV's 'code,...,code' was a 500."""
    seen: set[str] = set()
    for column in columns:
        if column.casefold() in seen:
            raise InvalidFile(
                Said(
                    f"{name} has two columns named {column!r}: give each column its own name",
                    f"{name} tiene dos columnas llamadas {column!r}: dé a cada columna su "
                    "propio nombre",
                )
            )
        seen.add(column.casefold())


def _first(batches: pa.RecordBatchReader) -> pa.RecordBatch:
    """The first batch, or an empty one for a file without features."""
    try:
        return batches.read_next_batch()
    except StopIteration:
        return pa.RecordBatch.from_pylist([], schema=batches.schema)


def is_text_type(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def csv_text_as_written(source: str, table: pa.Table, layer: Layer) -> pa.Table:
    """GDAL's CSV type detection makes an all-digit column numbers; for a text property (parcel
    codes 101, 102) or a commune given by code that is wrong (refused as "not text", or taken
    for an id), so those columns are read again exactly as written."""
    text = {a.name.lower() for a in layer.attributes if a.type == "text"}
    text |= {r.name.lower() for r in layer.references if r.key == "code"}
    redo = [f.name for f in table.schema if f.name.lower() in text and not is_text_type(f.type)]
    if not redo:
        return table
    _, again = pyogrio.read_arrow(
        source,
        columns=redo,
        read_geometry=False,
        **{**CSV_OPEN_OPTIONS, "AUTODETECT_TYPE": "NO"},
    )
    for column in redo:
        table = table.set_column(table.column_names.index(column), column, again.column(column))
    return table


# --- an upload, read in a child process -------------------------------------------------------


def read_isolated(
    path: Path, layer: Layer, settings: Settings, batch_size: int | None = None
) -> RawFile:
    """read_raw by GDAL in a child process (work.Streaming), each batch sent over a pipe; a
    CSV's text columns are read as written there too (csv_text_as_written). Blocking."""
    stream = work.Streaming(
        path.name,
        SAVE_AGAIN,
        _read_in_child,
        path,
        layer,
        settings,
        batch_size,
        size=path.stat().st_size,
    )
    fmt, source, meta, features, name, table, streamed = stream.first
    opened = ExitStack()
    opened.callback(stream.close)
    more = _Piecewise(stream) if streamed else None
    if not streamed:
        stream.close()
    return RawFile(fmt, source, meta, table, features, more, name, isolated=True, _open=opened)


class _Piecewise:
    """A child's batches as a pyarrow RecordBatchReader is read (``read_next_batch``)."""

    def __init__(self, stream: work.Streaming) -> None:
        self._stream = stream

    def read_next_batch(self) -> pa.RecordBatch:
        batch = self._stream.next()
        if batch is None:
            raise StopIteration
        return batch


def _read_in_child(path: Path, layer: Layer, settings: Settings, batch_size: int | None) -> Pieces:
    """In the child: read_raw, and the file's fields and first batch as the first answer."""
    raw = read_raw(path, layer, settings, batch_size)
    table = raw.table
    if raw.more is None and raw.fmt.name == "csv":
        try:
            table = csv_text_as_written(raw.source, table, layer)
        except GDAL_ERRORS as exc:
            raise unreadable(path.name, raw.fmt.driver, exc) from None
    first = (raw.fmt, raw.source, raw.meta, raw.features, raw.layer, table, raw.more is not None)
    return Pieces(first, _rest(raw))


def _rest(raw: RawFile) -> Iterator[pa.RecordBatch]:
    try:
        while raw.more is not None:
            try:
                yield raw.more.read_next_batch()
            except StopIteration:
                return
    finally:
        raw.close()


def _unread_in_child(*args: Any) -> Pieces:
    return Pieces(_unread(*args), iter(()))


def _unread(
    source: str, fmt: str, layer: str | None, geometry: str | None, position: int
) -> Said | None:
    """unread_geometry's reading, in this process or a child's alike."""
    if fmt == "csv":
        return _unread_csv(source, position)
    return _unread_gpkg(source, layer or "", geometry or "", position)


def _unread_csv(source: str, position: int) -> Said | None:
    """What a CSV's row holds where GDAL finds geometry: its WKT, or its lon/lat, as written."""
    _, row = pyogrio.read_arrow(
        source, skip_features=position - 1, max_features=1, read_geometry=False, **CSV_AS_WRITTEN
    )
    values = row.to_pylist()[0] if row.num_rows else {}
    written = {key.lower(): value for key, value in values.items() if value}
    wkt = [written[n] for n in _names("GEOM_POSSIBLE_NAMES") if n in written]
    if wkt:
        shown = _shown(wkt[0])
        return Said(f"its WKT could not be read: {shown}", f"no se pudo leer su WKT: {shown}")
    lon = [written[n] for n in _names("X_POSSIBLE_NAMES") if n in written]
    lat = [written[n] for n in _names("Y_POSSIBLE_NAMES") if n in written]
    if not (lon or lat):
        return None
    shown = f"{_shown(lon[0] if lon else '')}, {_shown(lat[0] if lat else '')}"
    return Said(
        f"its longitude and latitude are not both numbers: {shown}",
        f"su longitud y latitud no son ambas números: {shown}",
    )


def _unread_gpkg(source: str, layer: str, geometry: str, position: int) -> Said | None:
    """The size of a GeoPackage row's geometry blob, by the GeoPackage's own SQL (SQLite's;
    GDAL reads a table in rowid order), when it holds one."""
    column, table = ('"' + name.replace('"', '""') + '"' for name in (geometry, layer))
    offset = f"LIMIT 1 OFFSET {position - 1:d}"  # an int: nothing of the file's
    query = f"SELECT length({column}) AS size FROM {table} ORDER BY rowid {offset}"
    _, row = pyogrio.read_arrow(source, sql=query)
    size = row.column("size")[0].as_py() if row.num_rows else None
    if not size:
        return None
    return Said(
        f"its geometry ({size} bytes) is damaged: GDAL could not read it",
        f"su geometría ({size} bytes) está dañada: GDAL no pudo leerla",
    )


def _names(option: str) -> list[str]:
    return [name.lower() for name in CSV_OPEN_OPTIONS[option].split(",")]


def _shown(value: str) -> str:
    """A value from a file as a message shows it: quoted, its first 60 characters."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


def _attributes_in_child(source: str, layer: str | None, batch_size: int) -> Pieces:
    return Pieces(None, _attribute_batches(source, layer, batch_size))


def _attribute_batches(source: str, layer: str | None, batch_size: int) -> Iterator[Any]:
    with _attribute_reader(source, layer, batch_size) as (_, batches):
        yield from batches


def _attribute_reader(source: str, layer: str | None, batch_size: int) -> Any:
    """GDAL's reader of a file's attribute columns in batches (pyogrio.open_arrow's context:
    (meta, batches)), in this process or a child's alike."""
    return pyogrio.open_arrow(
        source,
        layer=layer,
        read_geometry=False,
        datetime_as_string=True,
        batch_size=batch_size,
        use_pyarrow=True,
    )


def start(path: Path, layer: Layer, settings: Settings) -> Future[RawFile]:
    """read_raw in a thread of its own, batch by batch (its first batch read there); the future
    holds the file or the error refusing it."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-comuna-read")
    try:
        return pool.submit(read_raw, path, layer, settings, BATCH)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task
