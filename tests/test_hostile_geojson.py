"""Hostile GeoJSON on the write path: random geometries and property values (hypothesis) in
POST and PATCH bodies, what those fuzzers found, deeply nested arrays and NaN / Infinity
literals. The answer is 2xx or a 4xx problem naming the feature, never a 5xx, and a refused
write leaves nothing behind.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from tests.factories import LAT, LON, feature
from tests.hostile import (
    BOUNDED,
    PARCELS,
    PROBLEM,
    as_json,
    assert_answer,
    geometries,
    json_any,
    json_leaf,
    rows,
)

pytestmark = pytest.mark.anyio


def attribute_values(layer_name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Each property of the layer (and some unknown ones) with a random value: allowed
    values, wrong types, NUL characters, lone surrogates, huge numbers, bad dates."""
    layer = LAYERS[layer_name]
    value = st.one_of(
        json_leaf,
        json_any,
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(alphabet=st.characters(codec=None), max_size=30),
        st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),
        st.just("\x00"),
        st.just("2020-02-30"),
        st.just("9999-12-31"),
        st.just("0001-01-01"),
        st.just("x" * 5000),
        *[st.sampled_from(list(a.domain.values)) for a in layer.attributes if a.domain],
    )
    names = st.sampled_from([*layer.property_names, "id", "area_ha", "nope"])
    return st.dictionaries(names, value, max_size=len(layer.property_names) + 1)


# ---------------------------------------------------------------- the write path (API)


@BOUNDED
@given(geometry=geometries, layer=st.sampled_from(["parcels", "dwellings", "water_mains"]))
async def test_random_geometries_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, geometry: Any, layer: str
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, layer)
        body = {
            "type": "Feature",
            "geometry": geometry,
            "properties": feature(LAYERS[layer], "EL-MAIZAL")["properties"],
        }
        r = await client.post(f"/collections/{layer}/items", content=as_json(body))
        assert_answer(r)
        assert await rows(conn, layer) == before + (1 if r.status_code == 201 else 0)


@BOUNDED
@given(props=attribute_values("parcels"), repair=st.booleans())
async def test_random_parcel_properties_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, props: dict[str, Any], repair: bool
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        body = feature(PARCELS, "EL-MAIZAL")
        body["properties"] = props
        r = await client.post(
            "/collections/parcels/items",
            content=as_json(body),
            params={"repair": str(repair).lower()},
        )
        assert_answer(r)
        assert await rows(conn, "parcels") == before + (1 if r.status_code == 201 else 0)


@BOUNDED
@given(props=attribute_values("dwellings"))
async def test_random_patch_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, props: dict[str, Any]
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        cur = await conn.execute("SELECT min(id) FROM dwellings")
        dwelling = (await cur.fetchone())[0]
        stored = (await client.get(f"/collections/dwellings/items/{dwelling}")).json()
        r = await client.patch(
            f"/collections/dwellings/items/{dwelling}", content=as_json({"properties": props})
        )
        assert_answer(r)
        if r.status_code >= 400:
            again = (await client.get(f"/collections/dwellings/items/{dwelling}")).json()
            assert again["properties"] == stored["properties"]


# ---------------------------------------------------------------- what the fuzzers found

RING = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.001, LAT + 0.001], [LON, LAT]]
FOUND = [  # each was a 500 before its fix
    (
        "empty interior ring",
        {"geometry": {"type": "Polygon", "coordinates": [RING, []]}},
        422,
        "an empty part or ring",
    ),
    (
        "empty polygon part",
        {"geometry": {"type": "MultiPolygon", "coordinates": [[RING], []]}},
        422,
        "an empty part",
    ),
    ("NUL in a text", {"properties": {"tenure": "occupied", "notes": "a\x00b"}}, 422, "NUL"),
    (
        "lone surrogate in a text",
        {"properties": {"tenure": "occupied", "notes": "\ud800"}},
        422,
        "lone surrogate",
    ),
    (
        "lone surrogate as a commune code",
        {"properties": {"tenure": "occupied", "commune": "\udfff"}},
        422,
        "no communes with code",
    ),
    (
        "a list as a commune",
        {"properties": {"tenure": "occupied", "commune": [4]}},
        422,
        "neither a code nor an id",
    ),
    (
        "a fraction as a commune",
        {"properties": {"tenure": "occupied", "commune": 4.5}},
        422,
        "neither a code nor an id",
    ),
]


