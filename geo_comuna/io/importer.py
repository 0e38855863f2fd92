"""Import a file into a layer: pyogrio reads it, pyproj reprojects it to EPSG:4326,
features/validate.py checks every feature, io/pgcopy.py encodes them and io/bulk.py COPYs
them, all in one transaction.

A file's columns stay Arrow data from GDAL to the COPY rows: no pandas on the way, which the
import command then does not load at all (cli/app.py).

Any bad feature stops the import before anything is written and is named by its 1-based
position in the file. Columns are matched to the layer's properties by name, ignoring case
and the 10-character truncation of Shapefile field names; other columns are reported, not
stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pyarrow as pa
import pyogrio
import pyproj
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import User, local_admin, writing
from geo_comuna.errors import Forbidden, InvalidFile, UnknownCRS
from geo_comuna.features import attributes, references, validate
from geo_comuna.features.query import require_commune
from geo_comuna.io import bulk, pgcopy
from geo_comuna.io.formats import CSV_OPEN_OPTIONS, GDAL_ERRORS, Format
from geo_comuna.io.formulas import restore_text
from geo_comuna.io.reading import SAVE_AS_UTF8, RawFile, read_raw
from geo_comuna.layers import Layer
from geo_comuna.settings import Settings

Progress = Callable[[str], None]


@dataclass
class ImportReport:
    layer: str
    file: str
    format: str
    source_crs: str
    features: int
    ignored_columns: list[str] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def parse_crs(value: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise UnknownCRS(f"unknown CRS {value!r}: {exc}") from None


def _check_utf8(table: pa.Table, name: str) -> None:
    """Arrow keeps a CSV's bytes as they are: invalid UTF-8 (Excel's Windows-1252, say) would
    only fail later, mid-validation, as a 500."""
    for column in table.column_names:
        if _is_text(table.schema.field(column).type):
            try:
                table.column(column).validate(full=True)
            except pa.ArrowInvalid:
                raise InvalidFile(
                    f"{name}: column {column!r} is not UTF-8 text; {SAVE_AS_UTF8}"
                ) from None


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _csv_text_as_written(source: str, table: pa.Table, layer: Layer) -> pa.Table:
    """GDAL's CSV type detection makes an all-digit column numbers; for a text property (parcel
    codes 101, 102) or a commune given by code that is wrong (refused as "not text", or taken
    for an id), so those columns are read again exactly as written."""
    text = {a.name.lower() for a in layer.attributes if a.type == "text"}
    text |= {r.name.lower() for r in layer.references if r.key == "code"}
    redo = [f.name for f in table.schema if f.name.lower() in text and not _is_text(f.type)]
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


@dataclass
class Geometries:
    """A file's geometries as WKB, decoded and reprojected to EPSG:4326 a piece at a time by
    the import's worker thread, so that work overlaps the COPY instead of preceding it."""

    wkb: pa.ChunkedArray | np.ndarray  # Arrow binary as GDAL read it, or bytes objects
    source: pyproj.CRS | None = None  # None: already EPSG:4326
    label: str = "EPSG:4326"
    file_crs: str | None = None  # what the file says, parsed by to_wgs84 unless overridden
    to_wgs84: pyproj.Transformer | None = None  # made once by to_wgs84(), used by every piece

    def __len__(self) -> int:
        return len(self.wkb)

    def take(self, start: int, stop: int) -> tuple[np.ndarray, pgcopy.Source | None]:
        """Rows start:stop in EPSG:4326, and their WKB when it can be sent as it is."""
        wkb = self.wkb[start:stop]
        if isinstance(wkb, pa.ChunkedArray):
            wkb = wkb.combine_chunks()  # only this piece's bytes are copied
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
        if self.to_wgs84 is None:
            return geoms, pgcopy.Source(geoms, wkb)
        transform = self.to_wgs84.transform

        def xy(coords: np.ndarray) -> np.ndarray:
            return np.column_stack(transform(coords[:, 0], coords[:, 1]))

        try:
            return shapely.transform(geoms, xy), None
        except pyproj.exceptions.ProjError as exc:  # another planet's CRS, say
            raise UnknownCRS(f"cannot transform {self.label} to WGS 84: {exc}") from None


