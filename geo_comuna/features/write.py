"""Writes over any registry layer: insert, replace, patch, delete, and bulk COPY for imports.

Every function expects validated input (features/validate.py) and runs inside the caller's
transaction, so a failure anywhere leaves nothing behind. Database refusals (unique codes,
references still in use) come back as typed errors naming the feature.
"""

from __future__ import annotations

import operator
import os
import re
import socket
from collections.abc import AsyncIterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg import AsyncConnection, sql

from geo_comuna.errors import Conflict, Forbidden, InvalidAttribute, NotFound, PreconditionFailed
from geo_comuna.features.attributes import ARROW_TYPES, is_text, pandas_missing
from geo_comuna.features.query import ETAG_SQL
from geo_comuna.features.validate import Checked
from geo_comuna.layers import Layer, Reference
from geo_comuna.layers.model import PG_INTEGER

if TYPE_CHECKING:
    import pandas as pd


#: what the database names a write refused by an editor's scope, its reason the message
SCOPE = "geo_comuna_scope"
#: the row an import was writing when it was refused: the detail "feature N" (copy_in)
_FEATURE = re.compile(r"feature (\d+)")


def _labelled(detail: str | None) -> int | None:
    found = _FEATURE.fullmatch(detail or "")
    return int(found[1]) if found else None


@contextmanager
def refusals(layer: Layer, feature: Any = None) -> Iterator[None]:
    """Turn the database's integrity refusals into 4xx errors that say what was refused."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        detail = exc.diag.message_detail or exc.diag.message_primary
        raise Conflict(f"already exists: {detail}", feature=feature, layer=layer.name) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        detail = exc.diag.message_detail or exc.diag.message_primary
        raise Conflict(
            f"still referenced or referencing a missing feature: {detail}",
            feature=feature,
            layer=layer.name,
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        if exc.diag.constraint_name == SCOPE:  # refused with its reason (migration 0014)
            raise Forbidden(
                exc.diag.message_primary or "outside the communes you may edit",
                feature=feature if feature is not None else _labelled(exc.diag.message_detail),
                layer=layer.name,
            ) from None
        raise Forbidden(
            "outside the communes you may edit (row-level security refused the write)",
            feature=feature,
            layer=layer.name,
        ) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise InvalidAttribute(
            f"refused by the database: {exc.diag.message_primary}",
            feature=feature,
            layer=layer.name,
        ) from None


def _reference_column(frame: pd.DataFrame | pa.Table, name: str) -> pd.Series | pa.Array | None:
    if isinstance(frame, pa.Table):
        return frame.column(name).combine_chunks() if name in frame.column_names else None
    return frame[name] if name in frame else None


async def resolve_references(
    conn: AsyncConnection,
    layer: Layer,
    frame: pd.DataFrame | pa.Table,
    labels: Sequence,
    defaults: dict[str, int] | None = None,
) -> dict[str, list[int | None]]:
    """Reference properties (commune code, parcel id...) -> foreign-key ids, checked to exist.
    ``defaults``: an id per reference property for the features that give none (a missing
    column, a null or a blank cell), as an import's --commune does."""
    resolved = {}
    for ref in layer.references:
        column = _reference_column(frame, ref.name)
        default = (defaults or {}).get(ref.name)
        if column is None and default is not None:
            resolved[ref.column] = [default] * len(frame)
            continue
        fast = None if column is None else await _resolve_codes(conn, ref, column)
        if fast is None:
            if column is None:
                values = [None] * len(frame)
            elif isinstance(column, pa.Array):
                values = column.to_pylist()
            else:
                values = list(map(_python, column))
            fast = await _resolve(conn, layer, ref, values, labels, default)
        resolved[ref.column] = fast
    return resolved