@pytest.mark.parametrize(
    ("change", "status", "says"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND]
)
async def test_what_the_fuzzers_found(
    client: httpx.AsyncClient, conn: AsyncConnection, change: dict, status: int, says: str
) -> None:
    before = await rows(conn, "parcels")
    body = {**feature(PARCELS, "EL-MAIZAL"), **change}
    r = await client.post("/collections/parcels/items", content=as_json(body))
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert r.json()["feature"] == 1
    assert await rows(conn, "parcels") == before


# ---------------------------------------------------------------- JSON past any parser


async def test_deeply_nested_json(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    before = await rows(conn, "parcels")
    deep = "[" * 10_000 + "]" * 10_000
    body = (
        '{"type": "Feature", "properties": {"tenure": "occupied"}, "geometry": '
        f'{{"type": "MultiPolygon", "coordinates": {deep}}}}}'
    )
    r = await client.post(
        "/collections/parcels/items", content=body, headers={"content-type": "application/geo+json"}
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    deep_props = '{"type": "Feature", "properties": {"notes": ' + deep + "}}"
    r = await client.patch("/collections/parcels/items/1", content=deep_props)
    assert r.status_code in (400, 422), r.text
    assert await rows(conn, "parcels") == before


async def test_nan_and_infinity_are_refused(client: httpx.AsyncClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = (
            '{"type": "Feature", "properties": {"tenure": "occupied"}, "geometry": '
            f'{{"type": "Point", "coordinates": [{literal}, 9.78]}}}}'
        )
        r = await client.post("/collections/dwellings/items", content=body)
        assert r.status_code in (400, 422), (literal, r.text)
        assert not math.isnan(r.json()["status"])
        assert literal.lstrip("-") in r.json()["detail"], r.text
        # said in words, not as another parser's complaint about the number written back
        assert "ParseException" not in r.json()["detail"], r.text
    # a number of 400 digits is as infinite to a float, and said in Spanish too
    body = body.replace("1e999", "1" + "0" * 400)
    r = await client.post("/collections/dwellings/items", content=body, params={"lang": "es"})
    assert r.status_code == 400 and "es demasiado grande para leerlo" in r.json()["detail"], r.text


async def test_a_geojson_of_too_many_property_names_is_refused_before_gdal_reads_it(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: GDAL looks each property name up among all before it, so one
    feature of 300,000 names (5 MB) kept a thread busy for hours after its client left, and
    20,000 features of one new name each took a worker to 4.7 GB. The names are counted in
    the bytes first; a file of a few hundred columns is still read."""
    before = await rows(conn, "facilities")

    def upload(props: list[dict]) -> httpx.Response:
        features = [
            {
                "type": "Feature",
                "properties": {"kind": "school", "commune": "EL-MAIZAL", **p},
                "geometry": {"type": "Point", "coordinates": [-69.146, 9.695]},
            }
            for p in props
        ]
        body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        return client.post(
            "/collections/facilities/import?allow_copies=true",
            files={"file": ("wide.geojson", body, "application/geo+json")},
        )

    wide = await upload([{f"zq{i}": 1 for i in range(5000)}])
    assert wide.status_code == 422 and "2,000 different property names" in wide.json()["detail"]
    spread = await upload([{f"k{i}": 1} for i in range(3000)])
    assert spread.status_code == 422, spread.text
    assert await rows(conn, "facilities") == before
    some = await upload([{f"extra{i}": 1 for i in range(300)}])
    assert some.status_code == 201, some.text
    assert len(some.json()["ignored_columns"]) == 300
