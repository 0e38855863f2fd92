"""Bad input on the write paths: a 4xx naming the feature and the reason, nothing written."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import LAT, LON, MAIZAL, feature

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [[LON, LAT], [LON + 0.01, LAT + 0.01], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]
    ],
}


async def count(conn: AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
    return (await cur.fetchone())[0]


def with_geometry(geometry: dict | None, **props: object) -> dict:
    body = feature(PARCELS, commune="EL-MAIZAL", **props)
    body["geometry"] = geometry
    return body


CASES = [
    ("self-intersection", with_geometry(BOWTIE), 422, "Self-intersection"),
    (
        "wrong type",
        with_geometry({"type": "Point", "coordinates": [LON, LAT]}),
        422,
        "wrong geometry type Point",
    ),
    ("empty", with_geometry({"type": "Polygon", "coordinates": []}), 422, "empty geometry"),
    ("missing", with_geometry(None), 422, "missing geometry"),
    (
        "out of range",
        with_geometry(
            {
                "type": "Polygon",
                "coordinates": [
                    [[500000, 1080000], [500100, 1080000], [500100, 1080100], [500000, 1080000]]
                ],
            }
        ),
        422,
        "projected CRS",
    ),
    (
        "swapped",
        with_geometry(
            {
                "type": "Polygon",
                "coordinates": [
                    [[LAT, LON], [LAT + 0.01, LON], [LAT + 0.01, LON + 0.01], [LAT, LON]]
                ],
            }
        ),
        422,
        "swapped",
    ),
    (
        "outside Venezuela",
        with_geometry(
            {
                "type": "Polygon",
                "coordinates": [[[2.35, 48.85], [2.36, 48.85], [2.36, 48.86], [2.35, 48.85]]],
            }
        ),
        422,
        "outside the service area",
    ),
    (
        "unknown value",
        feature(PARCELS, commune="EL-MAIZAL", tenure="stolen"),
        422,
        "'stolen' is not one of abandoned",
    ),
    (
        "missing required",
        feature(PARCELS, commune="EL-MAIZAL", tenure=None),
        422,
        "'tenure' is required",
    ),
    (
        "unknown property",
        feature(PARCELS, commune="EL-MAIZAL", colour="red"),
        400,
        "unknown properties colour;",
    ),
    (
        "bad date",
        feature(PARCELS, commune="EL-MAIZAL", recovered_on="last spring"),
        422,
        "recovered_on",
    ),
    ("unknown commune", feature(PARCELS, commune="NO-SUCH"), 422, "no communes with code"),
    (
        "not a feature",
        {"type": "Point", "coordinates": [LON, LAT]},
        400,
        "Feature or FeatureCollection",
    ),
    (
        "unreadable geometry",
        with_geometry({"type": "Polygon", "coordinates": "x"}),
        422,
        "not a readable GeoJSON geometry",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "says"), CASES, ids=[c[0] for c in CASES])
async def test_bad_feature_is_refused_and_nothing_written(
    client: httpx.AsyncClient, conn: AsyncConnection, case: str, body: dict, status: int, says: str
) -> None:
    before = await count(conn, "parcels")
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert says in problem["detail"], problem
    assert await count(conn, "parcels") == before


async def test_nan_coordinate_is_refused(client: httpx.AsyncClient) -> None:
    body = json.dumps(with_geometry({"type": "Point", "coordinates": [0, 0]})).replace(
        "[0, 0]", "[NaN, 10.0]"
    )
    r = await client.post("/collections/dwellings/items", content=body)
    assert r.status_code == 400 and "NaN" in r.json()["detail"]


async def test_not_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/collections/parcels/items", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    assert "at line 1, column 2" in r.json()["detail"], r.text
    r = await client.post("/collections/parcels/items?lang=es", content=b'{"type": "Feature",}')
    detail = r.json()["detail"]
    assert r.status_code == 400 and "no es un JSON válido: se esperaba un nombre" in detail, detail
    assert "Expecting" not in detail, detail


async def test_one_bad_feature_in_a_collection_writes_none(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    before = await count(conn, "parcels")
    good = [feature(PARCELS, commune="EL-MAIZAL", lon=LON + i * 0.002) for i in range(3)]
    body = {"type": "FeatureCollection", "features": [*good, with_geometry(BOWTIE)]}
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == 422
    assert r.json()["feature"] == 4 and "feature 4" in r.json()["detail"]
    assert await count(conn, "parcels") == before


async def test_repair_fixes_and_reports(client: httpx.AsyncClient) -> None:
    r = await client.post("/collections/parcels/items?repair=true", json=with_geometry(BOWTIE))
    assert r.status_code == 201, r.text
    repairs = r.json()["repairs"]
    assert len(repairs) == 1 and "Self-intersection" in repairs[0]["reason"]
    fid = r.json()["ids"][0]
    stored = (await client.get(f"/collections/parcels/items/{fid}")).json()
    # the bow-tie becomes its two triangles
    assert len(stored["geometry"]["coordinates"]) == 2


async def test_duplicate_commune_code_is_409(client: httpx.AsyncClient) -> None:
    body = feature(LAYERS["communes"], code="EL-MAIZAL", name="again")
    r = await client.post("/collections/communes/items", json=body)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


async def test_a_code_is_its_text_without_surrounding_blanks(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: 'EM-P007 ' beside 'EM-P007' passed the key's uniqueness (by a
    sync, a PATCH and a POST alike), and ?code=EM-P007 then found neither or one. A code's
    surrounding blanks are no part of it."""
    body = feature(PARCELS, commune="EL-MAIZAL", code="  X-TRIM-1 ")
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == 201, r.text
    fid = r.json()["ids"][0]
    cur = await conn.execute("SELECT code FROM parcels WHERE id = %s", (fid,))
    assert (await cur.fetchone())[0] == "X-TRIM-1"
    again = feature(PARCELS, commune="EL-MAIZAL", code="X-TRIM-1\t")
    r = await client.post("/collections/parcels/items", json=again)
    assert r.status_code == 409 and "already exists" in r.json()["detail"], r.text
    other = (
        await client.post(
            "/collections/parcels/items", json=feature(PARCELS, commune="EL-MAIZAL", code="X2")
        )
    ).json()["ids"][0]
    r = await client.patch(
        f"/collections/parcels/items/{other}", json={"properties": {"code": " X-TRIM-1"}}
    )
    assert r.status_code == 409, r.text
    found = await client.get("/collections/parcels/items", params={"code": "X-TRIM-1 "})
    assert [f["id"] for f in found.json()["features"]] == [fid]
    # found from outside: an invisible character (a zero-width space) made a code that
    # reads as a stored one; refused, naming it
    for hidden in ("X-TRIM-1\u200b", "X-\u2060TRIM-1", "\ufeffX-TRIM-1"):
        body = feature(PARCELS, commune="EL-MAIZAL", code=hidden)
        r = await client.post("/collections/parcels/items", json=body)
        assert r.status_code == 422 and "invisible" in r.json()["detail"], r.text


