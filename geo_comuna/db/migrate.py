"""Applies db/migrations/NNNN_name.sql in order, each in its own transaction, recording each.

Migrations are never edited once merged: a checksum mismatch with an applied one is an error.
A migration that finds data it cannot carry forward refuses with RAISE EXCEPTION and a message
saying what to do; nothing of the upgrade is applied then.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import AsyncConnection

from geo_comuna.errors import ClusterError

_LOCK_KEY = 0x6765_6F63  # advisory lock: one migrator at a time
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    found = []
    for entry in resources.files("geo_comuna.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def upgrade(conn: AsyncConnection) -> list[Migration]:
    """Apply what is missing; returns the migrations applied now."""
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
        done = dict(await cur.fetchall())
        for migration in available():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise ClusterError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            try:
                await conn.execute(migration.sql)
            except psycopg.errors.RaiseException as exc:
                raise ClusterError(
                    f"migration {migration.version:04d}_{migration.name} cannot be applied: "
                    f"{exc.diag.message_primary}"
                ) from None
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration)
    return applied_now


async def current_version(conn: AsyncConnection) -> int | None:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return None
    cur = await conn.execute("SELECT max(version) FROM schema_migrations")
    return (await cur.fetchone())[0]
