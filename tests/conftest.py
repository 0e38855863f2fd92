"""Test fixtures: a real PostGIS, never a mock.

The embedded cluster in .geo_comuna-test/ (or the server in GEO_COMUNA_DATABASE_URL, which must
be a disposable database's admin connection) holds a migrated template database with the
states and the sample territories. Each test gets a connection inside a transaction that is
rolled back at its end; tests that must commit (CLI subprocesses) get a database of their own
copied from the template. A missing database fails the run; nothing skips.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo

from geo_comuna import accounts
from geo_comuna.api.app import create_app
from geo_comuna.api.deps import get_conn
from geo_comuna.db import migrate
from geo_comuna.db.pool import with_options
from geo_comuna.io.sample import load_samples
from geo_comuna.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# the CLI speaks its locale's language (Spanish unless the locale is English): the suite reads
# its messages in English, and the tests of the Spanish ones set their own locale
os.environ["LANG"] = "en_US.UTF-8"
for _name in ("LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
# per test run, so that runs sharing one server never drop each other's databases
TEMPLATE = f"geo_comuna_template_{os.getpid()}"
MAIN = f"geo_comuna_test_{os.getpid()}"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def admin_conninfo() -> str:
    """A superuser connection to the server the tests use (not to a test database)."""
    url = os.environ.get("GEO_COMUNA_DATABASE_URL")
    if url:
        return url
    from geo_comuna.db import cluster

    found = cluster.ensure_running(Settings(data_dir=ROOT / ".geo_comuna-test"))
    return found.conninfo("postgres")


def _recreate(admin: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        conn.execute(query)


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(data_dir=ROOT / ".geo_comuna-test", database_url=None)


@pytest.fixture(scope="session")
def template_db(admin_conninfo: str, settings: Settings) -> Iterator[str]:
    """Migrated template with states and samples; nothing stays connected to it."""
    _recreate(admin_conninfo, TEMPLATE)
    dsn = make_conninfo(admin_conninfo, dbname=TEMPLATE)

    async def build() -> None:
        conn = await AsyncConnection.connect(dsn, autocommit=True)
        try:
            await migrate.upgrade(conn)
            await load_samples(conn, settings)
        finally:
            await conn.close()

    asyncio.run(build())
    yield TEMPLATE
    _drop(admin_conninfo, TEMPLATE)


@pytest.fixture(scope="session")
def db_conninfo(admin_conninfo: str, template_db: str, settings: Settings) -> Iterator[str]:
    _recreate(admin_conninfo, MAIN, template_db)
    yield with_options(make_conninfo(admin_conninfo, dbname=MAIN), settings)
    _drop(admin_conninfo, MAIN)


@pytest.fixture
async def conn(db_conninfo: str) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction rolled back after the test: tests never see each other."""
    connection = await AsyncConnection.connect(db_conninfo, autocommit=True)
    try:
        async with connection.transaction(force_rollback=True):
            yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def api_client(
    conn: AsyncConnection, settings: Settings, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with every request on ``conn`` (so its writes roll back with the test)."""
    app = create_app(settings)

    async def same_conn() -> AsyncIterator[AsyncConnection]:
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as c:
        yield c


@pytest.fixture
async def admin_token(conn: AsyncConnection) -> str:
    _, token = await accounts.add_user(conn, "test-admin", "admin", [])
    return token


@pytest.fixture
async def client(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's client on the test's connection."""
    async with api_client(conn, settings, admin_token) as c:
        yield c


@pytest.fixture
def own_db(admin_conninfo: str, template_db: str, settings: Settings) -> Iterator[str]:
    """A database of the test's own (copy of the template) for work that must commit."""
    name = f"geo_comuna_t_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name, template_db)
    yield with_options(make_conninfo(admin_conninfo, dbname=name), settings)
    _drop(admin_conninfo, name)


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest,
    admin_conninfo: str,
    template_db: str,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """`geo-comuna serve` on a port of its own over a copy of the template, for the clients
    the project did not write (GDAL, OWSLib, QGIS): one per test module."""
    from tests.clients import live_server

    log = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "serve.log"
    with live_server(admin_conninfo, template_db, settings, log) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, one per test module (tests/maps/harness.py launches it)."""
    from playwright.sync_api import sync_playwright

    from tests.maps.harness import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