def read(
    path: Path, layer: Layer, settings: Settings, raw: RawFile | None = None
) -> tuple[pa.Table, Geometries, Format]:
    """The file's attribute columns and its geometries (as WKB, in the file's own CRS).
    ``raw``: the file as reading.start() already read it."""
    raw = raw or read_raw(path, layer, settings)
    geometry = raw.meta["geometry_name"] or "wkb_geometry"
    wkb = raw.table.column(geometry)
    table = raw.table.drop_columns([geometry])
    if raw.fmt.name == "csv":
        try:
            table = _csv_text_as_written(raw.source, table, layer)
        except GDAL_ERRORS as exc:
            raise InvalidFile(f"cannot read {path.name} as {raw.fmt.driver}: {exc}") from None
    _check_utf8(table, path.name)  # the columns read again too
    if raw.fmt.name == "csv":  # our own CSV exports escape formula-like cells
        table = restore_text(table)
    return table, Geometries(wkb, file_crs=raw.meta["crs"]), raw.fmt


def to_wgs84(geometries: Geometries, fmt: Format, crs: str | None) -> Geometries:
    """Say how to reach EPSG:4326. ``crs`` overrides what the file says; CSV, GeoJSON and KML
    without one are lon/lat WGS 84; any other file without a CRS is refused."""
    if crs:  # overrides what the file says, even what cannot be read
        source = parse_crs(crs)
    elif geometries.file_crs:
        try:
            source = pyproj.CRS.from_user_input(geometries.file_crs)
        except pyproj.exceptions.CRSError:
            raise UnknownCRS(
                f"the {fmt.driver} file's CRS cannot be read ({geometries.file_crs[:80]!r}); "
                "give it, e.g. --crs EPSG:2202"
            ) from None
    else:
        source = None
    if source is None:
        if fmt.name not in ("csv", "geojson", "kml"):
            raise UnknownCRS(
                f"the {fmt.driver} file says nothing about its CRS (a Shapefile "
                "without .prj?); give it, e.g. --crs EPSG:2202"
            )
        source = pyproj.CRS.from_epsg(4326)
    label = source.to_string() if source.to_epsg() is None else f"EPSG:{source.to_epsg()}"
    if source.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        return Geometries(geometries.wkb, None, label)
    try:  # refuse a CRS that cannot reach WGS 84 before anything is written
        transformer = pyproj.Transformer.from_crs(source, 4326, always_xy=True)
    except pyproj.exceptions.ProjError as exc:
        raise UnknownCRS(f"cannot transform {label} to WGS 84: {exc}") from None
    return Geometries(geometries.wkb, source, label, to_wgs84=transformer)


def match_columns(table: pa.Table, layer: Layer) -> tuple[pa.Table, list[str]]:
    """The file's columns named like layer properties (case-insensitive, Shapefile 10-char
    names), renamed to them; the other columns' names."""
    wanted = {name.lower(): name for name in layer.property_names}
    wanted.update({name[:10].lower(): name for name in layer.property_names})
    renames, ignored = {}, []
    for column in table.column_names:
        target = wanted.get(column.lower())
        if target and target not in renames.values():
            renames[column] = target
        else:
            ignored.append(column)
    return table.select(list(renames)).rename_columns(list(renames.values())), ignored


#: features validated and sent per COPY piece: small enough that memory stays bounded, big
#: enough that each piece is vectorised work; the first piece is smaller, so that PostgreSQL
#: starts early
CHUNK = 20_000
FIRST_CHUNK = 2_000


def _in_context() -> Callable[..., Any]:
    return contextvars.copy_context().run


