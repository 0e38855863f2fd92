"""The registry (geo_comuna/layers/) and the migrated schema must describe the same store."""

from __future__ import annotations

import json
import re

import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import COMMUNES, LAYERS, commune_map_layers
from geo_comuna.settings import Settings

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


@pytest.mark.parametrize("name", list(LAYERS))
async def test_commune_filter_names_commune_columns(conn: AsyncConnection, name: str) -> None:
    """``?commune=`` (features/filters.py), the commune map and the sample's reload read a
    layer's commune by these columns: each holds a commune's id, and a layer that references
    communes is filtered by every such reference (an exchange by either end)."""
    layer = LAYERS[name]
    match = layer.commune_filter
    cols = await columns(conn, layer.table)
    assert match.columns or match.land, "a commune's features must be found somehow"
    assert not (match.columns and match.land)
    for column in match.columns:
        assert cols[column][0] == "integer", column
    referenced = {r.column for r in layer.references if r.table == COMMUNES.table}
    own = {"id"} if layer is COMMUNES else set()
    if not match.land:
        assert set(match.columns) == referenced | own
    else:  # a commune's land lies in an area: the layer is one of areas naming no commune
        assert layer.geometry_type == "MultiPolygon" and not referenced


def test_commune_map_draws_each_layer_once_areas_first() -> None:
    """The commune map draws the layers holding the commune's own features, one number each,
    areas under lines under points (api/maps.py, maps/commune.py)."""
    drawn = commune_map_layers()
    numbers = [layer.commune_map for layer in drawn]
    assert drawn and len(set(numbers)) == len(numbers)
    kinds = ["MultiPolygon", "LineString", "Point"]
    ranks = [kinds.index(layer.geometry_type) for layer in drawn]
    assert ranks == sorted(ranks), [layer.name for layer in drawn]
    for layer in drawn:
        assert layer.commune_filter.columns == ("commune_id",), layer.name
        assert layer.style, layer.name


def test_sample_files_exist_and_load_references_first() -> None:
    """The demo data (io/sample.py) has a file for every layer the registry says it holds;
    a layer comes after the layers it references; renamed columns land on attributes; a
    layer whose geometry the database draws comes as a CSV of properties."""
    from geo_comuna.io.sample import DEM_COMMUNE, sample_file

    settings = Settings()

    loaded: set[str] = set()
    for layer in LAYERS.values():
        if layer.sample is None:
            continue
        assert sample_file(layer, settings).is_file(), layer.sample.file
        for ref in layer.references:
            assert ref.table in loaded, f"{layer.name} loads before {ref.table}"
        for _, attribute in layer.sample.columns:
            assert layer.attribute(attribute) is not None, (layer.name, attribute)
        assert layer.sample.file.endswith(".csv") == layer.geometry_optional, layer.name
        if layer.sample.by_code:
            assert layer.attribute("code") is not None and not layer.references
        loaded.add(layer.table)
    assert COMMUNES.sample is not None and not COMMUNES.sample.by_code
    codes = [
        f["properties"]["code"]
        for f in json.loads(sample_file(COMMUNES, settings).read_text("utf-8"))["features"]
    ]
    assert DEM_COMMUNE in codes
