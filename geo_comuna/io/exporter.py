"""Export a layer to a file: one SQL statement reads it, a piece of rows at a time kept as Arrow
(geopandas reprojects each piece), and pyogrio writes it (GeoJSON, GeoPackage, zipped
Shapefile, KML or CSV).

The columns are the collection's output properties (query.property_exprs: references as the
codes clients write, derived values such as area_ha), typed from the registry so an empty
export still has its schema, and so dates stay dates and booleans booleans where the format has
them. Every file the importer reads back (io/importer.py): derived columns are then reported as
ignored. CSV text cells a spreadsheet would run as a formula go out as text (io/formulas.py).
A file is written next to its destination and moved in place when complete, so a failed export
never leaves half a file behind. A GeoPackage holds many layers: exporting into an existing one
adds the layer and leaves the others (a copy is changed, then moved in place); a layer it
already holds is replaced only when asked (``overwrite_layer``), so a commune's layers add up
in one file. Shapefile field names are cut to 10 characters, and refused when two would cut to
the same name (the file could not be read back).

An export holds what its reader may read (the registry's read rules, features/query.py): a
members-only column is left out for a reader who may read it in no commune and empty in other
communes' rows, and a members-only geometry is empty outside the reader's communes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyproj
import shapely
from psycopg import AsyncConnection, AsyncServerCursor, sql

from geo_comuna.accounts import Access
from geo_comuna.errors import InvalidInput, Said, UnknownCRS, Unsupported
from geo_comuna.features.crs import GEOGRAPHIC_DECIMALS
from geo_comuna.features.query import Filters, geometry_sql, property_exprs, where_sql
from geo_comuna.io import sniff
from geo_comuna.io.formats import FORMATS, GDAL_ERRORS, Format, get_format
from geo_comuna.io.formulas import neutralise
from geo_comuna.io.geometries import parse_crs
from geo_comuna.layers import Layer

WGS84 = pyproj.CRS.from_epsg(4326)
#: the geometry's column in the Arrow tables written (GDAL names the file's own)
GEOMETRY = "geometry"
#: rows of a layer read at a time while it is exported...
PIECE = 20_000
#: ... and about this much geometry (WKB; one row at least)
PIECE_BYTES = 4 * 2**20
_ARROW = {
    "text": pa.string(),
    "integer": pa.int32(),
    "number": pa.float64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}
#: what a Shapefile is made of; .cpg says the .dbf is UTF-8
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: the bytes a dBASE text field holds (GDAL cuts longer text with only a warning)
DBF_TEXT_BYTES = 254
_LAYER_OPTIONS: dict[str, dict[str, str]] = {
    # lon/lat, right-hand rings, and the API's 9 decimals (~0.1 mm; RFC 7946's default is 7,
    # ~1 cm: an export imported back moved surveyed vertices and changed their versions)
    "geojson": {"RFC7946": "YES", "COORDINATE_PRECISION": str(GEOGRAPHIC_DECIMALS)},
    "csv": {"GEOMETRY": "AS_WKT"},  # a WKT column first; CSV_OPEN_OPTIONS reads it back
}


@dataclass
class ExportReport:
    layer: str
    file: str
    format: str
    crs: str
    features: int
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def format_for(path: Path, name: str | None = None) -> Format:
    """The format asked for by name, else the one the file's suffix says (.zip = Shapefile).
    A name and a suffix that disagree are refused: --format shp wrote its zip to p.shp, which
    no GIS opens."""
    suffix = path.suffix.lower()
    if name:
        fmt = get_format(name)
        alike = suffix == fmt.suffix or (fmt.name == "geojson" and suffix == ".json")
        if suffix and not alike and not path.is_dir():
            named = path.with_suffix(fmt.suffix).name
            raise Unsupported(
                Said(
                    f"--format {fmt.name} writes {fmt.suffix} files, and {path.name!r} says "
                    f"{suffix}: name it {named!r}",
                    f"--format {fmt.name} escribe archivos {fmt.suffix}, y {path.name!r} dice "
                    f"{suffix}: nómbrelo {named!r}",
                )
            )
        return fmt
    found = next((f for f in FORMATS.values() if f.suffix == suffix), None)
    if suffix == ".json":
        found = FORMATS["geojson"]
    if found is None:
        hint = " (Shapefiles are exported zipped: name it .zip)" if suffix == ".shp" else ""
        pista = " (los Shapefile se exportan en zip: nómbrelo .zip)" if suffix == ".shp" else ""
        raise Unsupported(
            Said(
                f"cannot tell the format from {path.name!r}{hint}; give one of "
                f"{', '.join(FORMATS)}",
                f"no se puede deducir el formato de {path.name!r}{pista}; indique uno de "
                f"{', '.join(FORMATS)}",
            )
        )
    return found


def check_crs(fmt: Format, crs: str) -> pyproj.CRS:
    """The CRS to write ``fmt`` in; GeoJSON (RFC 7946) and KML are lon/lat WGS 84 only."""
    target = parse_crs(crs)
    if not (target.is_geographic or target.is_projected):
        raise UnknownCRS(
            Said(
                f"{crs!r} is neither a geographic nor a projected CRS; give one such "
                "as EPSG:2202 (REGVEN / UTM 19N)",
                f"{crs!r} no es un sistema de referencia (CRS) geográfico ni proyectado; indique "
                "uno como EPSG:2202 (REGVEN / UTM 19N)",
            )
        )
    if fmt.wgs84_only and not target.equals(WGS84, ignore_axis_order=True):
        raise InvalidInput(
            Said(
                f"{fmt.driver} files are always EPSG:4326 (lon/lat WGS 84); for "
                f"{crs} export gpkg, shp or csv",
                f"los archivos {fmt.driver} siempre están en EPSG:4326 (lon/lat WGS 84); para "
                f"{crs} exporte gpkg, shp o csv",
            )
        )
    try:  # a CRS of another planet, say, parses but cannot be reached from WGS 84
        pyproj.Transformer.from_crs(WGS84, target, always_xy=True)
    except pyproj.exceptions.ProjError as exc:
        raise UnknownCRS(
            Said(
                f"cannot transform WGS 84 to {crs!r}: {exc}",
                f"no se puede transformar WGS 84 a {crs!r}: {exc}",
            )
        ) from None
    return target


def crs_label(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def output_path(path_or_dir: Path, layer: Layer, fmt: Format) -> Path:
    """A directory gets ``<layer><suffix>`` inside it; a file path is taken as is."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / f"{layer.name}{fmt.suffix}"
    if not path.parent.is_dir():
        raise InvalidInput(
            Said(
                f"directory {str(path.parent)!r} does not exist",
                f"el directorio {str(path.parent)!r} no existe",
            )
        )
    return path


