"""An analysis that cannot finish, for tests of what pages, maps and packages say then, and
a request given little time to do its work."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
from psycopg import AsyncConnection

from geo_comuna.analysis.base import Analysis, Result
from geo_comuna.settings import Settings
from tests.conftest import api_client


async def hurried_get(
    conn: AsyncConnection, settings: Settings, token: str, seconds: float, path: str, **params: Any
) -> tuple[httpx.Response, float]:
    """GET ``path`` from the app given ``seconds`` of compute (GEO_COMUNA_COMPUTE_SECONDS),
    as ``token``'s holder: the response and how long it took (s)."""
    hurried = settings.model_copy(update={"compute_seconds": seconds})
    async with api_client(conn, hurried, token) as client:
        started = time.monotonic()
        r = await client.get(path, params=params)
        return r, time.monotonic() - started


def timing_out(real: Analysis, runs: list[int] | None = None) -> Analysis:
    """``real`` with a run the statement timeout cancels (each commune it is run for goes in
    ``runs``)."""

    async def slow(conn: AsyncConnection, commune_id: int, params: object) -> Result:
        if runs is not None:
            runs.append(commune_id)
        async with conn.transaction():  # a savepoint: the test's own transaction lives on
            await conn.execute("SET LOCAL statement_timeout = 50")
            await conn.execute("SELECT pg_sleep(5)")
        return Result({})

    return dataclasses.replace(real, run=slow)


def taking(
    real: Analysis, seconds: float, statements: int = 1, done: list[int] | None = None
) -> Analysis:
    """``real`` with a run of ``statements`` statements that keep the database busy for
    ``seconds`` each (each one finished goes in ``done``): only the request's deadline stops
    it (work.within_deadline), not the statement timeout."""

    async def slow(conn: AsyncConnection, commune_id: int, params: object) -> Result:
        async with conn.transaction():  # a savepoint: the test's own transaction lives on
            for step in range(statements):
                await conn.execute("SELECT pg_sleep(%s)", (seconds,))
                if done is not None:
                    done.append(step)
        return Result({})

    return dataclasses.replace(real, run=slow)