async def test_deleting_a_commune_in_use_is_409(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    cur = await conn.execute("SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    cid = (await cur.fetchone())[0]
    r = await client.delete(f"/collections/communes/items/{cid}")
    assert r.status_code == 409 and "referenced" in r.json()["detail"]
    assert (await client.get(f"/collections/communes/items/{cid}")).status_code == 200


async def test_patch_with_bad_value_changes_nothing(client: httpx.AsyncClient) -> None:
    fid = (
        await client.post("/collections/parcels/items", json=feature(PARCELS, commune="EL-MAIZAL"))
    ).json()["ids"][0]
    r = await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"tenure": "stolen", "notes": "x"}}
    )
    assert r.status_code == 422 and r.json()["feature"] == fid
    after = (await client.get(f"/collections/parcels/items/{fid}")).json()
    assert after["properties"]["notes"] == "test notes"


async def test_oversized_body_is_413(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    small_settings = settings.model_copy(update={"max_body_bytes": 2048})
    async with api_client(conn, small_settings, admin_token) as small:
        body = feature(PARCELS, commune="EL-MAIZAL", notes="x" * 4000)
        r = await small.post("/collections/parcels/items", json=body)
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]


async def test_tenure_changes_are_kept_in_history(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    fid = (
        await client.post(
            "/collections/parcels/items",
            json=feature(PARCELS, commune="EL-MAIZAL", tenure="occupied"),
        )
    ).json()["ids"][0]
    await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"tenure": "regularizing"}}
    )
    await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"notes": "no tenure change"}}
    )
    await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"tenure": "regularized"}}
    )
    await client.delete(f"/collections/parcels/items/{fid}")
    # one row per change, however it was stored (db/functions/tenure_history.sql)
    cur = await conn.execute(
        "SELECT from_status, to_status FROM parcel_tenure_history(ARRAY[%s::int]) "
        "ORDER BY history_id",
        (fid,),
    )
    assert await cur.fetchall() == [
        (None, "occupied"),
        ("occupied", "regularizing"),
        ("regularizing", "regularized"),
        ("regularized", None),
    ]