def gdal_crs(crs: pyproj.CRS) -> str:
    """``crs`` as GDAL is given it: its EPSG code where it has one, else its WKT (as
    pyogrio gives a data frame's)."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL")


def column_types(layer: Layer) -> dict[str, pa.DataType]:
    """Arrow type of every output property, from the registry; derived arrays go out as JSON
    text (no format here has a list column that all the others read)."""
    types: dict[str, pa.DataType] = {}
    for ref in layer.references:
        types[ref.name] = pa.int32() if ref.key == "id" else pa.string()
    for attr in layer.attributes:
        types[attr.name] = _ARROW[attr.type]
    for derived in layer.derived:
        types[derived.name] = pa.float64() if derived.type == "number" else pa.string()
    return types


async def read_batches(
    conn: AsyncConnection,
    layer: Layer,
    commune_id: int | None,
    access: Access,
    fmt: Format,
    crs: pyproj.CRS,
) -> tuple[pa.Schema, AsyncIterator[pa.RecordBatch]]:
    """The output properties the reader gets, typed from the registry, and the geometry (WKB
    in ``crs``) of every feature, in id order: their schema, and the rows as Arrow pieces as
    they are read (arrow_batches)."""
    where, params = where_sql(layer, Filters(commune_id=commune_id), access)
    # derived properties with a batch form are worked out for all the rows at once
    ids = sql.SQL("ARRAY(SELECT t.id FROM {} t WHERE {})").format(
        sql.Identifier(layer.table), where
    )
    exprs, joins = property_exprs(layer, access, ids)
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expr, sql.Identifier(name)) for name, expr in exprs
    )
    query = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {} t {} WHERE {} ORDER BY t.id").format(
        columns, geometry_sql(layer, access), sql.Identifier(layer.table), joins, where
    )
    types = column_types(layer)
    if fmt.name in ("csv", "kml"):
        # GDAL writes dates there as 2020/05/01; ISO 8601 text is what people and the
        # importer read back as a date
        types = {k: pa.string() if v == pa.date32() else v for k, v in types.items()}
    schema = pa.schema([*((name, types[name]) for name, _ in exprs), (GEOMETRY, pa.binary())])
    return schema, arrow_batches(conn, query, params, schema, fmt, crs)


async def arrow_batches(
    conn: AsyncConnection,
    query: sql.Composable,
    params: dict[str, Any],
    schema: pa.Schema,
    fmt: Format,
    crs: pyproj.CRS = WGS84,
) -> AsyncIterator[pa.RecordBatch]:
    """The rows of ``query`` as Arrow record batches of ``schema``, whose last column is the
    geometry (WKB in EPSG:4326, reprojected to ``crs``), read through a server-side cursor
    (one snapshot) in pieces of at most PIECE rows and about PIECE_BYTES of geometry (_read),
    each turned into Arrow on a worker as it comes. Hand them to write_streamed: a layer
    held whole as Arrow took 271 MB for 200,000 parcels, 606 MB for 100 of 50,000 vertices."""
    async with conn.transaction(), conn.cursor(name="arrow_batches") as cur:
        await cur.execute(query, params)
        async for rows in _read(cur):
            yield await asyncio.to_thread(_piece, schema, rows, fmt, crs)


#: the first fetch of an export's cursor, in rows (see _read)
FIRST_FETCH = 8


async def _read(cur: AsyncServerCursor) -> AsyncIterator[list[tuple]]:
    """The cursor's rows in pieces of at most PIECE rows, a piece ending with the fetch that
    brings it to PIECE_BYTES of geometry (the last column). A fetch of 20,000 rows of
    50,000-vertex parcels would be 16 GB, so a fetch asks for as many rows as the last one's
    bytes per row say would fill the piece: FIRST_FETCH at first, then at most four times
    the last (ordinary parcels fill a piece a fetch by the seventh)."""
    ask, rows, size = min(FIRST_FETCH, PIECE), [], 0
    while fetched := await cur.fetchmany(ask):
        got = sum(len(row[-1]) for row in fetched if row[-1] is not None)
        rows += fetched
        size += got
        if len(rows) >= PIECE or size >= PIECE_BYTES:
            yield rows
            rows, size = [], 0
        per_row = max(got / len(fetched), 1.0)
        ask = max(1, min(4 * ask, PIECE - len(rows), int((PIECE_BYTES - size) / per_row)))
    if rows:
        yield rows


def _piece(schema: pa.Schema, rows: list[tuple], fmt: Format, crs: pyproj.CRS) -> pa.RecordBatch:
    """arrow_batches()'s rows as Arrow, the geometry reprojected to ``crs``."""
    columns = list(zip(*rows, strict=True))
    spreadsheet = fmt.name == "csv"
    arrays = [
        arrow_column(values, kind, spreadsheet)
        for values, kind in zip(columns[:-1], schema.types[:-1], strict=True)
    ]
    wkb = list(columns[-1])
    if not crs.equals(WGS84, ignore_axis_order=True):
        moved = gpd.GeoSeries(shapely.from_wkb(wkb), crs=WGS84).to_crs(crs)
        wkb = list(shapely.to_wkb(moved.values))
    return pa.record_batch([*arrays, pa.array(wkb, pa.binary())], schema=schema)