async def _resolve_codes(
    conn: AsyncConnection, ref: Reference, column: pd.Series | pa.Array
) -> list | None:
    """The common case of a big import, at once and in Arrow: every value a code that names
    exactly one row. Anything else (ids, blanks, unknown or ambiguous codes) returns None, and
    _resolve goes value by value and names the first bad feature."""
    if isinstance(column, pa.Array):
        data = column
    else:
        try:
            data = pa.array(column, from_pandas=True)
        except (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            pa.ArrowNotImplementedError,
            UnicodeError,
            OverflowError,
        ):
            return None  # mixed values (ids, lists...), lone surrogates, ints beyond 64 bits
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return None
    if data.null_count:
        return None
    codes = pc.unique(data).to_pylist()
    if not all(is_text(c) for c in codes):
        return None
    cur = await conn.execute(
        sql.SQL("SELECT code, min(id), count(*) FROM {} WHERE code = ANY(%s) GROUP BY code").format(
            sql.Identifier(ref.table)
        ),
        (codes,),
    )
    found = {code: id_ for code, id_, n in await cur.fetchall() if n == 1}
    if len(found) < len(codes):
        return None
    keys, ids = pa.array(list(found), data.type), pa.array(list(found.values()), pa.int64())
    return pc.take(ids, pc.index_in(data, value_set=keys)).to_pylist()


def _is_id(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _none_given(value: Any) -> bool:
    """None, NaN or a blank cell (CSV, Shapefile): a feature that names no referenced row."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and value != value)


async def _resolve(
    conn: AsyncConnection,
    layer: Layer,
    ref: Reference,
    values: list,
    labels: Sequence,
    default: int | None = None,
) -> list[int | None]:
    if default is not None:
        values = [default if _none_given(v) else v for v in values]
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    ids = {int(v) for v in present if _is_id(v) or (isinstance(v, float) and v.is_integer())}
    ids = {i for i in ids if PG_INTEGER[0] <= i <= PG_INTEGER[1]}  # no row has another id
    # no stored code holds what text cannot (NUL, lone surrogates): such a value matches none
    codes = {v for v in present if isinstance(v, str) and is_text(v)}
    table = sql.Identifier(ref.table)
    known_ids: set[int] = set()
    if ids:
        cur = await conn.execute(
            sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(table), (list(ids),)
        )
        known_ids = {r[0] for r in await cur.fetchall()}
    by_code: dict[str, list[int]] = {}
    if codes:
        cur = await conn.execute(
            sql.SQL("SELECT code, id FROM {} WHERE code = ANY(%s)").format(table), (list(codes),)
        )
        for code, id_ in await cur.fetchall():
            by_code.setdefault(code, []).append(id_)
    out: list[int | None] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            if ref.required:
                raise InvalidAttribute(
                    f"property {ref.name!r} is required", feature=labels[i], layer=layer.name
                )
            out.append(None)
        elif isinstance(value, str):
            matches = by_code.get(value, [])
            if len(matches) != 1:
                why = "no" if not matches else "more than one"
                raise InvalidAttribute(
                    f"property {ref.name!r}: {why} {ref.table} with code {value!r}",
                    feature=labels[i],
                    layer=layer.name,
                )
            out.append(matches[0])
        elif not (_is_id(value) or (isinstance(value, float) and value.is_integer())):
            raise InvalidAttribute(
                f"property {ref.name!r}: {value!r} is neither a code nor an id of {ref.table}",
                feature=labels[i],
                layer=layer.name,
            )
        elif int(value) in known_ids:
            out.append(int(value))
        else:
            raise InvalidAttribute(
                f"property {ref.name!r}: no {ref.table} with id {value!r}",
                feature=labels[i],
                layer=layer.name,
            )
    return out


def _columns(layer: Layer) -> list[str]:
    return [r.column for r in layer.references] + [a.name for a in layer.attributes] + ["geom"]


def _row_values(layer: Layer, checked: Checked, refs: dict[str, list], i: int) -> list[Any]:
    geom = checked.geometries[i]
    wkb = None if geom is None else shapely.to_wkb(geom, include_srid=False)
    return (
        [refs[r.column][i] for r in layer.references]
        + [_python(checked.attributes[a.name].iloc[i]) for a in layer.attributes]
        + [wkb]
    )


def _python(value: Any) -> Any:
    """A checked value as a query parameter: pandas' missing values are NULL."""
    return None if pandas_missing(value) else value


GEOM_PARAM = sql.SQL("ST_SetSRID(ST_GeomFromWKB(%s), 4326)")


async def insert(
    conn: AsyncConnection, layer: Layer, checked: Checked, refs: dict[str, list], labels: Sequence
) -> list[int]:
    """Insert validated features one statement each (API writes); returns the new ids."""
    cols = _columns(layer)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}, {}) RETURNING id").format(
        sql.Identifier(layer.table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * (len(cols) - 1)),
        GEOM_PARAM,
    )
    ids = []
    for i in range(len(checked.geometries)):
        with refusals(layer, labels[i]):
            cur = await conn.execute(query, _row_values(layer, checked, refs, i))
        ids.append((await cur.fetchone())[0])
    return ids


