"""The audit trail's shape (migration 0010): one entry per INSERT statement with its count and
ids, one per feature for updates and deletes, and triggers that fire even in replica mode."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from tests.factories import LAT, LON, feature

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
SQUARE = "ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.0004))"


async def newest_audit_id(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT coalesce(max(id), 0) FROM audit_log")
    return (await cur.fetchone())[0]


async def audit_since(conn: AsyncConnection, after_id: int) -> list[tuple[Any, ...]]:
    """(layer, action, feature_id, features, ids as [[first, last], ...]) of the newer rows."""
    cur = await conn.execute(
        "SELECT layer, action, feature_id, features, (SELECT json_agg(json_build_array("
        "lower(r), upper(r) - 1)) FROM unnest(feature_ids) r) FROM audit_log WHERE id > %s "
        "ORDER BY id",
        (after_id,),
    )
    return await cur.fetchall()


async def entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


async def test_an_import_is_one_audit_entry_naming_every_id(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    start = await newest_audit_id(conn)
    upload = {
        "type": "FeatureCollection",
        "features": [
            feature(PARCELS, "EL-MAIZAL", lon=LON + n * 0.002, code=f"STMT-{n}") for n in range(7)
        ],
    }
    r = await client.post(
        "/collections/parcels/import",
        files={"file": ("parcels.geojson", json.dumps(upload).encode())},
    )
    assert r.status_code == 201, r.text
    cur = await conn.execute("SELECT id FROM parcels WHERE code LIKE 'STMT-%' ORDER BY id")
    ids = [row[0] for row in await cur.fetchall()]
    assert len(ids) == 7 and ids == list(range(ids[0], ids[0] + 7))

    parcel_rows = [row for row in await audit_since(conn, start) if row[0] == "parcels"]
    assert parcel_rows == [("parcels", "insert", None, 7, [[ids[0], ids[-1]]])]

    found = await entries(client, layer="parcels", id=ids[3])
    assert len(found) == 1
    entry = found[0]
    assert entry["action"] == "insert" and entry["user"] == "test-admin"
    assert entry["features"] == 7 and entry["ids"] == [[ids[0], ids[-1]]]
    assert entry["feature_id"] is None
    assert entry["before"] is None and entry["after"] is None
    assert await entries(client, layer="communes", id=ids[3]) == []


async def test_an_insert_statement_with_gaps_lists_exact_ids(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    start = await newest_audit_id(conn)
    await conn.execute(
        f"INSERT INTO parcels (id, tenure, geom) SELECT i, 'occupied', {SQUARE} "
        "FROM unnest(ARRAY[900001, 900002, 900005, 2147483647]) i",
        (LON, LAT),
    )
    await conn.execute(  # a statement that writes nothing records nothing
        f"INSERT INTO parcels (tenure, geom) SELECT 'occupied', {SQUARE} WHERE false", (LON, LAT)
    )
    pairs = [[900001, 900002], [900005, 900005], [2147483647, 2147483647]]
    cur = await conn.execute(
        "SELECT layer, action, features FROM audit_log WHERE id > %s ORDER BY id", (start,)
    )
    assert await cur.fetchall() == [("parcels", "insert", 4)]
    for fid in (900002, 900005, 2147483647):
        (entry,) = await entries(client, layer="parcels", id=fid)
        assert entry["ids"] == pairs and entry["features"] == 4
    assert await entries(client, layer="parcels", id=900003) == []


async def test_updates_and_deletes_stay_one_entry_per_feature(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    cur = await conn.execute(
        f"INSERT INTO parcels (code, tenure, geom) SELECT 'PER-' || i, 'occupied', {SQUARE} "
        "FROM generate_series(1, 3) i RETURNING id",
        (LON, LAT),
    )
    ids = sorted(row[0] for row in await cur.fetchall())
    start = await newest_audit_id(conn)
    await conn.execute("UPDATE parcels SET tenure = 'disputed' WHERE id = ANY(%s)", (ids,))
    await conn.execute("DELETE FROM parcels WHERE id = %s", (ids[0],))
    rows = await audit_since(conn, start)
    assert sorted(rows, key=lambda r: (r[1], r[2])) == [
        ("parcels", "delete", ids[0], None, None),
        *[("parcels", "update", fid, None, None) for fid in ids],
    ]

    log = await entries(client, layer="parcels", id=ids[0])
    assert [e["action"] for e in log] == ["delete", "update", "insert"]
    deleted, updated, inserted = log
    for entry in (deleted, updated):
        assert entry["feature_id"] == ids[0]
        assert entry["features"] == 1 and entry["ids"] == [[ids[0], ids[0]]]
    assert updated["before"]["properties"]["tenure"] == "occupied"
    assert updated["after"]["properties"]["tenure"] == "disputed"
    assert updated["after"]["geometry"]["type"] == "MultiPolygon"
    assert deleted["before"]["properties"]["code"] == "PER-1" and deleted["after"] is None
    assert deleted["before"]["id"] == ids[0]
    assert inserted["features"] == 3 and inserted["ids"] == [[ids[0], ids[-1]]]


async def test_triggers_fire_in_replica_mode(conn: AsyncConnection) -> None:
    """The importer COPYs under session_replication_role = replica to skip the per-row
    foreign-key checks; every other trigger must still fire (the test user is a superuser)."""

    async def one(query: str, params: tuple = ()) -> Any:
        return (await (await conn.execute(query, params)).fetchone())[0]

    version = await one("SELECT version FROM layer_versions WHERE layer = 'parcels'")
    start = await newest_audit_id(conn)
    await conn.execute("SET LOCAL session_replication_role = replica")
    fid = await one(
        f"INSERT INTO parcels (code, tenure, geom) VALUES ('REPLICA', 'regularizing', {SQUARE}) "
        "RETURNING id",
        (LON, LAT),
    )
    assert await audit_since(conn, start) == [("parcels", "insert", None, 1, [[fid, fid]])]
    assert await one("SELECT version FROM layer_versions WHERE layer = 'parcels'") == version + 1
    history = await conn.execute(
        "SELECT from_status, to_status FROM parcel_history WHERE parcel_id = %s", (fid,)
    )
    assert await history.fetchall() == [(None, "regularizing")]

    # the BEFORE trigger that draws an exchange's line, and the one that cuts states up
    maizal = await one("SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    marzo = await one("SELECT id FROM communes WHERE code = '5-DE-MARZO'")
    drawn = await one(
        "INSERT INTO exchanges (from_commune_id, to_commune_id, product, volume_per_month, "
        "unit) VALUES (%s, %s, 'maize', 1, 't') RETURNING ST_NPoints(geom)",
        (maizal, marzo),
    )
    assert drawn == 2
    state = await one(
        f"INSERT INTO states (code, name, kind, geom) VALUES ('XX-R', 'Replica', 'state', "
        f"{SQUARE}) RETURNING id",
        (LON, LAT),
    )
    assert await one("SELECT count(*) FROM state_parts WHERE state_id = %s", (state,)) > 0

    # nor can replica mode get round the append-only audit_log
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        async with conn.transaction():
            await conn.execute("DELETE FROM audit_log WHERE id = %s", (start + 1,))


async def test_every_trigger_fires_always(conn: AsyncConnection) -> None:
    """A trigger a later migration adds must be ENABLE ALWAYS too, or replica-mode imports
    would skip it (see migration 0010)."""
    cur = await conn.execute(
        "SELECT c.relname || '.' || t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND NOT t.tgisinternal"
    )
    triggers = dict(await cur.fetchall())
    assert {"audit_log.audit_log_append_only", "parcels.parcels_audit_insert"} <= triggers.keys()
    assert {name: state for name, state in triggers.items() if state != "A"} == {}