async def write_streamed(
    batches: AsyncIterator[pa.RecordBatch],
    schema: pa.Schema,
    write: Callable[[pa.RecordBatchReader], None],
) -> int:
    """Run ``write`` (GDAL, for seconds on big layers) on a thread of its own with a reader of
    ``batches`` as they come, and return the rows written. The thread takes each batch from
    a hand-off of one: at most the piece being written, the one waiting and the one being
    read are held, whatever the layer's size. A read that fails (or is cancelled) stops the
    writer before its error goes on; a writer that fails stops the reading, and its error
    goes on."""
    loop = asyncio.get_running_loop()
    handoff: asyncio.Queue[pa.RecordBatch | BaseException | None] = asyncio.Queue(maxsize=1)

    def source() -> Iterator[pa.RecordBatch]:
        while (item := asyncio.run_coroutine_threadsafe(handoff.get(), loop).result()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    reader = pa.RecordBatchReader.from_batches(schema, source())
    writer = _on_own_thread(lambda: write(reader))
    rows = 0
    try:
        async with contextlib.aclosing(batches):
            async for batch in batches:
                if not await _handed(handoff, batch, writer):
                    break  # the writer stopped: its error is raised below
                rows += batch.num_rows
            else:
                await _handed(handoff, None, writer)
    except BaseException:
        with contextlib.suppress(asyncio.QueueEmpty):
            handoff.get_nowait()  # a batch it will no longer want
        handoff.put_nowait(_Abandoned())
        with contextlib.suppress(Exception):
            await writer
        raise
    await writer
    return rows


def _on_own_thread(call: Callable[[], None]) -> asyncio.Future[None]:
    """Run ``call`` on a thread of its own; the future ends with it. Not on the event loop's
    pool: a writer waits there for pieces that are made on that pool (_piece), and seven
    exports at once (the pool has six threads on two CPUs) held every thread waiting for a
    piece none could make, and the server hung until restarted."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name="geo_comuna-writer", daemon=True).start()
    return done


class _Abandoned(Exception):
    """What the writer's reader raises when the rows stopped coming."""


async def _handed(handoff: asyncio.Queue, item: Any, writer: asyncio.Future) -> bool:
    """Put ``item`` in the hand-off once the writer has taken the one before; False if the
    writer ended first."""
    put = asyncio.ensure_future(handoff.put(item))
    try:
        await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        return put.done()
    finally:
        put.cancel()  # nothing when it was put


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False)


