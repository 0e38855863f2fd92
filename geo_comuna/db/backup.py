"""Backups of the whole database with PostgreSQL's own tools: ``pg_dump`` custom format out,
``pg_restore`` back in as one transaction.

A backup holds every layer, the parcel history, the audit trail, users and the schema version.
The tools come from the PostgreSQL that runs the embedded cluster (``cluster.find_bindir``),
so their version matches it. As root against the embedded cluster they run as root: its
socket directory is 0700 but root passes, and the cluster trusts the socket's user
``geo_comuna``.

A restore replaces what the backup holds and nothing else, all or nothing: a file that is not
an archive, a truncated one or any failing statement leaves the database as it was. It runs
``pg_restore``'s script through ``psql`` inside one transaction of our own, between two steps
of ours (db/sql/restore_before.sql, restore_after.sql): tokens revoked or rotated since the
backup stay revoked, and every layer's version moves past any value it had, so a running
server's caches (counts, tiles) serve the restored rows at once, without a restart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_comuna.db import cluster, migrate
from geo_comuna.errors import GeoComunaError, InvalidFile, Said
from geo_comuna.settings import Settings

#: the first bytes of a pg_dump custom-format archive
MAGIC = b"PGDMP"
#: roles the dump's GRANTs name: cluster-wide, so not in a database's dump (migrations 0006,
#: 0021)
_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geo_comuna_writer') THEN
        CREATE ROLE geo_comuna_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geo_comuna_reader') THEN
        CREATE ROLE geo_comuna_reader NOLOGIN;
    END IF;
END $$;
GRANT geo_comuna_writer TO CURRENT_USER;
GRANT geo_comuna_reader TO CURRENT_USER;
"""


class BackupFailed(GeoComunaError):
    """pg_dump or pg_restore could not do the work; the message carries their own words."""

    status, code = 500, "backup-or-restore-failed"
    title_es = "falló el respaldo o la restauración"


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
    #: users whose token was revoked after the backup and is revoked again after the restore
    revocations_kept: list[str] = field(default_factory=list)
    #: users who rotated their token after the backup: they keep the new one
    rotations_kept: list[str] = field(default_factory=list)
    #: users made after the backup, whom the restore removes (their tokens stop working)
    users_not_in_backup: list[str] = field(default_factory=list)


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
        raise BackupFailed(
            Said(
                f"{what} failed (exit {proc.returncode}):\n{tail}",
                f"{what} falló (código de salida {proc.returncode}):\n{tail}",
            )
        )
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
        raise InvalidFile(
            Said(
                f"{file} is a directory; give the backup's file name",
                f"{file} es un directorio; indique el nombre del archivo del respaldo",
            )
        )
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
            Said(
                f"{file.name} is not a geo-comuna backup (a pg_dump custom-format "
                "archive, made by `geo-comuna backup`); nothing was restored",
                f"{file.name} no es un respaldo de geo-comuna (un archivo de pg_dump en formato "
                "custom, hecho con `geo-comuna backup`); no se restauró nada",
            )
        )
    bindir = cluster.find_bindir(settings)
    restore_bin = str(bindir / "pg_restore")
    if " BLOB" in _contents(bindir, file):  # pg_restore would commit large objects on its own
        raise InvalidFile(
            Said(
                f"{file.name} holds large objects, which a geo-comuna database never has; "
                "nothing was restored",
                f"{file.name} contiene objetos grandes (large objects), que una base de datos "
                "de geo-comuna nunca tiene; no se restauró nada",
            )
        )
    data = subprocess.run(
        [restore_bin, "--data-only", "--table=schema_migrations", "--file", "-", str(file)],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if data.returncode != 0:
        raise InvalidFile(
            Said(
                f"{file.name} is damaged: {data.stderr.strip()}; nothing was restored",
                f"{file.name} está dañado: {data.stderr.strip()}; no se restauró nada",
            )
        )
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
            Said(
                f"{file.name} is a PostgreSQL archive but not of a geo-comuna "
                "database (no schema_migrations); nothing was restored",
                f"{file.name} es un archivo de PostgreSQL pero no de una base de datos de "
                "geo-comuna (no tiene schema_migrations); no se restauró nada",
            )
        )
    return max(versions)


