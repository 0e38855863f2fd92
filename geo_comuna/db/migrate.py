"""Applies db/migrations/NNNN_name.sql in order, recording each, then db/functions/*.sql, all
in one transaction.

Migrations hold tables, indexes, triggers, policies and data changes, and are never edited
once merged: a checksum mismatch with an applied one is an error. A migration that finds data
it cannot carry forward refuses with RAISE EXCEPTION and a message saying what to do; nothing
of the upgrade is applied then.

SQL functions live in db/functions/, one file per function or small family, and are applied
with CREATE OR REPLACE after the migrations (in dependency order: a file calling another
file's function comes after it), so each function is written in one place and changed there.
A migration whose triggers, policies or data changes name functions lists their files in a
line ``-- functions: name, name``; they are applied just before it runs. Either way a file is
applied as it is today, not as it was when the migration was written, so a data change in a
migration must work with today's functions. Function bodies are applied unchecked
(check_function_bodies off): a migration may need a trigger function before the tables its
body reads exist; tests/test_migrate.py applies every file with the checks on. Functions are
applied again only when a migration was applied or the files changed (their checksum is kept
in schema_functions): every command and start runs ``upgrade``. A function dropped from
db/functions/ stays in the database until a migration drops it; one whose arguments or result
change must be dropped by a migration first (CREATE OR REPLACE cannot change them).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import psycopg
from psycopg import AsyncConnection

from geo_comuna.errors import ClusterError, Said

_LOCK_KEY = 0x6765_6F63  # advisory lock: one migrator at a time
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FUNCTION_FILE = re.compile(r"^([a-z0-9_]+)\.sql$")
_NEEDS = re.compile(r"^-- functions: (.+)$", re.MULTILINE)
_COMMENT = re.compile(r"--[^\n]*")
_DEFINES = re.compile(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(\w+)\s*\(", re.IGNORECASE)
_CALL = re.compile(r"\b(\w+)\s*\(")

#: Migrations whose function bodies moved to db/functions/, by the checksum of the text a
#: database may have applied before: that text made the same tables, indexes, triggers and
#: policies, and the functions it made are replaced from db/functions/. Its record is brought
#: to the new checksum.
_RESTATED = {
    1: "e9e2d377425e9556b7459bad481626917e521de3ef68b73f1ea0fd836a312135",
    6: "f7bb522379bfa476aed924fb409d95b0796dd7fa5f306939e1c627aa32b0e746",
    7: "02d2643f9b8384dceb0dfe993086dc9dd2844703bc4bafd53ee2a32218238dde",
    8: "43bf4bbe588aa34916d15fb4e087be8d962fc16ec557f8e208e87881476dddc4",
    9: "a8cc7a05e0cbcbead911f40c5221dbdf8019737346286f3c29e09a7feb983748",
    10: "2fe615aa954ece1afed0848df44d5bed63b2a999c5d0f111ae8968fcc08829d4",
    11: "95d87e305ca2ab91ec45de660b47c7b9100e3cab9bf6c31ad179b1e0ac1c3899",
    12: "3126cd13a4b6a54b2597f2b7ae7634f6da5ae71da52e4e174415932900b4a93f",
    13: "d6a6e690b9c48f6309375226225e2f99280616a15649edc0184ebb4cc12dec7c",
    14: "7da5daa9b0b8bf82889fd1440cfe21d227b1bd1cb88969e74e640f86abc8a27f",
    17: "bbf19e2f710bb4e20efc7612d0f176a7f7e2be05ea1e5e8267684c11086cf1e6",
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _sha256(self.sql)

    @property
    def needs(self) -> list[str]:
        """The db/functions/ files (names without .sql) its ``-- functions:`` lines list."""
        return [n.strip() for line in _NEEDS.findall(self.sql) for n in line.split(",")]


@dataclass(frozen=True)
class FunctionFile:
    name: str  # the file's name without .sql
    sql: str

    @cached_property
    def _code(self) -> str:
        return _COMMENT.sub("", self.sql)

    @property
    def defines(self) -> set[str]:
        """Functions it creates by name (a family made by format() in a DO block, like
        audit_layers.sql's, names none: nothing else calls those)."""
        return {m.lower() for m in _DEFINES.findall(self._code)}

    @property
    def calls(self) -> set[str]:
        return {m.lower() for m in _CALL.findall(self._code)}


def available() -> list[Migration]:
    found = []
    for entry in resources.files("geo_comuna.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def functions() -> list[FunctionFile]:
    """Every db/functions/ file, each after the files whose functions it calls."""
    files = {}
    for entry in resources.files("geo_comuna.db").joinpath("functions").iterdir():
        match = _FUNCTION_FILE.match(entry.name)
        if match:
            files[match[1]] = FunctionFile(match[1], entry.read_text(encoding="utf-8"))
    owner = {fn: f.name for f in files.values() for fn in f.defines}
    after = {
        f.name: sorted({owner[c] for c in f.calls if c in owner} - {f.name}) for f in files.values()
    }
    ordered: list[FunctionFile] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(f.name == name for f in ordered):
            return
        if name in visiting:
            raise ClusterError(
                Said(
                    f"db/functions/{name}.sql calls itself through other files",
                    f"db/functions/{name}.sql se llama a sí mismo a través de otros archivos",
                )
            )
        visiting.add(name)
        for first in after[name]:
            visit(first)
        visiting.discard(name)
        ordered.append(files[name])

    for name in sorted(files):
        visit(name)
    return ordered


def functions_checksum(files: list[FunctionFile]) -> str:
    return _sha256("\0".join(f"{f.name}\0{f.sql}" for f in files))


async def _apply(conn: AsyncConnection, files: list[FunctionFile]) -> None:
    cur = await conn.execute(
        "SELECT current_setting('check_function_bodies'), "
        "set_config('check_function_bodies', 'off', true)"
    )
    before = (await cur.fetchone())[0]
    for f in files:
        await conn.execute(f.sql)
    await conn.execute("SELECT set_config('check_function_bodies', %s, true)", (before,))


async def upgrade(conn: AsyncConnection) -> list[Migration]:
    """Apply what is missing; returns the migrations applied now."""
    applied_now = []
    every = functions()
    by_name = {f.name: f for f in every}
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_functions (checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
        done = dict(await cur.fetchall())
        for migration in available():
            label = f"{migration.version:04d}_{migration.name}"
            if migration.version in done:
                if done[migration.version] == _RESTATED.get(migration.version):
                    await conn.execute(
                        "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                        (migration.checksum, migration.version),
                    )
                elif done[migration.version] != migration.checksum:
                    raise ClusterError(
                        Said(
                            f"migration {label} was changed after it was applied; add a new "
                            "migration instead",
                            f"la migración {label} se modificó después de aplicarse; agregue "
                            "una migración nueva en su lugar",
                        )
                    )
                continue
            unknown = [n for n in migration.needs if n not in by_name]
            if unknown:
                raise ClusterError(
                    Said(
                        f"migration {label} needs db/functions/{unknown[0]}.sql",
                        f"la migración {label} necesita db/functions/{unknown[0]}.sql",
                    )
                )
            needed = set(migration.needs)
            await _apply(conn, [f for f in every if f.name in needed])
            try:
                await conn.execute(migration.sql)
            except psycopg.errors.RaiseException as exc:
                raise ClusterError(
                    Said(
                        f"migration {label} cannot be applied: {exc.diag.message_primary}",
                        f"la migración {label} no se puede aplicar: {exc.diag.message_primary}",
                    )
                ) from None
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration)
        checksum = functions_checksum(every)
        cur = await conn.execute("SELECT checksum FROM schema_functions")
        if applied_now or (await cur.fetchone() or [None])[0] != checksum:
            await _apply(conn, every)
            await conn.execute("DELETE FROM schema_functions")
            await conn.execute("INSERT INTO schema_functions (checksum) VALUES (%s)", (checksum,))
    return applied_now


async def current_version(conn: AsyncConnection) -> int | None:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return None
    cur = await conn.execute("SELECT max(version) FROM schema_migrations")
    return (await cur.fetchone())[0]