def arrow_column(values: Sequence[Any], kind: pa.DataType, spreadsheet: bool = False) -> pa.Array:
    """Database values of one output property as an Arrow array of its registry type.
    ``spreadsheet``: text cells are made safe to open in a spreadsheet (io/formulas.py)."""
    if pa.types.is_floating(kind):  # numeric (Decimal) from round(...)
        values = [None if v is None else float(v) for v in values]
    elif pa.types.is_string(kind):
        values = [_text(v) for v in values]
        if spreadsheet:
            values = [v if v is None else neutralise(v) for v in values]
    return pa.array(values, type=kind)


def _dbf_names(names: list[str]) -> dict[str, str]:
    """Shapefile (dBASE) field names: at most 10 characters, compared without case as dBASE
    and the importer do. Two names that would cut to the same one are refused, naming them:
    GDAL would rename one to something nobody can map back."""
    cut = {n: n[:10] for n in names if len(n) > 10}
    seen: dict[str, str] = {}
    for name in names:
        short = cut.get(name, name).lower()
        if short in seen:
            raise InvalidInput(
                Said(
                    f"a Shapefile cannot hold both {seen[short]!r} and {name!r}: field names "
                    "are cut to 10 characters and these would read the same; export gpkg instead",
                    f"un Shapefile no puede contener a la vez {seen[short]!r} y {name!r}: los "
                    "nombres de campo se cortan a 10 caracteres y estos se leerían igual; "
                    "exporte gpkg en su lugar",
                )
            )
        seen[short] = name
    return cut


