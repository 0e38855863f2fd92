"""An analysis with a second connection (work.spare_connection) runs independent statements
side by side, each on its own CPU: the answer must be the one it gives alone, and the API
must hand the second connection out and take it back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts, work
from geo_comuna.analysis import electricity, land_recovery, stair_access, water_hookups
from geo_comuna.analysis.base import to_json
from geo_comuna.api.app import create_app
from geo_comuna.cli.common import run as cli_run
from geo_comuna.settings import Settings

pytestmark = pytest.mark.anyio
COMMUNE = "5-DE-MARZO"


async def commune_id(conn: AsyncConnection, code: str = COMMUNE) -> int:
    cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (code,))
    return (await cur.fetchone())[0]


@pytest.mark.parametrize(
    ("analysis", "code"),
    [
        (electricity, COMMUNE),
        (stair_access, COMMUNE),
        (water_hookups, COMMUNE),
        (land_recovery, "EL-MAIZAL"),  # the summary and the overlaps beside the rest
    ],
    ids=lambda a: getattr(a, "__name__", a),
)
async def test_side_by_side_gives_the_answer_alone_gives(
    own_db: str, analysis: object, code: str
) -> None:
    opened: list[AsyncConnection] = []

    @asynccontextmanager
    async def second() -> AsyncIterator[AsyncConnection]:
        async with await AsyncConnection.connect(own_db, autocommit=True) as other:
            opened.append(other)
            yield other

    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        cid = await commune_id(conn, code)
        alone = await analysis.run(conn, cid, analysis.Params())  # type: ignore[attr-defined]
        with work.lending(second):
            together = await analysis.run(conn, cid, analysis.Params())  # type: ignore[attr-defined]
    assert opened, "the second connection was not used"
    assert alone.features, "a case without features proves nothing"
    assert to_json(together.feature_collection()) == to_json(alone.feature_collection())


async def test_distances_read_beside_are_read_again_for_homes_written_in_between(
    own_db: str,
) -> None:
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        cid = await commune_id(conn)
        ids, metres = await electricity.line_distances(conn, cid)
        assert len(ids) > 2
        # the read beside missed the first home (inserted after it) and saw one deleted since
        stale = (ids[1:] + [2**31 - 1], metres[1:] + [0.0])
        assert await electricity._distances_of(conn, cid, ids, stale) == metres


async def test_the_api_lends_a_second_connection_and_takes_it_back(
    own_db: str, settings: Settings
) -> None:
    app = create_app(settings, conninfo=own_db)
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        _, token = await accounts.add_user(conn, "t-spare", "admin", [])
        cid = await commune_id(conn)
        alone = await electricity.run(conn, cid, electricity.Params())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            for _ in range(3):  # the pool gets each second connection back
                r = await c.get(f"/communes/{COMMUNE}/analyses/electricity-gaps")
                assert r.status_code == 200, r.text
                assert r.json()["features"] == alone.feature_collection()["features"]
        stats = app.state.databases.primary.get_stats()
        assert stats["pool_size"] >= 2, stats  # a second one was opened and is kept
        assert stats["pool_available"] == stats["pool_size"], stats  # none is left out


def test_a_command_has_a_second_connection_outside_a_transaction(own_db: str) -> None:
    """The CLI runs an analysis side by side as the API does (geo-comuna analyze, package);
    inside a transaction it has none: a second connection would not see its writes."""

    async def backends(conn: AsyncConnection) -> tuple[int, int | None, int | None]:
        async with work.spare_connection() as other:
            beside = None if other is None else other.info.backend_pid
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE unseen (x int)")
            async with work.spare_connection() as other:
                within = None if other is None else other.info.backend_pid
        return conn.info.backend_pid, beside, within

    own, beside, within = cli_run(backends, Settings(database_url=own_db))
    assert beside is not None and beside != own
    assert within is None
