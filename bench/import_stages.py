"""Where `geo-comuna import parcels` spends its time: the import's own stages timed one by one
in this process, then the server's COPY with and without the table's extras.

    .venv/bin/python bench/import_stages.py [--runs 5]

Client stages call the same functions the CLI calls (geo_comuna.io.importer,
features.validate, features.write), in the same order; private helpers are timed only while
they exist. Server variants each run in a transaction that is rolled back (TRUNCATE, COPY,
...), so what is stored stays as it is: COPY into parcels as the import does it; without each
per-row trigger on parcels (found in pg_trigger, so the list follows the migrations); without
the GiST index; without all of those, then the GiST index built after the load and the
tenure history written in one INSERT ... SELECT. Needs make_parcels.py's file and the tile
communes (import_parcels.py imports them). The CLI's own start-up (Python imports, cluster
check, migrations) is not in these figures: compare with import_parcels.py's wall clock.
CPU seconds are this process's for client stages and the database server's for COPY
variants (embedded cluster only): unlike wall clock they barely move when other work shares
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
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
from geo_comuna.features import validate, write
from geo_comuna.io import importer
from geo_comuna.layers import get_layer
from geo_comuna.settings import Settings

LAYER = get_layer("parcels")
COLUMNS = [r.column for r in LAYER.references] + [a.name for a in LAYER.attributes] + ["geom"]
CHUNK = 1 << 20


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


async def client_stages(conn: AsyncConnection, settings: Settings, clock: Clock) -> bytes:
    """The import's stages up to the COPY buffer; returns the buffer."""
    clock.on_client()
    frame, fmt = importer.read(PARCELS_GPKG, LAYER, settings)
    clock.lap("read (pyogrio, Arrow)")
    frame, _ = importer.to_wgs84(frame, fmt, None)
    frame, _ = importer.match_columns(frame, LAYER)
    clock.lap("reproject + match columns")
    labels = range(1, len(frame) + 1)
    attrs = validate.check_attributes(LAYER, frame, labels)
    clock.lap("validate attributes")
    geoms = frame.geometry.array.to_numpy()
    conform = getattr(validate, "_conform_type", None)
    if conform is not None:  # a private helper: timed while it exists
        conform(LAYER, geoms, labels)
        clock.lap("  Polygon -> MultiPolygon alone (_conform_type; inside the next row too)")
    checked_geoms, repairs = validate.check_geometries(
        LAYER, geoms, labels, service_bbox=settings.service_bbox
    )
    clock.lap("validate geometries")
    async with conn.transaction(force_rollback=True):
        refs = await write.resolve_references(conn, LAYER, frame, labels)
    clock.lap("resolve commune codes")
    checked = validate.Checked(attrs, checked_geoms, repairs)
    build = getattr(write, "_copy_buffer", None)  # private: the COPY variants need its bytes
    if build is None:
        sys.exit("geo_comuna.features.write._copy_buffer is gone: update import_stages.py")
    buffer = build(LAYER, checked, refs)
    clock.lap("build COPY buffer (hex EWKB CSV)")
    return buffer


async def copy(conn: AsyncConnection, buffer: bytes) -> None:
    cols = ", ".join(COLUMNS)
    async with conn.cursor() as cur:
        async with cur.copy(f"COPY parcels ({cols}) FROM STDIN WITH (FORMAT csv)") as out:
            view = memoryview(buffer)
            for start in range(0, len(view), CHUNK):
                await out.write(view[start : start + CHUNK])


async def variant(
    conn: AsyncConnection,
    clock: Clock,
    buffer: bytes,
    name: str,
    setup: list[str],
    after: list[tuple[str, str]],
) -> None:
    """One COPY into an emptied parcels table, rolled back; ``after`` statements timed too."""
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute("TRUNCATE parcels, parcel_history CASCADE")
            for statement in setup:
                await conn.execute(statement)
            clock.on_server()
            await copy(conn, buffer)
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
    no_triggers = [f"ALTER TABLE parcels DISABLE TRIGGER {t}" for t in triggers]
    no_gist = "DROP INDEX parcels_geom_idx"
    steps: list[tuple[str, list[str], list[tuple[str, str]]]] = [
        ("COPY as the import does (triggers, GiST, FK, checks)", [], [])
    ]
    steps += [
        (f"COPY without trigger {t}", [d], []) for t, d in zip(triggers, no_triggers, strict=True)
    ]
    steps += [
        ("COPY without the GiST index", [no_gist], []),
        (
            "COPY without those triggers and GiST (+ PK, commune index, FK, checks)",
            [*no_triggers, no_gist],
            [
                (
                    "  then CREATE INDEX ... USING gist (geom)",
                    "CREATE INDEX ON parcels USING gist (geom)",
                ),
                (
                    "  then tenure history in one INSERT ... SELECT",
                    "INSERT INTO parcel_history (parcel_id, from_status, to_status) "
                    "SELECT id, NULL, tenure FROM parcels",
                ),
            ],
        ),
    ]
    try:
        for run_no in range(runs):
            print(f"  run {run_no + 1} of {runs}", file=sys.stderr)
            buffer = await client_stages(conn, settings, clock)
            await conn.execute("CHECKPOINT")
            for name, setup, after in steps:
                await variant(conn, clock, buffer, name, setup, after)
                await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return clock, len(buffer)


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
    print(f"\nCOPY buffer: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
