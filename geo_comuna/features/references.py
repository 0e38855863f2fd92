"""Reference properties (a parcel's commune by code or id, an exchange's two communes...)
resolved to the foreign-key ids they name, each checked to exist, for API writes and imports
alike: every layer's references are declared in the registry (layers/).

A big import's commune codes are mapped at once with Arrow (one query for the distinct codes,
``index_in`` for the rows); anything else goes value by value, which names the first feature
whose reference is missing, ambiguous or of the wrong kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import AsyncConnection, sql

from geo_comuna.errors import InvalidAttribute, Said
from geo_comuna.features.attributes import python_values, titled
from geo_comuna.layers import Layer, Reference
from geo_comuna.layers.model import PG_INTEGER
from geo_comuna.text import is_text


async def resolve(
    conn: AsyncConnection,
    layer: Layer,
    table: pa.Table,
    labels: Sequence,
    defaults: dict[str, int] | None = None,
) -> dict[str, list[int | None]]:
    """Reference properties (commune code, parcel id...) -> foreign-key ids, checked to exist,
    by foreign-key column. ``defaults``: an id per reference property for the features that
    give none (a missing column, a null or a blank cell), as an import's --commune does."""
    resolved = {}
    for ref in layer.references:
        column = table.column(ref.name).combine_chunks() if ref.name in table.column_names else None
        default = (defaults or {}).get(ref.name)
        if column is None and default is not None:
            resolved[ref.column] = [default] * table.num_rows
            continue
        fast = None if column is None else await _resolve_codes(conn, ref, column)
        if fast is None:
            values = [None] * table.num_rows if column is None else python_values(column)
            fast = await _resolve(conn, layer, ref, values, labels, default)
        resolved[ref.column] = fast
    return resolved


async def _resolve_codes(conn: AsyncConnection, ref: Reference, data: pa.Array) -> list | None:
    """The common case of a big import, at once and in Arrow: every value a code that names
    exactly one row. Anything else (ids, blanks, unknown or ambiguous codes) returns None, and
    _resolve goes value by value and names the first bad feature."""
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
    """A whole number (an int, or a float such as a file's 4.0) that could be a row's id."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    """None, or NaN (a file's empty number): no value."""
    return value is None or (isinstance(value, float) and value != value)


def _none_given(value: Any) -> bool:
    """No value or a blank cell (CSV, Shapefile): a feature that names no referenced row."""
    if isinstance(value, str):
        return not value.strip()
    return _missing(value)


async def _known(
    conn: AsyncConnection, ref: Reference, present: list
) -> tuple[set[int], dict[str, list[int]]]:
    """Which of the ids given exist, and the ids each code given names."""
    ids = {int(v) for v in present if _is_id(v)}
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
    return known_ids, by_code


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
    known_ids, by_code = await _known(conn, ref, [v for v in values if not _missing(v)])
    out: list[int | None] = []
    for i, value in enumerate(values):
        if _missing(value):
            if ref.required:
                raise InvalidAttribute(
                    Said(
                        f"property {ref.name!r} is required",
                        f"el campo {titled(ref)} es obligatorio",
                    ),
                    feature=labels[i],
                    layer=layer.name,
                )
            out.append(None)
        elif isinstance(value, str):
            matches = by_code.get(value, [])
            if len(matches) != 1:
                why = "no" if not matches else "more than one"
                why_es = "ningún registro" if not matches else "más de un registro"
                raise InvalidAttribute(
                    Said(
                        f"property {ref.name!r}: {why} {ref.table} with code {value!r}",
                        f"campo {titled(ref)}: hay {why_es} de {ref.table} con el código {value!r}",
                    ),
                    feature=labels[i],
                    layer=layer.name,
                )
            out.append(matches[0])
        elif not _is_id(value):
            raise InvalidAttribute(
                Said(
                    f"property {ref.name!r}: {value!r} is neither a code nor an id of {ref.table}",
                    f"campo {titled(ref)}: {value!r} no es ni un código ni un id de {ref.table}",
                ),
                feature=labels[i],
                layer=layer.name,
            )
        elif int(value) in known_ids:
            out.append(int(value))
        else:
            raise InvalidAttribute(
                Said(
                    f"property {ref.name!r}: no {ref.table} with id {value!r}",
                    f"campo {titled(ref)}: no hay ningún registro de {ref.table} con el id "
                    f"{value!r}",
                ),
                feature=labels[i],
                layer=layer.name,
            )
    return out