def restore(
    settings: Settings,
    conninfo: str,
    file: Path,
    on_commit: Callable[[], None] | None = None,
) -> RestoreReport:
    """Replace the database's contents by the archive's, in a single transaction.
    ``on_commit`` is called just before the COMMIT is sent: from then on the archive is
    restored unless psql reports a failure.

    Refuses an archive of a newer geo-comuna, and one older than the database's schema (the
    tables added since would be left behind): restore that into a fresh data directory or
    database, where the next start migrates it forward."""
    started = time.perf_counter()
    version = archive_version(settings, file)
    newest = migrate.available()[-1].version
    if version > newest:
        raise InvalidFile(
            Said(
                f"{file.name} was made by a newer geo-comuna (schema {version}; "
                f"this one knows up to {newest}): upgrade geo-comuna first",
                f"{file.name} se hizo con un geo-comuna más reciente (esquema {version}; "
                f"este conoce hasta el {newest}): primero actualice geo-comuna",
            )
        )
    current = _schema_version(conninfo)
    if current is not None and current > version:
        raise InvalidFile(
            Said(
                f"{file.name} holds schema version {version} but the database is at "
                f"{current}: restore it into an empty database (a new "
                "GEO_COMUNA_DATA_DIR), which then migrates it forward",
                f"{file.name} tiene la versión de esquema {version} pero la base de datos está "
                f"en la {current}: restáurelo en una base de datos vacía (un "
                "GEO_COMUNA_DATA_DIR nuevo), que luego lo migra a la versión actual",
            )
        )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(_ROLES)
    kept = _restore_in_one_transaction(settings, conninfo, file, on_commit)
    return RestoreReport(
        str(file),
        version,
        current,
        round(time.perf_counter() - started, 3),
        revocations_kept=kept.get("revocations_kept", []),
        rotations_kept=kept.get("rotations_kept", []),
        users_not_in_backup=kept.get("users_not_in_backup", []),
    )


#: the extensions a restore keeps as they are, created if the database has none yet; the
#: rows of PostGIS' own tables that its backups carry (a spatial_ref_sys row someone added:
#: extcondition, PostGIS' filter of the rows pg_dump writes) are replaced by the archive's,
#: as --clean did when it made PostGIS anew (found from outside: a custom SRID made every
#: restore fail on its duplicate key)
KEEP_EXTENSIONS = b"""SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS postgis;
DO $$
DECLARE
    kept text;
BEGIN
    SELECT e.extcondition[array_position(e.extconfig, 'spatial_ref_sys'::regclass::oid)]
    INTO kept FROM pg_extension e WHERE e.extname = 'postgis';
    IF kept IS NOT NULL THEN
        EXECUTE 'DELETE FROM spatial_ref_sys ' || kept;
    END IF;
END $$;
RESET client_min_messages;
"""


def _contents(bindir: Path, file: Path) -> str:
    """The archive's table of contents (``pg_restore --list``); InvalidFile when pg_restore
    cannot read it."""
    listing = subprocess.run(
        [str(bindir / "pg_restore"), "--list", str(file)], capture_output=True, text=True, cwd="/"
    )
    if listing.returncode != 0:
        raise InvalidFile(
            Said(
                f"{file.name} is not a readable pg_dump archive: "
                f"{listing.stderr.strip()}; nothing was restored",
                f"{file.name} no es un archivo de pg_dump legible: "
                f"{listing.stderr.strip()}; no se restauró nada",
            )
        )
    return listing.stdout


def _without_extensions(bindir: Path, file: Path) -> str:
    """The archive's table of contents without its extensions, for ``pg_restore
    --use-list``. Found from outside: ``--clean`` dropped PostGIS and created it again, its
    types and operators under new ids, and every connection a running server held kept
    PostGIS's lookups of the old ones: every bbox, map and report was a 500 until a restart
    (``no spatial operator found for 'st_intersects'``). The database's own PostGIS stays:
    an archive holds no PostGIS of its own beyond its tables' rows."""
    entry = re.compile(r"^\d+; \d+ \d+ (COMMENT - )?EXTENSION ")
    toc = _contents(bindir, file).splitlines(True)
    return "".join(line for line in toc if not entry.match(line))


