"""SQL injection in filter values, property names, sort keys, bbox, paths and the audit query:
every one is a 4xx or matches literally, and no table changes.
"""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from tests.hostile import PROBLEM, assert_answer, rows

pytestmark = pytest.mark.anyio

INJECTIONS = [
    "' OR 1=1 --",
    "'; DROP TABLE parcels; --",
    "1); DELETE FROM parcels; --",
    "abandoned' UNION SELECT token_hash FROM users --",
    "\\'; SELECT pg_sleep(10)--",
]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_sql_injection_in_filter_values(
    client: httpx.AsyncClient, conn: AsyncConnection, value: str
) -> None:
    before = await rows(conn, "parcels")
    for params in (
        {"tenure": value},
        {"code": value},
        {"notes": value},
        {"recovered_on": value},
        {"commune": value},
        {"tenure": f"abandoned,{value}"},
    ):
        r = await client.get("/collections/parcels/items", params=params)
        assert_answer(r)
        if r.status_code == 200:  # a text filter: matched literally, so nothing
            assert r.json()["numberMatched"] == 0, params
    assert await rows(conn, "parcels") == before


@pytest.mark.parametrize(
    "name",
    [
        '"; DROP TABLE parcels;--',
        "tenure = 'x' OR 1=1 --",
        "id) OR (1=1",
        "geom",
        "token_hash",
        "sortby",
    ],
)
async def test_sql_injection_in_property_names_and_sort_keys(
    client: httpx.AsyncClient, conn: AsyncConnection, name: str
) -> None:
    before = await rows(conn, "parcels")
    for params in ({name: "1"}, {"sortby": name}, {"sortby": f"-{name}"}, {"properties": name}):
        r = await client.get("/collections/parcels/items", params=params)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        shaping = {"sortby", "properties"} & set(params)
        unknown = "unknown property" if shaping else "unknown query parameter"
        assert unknown in r.json()["detail"]
    assert await rows(conn, "parcels") == before


@pytest.mark.parametrize(
    "bbox",
    [
        "1,2,3,4);DROP TABLE parcels;--",
        "-69.2,9.7,-69.1,9.8 OR 1=1",
        "0x1,2,3,4",
        "1,2,3",
        "nan,1,2,3",
        "inf,1,2,3",
        "1e999,1,2,3",
        ",,,",
        "1;2;3;4",
    ],
)
async def test_sql_injection_and_nonsense_in_bbox(
    client: httpx.AsyncClient, conn: AsyncConnection, bbox: str
) -> None:
    before = await rows(conn, "parcels")
    r = await client.get("/collections/parcels/items", params={"bbox": bbox})
    assert r.status_code == 400, r.text
    assert "bbox" in r.json()["detail"]
    assert await rows(conn, "parcels") == before


async def test_sql_injection_in_paths_and_audit(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    before = await rows(conn, "parcels")
    for path in [
        "/collections/parcels;DROP TABLE parcels/items",
        "/collections/parcels/items/1 OR 1=1",
        "/communes/' OR 1=1 --/states",
        "/maps/communes/' OR '1'='1",
        "/communes/1;DROP TABLE communes/report",
        "/audit?layer=parcels' OR 1=1 --",
        "/audit?id=99999999999999999999",
        "/audit?id=-1",
        "/communes/%00/states",
        "/collections/parcels/items?code=%00",
        "/collections/parcels/items?commune=%00",
        "/tiles/parcels;--/1/1/1.pbf",
    ]:
        r = await client.get(path)
        assert_answer(r)
        assert r.status_code != 200 or r.json() == {"entries": []}, path
    assert await rows(conn, "parcels") == before
