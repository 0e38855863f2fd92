"""Where `geo-comuna import parcels` spends its time: the import's own stages timed one by one
in this process, then the server's COPY with and without the table's extras.

    .venv/bin/python bench/import_stages.py [--runs 5]

Client stages call the same functions the CLI calls (geo_comuna.io.importer,
features.attributes, features.validate, features.write), in the same order, but each over the
whole file at once (encoding piece by piece): the import runs them piece by piece in a
worker thread, overlapping PostgreSQL's work, so its wall clock is not their sum. Server
variants each run in a transaction that is rolled back (TRUNCATE, binary COPY, ...), so what
is stored stays as it is: COPY keeping the indexes and PostgreSQL's per-row key checks (what a
small import into a big table does); COPY as a bulk import does it (secondary indexes dropped
and built afterwards, replica mode, a COPY statement per piece: io/bulk.copy_in); the same as
one COPY statement for all the pieces; the same without each trigger that works per inserted row
(found in pg_trigger, so the list follows the migrations); and without any of them. Needs
make_parcels.py's file and the tile communes (import_parcels.py imports them). The CLI's own
start-up (Python imports, cluster check, migrations) is not in these figures: compare with
import_parcels.py's wall clock.
CPU seconds are this process's for client stages and the database server's for COPY
variants (embedded cluster only): unlike wall clock they barely move when other work shares
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Callable

import psycopg
from common import (
    PARCELS_GPKG,
    env,
    fmt,
    header,
    prepare_database,
    require_parcels_file,
    server_cpu_reader,
    summary,
    table,
)
from psycopg import AsyncConnection

from geo_comuna.db.pool import connect
from geo_comuna.features import attributes, references, validate
from geo_comuna.io import bulk, importer, pgcopy
from geo_comuna.io.pieces import CHUNK
from geo_comuna.layers import get_layer
from geo_comuna.settings import Settings

LAYER = get_layer("parcels")
COLUMNS = [r.column for r in LAYER.references] + [a.name for a in LAYER.attributes] + ["geom"]


class Clock:
    """Wall seconds per stage, and CPU seconds of whoever does the work: this process for
    client stages, the database server for COPY variants (see common.server_cpu_reader)."""

    def __init__(self, server_cpu: Callable[[], float] | None) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self._server_cpu = server_cpu
        self._cpu_source: Callable[[], float] | None = time.process_time
        self.restart()

    def on_client(self) -> None:
        self._cpu_source = time.process_time
        self.restart()

    def on_server(self) -> None:
        self._cpu_source = self._server_cpu
        self.restart()

    def _cpu_now(self) -> float | None:
        return self._cpu_source() if self._cpu_source else None

    def restart(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = self._cpu_now()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), self._cpu_now()
        self.wall.setdefault(name, []).append(wall - self._wall)
        if cpu is not None and self._cpu is not None:
            self.cpu.setdefault(name, []).append(cpu - self._cpu)
        self._wall, self._cpu = wall, cpu


async def client_stages(conn: AsyncConnection, settings: Settings, clock: Clock) -> list[bytes]:
    """The import's client stages, each over the whole file at once (the import runs them piece
    by piece in a worker thread while PostgreSQL takes the previous piece); returns the binary
    COPY rows, in the import's pieces."""
    clock.on_client()
    frame, geometries, fmt = importer.read(PARCELS_GPKG, LAYER, settings)
    clock.lap("read (pyogrio, Arrow)")
    geometries = importer.to_wgs84(geometries, fmt, None)
    frame, _ = importer.match_columns(frame, LAYER)
    clock.lap("CRS + match columns")
    labels = range(1, len(frame) + 1)
    attrs = attributes.check_attributes(LAYER, frame, labels)
    clock.lap("validate attributes")
    given, source = geometries.take(0, len(geometries))
    clock.lap("decode WKB (shapely)")
    checked_geoms, repairs = validate.check_geometries(
        LAYER, given, labels, service_bbox=settings.service_bbox, promote=False
    )
    clock.lap("validate geometries")
    async with conn.transaction(force_rollback=True):
        refs = await references.resolve(conn, LAYER, frame, labels)
    clock.lap("resolve commune codes")
    edges = [0, *range(CHUNK, len(frame), CHUNK), len(frame)]
    pieces = [
        pgcopy.copy_rows(
            LAYER,
            validate.Checked({k: v[a:b] for k, v in attrs.items()}, checked_geoms[a:b], []),
            {column: ids[a:b] for column, ids in refs.items()},
            pgcopy.Source(source.geometries[a:b], source.wkb[a:b]),
        )
        for a, b in itertools.pairwise(edges)
    ]
    clock.lap("encode binary COPY rows, piece by piece (EWKB as read, Arrow)")
    return pieces


