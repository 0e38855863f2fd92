"""The registry (geo_comuna/layers/) and the migrated schema must describe the same store."""

from __future__ import annotations

import re

import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS

pytestmark = pytest.mark.anyio
PG_TYPES = {
    "text": "text",
    "integer": "integer",
    "number": "double precision",
    "date": "date",
    "boolean": "boolean",
}


async def columns(conn: AsyncConnection, table: str) -> dict[str, tuple[str, bool]]:
    cur = await conn.execute(
        "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    )
    return {name: (kind, nullable) for name, kind, nullable in await cur.fetchall()}


@pytest.mark.parametrize("name", list(LAYERS))
async def test_layer_matches_table(conn: AsyncConnection, name: str) -> None:
    layer = LAYERS[name]
    cols = await columns(conn, layer.table)
    assert cols, f"no table {layer.table}"
    for attr in layer.attributes:
        kind, nullable = cols[attr.name]
        assert kind == PG_TYPES[attr.type], attr.name
        assert nullable == (not attr.required), attr.name
    for ref in layer.references:
        assert cols[ref.column][0] == "integer"
    expected = {
        "id",
        "geom",
        *(a.name for a in layer.attributes),
        *(r.column for r in layer.references),
    }
    assert set(cols) == expected, "table and registry disagree on columns"
    cur = await conn.execute(
        "SELECT type, srid FROM geometry_columns WHERE f_table_name = %s", (layer.table,)
    )
    assert await cur.fetchone() == (layer.geometry_type.upper(), 4326)


@pytest.mark.parametrize("name", list(LAYERS))
async def test_domains_match_check_constraints(conn: AsyncConnection, name: str) -> None:
    layer = LAYERS[name]
    cur = await conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'c'",
        (layer.table,),
    )
    checks = [r[0] for r in await cur.fetchall()]
    for attr in layer.attributes:
        if not attr.domain:
            continue
        check = next(c for c in checks if re.search(rf"\b{attr.name}\b", c) and "ANY" in c)
        assert set(re.findall(r"'([^']+)'::text", check)) == set(attr.domain.values), attr.name


async def test_every_domain_value_has_both_labels() -> None:
    for layer in LAYERS.values():
        for attr in layer.attributes:
            for value, label in attr.domain.values.items() if attr.domain else []:
                assert label.es and label.en, f"{layer.name}.{attr.name}={value}"


@pytest.mark.parametrize("name", [n for n, layer in LAYERS.items() if layer.temporal])
async def test_temporal_property_is_indexed(conn: AsyncConnection, name: str) -> None:
    """?datetime= and extent.temporal read a layer's temporal property on every request."""
    layer = LAYERS[name]
    cur = await conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
        (layer.table,),
    )
    definitions = [r[0] for r in await cur.fetchall()]
    assert any(d.endswith(f"btree ({layer.temporal})") for d in definitions), definitions


@pytest.mark.parametrize("name", list(LAYERS))
async def test_edit_scope_names_a_commune_column(conn: AsyncConnection, name: str) -> None:
    """The column OPTIONS reads to tell an editor's features from others' (features/
    permissions.py) is the one the layer's row-level security policy reads."""
    layer = LAYERS[name]
    if layer.edit_scope is None:
        return
    cur = await conn.execute(
        "SELECT string_agg(pg_get_expr(polqual, polrelid), ' ') FROM pg_policy "
        "WHERE polrelid = %s::regclass AND polcmd IN ('w', '*')",
        (layer.table,),
    )
    using = (await cur.fetchone())[0]
    assert f"geo_comuna_may_edit({layer.edit_scope})" in using, using


@pytest.mark.parametrize("name", list(LAYERS))
def test_temporal_and_edit_declarations_are_coherent(name: str) -> None:
    """A temporal property is a public date (anyone may filter by it and read its extent);
    editors may do something exactly where a column says whose the row is."""
    layer = LAYERS[name]
    if layer.temporal is not None:
        attr = layer.attribute(layer.temporal)
        assert attr is not None and attr.type == "date" and attr.read == "public"
    assert (layer.edit_scope is None) == (not layer.editors_may)
