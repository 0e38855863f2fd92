"""The pool's connections load PostGIS and PROJ as they are opened (db/pool.py WARM_UP), not
on a request's first measure (its time is in bench/README.md). Here, what the warm-up could
break: a connection must come out of it idle and working, and a database PostGIS is not in
yet (before its migrations) must still get connections."""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus

from geo_comuna.db.pool import open_pool
from geo_comuna.settings import Settings
from tests.conftest import _drop, _recreate

pytestmark = pytest.mark.anyio


async def test_a_warmed_connection_is_idle_and_measures(
    db_conninfo: str, settings: Settings
) -> None:
    pool = await open_pool(settings, db_conninfo)
    try:
        async with pool.connection() as conn:
            assert conn.info.transaction_status == TransactionStatus.IDLE
            cur = await conn.execute(
                "SELECT ST_Distance('POINT(-66.9 10.5)'::geography, 'POINT(-66.8 10.4)'::geography)"
            )
            assert 15_000 < (await cur.fetchone())[0] < 16_000  # ~15.6 km, geodesic
    finally:
        await pool.close()


async def test_a_database_without_postgis_still_gets_connections(
    admin_conninfo: str, settings: Settings
) -> None:
    name = f"geo_comuna_t_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name)
    try:
        pool = await open_pool(settings, make_conninfo(admin_conninfo, dbname=name), timeout=10)
        try:
            async with pool.connection() as conn:
                assert conn.info.transaction_status == TransactionStatus.IDLE
                cur = await conn.execute(
                    sql.SQL("SELECT count(*) FROM pg_extension WHERE extname = {}").format(
                        sql.Literal("postgis")
                    )
                )
                assert (await cur.fetchone())[0] == 0
        finally:
            await pool.close()
    finally:
        _drop(admin_conninfo, name)
