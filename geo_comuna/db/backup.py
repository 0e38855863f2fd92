"""Backups of the whole database with PostgreSQL's own tools: ``pg_dump`` custom format out,
``pg_restore`` back in as one transaction.

A backup holds every layer, the parcel history, the audit trail, users and the schema version.
The tools come from the PostgreSQL that runs the embedded cluster (``cluster.find_bindir``),
so their version matches it. As root against the embedded cluster they run as root: its
socket directory is 0700 but root passes, and the cluster trusts the socket's user
``geo_comuna``.

A restore replaces what the backup holds and nothing else, all or nothing: a file that is not
an archive, a truncated one or any failing statement leaves the database as it was.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_comuna.db import cluster, migrate
from geo_comuna.errors import GeoComunaError, InvalidFile
from geo_comuna.settings import Settings

#: the first bytes of a pg_dump custom-format archive
MAGIC = b"PGDMP"
#: roles the dump's GRANTs name: cluster-wide, so not in a database's dump (migration 0006)
_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geo_comuna_writer') THEN
        CREATE ROLE geo_comuna_writer NOLOGIN;
    END IF;
END $$;
GRANT geo_comuna_writer TO CURRENT_USER;
"""


class BackupFailed(GeoComunaError):
    """pg_dump or pg_restore could not do the work; the message carries their own words."""

    status, code = 500, "backup-failed"


@dataclass
class BackupReport:
    file: str
    bytes: int
    schema_version: int | None
    seconds: float


@dataclass
class RestoreReport:
    file: str
    schema_version: int | None
    replaced_version: int | None
    seconds: float


def _client(conninfo: str) -> tuple[str, dict[str, str]]:
    """The conninfo without its password (which would show in ``ps``) and the environment
    that carries the password instead."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def _tool(
    settings: Settings, name: str, args: list[str], conninfo: str, what: str
) -> subprocess.CompletedProcess[str]:
    dsn, env = _client(conninfo)
    cmd = [str(cluster.find_bindir(settings) / name), "--dbname", dsn, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise BackupFailed(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def _schema_version(conninfo: str) -> int | None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None:
            return None
        return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


def backup(settings: Settings, conninfo: str, file: Path) -> BackupReport:
    """Dump the database to ``file`` (custom format, compressed). The archive appears under
    its name only once complete and on disk: an interrupted backup leaves the old file."""
    started = time.perf_counter()
    file = file.resolve()
    if file.is_dir():
        raise InvalidFile(f"{file} is a directory; give the backup's file name")
    partial = file.with_name(f".{file.name}.partial")
    try:
        # pg_dump fsyncs its output before exiting (unless --no-sync)
        _tool(settings, "pg_dump", ["--format=custom", "--file", str(partial)], conninfo, "pg_dump")
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(file.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return BackupReport(
        str(file),
        file.stat().st_size,
        _schema_version(conninfo),
        round(time.perf_counter() - started, 3),
    )


def archive_version(settings: Settings, file: Path) -> int | None:
    """The schema version recorded in an archive; refuses anything that is not one."""
    with open(file, "rb") as fh:
        head = fh.read(len(MAGIC))
    if head != MAGIC:
        raise InvalidFile(
            f"{file.name} is not a geo-comuna backup (a pg_dump custom-format "
            "archive, made by `geo-comuna backup`); nothing was restored"
        )
    restore_bin = str(cluster.find_bindir(settings) / "pg_restore")
    listing = subprocess.run(
        [restore_bin, "--list", str(file)], capture_output=True, text=True, cwd="/"
    )
    if listing.returncode != 0:
        raise InvalidFile(
            f"{file.name} is not a readable pg_dump archive: "
            f"{listing.stderr.strip()}; nothing was restored"
        )
    data = subprocess.run(
        [restore_bin, "--data-only", "--table=schema_migrations", "--file", "-", str(file)],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if data.returncode != 0:
        raise InvalidFile(f"{file.name} is damaged: {data.stderr.strip()}; nothing was restored")
    versions, rows = [], False
    for line in data.stdout.splitlines():
        if line.startswith("COPY ") and "schema_migrations" in line:
            rows = True
        elif line == "\\.":
            rows = False
        elif rows and line.split("\t", 1)[0].isdigit():
            versions.append(int(line.split("\t", 1)[0]))
    if not versions:
        raise InvalidFile(
            f"{file.name} is a PostgreSQL archive but not of a geo-comuna "
            "database (no schema_migrations); nothing was restored"
        )
    return max(versions)


def restore(settings: Settings, conninfo: str, file: Path) -> RestoreReport:
    """Replace the database's contents by the archive's, in a single transaction.

    Refuses an archive of a newer geo-comuna, and one older than the database's schema (the
    tables added since would be left behind): restore that into a fresh data directory or
    database, where the next start migrates it forward."""
    started = time.perf_counter()
    version = archive_version(settings, file)
    newest = migrate.available()[-1].version
    if version > newest:
        raise InvalidFile(
            f"{file.name} was made by a newer geo-comuna (schema {version}; "
            f"this one knows up to {newest}): upgrade geo-comuna first"
        )
    current = _schema_version(conninfo)
    if current is not None and current > version:
        raise InvalidFile(
            f"{file.name} holds schema version {version} but the database is at "
            f"{current}: restore it into an empty database (a new "
            "GEO_COMUNA_DATA_DIR), which then migrates it forward"
        )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(_ROLES)
    _tool(
        settings,
        "pg_restore",
        ["--clean", "--if-exists", "--no-owner", "--single-transaction", str(file)],
        conninfo,
        "pg_restore",
    )
    return RestoreReport(str(file), version, current, round(time.perf_counter() - started, 3))