async def replace(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    checked: Checked,
    refs: dict[str, list],
    columns: Sequence[str] | None = None,
) -> None:
    """PUT (every column) or PATCH (only ``columns``, which may include 'geom')."""
    cols = [c for c in _columns(layer) if columns is None or c in columns]
    values = dict(zip(_columns(layer), _row_values(layer, checked, refs, 0), strict=True))
    sets = [
        sql.SQL("{} = {}").format(
            sql.Identifier(c), GEOM_PARAM if c == "geom" else sql.Placeholder()
        )
        for c in cols
    ]
    if not sets:
        await lock_to_change(conn, layer, feature_id)
        return
    with refusals(layer, feature_id):
        cur = await conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
                sql.Identifier(layer.table), sql.SQL(", ").join(sets)
            ),
            [values[c] for c in cols] + [feature_id],
        )
    if cur.rowcount == 0:
        await _require(conn, layer, feature_id)


async def lock_to_change(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    """Lock a feature this writer may change, changing nothing (an empty PATCH); 404 when
    there is no such feature, 403 when row-level security keeps it from this writer (a
    SELECT FOR UPDATE sees only the rows the writer's UPDATE could)."""
    cur = await conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(layer.table)),
        (feature_id,),
    )
    if await cur.fetchone() is None:
        await _require(conn, layer, feature_id)


async def _require(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    """After a write touched nothing: the feature is missing, or row-level security hid it
    from this writer (it stays visible to reads, so we can tell which)."""
    cur = await conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(layer.table)), (feature_id,)
    )
    if await cur.fetchone() is None:
        raise NotFound(f"no feature {feature_id}", layer=layer.name)
    raise Forbidden("outside the communes you may edit", feature=feature_id, layer=layer.name)


async def check_version(
    conn: AsyncConnection, layer: Layer, feature_id: int, if_match: str | None
) -> None:
    """Lock the row and compare its version with If-Match (OGC API - Features Part 4):
    a stale version is refused with 412 instead of silently overwriting someone's edit."""
    if if_match is None:
        return
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} t WHERE id = %s FOR UPDATE").format(
            ETAG_SQL, sql.Identifier(layer.table)
        ),
        (feature_id,),
    )
    row = await cur.fetchone()
    if row is None:
        await _require(conn, layer, feature_id)
    wanted = {tag.strip() for tag in if_match.split(",")}
    if "*" not in wanted and row[0] not in {row_version(tag) for tag in wanted}:
        raise PreconditionFailed(
            f"the feature changed since you read it (now {row[0]}); "
            "read it again and reapply your change",
            feature=feature_id,
            layer=layer.name,
        )


def row_version(tag: str) -> str:
    """The row version in an ETag a client sends back, as ETAG_SQL writes it: a feature's
    ETag may be weak (compressed in transfer) and carry a digest of what else its content
    depends on (api/etags.py): ``W/"12.345.ab"`` -> ``"12.345"``."""
    bare = tag.strip().removeprefix("W/").strip('"')
    return '"' + ".".join(bare.split(".")[:2]) + '"'


async def delete(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    with refusals(layer, feature_id):
        cur = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.table)),
            (feature_id,),
        )
    if cur.rowcount == 0:
        await _require(conn, layer, feature_id)


