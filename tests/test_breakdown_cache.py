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
from geo_comuna.settings import Settings

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