async def test_integer_beyond_postgresql_integer_is_422(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Integers are stored as PostgreSQL integer: 3,000,000,000 people is a bad value, said
    as such, not a database failure (it was a 500)."""
    before = await count(conn, "communes")
    body = {
        "type": "Feature",
        "properties": {"code": "BIG-1", "name": "Big", "kind": "rural", "status": "active"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT]]],
        },
    }
    body["properties"]["population"] = 3_000_000_000
    r = await client.post("/collections/communes/items", json=body)
    assert r.status_code == 422, r.text
    assert "'population': 3000000000 is outside [0, 2147483647]" in r.json()["detail"]
    body["properties"]["population"] = 2**31 - 1  # the largest that fits is taken
    assert (await client.post("/collections/communes/items", json=body)).status_code == 201
    assert await count(conn, "communes") == before + 1


async def test_a_patch_that_removes_a_required_geometry_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: PATCH {"geometry": null} answered 200 and changed nothing."""
    cur = await conn.execute("SELECT id, ST_AsBinary(geom) FROM parcels ORDER BY id LIMIT 1")
    fid, wkb = await cur.fetchone()
    r = await client.patch(f"/collections/parcels/items/{fid}", json={"geometry": None})
    assert r.status_code == 422 and "cannot remove it" in r.json()["detail"], r.text
    cur = await conn.execute("SELECT ST_AsBinary(geom) FROM parcels WHERE id = %s", (fid,))
    assert (await cur.fetchone())[0] == wkb


async def test_a_recovery_or_founding_still_to_come_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: a sync stored recovered_on = 2030-01-01. A recovery (or a
    founding) is a day that has happened; today is fine, a typo years ahead is not."""
    body = feature(PARCELS, commune="EL-MAIZAL", lon=MAIZAL[0], lat=MAIZAL[1])
    body["properties"]["recovered_on"] = "2030-01-01"
    before = await count(conn, "parcels")
    r = await client.post("/collections/parcels/items", json=body, params={"lang": "es"})
    assert r.status_code == 422 and "2030-01-01 es un día que aún no llega" in r.json()["detail"]
    assert "datetime.date" not in r.json()["detail"]  # found from outside: Python's repr
    assert await count(conn, "parcels") == before
    # a file's dates, read by GDAL as dates and checked as a column, name the feature too
    later = {**body, "properties": {**body["properties"], "code": "FUTURO-1"}}
    today = {**body, "properties": {**body["properties"], "recovered_on": None}}
    collection = {"type": "FeatureCollection", "features": [today, later]}
    r = await client.post(
        "/collections/parcels/import",
        files={"file": ("f.geojson", json.dumps(collection).encode(), "application/geo+json")},
    )
    assert r.status_code == 422 and r.json()["feature"] == 2, r.text
    assert "'recovered_on': 2030-01-01 is a day still to come" in r.json()["detail"]
    assert await count(conn, "parcels") == before
    body["properties"]["recovered_on"] = dt.date.today().isoformat()
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == 201, r.text


async def test_an_import_names_a_code_with_an_invisible_character(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """The same through an import's columns (checked whole with Arrow, then value by value
    to name the feature): the second parcel's code holds a word joiner."""
    features = [
        feature(PARCELS, commune="EL-MAIZAL", code=code) for code in ("Z-INV-1", "Z-INV\u20602")
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    cur = await conn.execute("SELECT count(*) FROM parcels")
    before = (await cur.fetchone())[0]
    r = await client.post(
        "/collections/parcels/import", files={"file": ("p.geojson", body, "application/geo+json")}
    )
    assert r.status_code == 422 and "U+2060" in r.json()["detail"], r.text
    assert r.json()["feature"] == 2, r.text
    cur = await conn.execute("SELECT count(*) FROM parcels")
    assert (await cur.fetchone())[0] == before
