"""Where a request's queries go: writes to the primary, reads to hot standbys.

With ``Settings.read_database_url`` naming standbys (PostgreSQL streaming replication), every
read takes a connection of one of them, in turn, so adding standbys adds read capacity; writes
and anything else stay on the primary. Replication is asynchronous, so a standby may not yet
show a write that just committed. A client that wrote carries the primary's WAL position
after its write (``commit_lsn``: the API sends it back as a cookie and a header); its reads
wait for the standby to have replayed that far (``pg_last_wal_replay_lsn()``), at most
``Settings.read_wait_ms``, and are otherwise answered by the primary. So a client always sees
its own writes; other clients see them as soon as the standby has replayed them (usually
milliseconds; the replication lag is the bound).

A standby that cannot be reached, or that is no longer in recovery (promoted: it would
diverge from the primary), is set aside: its pool closes, its reads go to the others or to the
primary, and it is probed again every ``RETRY_S`` seconds until it answers as a standby. Each
lease checks its connection first (one round trip, which also reads the replay position), so
a stopped standby costs no failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import AsyncConnection

from geo_comuna.db.pool import open_pool, with_options
from geo_comuna.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("geo_comuna.replicas")

#: a WAL position as PostgreSQL prints it (pg_lsn): two hex numbers
LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
#: seconds between probes of a standby set aside
RETRY_S = 2.0
#: how long a read waits for a standby's pool before it reads on the primary, s
LEASE_TIMEOUT_S = 2.0
#: how often a waiting read asks the standby how far it has replayed, s
POLL_S = 0.005
#: how long a request waits for a second connection of the primary's pool (spare()), s
SPARE_WAIT_S = 0.1
#: where a read was served, as the X-Geo-Comuna-Read header says
PRIMARY = "primary"
#: seconds a request waits for the primary's connection while it is found down (found_down)
DOWN_WAIT_S = 2.0


def lsn_value(text: str) -> int:
    """A pg_lsn as a number, to compare positions in Python."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


async def commit_lsn(conn: AsyncConnection) -> str:
    """The primary's WAL insert position now: past every commit that came before, so a
    standby that has replayed this far shows them all."""
    cur = await conn.execute("SELECT pg_current_wal_insert_lsn()::text")
    return (await cur.fetchone())[0]


@dataclass
class Standby:
    name: str  # standby-1, standby-2... in the order of the setting (URLs may hold passwords)
    conninfo: str
    pool: AsyncConnectionPool | None = None
    retry_at: float = 0.0
    probing: asyncio.Task | None = field(default=None, repr=False)

    @property
    def up(self) -> bool:
        return self.pool is not None


