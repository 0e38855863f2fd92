"""Migrations and SQL functions: every function of the schema is defined in db/functions/ and
nowhere else, a fresh database ends with the functions the migrations used to write (but the
placement rule), and a database migrated by the earlier migration files upgrades cleanly.

The earlier files are read from git at the last commit that changed them before the functions
moved (EARLIER), so the test needs the repository's history; their checksums must be the ones
migrate.py accepts for them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo

from geo_comuna.db import migrate
from geo_comuna.layers import LAYERS
from tests.conftest import _drop, _recreate

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "geo_comuna"
#: the last commit to change db/migrations/ while they still wrote the functions
EARLIER = "eff6174b954be93c54a0b5bd3e95942f0be27169"
#: what the placement rule changed: the breakdown now calls the one placement function; and
#: the layers' audit functions, which record a write's reason since migration 0019
CHANGED = {
    "commune_state_breakdown(integer[])",
    # the tenure history marks the changes the tenure rule made (migration 0026)
    "record_tenure_change()",
} | {f"audit_{layer.table}()" for layer in LAYERS.values()}
ADDED = {
    "commune_state_placement(integer[])",
    "parcel_tenure_history(integer[])",
    # the land records (migration 0021)
    "parcel_tenure_from_rights(integer,date)",
    "tenure_follow_rights(integer,integer,text,date)",
    # the rule on the calendar (migration 0031)
    "tenure_follow_calendar(date)",
    # what a parcel's rights replaced, back when none counts (migration 0026)
    "tenure_before_rights(integer)",
    "apply_tenure_rule()",
    "audit_tenure()",
    "document_place()",
    # an import's upsert tells another program's copy of a shape from a changed one
    "geo_comuna_same_shape(geometry,geometry,double precision)",
    # a feature an editor leaves where it lies passes the place rule (migration 0033)
    "geo_comuna_unmoved(regclass,integer,integer,geometry)",
}

FUNCTIONS = """
    SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
      AND NOT EXISTS (SELECT FROM pg_depend d  -- PostGIS's own
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
"""


async def definitions(conn: AsyncConnection) -> dict[str, str]:
    cur = await conn.execute(FUNCTIONS)
    return dict(await cur.fetchall())


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def earlier_migrations() -> list[tuple[int, str, str]]:
    """(version, name, text) of the migration files at EARLIER."""
    out = []
    for name in sorted(
        git("ls-tree", "--name-only", f"{EARLIER}:geo_comuna/db/migrations").split()
    ):
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", name)
        text = git("show", f"{EARLIER}:geo_comuna/db/migrations/{name}")
        out.append((int(match[1]), match[2], text))
    return out


@asynccontextmanager
async def empty_database(admin_conninfo: str) -> AsyncIterator[AsyncConnection]:
    """A connection to a new empty database, dropped afterwards."""
    name = f"geo_comuna_t_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name)
    try:
        async with await AsyncConnection.connect(
            make_conninfo(admin_conninfo, dbname=name), autocommit=True
        ) as db:
            yield db
    finally:
        _drop(admin_conninfo, name)


def test_no_migration_writes_a_function() -> None:
    """Functions are written in db/functions/ only: no migration creates, replaces or alters
    one, and no other SQL or Python file of the package does either."""
    statement = re.compile(r"\b(CREATE\s+(OR\s+REPLACE\s+)?|ALTER\s+)FUNCTION\b", re.IGNORECASE)
    for migration in migrate.available():
        assert not statement.search(migration.sql), migration.name
    functions_dir = PACKAGE / "db" / "functions"
    elsewhere = [
        path.relative_to(PACKAGE)
        for path in [*PACKAGE.rglob("*.sql"), *PACKAGE.rglob("*.py")]
        if functions_dir not in path.parents and statement.search(path.read_text())
    ]
    assert elsewhere == []


def test_migrations_name_function_files_that_exist() -> None:
    names = {f.name for f in migrate.functions()}
    for migration in migrate.available():
        assert set(migration.needs) <= names, migration.name


async def test_every_function_is_defined_in_db_functions(conn: AsyncConnection) -> None:
    """Applying db/functions/ again, bodies checked, replaces every function of the schema
    (pg_proc rows rewritten by this transaction) and changes none of them."""
    before = await definitions(conn)
    await conn.execute("SET LOCAL check_function_bodies = on")
    for f in migrate.functions():
        await conn.execute(f.sql)
    cur = await conn.execute(
        FUNCTIONS + " AND p.xmin = pg_current_xact_id()::xid"  # written by this transaction
    )
    replaced = dict(await cur.fetchall())
    assert set(replaced) == set(before)
    assert replaced == before


async def test_a_fresh_database_has_the_earlier_functions_but_the_placement(
    conn: AsyncConnection, admin_conninfo: str
) -> None:
    """The template (migrated by today's files) against a database migrated by the earlier
    files: the same functions, word for word, except the breakdown and the two added."""
    fresh = await definitions(conn)
    async with empty_database(admin_conninfo) as old:
        await migrate_as_before(old)
        earlier = await definitions(old)
    assert set(fresh) == set(earlier) | ADDED
    assert {k for k in earlier if fresh[k] != earlier[k]} == CHANGED


async def migrate_as_before(conn: AsyncConnection) -> None:
    """What migrate.upgrade did before the functions moved: each file, recorded with its
    checksum."""
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for version, name, text in earlier_migrations():
        await conn.execute(text)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (version, name, hashlib.sha256(text.encode()).hexdigest()),
        )


async def test_a_database_migrated_by_the_earlier_files_upgrades(
    conn: AsyncConnection, admin_conninfo: str
) -> None:
    """Nothing to apply, the records take today's checksums, the functions become today's,
    the data stays, and a second upgrade replaces nothing."""
    fresh = await definitions(conn)
    async with empty_database(admin_conninfo) as db:
        await migrate_as_before(db)
        await db.execute(
            "INSERT INTO communes (code, name, kind, status, geom) VALUES ('OLD-1', 'Old', "
            "'rural', 'active', ST_Multi(ST_Expand(ST_SetSRID(ST_Point(-69.15, 9.69), "
            "4326), 0.01)))"
        )
        await db.execute(
            "INSERT INTO parcels (commune_id, tenure, geom) SELECT id, 'occupied', "
            "ST_Multi(ST_Expand(ST_SetSRID(ST_Point(-69.15, 9.69), 4326), 0.001)) "
            "FROM communes"
        )
        # only what came after the earlier files is applied
        newer = [
            m.version
            for m in migrate.available()
            if m.version > max(v for v, _, _ in earlier_migrations())
        ]
        assert [m.version for m in await migrate.upgrade(db)] == newer
        cur = await db.execute("SELECT version, checksum FROM schema_migrations")
        assert dict(await cur.fetchall()) == {m.version: m.checksum for m in migrate.available()}
        assert await definitions(db) == fresh
        cur = await db.execute(
            "SELECT h.to_status FROM parcels p, parcel_tenure_history(ARRAY[p.id]) h"
        )
        assert await cur.fetchall() == [("occupied",)]
        cur = await db.execute("SELECT applied_at FROM schema_functions")
        applied = await cur.fetchall()
        assert await migrate.upgrade(db) == []
        cur = await db.execute("SELECT applied_at FROM schema_functions")
        assert await cur.fetchall() == applied


def test_the_earlier_texts_are_those_migrate_accepts() -> None:
    earlier = {v: hashlib.sha256(t.encode()).hexdigest() for v, _, t in earlier_migrations()}
    today = {m.version: m.checksum for m in migrate.available()}
    restated = {v for v in today if v in earlier and today[v] != earlier[v]}
    assert {v: earlier[v] for v in restated} == migrate._RESTATED


async def test_codes_stored_with_blanks_around_them_are_trimmed_where_free(
    conn: AsyncConnection,
) -> None:
    """Migration 0034: codes written before a write trimmed them (found from outside: an
    upsert of 'EM-P003' added a second parcel beside a stored 'EM-P003 '). Trimmed where
    the commune holds no such code; a pair that would collide is left for a person."""
    (migration,) = [m for m in migrate.available() if m.version == 34]
    cur = await conn.execute(
        "SELECT p.id, p.code FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = 'EL-MAIZAL' ORDER BY p.id LIMIT 3"
    )
    (a, _), (b, _), (c, taken) = await cur.fetchall()
    blanks = {a: " MIG-1\t", b: "\u00a0MIG-2\u3000", c: f"{taken} "}
    for fid, code in blanks.items():
        if fid == c:  # beside the code it would become: an INSERT of the same row's copy
            continue
        await conn.execute("UPDATE parcels SET code = %s WHERE id = %s", (code, fid))
    await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, land_use, geom) "
        "SELECT commune_id, %s, tenure, land_use, geom FROM parcels WHERE id = %s",
        (blanks[c], c),
    )
    await conn.execute(migration.sql)
    cur = await conn.execute(
        "SELECT code FROM parcels WHERE id = ANY(%s) OR code = %s ORDER BY code",
        ([a, b], blanks[c]),
    )
    assert [r[0] for r in await cur.fetchall()] == sorted(["MIG-1", "MIG-2", f"{taken} "])
    cur = await conn.execute("SELECT count(*) FROM parcels WHERE code = %s", (taken,))
    assert (await cur.fetchone())[0] == 1  # the stored one, untouched
