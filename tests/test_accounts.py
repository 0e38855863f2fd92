"""Tokens end and can be replaced: expiry (401 saying "expired"), rotation (the old token stops
at once and stays revoked), both from the command line and shown by `users list`."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.errors import InvalidInput, NotFound
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import MAIZAL, feature
from tests.live import CLI, clean_env

pytestmark = pytest.mark.anyio
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


async def write(conn: AsyncConnection, settings: Settings, token: str) -> httpx.Response:
    async with api_client(conn, settings, token) as c:
        return await c.post(
            "/collections/parcels/items", json=feature(LAYERS["parcels"], "EL-MAIZAL", *MAIZAL)
        )


@pytest.mark.parametrize(
    ("text", "days", "expected"),
    [
        ("90d", 365, NOW + dt.timedelta(days=90)),
        ("12w", 365, NOW + dt.timedelta(weeks=12)),
        ("2027-06-30", 365, dt.datetime(2027, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)),
        ("never", 365, None),
        (None, 365, NOW + dt.timedelta(days=365)),
        (None, 0, None),
    ],
)
def test_expiry_is_days_weeks_a_date_or_never(
    text: str | None, days: int, expected: dt.datetime | None
) -> None:
    assert accounts.expiry(text, days, now=NOW) == expected


@pytest.mark.parametrize("text", ["0d", "2026-12-01", "yesterday", "90", "-5d", "1y"])
def test_an_expiry_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="expiry"):
        accounts.expiry(text, 365, now=NOW)


async def test_an_expired_token_is_refused_saying_so(
    conn: AsyncConnection, settings: Settings
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    _, token = await accounts.add_user(conn, "caducada", "admin", [], expires_at=soon)
    assert (await write(conn, settings, token)).status_code == 201
    await conn.execute(
        "UPDATE users SET expires_at = now() - interval '1 minute' WHERE name = 'caducada'"
    )
    r = await write(conn, settings, token)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem")
    assert "expired" in r.json()["detail"] and "users rotate 'caducada'" in r.json()["detail"]
    async with api_client(conn, settings, token) as c:  # a read that shows a token too
        assert (await c.get("/collections/parcels/items?limit=1")).status_code == 401
    listed = {u["name"]: u for u in await accounts.list_users(conn)}["caducada"]
    assert listed["expired"] is True and listed["expires_at"] < dt.datetime.now(dt.UTC)


async def test_rotation_replaces_the_token_at_once(
    conn: AsyncConnection, settings: Settings
) -> None:
    _, old = await accounts.add_user(conn, "rota", "editor", ["EL-MAIZAL"])
    await conn.execute("UPDATE users SET expires_at = now() - interval '1 day' WHERE name = 'rota'")
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    new = await accounts.rotate(conn, "rota", expires_at=ends)  # an expired user may rotate
    assert new != old and new.startswith(accounts.TOKEN_PREFIX)
    r = await write(conn, settings, old)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert (await write(conn, settings, new)).status_code == 201
    cur = await conn.execute(
        "SELECT user_name FROM revoked_tokens WHERE token_hash = %s", (accounts.hash_token(old),)
    )
    assert await cur.fetchall() == [("rota",)]
    listed = {u["name"]: u for u in await accounts.list_users(conn)}["rota"]
    assert listed["expired"] is False and abs(listed["expires_at"] - ends) < dt.timedelta(seconds=1)

    await accounts.revoke(conn, "rota")
    with pytest.raises(NotFound, match="no active user"):
        await accounts.rotate(conn, "rota")
    assert (await write(conn, settings, new)).status_code == 401


def test_users_add_rotate_list_on_the_command_line(own_db: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "users", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(GEO_COMUNA_DATABASE_URL=own_db, GEO_COMUNA_TOKEN_DAYS="30"),
        )

    added = cli("add", "Ana Pérez", "--role", "admin", "--expires", "90d")
    assert added.returncode == 0, added.stderr
    # spelled out as pages write dates, not 2027-03-05
    assert re.search(r"expires \d{1,2} [A-Z][a-z]+ 20\d\d\b", added.stdout), added.stdout
    first = added.stdout.strip().splitlines()[-1]
    assert cli("add", "Bea", "--role", "viewer").returncode == 0  # the default: 30 days here
    assert cli("add", "Robot", "--role", "viewer", "--expires", "never").returncode == 0
    refused = cli("add", "Ayer", "--role", "viewer", "--expires", "2020-01-01")
    assert refused.returncode == 2 and "not in the future" in refused.stderr

    rotated = cli("rotate", "Ana Pérez", "--expires", "12w")
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip().splitlines()[-1]
    assert second != first and second.startswith(accounts.TOKEN_PREFIX)
    assert "the old one is revoked" in rotated.stdout
    assert cli("rotate", "Nadie").returncode == 2

    listed = {u["name"]: u for u in json.loads(cli("list").stdout)}
    today = dt.datetime.now(dt.UTC)

    def days(name: str) -> int:
        return (dt.datetime.fromisoformat(listed[name]["expires_at"]) - today).days

    assert days("Ana Pérez") in (83, 84) and days("Bea") in (29, 30)
    assert listed["Robot"]["expires_at"] is None
    assert not any(u["expired"] for u in listed.values())
