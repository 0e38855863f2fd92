"""Natural keys of an import (a parcel's code within its commune, ``Layer.natural_key``): the
file's features that repeat one, and those whose key the store already holds.

An export re-imported used to double every feature silently; now a plain import refuses the
first feature whose key is stored (or repeated in the file), naming the file's feature and
the stored one, and an upsert updates the stored one instead (io/bulk.copy_in).

Both checks are set-based, so the bulk path stays fast: the file's keys are counted with
Arrow, and the stored ones are found with one query joining the keys sent as arrays to the
layer's unique index (migration 0020); an empty layer is not asked at all.

An import streamed in pieces checks each piece as it comes, and keeps of the pieces before
only a 64-bit hash per key (``Seen``, 8 bytes a feature): a repeat across pieces shows as a
repeated hash at the end, and only then is the file's key column read again to name it
exactly (a hash shared by two different keys then refuses nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import AsyncConnection, sql

from geo_comuna.errors import Conflict, Said
from geo_comuna.layers import Layer


@dataclass
class Keys:
    """The key of every feature of an import, by key column (a reference's foreign-key
    column, an attribute's own): Arrow arrays, null where a feature gives no key."""

    columns: list[str]
    parts: list[pa.Array]
    has_key: pa.Array  # boolean per feature: every part given

    @property
    def given(self) -> int:
        return pc.sum(self.has_key.cast(pa.int64())).as_py() or 0


def of(layer: Layer, table: pa.Table, refs: dict[str, list]) -> Keys | None:
    """The features' keys; None when the layer has none or no feature could give one (the
    file has no such column, or holds it as something other than text, which validation
    refuses anyway)."""
    if not layer.natural_key:
        return None
    columns, parts = [], []
    for name in layer.natural_key:
        ref = layer.reference(name)
        if ref is not None:
            columns.append(ref.column)
            parts.append(pa.array(refs[ref.column], pa.int64()))
            continue
        if name not in table.column_names:
            return None
        data = table.column(name).combine_chunks()
        if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
            return None
        blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(data)), 0)
        # a NUL is no key the store could hold (validation refuses it after)
        blank = pc.or_(blank, pc.match_substring(data, "\x00"))
        columns.append(name)
        parts.append(pc.if_else(blank, pa.scalar(None, data.type), data).cast(pa.string()))
    has_key = pc.is_valid(parts[0])
    for part in parts[1:]:
        has_key = pc.and_(has_key, pc.is_valid(part))
    keys = Keys(columns, parts, has_key)
    return keys if keys.given else None


def without(layer: Layer, keys: Keys | None, rows: int) -> int:
    """How many of a piece's ``rows`` features give no whole key (``keys``: of(); none in a
    layer without a natural key)."""
    if not layer.natural_key:
        return 0
    return rows - (keys.given if keys is not None else 0)


def describe(layer: Layer, table: pa.Table, row: int) -> Said:
    """A feature's key as the file gives it: "code '5M-P001', commune 'EL-MAIZAL'"."""
    said, dicho = [], []
    for name in layer.natural_key:
        value = table.column(name)[row].as_py() if name in table.column_names else None
        said.append(f"{name} {value!r}" if value is not None else f"{name} (given by default)")
        dicho.append(f"{name} {value!r}" if value is not None else f"{name} (valor por defecto)")
    return Said(", ".join(said), ", ".join(dicho))


def refuse_repeats(layer: Layer, table: pa.Table, keys: Keys, labels: Sequence) -> None:
    """Refuse a file that gives one key to two features, naming both. Distinct hashes are
    distinct keys, so only a repeated hash (a repeat, nearly always) is looked at value by
    value. (Arrow's group_by loads its query engine, datasets and file systems: ~10 MB more
    peak memory for every import, bench/README.md.)"""
    _, hashes = _hashes(keys)
    if np.unique(hashes).size == hashes.size:
        return
    rows = pc.indices_nonzero(keys.has_key).to_pylist()
    values = [pc.take(p, rows).to_pylist() for p in keys.parts]
    first: dict[tuple, int] = {}
    for row, key in zip(rows, zip(*values, strict=True), strict=True):
        if key in first:
            named = describe(layer, table, row)
            raise Conflict(
                Said(
                    f"{named} is also the key of feature "
                    f"{labels[first[key]]} of the file; a key names one feature",
                    f"la clave {named.es} también es la de la entidad {labels[first[key]]} del "
                    "archivo; cada clave corresponde a una sola entidad",
                ),
                feature=labels[row],
                layer=layer.name,
            )
        first[key] = row


_TYPES = {"integer": "integer", "text": "text"}


async def stored(
    conn: AsyncConnection, layer: Layer, keys: Keys, up_to: int | None = None
) -> dict[int, int]:
    """Which features (0-based) have a key the layer already holds: position -> stored id.
    One query; none at all when the layer is empty (a bulk load's first import). ``up_to``:
    only the stored features of ids up to this one (those stored before an import began: the
    primary key finds them even while a bulk load has dropped the natural key's index)."""
    table = sql.Identifier(layer.table)
    before = sql.SQL("")
    if up_to is not None:
        before = sql.SQL(" AND t.id <= {}").format(sql.Literal(up_to))
    else:
        cur = await conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(table))
        if not (await cur.fetchone())[0]:
            return {}
    picked = pc.indices_nonzero(keys.has_key)
    values: list[Any] = [pc.take(p, picked).to_pylist() for p in keys.parts]
    kinds = [
        "integer" if pa.types.is_integer(p.type) else "text" for p in keys.parts
    ]  # the key columns' types: foreign keys are integers, attributes text
    names = [sql.Identifier(f"k{i}") for i in range(len(keys.parts))]
    statement = sql.SQL(
        "SELECT k.n, t.id FROM unnest({arrays}, %s::integer[]) AS k({names}, n) "
        "JOIN {table} t ON {match}{before} ORDER BY k.n"
    ).format(
        before=before,
        arrays=sql.SQL(", ").join(sql.SQL(f"%s::{_TYPES[kind]}[]") for kind in kinds),
        names=sql.SQL(", ").join(names),
        table=table,
        match=sql.SQL(" AND ").join(
            sql.SQL("t.{} = k.{}").format(sql.Identifier(column), name)
            for column, name in zip(keys.columns, names, strict=True)
        ),
    )
    cur = await conn.execute(statement, (*values, picked.to_pylist()))
    return dict(await cur.fetchall())