_SRID = 4326
_SRID_FLAG = 0x20000000
_PLAIN_TYPES = range(1, 8)  # 2-D Point ... GeometryCollection, no Z, M or SRID flags


def _ewkb_heads() -> dict[bytes, bytes]:
    """WKB header (byte order + type) of each plain 2-D type -> the EWKB header that says the
    same with SRID 4326."""
    heads = {}
    for order, endian in ((b"\x01", "little"), (b"\x00", "big")):
        for kind in _PLAIN_TYPES:
            heads[order + kind.to_bytes(4, endian)] = (
                order + (kind | _SRID_FLAG).to_bytes(4, endian) + _SRID.to_bytes(4, endian)
            )
    return heads


_EWKB_HEADS = _ewkb_heads()
_POLYGON_HEADS = {b"\x01\x03\x00\x00\x00", b"\x00\x00\x00\x00\x03"}
#: a MultiPolygon with SRID 4326 holding one part: the part's own WKB follows
_ONE_POLYGON = (
    b"\x01"
    + (6 | _SRID_FLAG).to_bytes(4, "little")
    + _SRID.to_bytes(4, "little")
    + (1).to_bytes(4, "little")
)


@dataclass
class Source:
    """Geometries as decoded from a file, and the WKB they were decoded from (as GDAL read
    it, Arrow binary, or bytes objects)."""

    geometries: np.ndarray
    wkb: pa.Array | np.ndarray


_HEAD_KEYS = pa.array(list(_EWKB_HEADS), pa.binary())
#: what replaces each plain header: the EWKB one; in a MultiPolygon layer a Polygon's header
#: is kept behind a one-part MultiPolygon's, which promotes it
_NEW_HEADS = {
    geometry: pa.array(
        [
            _ONE_POLYGON + head if geometry == "MultiPolygon" and head in _POLYGON_HEADS else ewkb
            for head, ewkb in _EWKB_HEADS.items()
        ],
        pa.binary(),
    )
    for geometry in ("Point", "LineString", "MultiPolygon")
}
_SAME = np.frompyfunc(operator.is_, 2, 1)


def _ewkb_parts(
    layer: Layer, geoms: np.ndarray, source: Source | None = None
) -> tuple[pa.Array, pa.Array]:
    """Each geometry's EWKB as two pieces: a new header and the rest of its WKB. Joining them
    is left to copy_rows, which joins whole rows in one pass."""
    present = ~shapely.is_missing(geoms)
    same = np.zeros(len(geoms), dtype=bool)
    if source is not None:
        same = present & _SAME(geoms, source.geometries).astype(bool)
    wkbs = None
    if source is not None and same.all():  # validation changed nothing: the bytes as read
        data = pa.array(source.wkb, type=pa.binary())  # no copy when they are Arrow already
    else:
        wkbs = np.full(len(geoms), None, dtype=object)
        if same.any():
            wkbs[same] = np.asarray(source.wkb, dtype=object)[same]
        data = pa.array(wkbs, type=pa.binary())
    heads = pc.index_in(pc.binary_slice(data, 0, 5), value_set=_HEAD_KEYS)  # null: not plain
    plain = heads.is_valid().to_numpy(zero_copy_only=False)
    fresh = np.flatnonzero(present & ~plain)  # changed, or a Z/M/SRID header as read
    if fresh.size:
        if wkbs is None:
            wkbs = data.to_numpy(zero_copy_only=False)
        wkbs[fresh] = shapely.to_wkb(geoms[fresh], output_dimension=2, byte_order=1)
        data = pa.array(wkbs, type=pa.binary())
        heads = pc.index_in(pc.binary_slice(data, 0, 5), value_set=_HEAD_KEYS)
    body = pc.binary_slice(data, 5, 2**31 - 1)  # to the end (no stop: an Arrow error)
    return pc.take(_NEW_HEADS[layer.geometry_type], heads), body