def _fitting_dbf(
    source: pa.RecordBatchReader, names: list[str], layer: Layer, refused: list[InvalidInput]
) -> Iterator[pa.RecordBatch]:
    """``source``'s batches under the Shapefile's field ``names``, each checked to fit a
    dBASE text field: GDAL cut a 307-character note (607 bytes of Spanish) to 253 bytes with
    a warning only, and that file imported back with --upsert made the loss permanent. The
    first text that does not fit refuses the export (also put in ``refused``: raised here,
    it reaches the caller as GDAL's error), naming the feature and the field."""
    start = 0
    for batch in source:
        for i, kind in enumerate(batch.schema.types):
            if not pa.types.is_string(kind):
                continue
            sizes = pc.binary_length(batch.column(i))
            row = pc.index(pc.greater(sizes, DBF_TEXT_BYTES), True).as_py()
            if row < 0:
                continue
            field, size = batch.schema.names[i], sizes[row].as_py()
            code = batch.column("code")[row].as_py() if "code" in batch.schema.names else None
            which = f"{start + row + 1}" + (f" ({code})" if code else "")
            refused.append(
                InvalidInput(
                    Said(
                        f"a Shapefile's text field holds {DBF_TEXT_BYTES} bytes, and {field!r} of "
                        f"{layer.name} feature {which} has {size}: export gpkg or geojson, "
                        "which keep it whole",
                        f"un campo de texto de Shapefile admite {DBF_TEXT_BYTES} bytes, y "
                        f"{field!r} de la entidad {which} de {layer.name} tiene {size}: exporte "
                        "gpkg o geojson, que lo guardan entero",
                    )
                )
            )
            raise refused[-1]
        start += batch.num_rows
        yield batch.rename_columns(names)


def existing_geopackage(target: Path, layer: Layer, overwrite_layer: bool) -> bool:
    """Is ``target`` a GeoPackage to add ``layer`` to? Refuses one that holds the layer
    already unless ``overwrite_layer``, and a file that is not a GeoPackage."""
    if not target.exists():
        return False
    sniff.gpkg(target)  # a real GeoPackage, as an upload would be checked, before GDAL opens it
    try:
        held = {str(name) for name, _ in pyogrio.list_layers(f"GPKG:{target}")}
    except GDAL_ERRORS as exc:
        raise InvalidInput(
            Said(
                f"{target.name} is not a readable GeoPackage: {exc}",
                f"{target.name} no es un GeoPackage legible: {exc}",
            )
        ) from None
    if layer.name in held and not overwrite_layer:
        raise InvalidInput(
            Said(
                f"{target.name} already holds the layer {layer.name!r}; --overwrite-layer "
                "replaces it and keeps the others",
                f"{target.name} ya contiene la capa {layer.name!r}; --overwrite-layer la "
                "reemplaza y conserva las demás",
            )
        )
    return True


