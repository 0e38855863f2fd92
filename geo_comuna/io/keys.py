"""Natural keys of an import (a parcel's code within its commune, ``Layer.natural_key``): the
file's features that repeat one, and those whose key the store already holds.

An export re-imported used to double every feature silently; now a plain import refuses the
first feature whose key is stored (or repeated in the file), naming the file's feature and
the stored one, and an upsert updates the stored one instead (io/bulk.copy_in).

Both checks are set-based, so the bulk path stays fast: the file's keys are counted with
Arrow, and the stored ones are found with one query joining the keys sent as arrays to the
layer's unique index (migration 0020); an empty layer is not asked at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import AsyncConnection, sql

from geo_comuna.errors import Conflict
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


def _describe(layer: Layer, table: pa.Table, row: int) -> str:
    """A feature's key as the file gives it: "code '5M-P001', commune 'EL-MAIZAL'"."""
    said = []
    for name in layer.natural_key:
        value = table.column(name)[row].as_py() if name in table.column_names else None
        said.append(f"{name} {value!r}" if value is not None else f"{name} (given by default)")
    return ", ".join(said)


def refuse_repeats(layer: Layer, table: pa.Table, keys: Keys, labels: Sequence) -> None:
    """Refuse a file that gives one key to two features, naming both."""
    frame = pa.table(
        {f"k{i}": p for i, p in enumerate(keys.parts)}
        | {"n": pa.array(range(table.num_rows), pa.int64())}
    ).filter(keys.has_key)
    names = [f"k{i}" for i in range(len(keys.parts))]
    counted = frame.group_by(names).aggregate([("n", "count")])
    if counted.num_rows == frame.num_rows:
        return
    first: dict[tuple, int] = {}
    for row in frame.to_pylist():  # only on the way to an error: name the first repeat
        key = tuple(row[n] for n in names)
        if key in first:
            raise Conflict(
                f"{_describe(layer, table, row['n'])} is also the key of feature "
                f"{labels[first[key]]} of the file; a key names one feature",
                feature=labels[row["n"]],
                layer=layer.name,
            )
        first[key] = row["n"]


_TYPES = {"integer": "integer", "text": "text"}


async def stored(conn: AsyncConnection, layer: Layer, keys: Keys) -> dict[int, int]:
    """Which features (0-based) have a key the layer already holds: position -> stored id.
    One query; none at all when the layer is empty (a bulk load's first import)."""
    table = sql.Identifier(layer.table)
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
        "JOIN {table} t ON {match} ORDER BY k.n"
    ).format(
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


def refuse_stored(layer: Layer, table: pa.Table, found: dict[int, int], labels: Sequence) -> None:
    """A plain import refuses the first feature whose key is stored, naming both."""
    if not found:
        return
    row = min(found)
    raise Conflict(
        f"{_describe(layer, table, row)} is already stored as {layer.name} feature "
        f"{found[row]} ({len(found):,} of the file's features are); import with --upsert "
        "(HTTP: mode=upsert) to update the stored features instead",
        feature=labels[row],
        layer=layer.name,
    )