async def _ahead(work: Callable[[int, int], bytes], total: int) -> AsyncIterator[bytes]:
    """work(start, stop) for consecutive spans of rows (FIRST_CHUNK, then CHUNK each), each
    computed in a worker thread while the caller sends the previous one: the validation of
    piece k + 1 overlaps PostgreSQL's storing of piece k, and at most two pieces are held at
    once."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-comuna-import") as pool:
        edges = [0, *range(min(FIRST_CHUNK, CHUNK), total, CHUNK), total]
        spans = list(itertools.pairwise(edges))
        # each piece runs in a copy of the caller's context: the request's limits (work.py)
        pending = [loop.run_in_executor(pool, _in_context(), work, *spans[0])] if spans else []
        try:
            for span in spans[1:]:
                pending.append(loop.run_in_executor(pool, _in_context(), work, *span))
                yield await pending.pop(0)
            if pending:
                yield await pending.pop(0)
        finally:
            for future in pending:  # the consumer stopped early: drop what is queued
                future.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


async def import_frame(
    conn: AsyncConnection,
    layer: Layer,
    table: pa.Table,
    geometries: Geometries | Sequence[Any],
    settings: Settings,
    *,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
    defaults: dict[str, int] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Validate columns named like the layer's properties (an Arrow table, as GDAL reads a
    file's) plus EPSG:4326 geometries and COPY them, in one transaction. Returns (rows
    written, repairs). ``defaults``: references.resolve's.

    Validation runs piece by piece in a worker thread (off the event loop, so a big upload
    does not stall other requests) while PostgreSQL takes the previous piece; the first bad
    feature aborts the COPY and rolls everything back. Imports into one layer wait for each
    other (bulk.queue_import).

    ``user`` None is the local admin (the CLI). Only an admin's import COPYs straight into the
    table; anyone else's goes through a staging table and an INSERT that row-level security
    checks (PostgreSQL has no COPY FROM under row-level security)."""
    user = user or local_admin()
    if not user.may_write:
        raise Forbidden(
            f"user {user.name!r} is a {user.role}; importing needs an editor or admin token"
        )
    say = progress or (lambda _msg: None)
    total = table.num_rows
    labels = range(1, total + 1)
    if not isinstance(geometries, Geometries):
        geometries = np.asarray(geometries, dtype=object)
    repairs: list[dict[str, Any]] = []

    def check(refs: dict[str, list], start: int, stop: int) -> bytes:
        attrs = attributes.check_attributes(
            layer, table.slice(start, stop - start), labels[start:stop]
        )
        if isinstance(geometries, Geometries):
            given, source = geometries.take(start, stop)
        else:
            given, source = geometries[start:stop], None
        geoms, fixed = validate.check_geometries(
            layer,
            given,
            labels[start:stop],
            service_bbox=settings.service_bbox,
            repair=repair,
            promote=False,
        )
        repairs.extend(fixed)
        data = pgcopy.copy_rows(
            layer,
            validate.Checked(attrs, geoms, fixed),
            {column: ids[start:stop] for column, ids in refs.items()},
            source,
        )
        if total > CHUNK:
            say(f"validated and sent {stop:,} of {total:,} features")
        return data

    say(f"validating and writing {total:,} features")
    admin = user.role == "admin"
    # an import is long by nature: its pieces are bound by their size (and the file by
    # max_features_per_import), not by a request's deadline; a repair in it still stops after
    # Limits.compute_seconds (work.isolated)
    with work.scope(work.limits(), None, None, work.cache()):
        async with writing(conn, user, row_security=not admin):
            await conn.execute("SET LOCAL statement_timeout = 0")  # a queue and a long COPY
            await bulk.queue_import(conn, layer)
            refs = await references.resolve(conn, layer, table, labels, defaults)
            async with aclosing(_ahead(partial(check, refs), total)) as chunks:
                await bulk.copy_in(conn, layer, chunks, refs, rows=total, staged=not admin)
    return total, repairs


async def import_file(
    conn: AsyncConnection,
    layer: Layer,
    path: Path,
    settings: Settings,
    *,
    crs: str | None = None,
    commune: str | None = None,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
    reading: Future[RawFile] | None = None,
) -> ImportReport:
    """Read, reproject, validate and COPY ``path`` into ``layer``: all or nothing.
    ``reading``: GDAL's read of ``path``, already started by reading.start()."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    commune_id = None
    if commune is not None and layer.commune_ref is not None:
        # by id or code, like everywhere else; checked before a possibly big file is used
        commune_id = await require_commune(conn, commune)
    say(f"reading {path.name}")
    raw = None if reading is None else await asyncio.wrap_future(reading)
    table, geometries, fmt = await anyio.to_thread.run_sync(read, path, layer, settings, raw)
    read_s = time.perf_counter() - started
    geometries = to_wgs84(geometries, fmt, crs)
    if geometries.source is not None:
        say(f"reprojecting from {geometries.label} while validating")
    table, ignored = match_columns(table, layer)
    count, repairs = await import_frame(
        conn,
        layer,
        table,
        geometries,
        settings,
        repair=repair,
        progress=say,
        user=user,
        defaults=None if commune_id is None else {layer.commune_ref.name: commune_id},
    )
    seconds = {"read": round(read_s, 3), "total": round(time.perf_counter() - started, 3)}
    return ImportReport(
        layer.name, path.name, fmt.name, geometries.label, count, ignored, repairs, seconds
    )
