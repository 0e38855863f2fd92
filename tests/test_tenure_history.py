"""The tenure history has one shape for its readers: one row per parcel and change, read
through parcel_tenure_history(), however the change was stored (an import's first tenures are
one row per statement and tenure, migration 0011; a single POST's too; a change, a deletion
and an explicit dated row are the parcel's own)."""

from __future__ import annotations

import json

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from tests.factories import LON, feature
from tests.test_audit import history

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]


async def read_back(conn: AsyncConnection, ids: list[int]) -> dict[int, list[tuple]]:
    """parcel id -> its (from_status, to_status, note), oldest first, by the one reader."""
    cur = await conn.execute(
        "SELECT parcel_id, from_status, to_status, note "
        "FROM parcel_tenure_history(%s) ORDER BY parcel_id, changed_at, history_id",
        (ids,),
    )
    out: dict[int, list[tuple]] = {}
    for pid, *change in await cur.fetchall():
        out.setdefault(pid, []).append(tuple(change))
    return out


async def test_an_imported_and_a_posted_parcel_read_back_alike(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    tenures = ["occupied", "disputed", "occupied"]
    upload = {
        "type": "FeatureCollection",
        "features": [
            feature(PARCELS, "EL-MAIZAL", lon=LON + n * 0.002, code=f"ONE-{n}", tenure=t)
            for n, t in enumerate(tenures)
        ],
    }
    r = await client.post(
        "/collections/parcels/import",
        files={"file": ("parcels.geojson", json.dumps(upload).encode())},
    )
    assert r.status_code == 201, r.text
    posted = feature(PARCELS, "EL-MAIZAL", lon=LON + 0.01, code="ONE-POST", tenure="disputed")
    r = await client.post("/collections/parcels/items", json=posted)
    assert r.status_code == 201, r.text
    cur = await conn.execute("SELECT code, id FROM parcels WHERE code LIKE 'ONE-%'")
    ids = dict(await cur.fetchall())
    imported = [ids[f"ONE-{n}"] for n in range(3)]
    every = [*imported, ids["ONE-POST"]]

    # stored as statement rows (the POST is a statement of one parcel) ...
    cur = await conn.execute(
        "SELECT count(*) FROM parcel_history WHERE parcel_id = ANY(%s)", (every,)
    )
    assert (await cur.fetchone())[0] == 0
    # ... read back as one row per parcel, the same for both ways in
    expected = {pid: [(None, t, None)] for pid, t in zip(imported, tenures, strict=True)}
    expected[ids["ONE-POST"]] = [(None, "disputed", None)]
    assert await read_back(conn, every) == expected
    for pid in every:
        assert await history(client, pid) == expected[pid]

    # a change and a deletion are the parcel's own rows; the reader gives them the same shape
    r = await client.patch(
        f"/collections/parcels/items/{imported[1]}",
        json={"properties": {"tenure": "regularizing"}},
    )
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/collections/parcels/items/{ids['ONE-POST']}")).status_code == 204
    got = await read_back(conn, every)
    assert got[imported[1]] == [(None, "disputed", None), ("disputed", "regularizing", None)]
    assert got[ids["ONE-POST"]] == [(None, "disputed", None), ("disputed", None, "deleted")]
    assert got[imported[0]] == expected[imported[0]]  # its statement neighbours are untouched
    assert await history(client, ids["ONE-POST"]) == got[ids["ONE-POST"]]


async def test_only_the_parcels_asked_for(conn: AsyncConnection) -> None:
    """A statement row is cut down to the ids asked for, gaps and the largest integer too."""
    largest = 2**31 - 1
    await conn.execute(
        "INSERT INTO parcels (id, tenure, geom) "
        "SELECT i, 'occupied', ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 1e-4)) "
        "FROM unnest(%s::int[]) i",
        (LON, 8.0, [900001, 900002, 900004, largest]),
    )
    got = await read_back(conn, [900002, 900003, largest, 900099])
    assert got == {900002: [(None, "occupied", None)], largest: [(None, "occupied", None)]}
    assert await read_back(conn, []) == {}