async def copy(conn: AsyncConnection, pieces: list[bytes], *, per_piece: bool = True) -> None:
    """A COPY statement per piece, as bulk.copy_in sends an import, or one for them all."""
    cols = ", ".join(COLUMNS)
    bulk._roomy_send_buffer(conn)
    async with conn.cursor() as cur:
        for group in [[p] for p in pieces] if per_piece else [pieces]:
            async with cur.copy(f"COPY parcels ({cols}) FROM STDIN WITH (FORMAT binary)") as out:
                await out.write(pgcopy.COPY_HEADER)
                for piece in group:
                    await out.write(piece)
                await out.write(pgcopy.COPY_TRAILER)


async def variant(
    conn: AsyncConnection,
    clock: Clock,
    pieces: list[bytes],
    name: str,
    setup: list[str],
    after: list[tuple[str, str]],
    *,
    per_piece: bool = True,
) -> None:
    """The pieces COPYed into an emptied parcels table, rolled back; ``after`` timed too."""
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute("TRUNCATE parcels, parcel_history CASCADE")
            for statement in setup:
                await conn.execute(statement)
            clock.on_server()
            await copy(conn, pieces, per_piece=per_piece)
            clock.lap(name)
            for label, statement in after:
                await conn.execute(statement)
                clock.lap(label)
    except psycopg.Error as exc:  # e.g. not a superuser on GEO_COMUNA_DATABASE_URL
        print(f"  skipped {name!r}: {exc}")


async def costly_triggers(conn: AsyncConnection) -> list[str]:
    """User triggers on parcels that do work per inserted row: row-level ones, and
    statement-level ones reading a transition table (a per-statement counter is cheap)."""
    cur = await conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'parcels'::regclass AND NOT tgisinternal "
        "AND tgenabled <> 'D' AND tgtype & 4 = 4 "  # fires on INSERT
        "AND (tgtype & 1 = 1 OR tgnewtable IS NOT NULL) ORDER BY tgname"
    )
    return [r[0] for r in await cur.fetchall()]


async def run(runs: int) -> tuple[Clock, int]:
    settings = Settings()
    conn = await connect(settings)
    clock = Clock(server_cpu_reader())
    triggers = await costly_triggers(conn)
    # what a bulk import into an (almost) empty table does (io/bulk.py copy_in)
    bulk_load = [
        "DROP INDEX parcels_geom_idx",
        "DROP INDEX parcels_commune_idx",
        "SET LOCAL session_replication_role = replica",
    ]
    rebuild = [
        ("  then CREATE INDEX ... (commune_id)", "CREATE INDEX ON parcels (commune_id)"),
        ("  then CREATE INDEX ... USING gist (geom)", "CREATE INDEX ON parcels USING gist (geom)"),
    ]
    steps: list[tuple[str, list[str], list[tuple[str, str]], bool]] = [
        ("COPY keeping the indexes and per-row key checks (a small import)", [], [], True),
        (
            "COPY as a bulk import does (indexes dropped, no per-row key checks)",
            bulk_load,
            rebuild,
            True,
        ),
        ("  same as one COPY statement for all pieces (before)", bulk_load, [], False),
    ]
    steps += [
        (
            f"  same without trigger {t}",
            [*bulk_load, f"ALTER TABLE parcels DISABLE TRIGGER {t}"],
            [],
            True,
        )
        for t in triggers
    ]
    steps.append(
        (
            "  same without any of those triggers (+ PK, checks)",
            [*bulk_load, *(f"ALTER TABLE parcels DISABLE TRIGGER {t}" for t in triggers)],
            [],
            True,
        )
    )
    try:
        for run_no in range(runs):
            print(f"  run {run_no + 1} of {runs}", file=sys.stderr)
            pieces = await client_stages(conn, settings, clock)
            await conn.execute("CHECKPOINT")
            for name, setup, after, per_piece in steps:
                await variant(conn, clock, pieces, name, setup, after, per_piece=per_piece)
                await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return clock, sum(map(len, pieces))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_parcels_file()
    header("import_stages")
    prepare_database()
    os.environ.update(env())  # Settings() must see the bench's data directory
    clock, size = asyncio.run(run(args.runs))
    rows = []
    for name, walls in clock.wall.items():
        cpu = clock.cpu.get(name)
        rows.append([name, *summary(walls), fmt(summary(cpu)[0]) if cpu else "-"])
    print(
        table(
            f"Import stages for 200,000 parcels, s ({args.runs} runs; server variants rolled back)",
            ["stage", "wall median", "wall min", "wall max", "CPU median"],
            rows,
        )
    )
    print(f"\nbinary COPY rows: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