def ewkb(layer: Layer, geoms: np.ndarray, source: Source | None = None) -> pa.Array:
    """EWKB with SRID 4326, in the layer's geometry type (a Polygon becomes a one-part
    MultiPolygon by a header, not by building a new geometry), as an Arrow binary array.

    Where a geometry is still the very object decoded from ``source`` (validation changed
    nothing) and that WKB is plain 2-D, its bytes are sent as they came instead of being
    written again: writing 200,000 polygons costs ~0.4 s. Headers are rewritten by Arrow's
    kernels, not byte string by byte string."""
    return pc.binary_join_element_wise(*_ewkb_parts(layer, geoms, source), b"")


#: PostgreSQL's binary COPY: signature, flags and header extension; the end-of-data marker
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
#: big-endian layouts of the column types the layers use
_FIXED = {"integer": ">i4", "number": ">f8", "date": ">i4", "boolean": "u1"}
_PG_EPOCH = 10_957  # 2000-01-01 in days since 1970-01-01


def _lengths(sizes: np.ndarray) -> pa.Array:
    """Binary COPY's field lengths (-1 for NULL) as 4-byte big-endian strings."""
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4), len(sizes), [None, pa.py_buffer(sizes.astype(">i4").tobytes())]
    ).cast(pa.binary())


def _field(kind: str, values: np.ndarray | pa.Array) -> list[pa.Array]:
    """One column as binary COPY fields: each value's byte length (-1 for NULL), then its
    bytes in PostgreSQL's binary form (null for NULL), as pieces that copy_rows joins.
    ``values``: Python objects (None, or the NaN pandas may have made of it, for NULL), or
    Arrow data as attributes' fast path keeps it."""
    if not isinstance(values, pa.Array):
        import pandas as pd  # Python objects come from a DataFrame: pandas is loaded

        values = pa.array(np.where(pd.isna(values), None, values), type=ARROW_TYPES[kind])
    if kind == "text":
        payload = values.cast(pa.binary())
        return [_lengths(pc.fill_null(pc.binary_length(payload), -1).to_numpy()), payload]
    null = values.is_null().to_numpy(zero_copy_only=False)
    valid = pa.array(~null).buffers()[1]  # Arrow keeps validity as this very bitmap
    layout = np.dtype(_FIXED[kind])
    if kind == "date":
        days = values.cast(pa.date32()).cast(pa.int32())
        numbers = pc.fill_null(days, _PG_EPOCH).to_numpy() - _PG_EPOCH
    else:
        filler = False if kind == "boolean" else 0
        numbers = values.cast(ARROW_TYPES[kind]).fill_null(filler).to_numpy(zero_copy_only=False)
    data = pa.py_buffer(numbers.astype(layout).tobytes())
    payload = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(layout.itemsize), len(values), [valid, data]
    ).cast(pa.binary())
    return [_lengths(np.where(null, -1, layout.itemsize)), payload]


def _geometry_field(layer: Layer, geoms: np.ndarray, source: Source | None) -> list[pa.Array]:
    head, body = _ewkb_parts(layer, geoms, source)
    size = pc.add(pc.binary_length(head), pc.binary_length(body))
    return [_lengths(pc.fill_null(size, -1).to_numpy()), head, body]


def _column(series: pd.Series | pa.Array) -> np.ndarray | pa.Array:
    if isinstance(series, pa.Array):  # checked from a file's columns (attributes._check_table)
        return series
    import pandas as pd

    if isinstance(series.dtype, pd.ArrowDtype):
        data = pa.array(series)  # the Arrow data itself
        return data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    return series.to_numpy(dtype=object)


def copy_rows(
    layer: Layer, checked: Checked, refs: dict[str, list], source: Source | None = None
) -> bytes:
    """Rows of PostgreSQL's binary COPY (between COPY_HEADER and COPY_TRAILER), built by Arrow
    in C++ and joined in one pass: numbers and dates are not printed and parsed again, geometry
    goes as EWKB (see ewkb()); a third less work for PostgreSQL than CSV with hex geometry."""
    parts = [p for r in layer.references for p in _field("integer", pa.array(refs[r.column]))]
    for a in layer.attributes:
        parts += _field(a.type, _column(checked.attributes[a.name]))
    parts += _geometry_field(layer, checked.geometries, source)
    count = len(layer.references) + len(layer.attributes) + 1
    rows = pc.binary_join_element_wise(
        pa.scalar(count.to_bytes(2, "big"), type=pa.binary()),
        *parts,
        b"",
        null_handling="replace",  # a NULL's bytes: none, its length says -1
        null_replacement=b"",
    )
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1)
    return rows.buffers()[2][offsets[0] : offsets[-1]].to_pybytes()