def _step(name: str) -> bytes:
    return resources.files("geo_comuna.db").joinpath("sql", name).read_bytes()


def _restore_in_one_transaction(
    settings: Settings, conninfo: str, file: Path, on_commit: Callable[[], None] | None
) -> dict[str, list[str]]:
    """``pg_restore``'s SQL piped into ``psql`` between our BEGIN + restore_before.sql and
    restore_after.sql + COMMIT, which are sent only once pg_restore has read the whole
    archive: a damaged one ends the session uncommitted, which PostgreSQL rolls back, as it
    does on the first failing statement (ON_ERROR_STOP). Returns what restore_after kept.

    Both run in sessions of their own, so a Ctrl-C at the terminal reaches this process
    only: stopped before the COMMIT is sent, psql reads the end of its input inside the
    transaction and PostgreSQL rolls it back."""
    dsn, env = _client(conninfo)
    bindir = cluster.find_bindir(settings)
    reader_cmd = [str(bindir / "pg_restore"), "--clean", "--if-exists", "--no-owner"]
    writer_cmd = [str(bindir / "psql"), "--dbname", dsn, "--no-psqlrc", "--quiet"]
    writer_cmd += ["--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1"]
    with (
        tempfile.NamedTemporaryFile("w", suffix=".list") as listed,
        tempfile.TemporaryFile() as reader_err,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as writer_err,
    ):
        listed.write(_without_extensions(bindir, file))  # before psql starts: it may refuse
        listed.flush()
        writer = subprocess.Popen(
            writer_cmd,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=writer_err,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        reader = subprocess.Popen(
            [*reader_cmd, "--use-list", listed.name, "--file", "-", str(file)],
            stdout=subprocess.PIPE,
            stderr=reader_err,
            cwd="/",
            start_new_session=True,
        )
        try:
            writer.stdin.write(b"BEGIN;\n" + KEEP_EXTENSIONS + _step("restore_before.sql"))
            shutil.copyfileobj(reader.stdout, writer.stdin, 1 << 20)
            if reader.wait() == 0:
                if on_commit is not None:
                    on_commit()
                writer.stdin.write(b"\n" + _step("restore_after.sql") + b"\nCOMMIT;\n")
        except BrokenPipeError:  # psql stopped at a failing statement
            pass
        finally:
            reader.stdout.close()
            if reader.poll() is None:
                reader.kill()
            reader.wait()
            try:
                writer.stdin.close()
            except BrokenPipeError:
                pass
            writer.wait()
        if writer.returncode != 0:  # a failing statement (pg_restore was stopped for it)
            tail = _tail(writer_err)
            raise BackupFailed(
                Said(
                    f"the restore failed (psql exit {writer.returncode}); nothing was restored:\n"
                    f"{tail}",
                    f"la restauración falló (psql terminó con código {writer.returncode}); no se "
                    f"restauró nada:\n{tail}",
                )
            )
        if reader.returncode != 0:  # a damaged archive: the transaction was never committed
            tail = _tail(reader_err)
            raise BackupFailed(
                Said(
                    f"pg_restore failed (exit {reader.returncode}); nothing was restored:\n{tail}",
                    f"pg_restore falló (código de salida {reader.returncode}); no se restauró "
                    f"nada:\n{tail}",
                )
            )
        out.seek(0)
        for line in out.read().decode().splitlines():
            if line.startswith("geo_comuna-restore "):
                return json.loads(line.removeprefix("geo_comuna-restore "))
    raise BackupFailed(
        Said(
            "psql ended without the restore's closing report; check the database",
            "psql terminó sin el informe final de la restauración; revise la base de datos",
        )
    )


def _tail(stream: Any) -> str:
    stream.seek(0)
    return "\n".join(stream.read().decode(errors="replace").strip().splitlines()[-10:])