def write(
    source: pa.RecordBatchReader,
    layer: Layer,
    fmt: Format,
    target: Path,
    crs: pyproj.CRS = WGS84,
    overwrite_layer: bool = False,
) -> None:
    """Write ``source``'s rows into a scratch directory beside ``target``, then move (or zip)
    into place. An existing GeoPackage is copied there first and gets the layer added (or
    replaced). A Shapefile's field names are cut to 10 characters (_dbf_names)."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        inner = Path(scratch) / f"{layer.name}{'.shp' if fmt.name == 'shp' else fmt.suffix}"
        if fmt.name == "gpkg" and existing_geopackage(target, layer, overwrite_layer):
            shutil.copyfile(target, inner)
        too_long: list[InvalidInput] = []
        if fmt.name == "shp":
            # cut here, as the report's notes say, rather than by GDAL with a warning
            cut = _dbf_names(source.schema.names)
            schema = pa.schema([f.with_name(cut.get(f.name, f.name)) for f in source.schema])
            source = pa.RecordBatchReader.from_batches(
                schema, _fitting_dbf(source, schema.names, layer, too_long)
            )
        try:
            pyogrio.write_arrow(
                source,
                inner,
                layer=layer.name,
                driver=fmt.driver,
                geometry_name=GEOMETRY,
                geometry_type=layer.geometry_type,
                crs=gdal_crs(crs),
                layer_options=_LAYER_OPTIONS.get(fmt.name),
                dataset_options=fmt.dataset_options,
                **({"encoding": "UTF-8"} if fmt.name == "shp" else {}),
            )
        except Exception as exc:
            if too_long:  # raised in the reader GDAL pulls from: it comes back as GDAL's
                raise too_long[0] from None
            if not isinstance(exc, GDAL_ERRORS):
                raise
            raise InvalidInput(
                Said(
                    f"cannot write {layer.name} as {fmt.driver}: {exc}",
                    f"no se puede escribir {layer.name} como {fmt.driver}: {exc}",
                )
            ) from None
        if fmt.name == "shp":
            packed = inner.with_suffix(".zip")
            with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
                for suffix in _SHAPEFILE_PARTS:
                    part = inner.with_suffix(suffix)
                    if part.exists():
                        zf.write(part, part.name)
            inner = packed
        os.replace(inner, target)


def notes(names: list[str], fmt: Format, crs: pyproj.CRS) -> list[str]:
    """What the reader of the file must know to bring it back."""
    said = []
    if fmt.name == "csv" and not crs.equals(WGS84, ignore_axis_order=True):
        label = crs_label(crs)
        said.append(
            Said(
                f"CSV cannot say its CRS: import it back with --crs {label} (?crs={label})",
                f"un CSV no puede indicar su sistema de referencia (CRS): impórtelo de nuevo con "
                f"--crs {label} (?crs={label})",
            )
        )
    cut = _dbf_names(names) if fmt.name == "shp" else {}
    if cut:
        pairs = ", ".join(f"{n} -> {short}" for n, short in cut.items())
        said.append(
            Said(
                "Shapefile field names are cut to 10 characters ("
                + pairs
                + "); geo-comuna import matches them back",
                "los nombres de campo del Shapefile se cortan a 10 caracteres ("
                + pairs
                + "); geo-comuna import los vuelve a emparejar",
            )
        )
    return said


async def export_layer(
    conn: AsyncConnection,
    layer: Layer,
    path_or_dir: Path,
    fmt: Format,
    *,
    crs: str = "EPSG:4326",
    commune_id: int | None = None,
    access: Access,
    overwrite_layer: bool = False,
) -> ExportReport:
    """Write ``layer`` (only what belongs to ``commune_id`` when given: its features, the
    commune itself, exchanges at either end) to a file in ``crs``, as ``access`` may read it.
    A directory gets ``<layer><suffix>``. An empty selection writes a valid empty file. An
    existing GeoPackage gets the layer added (replaced with ``overwrite_layer``)."""
    started = time.perf_counter()
    target_crs = check_crs(fmt, crs)
    target = output_path(path_or_dir, layer, fmt)
    schema, batches = await read_batches(conn, layer, commune_id, access, fmt, target_crs)
    rows = await write_streamed(
        batches,
        schema,
        lambda source: write(source, layer, fmt, target, target_crs, overwrite_layer),
    )
    label = crs_label(target_crs)
    seconds = {"total": round(time.perf_counter() - started, 3)}
    names = schema.names[:-1]
    return ExportReport(
        layer.name, str(target), fmt.name, label, rows, notes(names, fmt, target_crs), seconds
    )