#: advisory lock class of imports; the other key is the layer's table (its oid)
IMPORT_QUEUE = 0x6763_696D


async def queue_import(conn: AsyncConnection, layer: Layer) -> None:
    """Wait until no other import into ``layer`` is running, and make later ones wait until
    this transaction ends: imports into one layer run one after the other. Side by side they
    deadlocked: four imports of 20,000 parcels each found the layer fit for a bulk load, read
    it, then asked to drop its indexes (_indexes_to_rebuild) while the others still read it,
    and PostgreSQL cancelled all but one. In turn, each finds the layer as the one before left
    it. Call before anything reads the layer, so that no import holds a lock the one ahead
    waits for."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, %s::regclass::oid::integer)",
        (IMPORT_QUEUE, layer.table),
    )


#: a COPY of at least this many rows into a table holding no more rows than it brings builds
#: the table's secondary indexes afterwards instead of growing them row by row: ~5x cheaper
#: for the GiST index, ~3x for a btree over a column with many repeats (commune_id)
BULK_ROWS = 20_000


async def _indexes_to_rebuild(conn: AsyncConnection, layer: Layer, rows: int) -> list[str]:
    """Drop the layer's secondary indexes before a bulk load into an (almost) empty table and
    return the statements that build them again. Building an index over sorted input costs a
    fraction of inserting 200,000 entries one by one. Indexes behind a constraint (the primary
    key that other layers reference, unique codes) stay, so every row is still checked as it
    arrives. The price is that DROP INDEX locks the table against readers until the import
    commits (a few seconds), so small imports and imports into a big table keep them."""
    if rows < BULK_ROWS:
        return []
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT FROM {} LIMIT %s) t").format(
            sql.Identifier(layer.table)
        ),
        (rows + 1,),
    )
    if (await cur.fetchone())[0] > rows:
        return []
    cur = await conn.execute(
        """SELECT format('%%I', c.relname), pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = to_regclass(%s) AND NOT i.indisunique
              AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = i.indexrelid)
            ORDER BY c.relname""",
        (layer.table,),
    )
    found = await cur.fetchall()
    for name, _ in found:
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    return [definition for _, definition in found]


async def _may_skip_key_checks(conn: AsyncConnection, layer: Layer, refs: dict[str, list]) -> bool:
    """May this COPY run without PostgreSQL's per-row foreign-key checks (~1 s per 200,000
    rows)? Only when it can be proven redundant: the connection is a superuser (replica mode is
    theirs alone), every foreign key of the table is a registry reference that
    ``resolve_references`` has checked, and every trigger of the table fires ALWAYS (audit,
    history, layer versions; migration 0010), so replica mode skips the key checks and
    nothing else. The referenced rows are then locked FOR KEY SHARE here, once per distinct
    id, which is exactly what each per-row check would have done: nobody can delete them
    before the import commits."""
    cur = await conn.execute(
        """SELECT current_setting('is_superuser') = 'on',
                  (SELECT coalesce(array_agg(a.attname::text), '{}')
                     FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                    WHERE c.conrelid = to_regclass(%(t)s) AND c.contype = 'f'),
                  NOT EXISTS (SELECT FROM pg_trigger
                               WHERE tgrelid = to_regclass(%(t)s) AND NOT tgisinternal
                                 AND tgenabled <> 'A')""",
        {"t": layer.table},
    )
    superuser, key_columns, triggers_always = await cur.fetchone()
    checked = {r.column for r in layer.references}
    if not (superuser and triggers_always and set(key_columns) <= checked):
        return False
    for ref in layer.references:
        ids = sorted({i for i in refs[ref.column] if i is not None})
        if not ids:
            continue
        cur = await conn.execute(
            sql.SQL(
                "SELECT count(*) FROM (SELECT FROM {} WHERE id = ANY(%s) FOR KEY SHARE) t"
            ).format(sql.Identifier(ref.table)),
            (ids,),
        )
        if (await cur.fetchone())[0] != len(ids):  # deleted since resolved: let PostgreSQL say
            return False
    return True


#: socket send buffer asked for before a COPY over a unix socket (Linux doubles it for its own
#: bookkeeping and caps it at net.core.wmem_max): a whole piece (~4.3 MB for 20,000 parcels) then
#: fits, so the kernel takes it in one go. With the default ~200 kB the event loop had to wake
#: some 20 times per piece to send the rest, each time waiting for the GIL held by the thread
#: validating the next piece: ~0.3 s of a 200,000-parcel import (bench/README.md).
COPY_SEND_BUFFER = 4 * 1024 * 1024


def _roomy_send_buffer(conn: AsyncConnection) -> None:
    """Ask for COPY_SEND_BUFFER on the connection's unix socket; TCP tunes its own buffers."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:  # the dup is closed after
        if sock.family == socket.AF_UNIX:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, COPY_SEND_BUFFER)
            except OSError:  # a system that refuses the size: the import is only slower
                pass