async def index_live(conn: AsyncConnection, layer: Layer) -> bool:
    """Is the natural key's unique index there (``<table>_natural_key``, migration 0020)? A
    bulk load drops it until the COPY is over (io/bulk.py); otherwise it refuses a repeated
    key as the row arrives, so an import must name the repeat before sending the piece."""
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{layer.table}_natural_key",))
    return (await cur.fetchone())[0]


async def stored_before(conn: AsyncConnection, layer: Layer) -> int | None:
    """The highest id ``layer`` holds, None when it is empty: what an import's keys may meet
    (``stored``'s ``up_to``), taken before its first row is written."""
    cur = await conn.execute(sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(layer.table)))
    return (await cur.fetchone())[0]


def refuse_stored(layer: Layer, table: pa.Table, found: dict[int, int], labels: Sequence) -> None:
    """A plain import refuses the first feature whose key is stored, naming both."""
    if not found:
        return
    row = min(found)
    named = describe(layer, table, row)
    # the file is checked a piece at a time and refused at the first piece with a stored key:
    # the count is that piece's (it said "5,000 of the file's features" of a file of 60,000)
    first, last = labels[0], labels[len(labels) - 1]
    raise Conflict(
        Said(
            f"{named} is already stored as {layer.name} feature {found[row]} ({len(found):,} "
            f"of the file's features {first:,} to {last:,} are); import with --upsert "
            "(HTTP: mode=upsert) to update the stored features instead",
            f"la clave {named.es} ya está guardada en la entidad {found[row]} de {layer.name} "
            f"({len(found):,} de las entidades {first:,} a {last:,} del archivo ya están "
            "guardadas); importe con --upsert (HTTP: mode=upsert) para actualizar las "
            "entidades guardadas en lugar de rechazarlas",
        ),
        feature=labels[row],
        layer=layer.name,
    )


async def layer_empty(conn: AsyncConnection, layer: Layer) -> bool:
    """Does ``layer`` hold no feature (a first bulk load, whose keys nothing stored can hold)?"""
    cur = await conn.execute(
        sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(sql.Identifier(layer.table))
    )
    return (await cur.fetchone())[0]


_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants (golden ratio, splitmix64)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


def _text_hashes(data: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string, computed over its bytes with numpy (wrapping arithmetic,
    one polynomial per string via a running sum): no Python object per value."""
    data = data.cast(pa.large_binary())
    offsets = np.frombuffer(data.buffers()[1], np.int64)[data.offset : data.offset + len(data) + 1]
    first, offsets = offsets[0], offsets - offsets[0]
    buffer = data.buffers()[2]
    raw = (
        np.frombuffer(buffer, np.uint8)[first : first + offsets[-1]]
        if buffer is not None and offsets[-1]
        else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    position = np.arange(len(raw)) - np.repeat(offsets[:-1], lengths)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(int(lengths.max(initial=0)) + 1, _MIX, np.uint64))
        terms = (raw.astype(np.uint64) + np.uint64(1)) * powers[position]
        running = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
        return running[offsets[1:]] - running[offsets[:-1]] + lengths.astype(np.uint64)


def _hashes(keys: Keys) -> tuple[np.ndarray, np.ndarray]:
    """The features that give a key (0-based) and a 64-bit hash of each one's key."""
    picked = pc.indices_nonzero(keys.has_key)
    hashes = np.zeros(len(picked), np.uint64)
    with np.errstate(over="ignore"):
        for part in keys.parts:
            values = pc.take(part, picked)
            if pa.types.is_integer(values.type):
                mixed = values.cast(pa.int64()).to_numpy().view(np.uint64)
            else:
                mixed = _text_hashes(values)
            hashes = hashes * _MIX2 + mixed
    return picked.to_numpy(), hashes


class Seen:
    """64-bit hashes of the keys of an import's pieces so far, to find a key repeated across
    pieces at the end (``repeated``) in 8 bytes a feature."""

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []

    def add(self, keys: Keys) -> None:
        self._hashes.append(_hashes(keys)[1])

    def suspects(self) -> np.ndarray:
        """The hashes given to more than one feature."""
        if len(self._hashes) < 2:  # within a piece, refuse_repeats has checked exactly
            return np.zeros(0, np.uint64)
        every = np.concatenate(self._hashes)
        every.sort()
        return np.unique(every[1:][every[1:] == every[:-1]])

    def repeated(self) -> bool:
        """Might a key repeat across the pieces? (True also for two keys sharing a hash,
        about one import in 10^7 at 1,000,000 features: the caller then checks exactly.)"""
        return bool(self.suspects().size)


def among(keys: Keys, suspects: np.ndarray) -> list[tuple[int, tuple]]:
    """The features (0-based) whose key hashes to one of ``suspects``, each with its key."""
    rows, hashes = _hashes(keys)
    hit = rows[np.isin(hashes, suspects)]
    return [(int(r), tuple(p[int(r)].as_py() for p in keys.parts)) for r in hit]
