"""The connection pool (the only long-lived mutable state) and how to reach the database."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_comuna.settings import Settings

if TYPE_CHECKING:  # imported by open_pool: a CLI command's one connection needs no pool
    from psycopg_pool import AsyncConnectionPool


def resolve_conninfo(settings: Settings) -> str:
    """The server in GEO_COMUNA_DATABASE_URL, or the embedded cluster (started if needed)."""
    if settings.database_url:
        return settings.database_url
    from geo_comuna.db import cluster

    return cluster.ensure_running(settings).conninfo()


def with_options(conninfo: str, settings: Settings, application: str = "geo_comuna") -> str:
    """Every session gets a statement timeout, so no query can hang a worker."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    options = f"{options} -c statement_timeout={settings.statement_timeout_ms}".strip()
    return make_conninfo(conninfo, options=options, application_name=application)


#: seconds the pool keeps trying to make a lost connection again before it waits for a request
RECONNECT_S = 10.0


async def open_pool(
    settings: Settings, conninfo: str | None = None, timeout: float = 30
) -> AsyncConnectionPool:
    """A pool of autocommit connections, ``settings.pool_min_size`` of them made before it
    returns (waiting at most ``timeout`` seconds). Each worker process of `serve` opens its
    own: the database sees ``workers x pool_max_size`` connections at most."""
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        with_options(conninfo or resolve_conninfo(settings), settings),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        open=False,
        kwargs={"autocommit": True},
        configure=_warm,
        # a connection lost is made again with waits that double (1, 2, 4 s...); past this
        # the pool gives up on it, and makes one again as soon as a request asks: with the
        # default (5 min) a database back after a minute's stop waited up to 32 s more
        reconnect_timeout=RECONNECT_S,
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except BaseException:
        await pool.close()  # its workers would retry a server that is not there forever
        raise
    return pool


#: what a new backend loads on its first geodesic measure or reprojection (PostGIS, PROJ and
#: its database): ~30 ms, paid here as the pool opens the connection rather than by the
#: first request that uses it (a fresh server's first report or analysis)
WARM_UP = (
    "SELECT ST_Transform(ST_SetSRID(ST_MakePoint(-66.9, 10.5), 4326), 32619),"
    " ST_Distance('POINT(-66.9 10.5)'::geography, 'POINT(-66.8 10.4)'::geography)"
)


async def _warm(conn: AsyncConnection) -> None:
    # a database not migrated yet has no PostGIS: its connections serve as they are
    with contextlib.suppress(psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedObject):
        await conn.execute(WARM_UP)


async def connect(settings: Settings, conninfo: str | None = None) -> AsyncConnection:
    """One connection for CLI work (autocommit; use ``conn.transaction()`` to group writes).

    The embedded cluster is usually running already: connecting straight away spares each
    command ~80 ms of checking first (the PostgreSQL user's access to the data directory,
    pg_ctl status, a connection to create the database). Only when that fails is the cluster
    created, started or given its database."""
    if conninfo is None and not settings.database_url:
        from geo_comuna.db import cluster

        try:
            return await AsyncConnection.connect(
                with_options(cluster.likely_conninfo(settings), settings, "geo_comuna-cli"),
                autocommit=True,
            )
        except psycopg.OperationalError:
            pass  # not created, not running or without its database yet: see to it below
    return await AsyncConnection.connect(
        with_options(conninfo or resolve_conninfo(settings), settings, "geo_comuna-cli"),
        autocommit=True,
    )