async def copy_in(
    conn: AsyncConnection,
    layer: Layer,
    chunks: AsyncIterable[bytes],
    refs: dict[str, list],
    *,
    rows: int,
    staged: bool = False,
) -> None:
    """Bulk insert with binary COPY (imports): ``chunks`` are pieces of copy_rows(), each sent
    as one COPY statement as it comes, so PostgreSQL stores one while the caller validates the
    next. ``refs`` are the resolved references of all ``rows``.

    ``staged`` COPYs into a temporary table first and inserts from it, so row-level security
    sees every row; each row carries its position (1-based, as the pieces came), which the
    INSERT hands to the database as it writes the row, so that a row the policies refuse is
    named by it. Otherwise a bulk load rebuilds the secondary indexes afterwards and, when
    provably redundant, skips the per-row foreign-key checks (see the helpers above)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, _columns(layer)))
    table = sql.Identifier(layer.table)
    target = sql.Identifier("_geo_comuna_import") if staged else table
    with refusals(layer):
        rebuild, replica = [], False
        if staged:
            await conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE _geo_comuna_import ON COMMIT DROP AS "
                    "SELECT {} FROM {} WITH NO DATA"
                ).format(cols, table)
            )
            await conn.execute(  # numbered by COPY in the order the rows come
                "ALTER TABLE _geo_comuna_import ADD COLUMN _n bigint GENERATED ALWAYS AS IDENTITY"
            )
        else:
            rebuild = await _indexes_to_rebuild(conn, layer, rows)
            replica = await _may_skip_key_checks(conn, layer, refs)
        if replica:
            await conn.execute("SET LOCAL session_replication_role = replica")
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(target, cols)
        _roomy_send_buffer(conn)
        async with conn.cursor() as cur:
            # a COPY per piece: each statement's triggers (its audit entry, its first tenures)
            # then run over its own rows while the next piece is validated, not over all the
            # rows after the last one (~0.4 s of a 200,000-parcel import)
            async for data in chunks:
                async with cur.copy(statement) as copy:
                    await copy.write(COPY_HEADER)
                    await copy.write(data)
                    await copy.write(COPY_TRAILER)
        if replica:  # SET LOCAL would outlive this block inside an enclosing transaction
            await conn.execute("SET LOCAL session_replication_role = origin")
        if staged:
            # the scan sets each row's number just before the row is inserted and checked
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM {} "
                    "WHERE set_config('geo_comuna.feature', _n::text, true) IS NOT NULL"
                ).format(table, cols, cols, target)
            )
            await conn.execute("SELECT set_config('geo_comuna.feature', '', true)")
            await conn.execute(sql.SQL("DROP TABLE {}").format(target))
        for definition in rebuild:
            await conn.execute(definition)