class Databases:
    """The primary's pool and the standbys' pools; one per worker process, opened in the
    app's lifespan (api/app.py)."""

    def __init__(self, settings: Settings, primary: AsyncConnectionPool) -> None:
        self.settings = settings
        self.primary = primary
        self.standbys = [
            Standby(f"standby-{i}", url) for i, url in enumerate(settings.read_database_urls, 1)
        ]
        self._turn = itertools.count()
        #: tasks the pools run on their own (a standby set aside, a check): awaited at close
        self._background: set[asyncio.Task] = set()
        #: the primary did not answer the last request that asked it (found_down)
        self.primary_down = False

    @property
    def replicated(self) -> bool:
        return bool(self.standbys)

    async def open(self) -> None:
        """Open each standby's pool; one that does not answer is set aside, not fatal: the
        primary serves its reads until it does."""
        for standby in self.standbys:
            await self._bring_up(standby)

    async def close(self) -> None:
        for standby in self.standbys:
            if standby.probing is not None:
                standby.probing.cancel()
            await self._set_aside(standby, None)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def commit_lsn(self) -> str:
        async with self.primary.connection() as conn:
            return await commit_lsn(conn)

    @contextlib.asynccontextmanager
    async def spare(
        self, *, read: bool, after: str | None = None
    ) -> AsyncIterator[AsyncConnection | None]:
        """A second connection for a request that can run two statements at once (an
        analysis' independent queries, each on its own CPU), as connection() would give it;
        None when none is to be had at once: the request then runs them one after the other
        on its own, rather than waiting on, or taking, the connections other requests need."""
        from psycopg_pool import PoolTimeout

        if read:
            async with self._standby(after) as found:
                if found is not None:
                    yield found[0]
                    return
        stats = self.primary.get_stats()
        idle, size = stats.get("pool_available", 0), stats.get("pool_size", 0)
        # never one another request is waiting for, nor the pool's last: cheap reads keep it
        if stats.get("requests_waiting", 0) or (not idle and size >= self.primary.max_size - 1):
            yield None
            return
        try:
            conn = await self.primary.getconn(timeout=SPARE_WAIT_S)
        except PoolTimeout:
            yield None
            return
        try:
            yield conn
        finally:
            await self.primary.putconn(conn)

    @contextlib.asynccontextmanager
    async def connection(
        self, *, read: bool, after: str | None = None
    ) -> AsyncIterator[tuple[AsyncConnection, str]]:
        """A connection and the name of the server it reaches: a standby's when ``read``
        and one is up (having replayed up to ``after``, a pg_lsn, when given), else the
        primary's."""
        if read:
            async with self._standby(after) as found:
                if found is not None:
                    yield found
                    return
        async with self.primary.connection(
            timeout=DOWN_WAIT_S if self.primary_down else None
        ) as conn:
            self.primary_down = False
            yield conn, PRIMARY

    def found_down(self, waited: bool) -> None:
        """A request found the primary unreachable: its connection broken, or (``waited``)
        none to be had in the pool's time. Until a request gets one again, requests wait
        DOWN_WAIT_S for it, not the pool's 30 s, and the pool checks its idle connections
        now, so that those a restart of PostgreSQL broke leave it before requests take them
        (found from outside: with PostgreSQL stopped every request waited 30 s for its 503;
        restarted, three of five requests still got one). A wait alone is no sign: every
        connection may be busy."""
        if self.primary_down or waited:
            return
        self.primary_down = True
        task = asyncio.create_task(self.primary.check())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def _standby(
        self, after: str | None
    ) -> AsyncIterator[tuple[AsyncConnection, str] | None]:
        """A connection of a standby that is up and has replayed ``after``, in turn, and its
        name; None when none can give one."""
        for standby in self._in_turn():
            leased = await self._lease(standby, after)
            if leased is None:
                continue
            conn, pool = leased
            try:
                yield conn, standby.name
            finally:
                await pool.putconn(conn)
            return
        yield None

    def _in_turn(self) -> list[Standby]:
        up = [s for s in self.standbys if s.up]
        now = time.monotonic()
        for standby in self.standbys:
            if not standby.up and standby.probing is None and now >= standby.retry_at:
                standby.probing = asyncio.create_task(self._probe(standby))
        if not up:
            return []
        first = next(self._turn) % len(up)
        return up[first:] + up[:first]

    async def _lease(
        self, standby: Standby, after: str | None
    ) -> tuple[AsyncConnection, AsyncConnectionPool] | None:
        """A checked connection of ``standby`` that has replayed ``after``; None (the
        connection given back) when it cannot be had in time."""
        pool = standby.pool
        if pool is None:
            return None
        try:
            conn = await pool.getconn(timeout=LEASE_TIMEOUT_S)
        except psycopg.OperationalError as exc:  # the pool's PoolTimeout, PoolClosed
            log.warning("%s: no connection (%s): set aside", standby.name, exc)
            await self._set_aside(standby, pool)
            return None
        try:
            deadline = time.monotonic() + self.settings.read_wait_ms / 1000
            while True:
                cur = await conn.execute(
                    "SELECT pg_is_in_recovery(), "
                    "%(after)s::pg_lsn IS NULL OR pg_last_wal_replay_lsn() >= %(after)s::pg_lsn",
                    {"after": after},
                )
                recovering, replayed = await cur.fetchone()
                if not recovering:
                    log.warning("%s is not in recovery (promoted?): set aside", standby.name)
                    await pool.putconn(conn)
                    await self._set_aside(standby, pool)
                    return None
                if replayed:
                    return conn, pool
                if time.monotonic() >= deadline:
                    await pool.putconn(conn)
                    return None  # behind: this client's own write is read on the primary
                await asyncio.sleep(POLL_S)
        except psycopg.Error as exc:
            log.warning("%s failed (%s): set aside, its reads go elsewhere", standby.name, exc)
            await pool.putconn(conn)  # a broken connection is discarded by the pool
            await self._set_aside(standby, pool)
            return None

    async def _set_aside(self, standby: Standby, pool: AsyncConnectionPool | None) -> None:
        """No more leases from ``standby``'s pool; it closes in the background (closing
        waits for the connections still lent)."""
        pool = pool or standby.pool
        if standby.pool is pool:
            standby.pool = None
            standby.retry_at = time.monotonic() + RETRY_S
        if pool is not None:
            task = asyncio.create_task(pool.close())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _probe(self, standby: Standby) -> None:
        try:
            await self._bring_up(standby)
        finally:
            standby.probing = None

    async def _bring_up(self, standby: Standby) -> None:
        """A pool for ``standby`` if it answers, as a server in recovery."""
        try:
            conn = await AsyncConnection.connect(
                with_options(standby.conninfo, self.settings), connect_timeout=2
            )
            try:
                cur = await conn.execute("SELECT pg_is_in_recovery()")
                recovering = (await cur.fetchone())[0]
            finally:
                await conn.close()
            if not recovering:
                raise psycopg.OperationalError("not in recovery: not a standby")
            standby.pool = await open_pool(self.settings, standby.conninfo, timeout=5)
            log.info("%s is up: it takes reads", standby.name)
        except (psycopg.Error, OSError) as exc:  # the pool's PoolTimeout is one too
            standby.pool = None
            standby.retry_at = time.monotonic() + RETRY_S
            log.warning("%s is set aside (%s); retried in %.0f s", standby.name, exc, RETRY_S)
