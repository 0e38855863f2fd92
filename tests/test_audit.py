"""The audit trail's shape (migration 0010): one entry per INSERT statement with its count and
ids, one per feature for updates and deletes, and triggers that fire even in replica mode. The
tenure history's first tenures likewise (migration 0011): one row per INSERT statement and
tenure, found by each parcel's history."""

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
        "SELECT from_status, to_status, parcels FROM parcel_history WHERE parcel_ids @> %s::int",
        (fid,),
    )
    assert await history.fetchall() == [(None, "regularizing", 1)]

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


# --- the tenure history's first tenures (migration 0011) -----------------------------------


def multirange(ids: list[int]) -> str:
    """PostgreSQL's text of the int4multirange holding exactly ``ids``."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return "{" + ",".join(f"[{a},{b if b <= 2**31 - 1 else ''})" for a, b in runs) + "}"


async def first_tenures(conn: AsyncConnection, ids: list[int]) -> dict[str, tuple[Any, ...]]:
    """to_status -> (from_status, note, parcels, parcel_ids as text) of the INSERT statements'
    rows naming any of ``ids``."""
    cur = await conn.execute(
        "SELECT to_status, from_status, note, parcels, parcel_ids::text FROM parcel_history "
        "WHERE EXISTS (SELECT FROM unnest(%s::int[]) i WHERE parcel_ids @> i)",
        (ids,),
    )
    rows = await cur.fetchall()
    found = {row[0]: row[1:] for row in rows}
    assert len(found) == len(rows), "one row per tenure"
    return found


async def history(client: httpx.AsyncClient, fid: int) -> list[tuple[Any, ...]]:
    r = await client.get(f"/collections/parcels/items/{fid}/history")
    assert r.status_code == 200, r.text
    return [(h["from_status"], h["to_status"], h["note"]) for h in r.json()["history"]]


async def test_an_import_records_one_first_tenure_row_per_tenure(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    tenures = ["occupied", "occupied", "disputed", "occupied", "disputed"]
    upload = {
        "type": "FeatureCollection",
        "features": [
            feature(PARCELS, "EL-MAIZAL", lon=LON + n * 0.002, code=f"MIX-{n}", tenure=tenure)
            for n, tenure in enumerate(tenures)
        ],
    }
    r = await client.post(
        "/collections/parcels/import",
        files={"file": ("parcels.geojson", json.dumps(upload).encode())},
    )
    assert r.status_code == 201, r.text
    cur = await conn.execute("SELECT tenure, id FROM parcels WHERE code LIKE 'MIX-%'")
    by_tenure: dict[str, list[int]] = {}
    for tenure, fid in await cur.fetchall():
        by_tenure.setdefault(tenure, []).append(fid)
    assert sorted(map(len, by_tenure.values())) == [2, 3]

    occupied, disputed = by_tenure["occupied"], by_tenure["disputed"]
    assert await first_tenures(conn, occupied + disputed) == {
        "occupied": (None, None, 3, multirange(occupied)),
        "disputed": (None, None, 2, multirange(disputed)),
    }
    # nothing per parcel for the import
    cur = await conn.execute(
        "SELECT count(*) FROM parcel_history WHERE parcel_id = ANY(%s)", (occupied + disputed,)
    )
    assert (await cur.fetchone())[0] == 0

    # each parcel's history starts with its own first tenure; changes stay its own rows
    fid = disputed[-1]
    assert await history(client, fid) == [(None, "disputed", None)]
    r = await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"tenure": "regularizing"}}
    )
    assert r.status_code == 200, r.text
    assert await history(client, fid) == [
        (None, "disputed", None),
        ("disputed", "regularizing", None),
    ]
    assert await history(client, occupied[0]) == [(None, "occupied", None)]
    cur = await conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s", (fid,))
    assert (await cur.fetchone())[0] == 1


async def test_first_tenures_of_the_extreme_integer_ids(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """int4range(id, id + 1) would overflow for the largest integer: its range is left open."""
    lowest, largest = -(2**31), 2**31 - 1
    await conn.execute("SET LOCAL geo_comuna.change_note = 'catastro 2024'")
    await conn.execute(
        f"INSERT INTO parcels (id, tenure, geom) SELECT i, t, {SQUARE} "
        "FROM unnest(%s::int[], %s::text[]) u(i, t)",
        (
            LON,
            LAT,
            [lowest, 900001, 900002, 900005, largest],
            ["occupied", "occupied", "occupied", "disputed", "disputed"],
        ),
    )
    note = "catastro 2024"
    assert await first_tenures(conn, [lowest, 900001, 900005, largest]) == {
        "occupied": (None, note, 3, "{[-2147483648,-2147483647),[900001,900003)}"),
        "disputed": (None, note, 2, "{[900005,900006),[2147483647,)}"),
    }
    cur = await conn.execute("SELECT count(*) FROM parcel_history")
    rows = (await cur.fetchone())[0]
    await conn.execute(  # a statement that writes nothing records nothing
        f"INSERT INTO parcels (tenure, geom) SELECT 'occupied', {SQUARE} WHERE false", (LON, LAT)
    )
    cur = await conn.execute("SELECT count(*) FROM parcel_history")
    assert (await cur.fetchone())[0] == rows

    assert await history(client, largest) == [(None, "disputed", note)]
    assert await history(client, lowest) == [(None, "occupied", note)]
    assert await history(client, 900002) == [(None, "occupied", note)]
    for missing in (900003, 900006, largest + 1, lowest - 1):
        r = await client.get(f"/collections/parcels/items/{missing}/history")
        assert r.status_code == 404, (missing, r.text)

    # updates and the deletion stay the parcel's own rows, even for the largest id
    await conn.execute("UPDATE parcels SET tenure = 'regularized' WHERE id = %s", (largest,))
    await conn.execute("DELETE FROM parcels WHERE id = %s", (largest,))
    assert await history(client, largest) == [
        (None, "disputed", note),
        ("disputed", "regularized", note),
        ("regularized", None, note),
    ]
    cur = await conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s", (largest,))
    assert (await cur.fetchone())[0] == 2
