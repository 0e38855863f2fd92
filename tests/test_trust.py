"""Who may change what (tokens, roles, row-level security), the audit trail, and If-Match."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pyarrow as pa
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.api.app import create_app
from geo_comuna.io.importer import write_frame
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import LAT, LON, MAIZAL, feature

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
# a spot inside 5 de Marzo (Caracas) for features of "the other commune"
CARACAS = (-66.9155, 10.4655)


async def commune_id(conn: AsyncConnection, code: str) -> int:
    cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (code,))
    return (await cur.fetchone())[0]


async def a_parcel(conn: AsyncConnection, code: str) -> int:
    cur = await conn.execute(
        "SELECT min(id) FROM parcels WHERE commune_id = %s", (await commune_id(conn, code),)
    )
    return (await cur.fetchone())[0]


@pytest.fixture
async def editor(conn: AsyncConnection, settings: Settings):  # noqa: ANN201
    _, token = await accounts.add_user(conn, "ana", "editor", ["EL-MAIZAL"])
    async with api_client(conn, settings, token) as c:
        yield c


async def test_writes_need_a_valid_token(conn: AsyncConnection, settings: Settings) -> None:
    body = feature(PARCELS, commune="EL-MAIZAL")
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.post("/collections/parcels/items", json=body)
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert (await anonymous.get("/collections/parcels/items?limit=1")).status_code == 200
    async with api_client(conn, settings, "gc_not-a-token") as wrong:
        assert (await wrong.post("/collections/parcels/items", json=body)).status_code == 401
    _, token = await accounts.add_user(conn, "vera", "viewer", [])
    async with api_client(conn, settings, token) as viewer:
        r = await viewer.post("/collections/parcels/items", json=body)
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
    await accounts.revoke(conn, "vera")
    async with api_client(conn, settings, token) as revoked:
        assert (await revoked.post("/collections/parcels/items", json=body)).status_code == 401


async def test_token_is_stored_only_as_a_hash(conn: AsyncConnection) -> None:
    _, token = await accounts.add_user(conn, "hash-check", "admin", [])
    cur = await conn.execute("SELECT token_hash FROM users WHERE name = 'hash-check'")
    stored = (await cur.fetchone())[0]
    assert token not in stored and stored == accounts.hash_token(token)


async def test_editor_stays_inside_its_commune(
    conn: AsyncConnection, editor: httpx.AsyncClient
) -> None:
    mine = await editor.post(
        "/collections/parcels/items", json=feature(PARCELS, "EL-MAIZAL", *MAIZAL)
    )
    assert mine.status_code == 201, mine.text
    fid = mine.json()["ids"][0]

    theirs = feature(PARCELS, commune="5-DE-MARZO", lon=CARACAS[0], lat=CARACAS[1])
    r = await editor.post("/collections/parcels/items", json=theirs)
    assert r.status_code == 403 and "communes you may edit" in r.json()["detail"]

    other = await a_parcel(conn, "5-DE-MARZO")
    r = await editor.patch(
        f"/collections/parcels/items/{other}", json={"properties": {"notes": "mine now"}}
    )
    assert r.status_code == 403
    assert (await editor.delete(f"/collections/parcels/items/{other}")).status_code == 403

    # nor may it move its own parcel into another commune
    r = await editor.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"commune": "5-DE-MARZO"}}
    )
    assert r.status_code == 403
    got = (await editor.get(f"/collections/parcels/items/{fid}")).json()
    assert got["properties"]["commune"] == "EL-MAIZAL"


async def test_row_level_security_holds_in_plain_sql(conn: AsyncConnection) -> None:
    """The rule lives in PostgreSQL: SQL that skips the API is held to it too."""
    maizal, marzo = await commune_id(conn, "EL-MAIZAL"), await commune_id(conn, "5-DE-MARZO")
    user = accounts.User(None, "sql-editor", "editor", (maizal,))
    async with accounts.writing(conn, user):
        cur = await conn.execute("UPDATE parcels SET notes = 'x' WHERE commune_id = %s", (marzo,))
        assert cur.rowcount == 0
        cur = await conn.execute("UPDATE parcels SET notes = 'x' WHERE commune_id = %s", (maizal,))
        assert cur.rowcount > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE parcels SET commune_id = %s WHERE commune_id = %s", (marzo, maizal)
                )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute("DELETE FROM audit_log")


async def test_audit_records_who_before_and_after(
    client: httpx.AsyncClient, editor: httpx.AsyncClient
) -> None:
    fid = (
        await editor.post(
            "/collections/parcels/items",
            json=feature(PARCELS, "EL-MAIZAL", *MAIZAL, tenure="occupied"),
        )
    ).json()["ids"][0]
    await editor.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"tenure": "regularizing"}}
    )
    assert (await editor.get(f"/audit?layer=parcels&id={fid}")).status_code == 403
    log = (await client.get(f"/audit?layer=parcels&id={fid}")).json()["entries"]
    assert [e["action"] for e in log] == ["update", "insert"]
    update, insert = log
    assert update["user"] == insert["user"] == "ana"
    # the insert is recorded by id (the feature is the row itself), the update in full
    assert insert["features"] == 1 and insert["ids"] == [[fid, fid]] and insert["after"] is None
    assert update["before"]["properties"]["tenure"] == "occupied"
    assert update["after"]["properties"]["tenure"] == "regularizing"
    assert update["after"]["geometry"]["type"] == "MultiPolygon"
    history = (await client.get(f"/collections/parcels/items/{fid}/history")).json()
    assert [h["to_status"] for h in history["history"]] == ["occupied", "regularizing"]
    assert history["audit"].endswith(f"/audit?layer=parcels&id={fid}")


async def test_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    fid = (
        await client.post("/collections/parcels/items", json=feature(PARCELS, commune="EL-MAIZAL"))
    ).json()["ids"][0]
    first = await client.get(f"/collections/parcels/items/{fid}")
    etag = first.headers["etag"]
    ok = await client.patch(
        f"/collections/parcels/items/{fid}",
        headers={"If-Match": etag},
        json={"properties": {"notes": "first"}},
    )
    assert ok.status_code == 200 and ok.headers["etag"] != etag
    stale = await client.patch(
        f"/collections/parcels/items/{fid}",
        headers={"If-Match": etag},
        json={"properties": {"notes": "second"}},
    )
    assert stale.status_code == 412 and "changed since you read it" in stale.json()["detail"]
    assert (
        await client.delete(f"/collections/parcels/items/{fid}", headers={"If-Match": etag})
    ).status_code == 412
    got = (await client.get(f"/collections/parcels/items/{fid}")).json()
    assert got["properties"]["notes"] == "first"


async def test_two_editors_racing_one_wins_one_is_told(own_db: str, settings: Settings) -> None:
    """Real concurrency: two requests on two pooled connections, committed."""
    setup = await AsyncConnection.connect(own_db, autocommit=True)
    try:
        _, token_a = await accounts.add_user(setup, "editor-a", "editor", ["EL-MAIZAL"])
        _, token_b = await accounts.add_user(setup, "editor-b", "editor", ["EL-MAIZAL"])
        fid = await a_parcel(setup, "EL-MAIZAL")
    finally:
        await setup.close()
    app = create_app(settings.model_copy(update={"pool_max_size": 4}), conninfo=own_db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            url = f"/collections/parcels/items/{fid}"
            etag = (await c.get(url)).headers["etag"]

            async def edit(token: str, note: str) -> httpx.Response:
                return await c.patch(
                    url,
                    json={"properties": {"notes": note}},
                    headers={"If-Match": etag, "Authorization": f"Bearer {token}"},
                )

            results = await asyncio.gather(edit(token_a, "from A"), edit(token_b, "from B"))
            # notes are for the commune's own users
            mine = {"Authorization": f"Bearer {token_a}"}
            final = (await c.get(url, headers=mine)).json()["properties"]["notes"]
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 412]
    winner = "from A" if results[0].status_code == 200 else "from B"
    assert final == winner


async def test_token_only_reads(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    closed = settings.model_copy(update={"reads": "token"})
    async with api_client(conn, closed) as anonymous:
        r = await anonymous.get("/collections/parcels/items?limit=1")
        assert r.status_code == 401
    async with api_client(conn, closed, admin_token) as known:
        assert (await known.get("/collections/parcels/items?limit=1")).status_code == 200


async def test_cli_import_is_attributed_to_the_local_admin(conn: AsyncConnection) -> None:
    frame = pa.table({"commune": ["EL-MAIZAL"], "tenure": ["occupied"]})
    await write_frame(
        conn, PARCELS, frame, [shapely.box(LON, LAT, LON + 0.001, LAT + 0.001)], Settings()
    )
    cur = await conn.execute("SELECT user_name FROM audit_log ORDER BY id DESC LIMIT 1")
    assert (await cur.fetchone())[0].startswith("cli:")


async def test_slow_query_is_503_not_a_hung_worker(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """Every session carries a statement timeout; hitting it is a clear 503."""
    await conn.execute("SET LOCAL statement_timeout = '1ms'")
    r = await client.get("/states/breakdown")
    assert r.status_code == 503, r.text
    assert "statement timeout" in r.json()["detail"]


async def test_required_if_match_refuses_blind_changes(own_db: str, settings: Settings) -> None:
    """GEO_COMUNA_REQUIRE_IF_MATCH: 20 concurrent PUTs without If-Match are all 428 and the
    stored feature is untouched; 20 with the same ETag: one wins, 19 are told (412)."""
    setup = await AsyncConnection.connect(own_db, autocommit=True)
    try:
        _, token = await accounts.add_user(setup, "blind-editor", "editor", ["EL-MAIZAL"])
        fid = await a_parcel(setup, "EL-MAIZAL")
    finally:
        await setup.close()
    strict = settings.model_copy(update={"require_if_match": True, "pool_max_size": 6})
    app = create_app(strict, conninfo=own_db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=auth) as c:
            url = f"/collections/parcels/items/{fid}"
            before = await c.get(url)

            async def put(n: int, **extra: str) -> httpx.Response:
                body = feature(PARCELS, "EL-MAIZAL", *MAIZAL, notes=f"PUT {n}")
                return await c.put(url, json=body, headers=extra)

            blind = await asyncio.gather(*(put(n) for n in range(20)))
            assert [r.status_code for r in blind] == [428] * 20
            problem = blind[0].json()
            assert blind[0].headers["content-type"].startswith("application/problem+json")
            assert problem["status"] == 428 and "If-Match" in problem["detail"]
            assert (await c.patch(url, json={"properties": {"notes": "x"}})).status_code == 428
            assert (await c.delete(url)).status_code == 428
            # "*" matches any version: as blind as no header (found by a probe)
            star = await c.patch(
                url, json={"properties": {"notes": "x"}}, headers={"If-Match": "*"}
            )
            assert star.status_code == 428
            after = await c.get(url)
            assert after.json() == before.json() and after.headers["etag"] == before.headers["etag"]

            etag = before.headers["etag"]
            raced = await asyncio.gather(*(put(n, **{"If-Match": etag}) for n in range(20)))
            codes = sorted(r.status_code for r in raced)
            assert codes == [200] + [412] * 19
            winner = next(n for n, r in enumerate(raced) if r.status_code == 200)
            assert (await c.get(url)).json()["properties"]["notes"] == f"PUT {winner}"
