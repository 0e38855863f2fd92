"""The breakdown kept per layer version (db/versions.py, api/communes.py): one computation
for many requests arriving at once, the encoded answer served again as stored, 304 for a
client that holds it, and a new answer after a write."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.api.app import create_app
from geo_comuna.db.versions import VersionedCache
from geo_comuna.features.disclosure import withheld
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.factories import feature

pytestmark = pytest.mark.anyio
CLIENTS = 6


async def _lock_waits(watch: AsyncConnection) -> int:
    """Breakdown queries of other sessions waiting for a lock right now."""
    cur = await watch.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%%commune_state_breakdown%%' AND pid <> pg_backend_pid()"
    )
    return (await cur.fetchone())[0]


async def test_clients_arriving_together_wait_for_one_computation(
    own_db: str, settings: Settings
) -> None:
    """Six clients ask for the national breakdown at once, as after an import. The dwellings
    table is held locked meanwhile, so the computation cannot end before all six have asked:
    PostgreSQL then shows how many breakdowns run, and one does; the other five wait for it
    and get the same answer."""
    roomy = settings.model_copy(update={"heavy_requests": CLIENTS, "pool_max_size": CLIENTS + 4})
    async with await AsyncConnection.connect(own_db, autocommit=True) as setup:
        _, token = await accounts.add_user(setup, "flight-admin", "admin", [])
    app = create_app(roomy, conninfo=own_db)
    async with (
        app.router.lifespan_context(app),
        await AsyncConnection.connect(own_db, autocommit=True) as gate,
        await AsyncConnection.connect(own_db, autocommit=True) as watch,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        ) as client,
    ):
        answers: VersionedCache = app.state.answers
        async with gate.transaction():
            await gate.execute("LOCK TABLE dwellings IN ACCESS EXCLUSIVE MODE")
            asking = [asyncio.create_task(client.get("/states/breakdown")) for _ in range(CLIENTS)]
            deadline = time.monotonic() + 60
            while answers.waited < CLIENTS - 1:
                done = [a for a in asking if a.done()]
                assert not done, [a.result().text for a in done]
                assert time.monotonic() < deadline, (
                    f"{answers.waited} requests waited; {await _lock_waits(watch)} computed"
                )
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for any other computation to reach the lock
            assert await _lock_waits(watch) == 1
        got = await asyncio.gather(*asking)
        assert [r.status_code for r in got] == [200] * CLIENTS, [r.text for r in got]
        assert len({r.content for r in got}) == 1
        assert answers.misses == 2  # the encoded answer, and the rows it is made of
        assert answers.waited == CLIENTS - 1
        assert len(got[0].json()["communes"]) > 0


async def test_a_failed_computation_fails_its_waiters_and_a_cancelled_one_is_taken_over(
    conn: AsyncConnection,
) -> None:
    """Waiters share the computation's error (the same query would fail again), and the next
    request computes anew; when the computing request goes away (its client left), a waiter
    computes it instead of failing."""
    cache = VersionedCache()
    started = asyncio.Event()
    release = asyncio.Event()
    runs: list[str] = []

    async def failing() -> int:
        runs.append("failing")
        started.set()
        await release.wait()
        raise ValueError("the query failed")

    first = asyncio.create_task(cache.get_or_compute(conn, "k", ["parcels"], failing))
    await started.wait()
    second = asyncio.create_task(cache.get_or_compute(conn, "k", ["parcels"], failing))
    while cache.waited < 1:
        await asyncio.sleep(0.01)
    release.set()
    for task in (first, second):
        with pytest.raises(ValueError, match="the query failed"):
            await task
    assert runs == ["failing"]

    async def answer() -> int:
        runs.append("answer")
        return 42

    assert await cache.get_or_compute(conn, "k", ["parcels"], answer) == 42  # not cached

    started.clear()

    async def slow() -> int:
        runs.append("slow")
        started.set()
        await asyncio.sleep(60)
        return 0

    owner = asyncio.create_task(cache.get_or_compute(conn, "j", ["parcels"], slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_compute(conn, "j", ["parcels"], answer))
    while cache.waited < 2:
        await asyncio.sleep(0.01)
    owner.cancel()
    assert await waiter == 42
    assert runs == ["failing", "answer", "slow", "answer"]
    assert cache.misses == 4


async def test_a_repeat_is_the_stored_bytes_and_a_holder_gets_304(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    answers: VersionedCache = client._transport.app.state.answers  # type: ignore[attr-defined]
    first = await client.get("/states/breakdown", headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and "content-encoding" not in first.headers
    misses = answers.misses

    zipped = await client.get("/states/breakdown", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] == etag
    assert zipped.content == first.content  # httpx decompressed it
    assert len(zipped.headers["content-length"]) and int(zipped.headers["content-length"]) < len(
        first.content
    )
    assert answers.misses == misses  # the stored answer, built once
    body = first.json()
    assert {"communes", "states"} <= set(body)

    held = await client.get("/states/breakdown", headers={"If-None-Match": etag})
    assert held.status_code == 304 and held.content == b"" and held.headers["etag"] == etag

    # a write to a layer the breakdown reads: a new answer, a new ETag, and it shows
    maizal = next(c for c in body["communes"] if c["code"] == "EL-MAIZAL")
    lara = next(s for s in maizal["states"] if s["code"] == "VE-K")
    spot = feature(LAYERS["parcels"], commune="EL-MAIZAL")
    cur = await conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Intersection(c.geom, "
        "s.geom)) p FROM communes c, states s WHERE c.code = 'EL-MAIZAL' "
        "AND s.code = 'VE-K') t"
    )
    x, y = await cur.fetchone()
    d = 0.0002
    spot["geometry"] = {
        "type": "Polygon",
        "coordinates": [
            [[x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d], [x - d, y - d]]
        ],
    }
    assert (await client.post("/collections/parcels/items", json=spot)).status_code == 201
    after = await client.get("/states/breakdown", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    maizal_after = next(c for c in after.json()["communes"] if c["code"] == "EL-MAIZAL")
    lara_after = next(s for s in maizal_after["states"] if s["code"] == "VE-K")
    assert lara_after["parcels"] == lara["parcels"] + 1

    # one commune's view the same way
    one = await client.get("/communes/EL-MAIZAL/states")
    assert one.json() == maizal_after
    again = await client.get(
        "/communes/EL-MAIZAL/states", headers={"If-None-Match": one.headers["etag"]}
    )
    assert again.status_code == 304


async def test_readers_who_see_less_get_their_own_answer_and_etag(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    """Residents of a small part are withheld from readers outside the commune: the stored
    answer of an admin is never served to them, nor its ETag taken for theirs."""
    from tests.conftest import api_client

    # a home of El Maizal in Portuguesa, alone there: a group too small to show
    cur = await conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Intersection(c.geom, "
        "s.geom)) p FROM communes c, states s WHERE c.code = 'EL-MAIZAL' "
        "AND s.code = 'VE-P') t"
    )
    lon, lat = await cur.fetchone()
    await conn.execute(
        "DELETE FROM dwellings WHERE commune_id = (SELECT id FROM communes "
        "WHERE code = 'EL-MAIZAL') AND ST_Intersects(geom, (SELECT geom FROM states "
        "WHERE code = 'VE-P'))"
    )
    home = feature(LAYERS["dwellings"], commune="EL-MAIZAL", lon=lon, lat=lat, residents=4)
    assert (await client.post("/collections/dwellings/items", json=home)).status_code == 201
    admin = await client.get("/communes/EL-MAIZAL/states")
    async with api_client(conn, settings) as anonymous:
        public = await anonymous.get("/communes/EL-MAIZAL/states")
        assert public.status_code == 200
        assert public.headers["etag"] != admin.headers["etag"]
        held = await anonymous.get(
            "/communes/EL-MAIZAL/states", headers={"If-None-Match": admin.headers["etag"]}
        )
        assert held.status_code == 200
    rows = [s for s in admin.json()["states"] if s["dwellings"]]
    expected = withheld([s["dwellings"] for s in rows])
    assert any(expected) and all(s["residents"] is not None for s in rows)
    hidden = {s["code"]: s["residents"] for s in public.json()["states"]}
    assert [hidden[s["code"]] is None for s in rows] == expected
