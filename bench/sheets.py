"""Parcel sheets for a commune of 500 parcels: `geo-comuna sheet --commune C --out DIR`.

    PYTHONPATH=. .venv/bin/python bench/sheets.py [--runs 3]

The commune BENCH-SHEETS (made once in SQL, deterministic) is a 25 x 20 grid of quadrilaterals
of ~4.8 ha over Portuguesa (lon -70.30, lat 8.60, UTM zone 19N), their inner corners moved by
up to ~20 m so that no two are alike, each sharing its sides with its neighbours; four roads run
along grid lines. Each run writes the 500 sheets and the index into a fresh folder.

Beside the command, in the same run, the floor: the reads alone (the one statement that reads
every parcel and all around it, and the history statement, maps/sheet/reads.py) timed in
this process, so the ratio says what the drawing and the command's start cost over what the
database must do anyway. Wall clock is time.perf_counter around the subprocess, CPU and peak
memory /usr/bin/time -v's of the command (the database server's not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import CLI, OUT, fmt, header, load, prepare_database, table
from import_parcels import Run, timed

COMMUNE = "BENCH-SHEETS"
COLUMNS, ROWS = 25, 20
X0, Y0, CELL = -70.30, 8.60, 0.002  # degrees
JITTER = 0.0004  # degrees: an inner corner moves up to half of it each way


def ensure_commune(dsn: str) -> None:
    """The commune, its 500 parcels and four roads, made in SQL once."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id "
            "WHERE c.code = %s",
            (COMMUNE,),
        ).fetchone()[0]
        if found == COLUMNS * ROWS:
            return
        conn.execute(
            "DELETE FROM parcels WHERE commune_id IN (SELECT id FROM communes WHERE code = %s)",
            (COMMUNE,),
        )
        conn.execute(
            "DELETE FROM paths WHERE commune_id IN (SELECT id FROM communes WHERE code = %s)",
            (COMMUNE,),
        )
        conn.execute("DELETE FROM communes WHERE code = %s", (COMMUNE,))
        args = {
            "code": COMMUNE,
            "x": X0,
            "y": Y0,
            "d": CELL,
            "jit": JITTER,
            "cols": COLUMNS,
            "rows": ROWS,
        }
        conn.execute(
            "INSERT INTO communes (code, name, kind, status, geom) VALUES (%(code)s, "
            "'Bench sheets', 'rural', 'active', ST_Multi(ST_MakeEnvelope(%(x)s, %(y)s, "
            "%(x)s + %(cols)s * %(d)s, %(y)s + %(rows)s * %(d)s, 4326)))",
            args,
        )
        conn.execute(
            """WITH c AS (SELECT id FROM communes WHERE code = %(code)s),
               corner AS (  -- the grid's corners; those inside moved by a fixed pseudo-random step
                   SELECT i, j,
                          %(x)s + i * %(d)s + CASE WHEN i IN (0, %(cols)s) THEN 0 ELSE
                              %(jit)s * (((i * 7919 + j * 104729) %% 997) / 997.0 - 0.5) END AS x,
                          %(y)s + j * %(d)s + CASE WHEN j IN (0, %(rows)s) THEN 0 ELSE
                              %(jit)s * (((i * 104729 + j * 7919) %% 991) / 991.0 - 0.5) END AS y
                   FROM generate_series(0, %(cols)s) i, generate_series(0, %(rows)s) j)
               INSERT INTO parcels (commune_id, code, tenure, land_use, geom)
               SELECT c.id, format('BSH-%%s-%%s', lpad(a.j::text, 2, '0'), lpad(a.i::text, 2, '0')),
                      (ARRAY['occupied', 'regularizing', 'regularized'])[1 + (a.i + a.j) %% 3],
                      (ARRAY['crops', 'pasture', 'forest'])[1 + (a.i * a.j) %% 3],
                      ST_Multi(ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[
                          ST_MakePoint(a.x, a.y), ST_MakePoint(d.x, d.y), ST_MakePoint(e.x, e.y),
                          ST_MakePoint(b.x, b.y), ST_MakePoint(a.x, a.y)])), 4326))
               FROM c, corner a
               JOIN corner b ON b.i = a.i + 1 AND b.j = a.j
               JOIN corner e ON e.i = a.i + 1 AND e.j = a.j + 1
               JOIN corner d ON d.i = a.i AND d.j = a.j + 1""",
            args,
        )
        conn.execute(  # roads along two grid columns and two grid rows, through the corners
            """WITH c AS (SELECT id FROM communes WHERE code = %(code)s)
               INSERT INTO paths (commune_id, kind, name, geom)
               SELECT c.id, 'road', 'Bench ' || k,
                      ST_SetSRID(ST_MakeLine(
                          ST_MakePoint(%(x)s + k * %(d)s, %(y)s),
                          ST_MakePoint(%(x)s + k * %(d)s, %(y)s + %(rows)s * %(d)s)), 4326)
               FROM c, unnest(ARRAY[8, 17]) k
               UNION ALL
               SELECT c.id, 'road', 'Bench row ' || k,
                      ST_SetSRID(ST_MakeLine(
                          ST_MakePoint(%(x)s, %(y)s + k * %(d)s),
                          ST_MakePoint(%(x)s + %(cols)s * %(d)s, %(y)s + k * %(d)s)), 4326)
               FROM c, unnest(ARRAY[7, 14]) k""",
            args,
        )


def floor(dsn: str) -> float:
    """Seconds of the reads alone, in this process (the parcels' and their histories')."""
    from psycopg import AsyncConnection

    from geo_comuna.maps.sheet import reads

    async def work() -> float:
        conn = await AsyncConnection.connect(dsn, autocommit=True)
        try:
            cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (COMMUNE,))
            ids = await reads.commune_parcels(conn, (await cur.fetchone())[0])
            started = time.perf_counter()
            sheets = await reads.load(conn, ids, None)
            took = time.perf_counter() - started
            assert len(sheets) == COLUMNS * ROWS
            return took
        finally:
            await conn.close()

    return asyncio.run(work())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    header("sheets")
    dsn = prepare_database()
    ensure_commune(dsn)
    commands: list[Run] = []
    floors: list[float] = []
    loads: list[str] = []
    sizes: list[int] = []
    for run in range(args.runs):
        floors.append(floor(dsn))
        OUT.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=OUT) as scratch:
            out = Path(scratch) / "sheets"
            cmd = [CLI, "sheet", "--commune", COMMUNE, "--out", str(out)]
            commands.append(timed(cmd, None))
            files = list(out.glob("*.pdf"))
            if len(files) != COLUMNS * ROWS + 1:
                sys.exit(f"expected {COLUMNS * ROWS} sheets and the index, got {len(files)}")
            sizes.append(sum(f.stat().st_size for f in files))
        loads.append(load())
        print(f"  run {run + 1} done, load {loads[-1]}", file=sys.stderr)
    wall = statistics.median(r.wall for r in commands)
    reads_s = statistics.median(floors)
    rows = [
        [
            "geo-comuna sheet --commune (500 sheets + index)",
            wall,
            min(r.wall for r in commands),
            max(r.wall for r in commands),
            statistics.median(r.client_cpu for r in commands),
            fmt(int(statistics.median(r.peak_rss_mb for r in commands))),
        ],
        ["the reads alone (floor)", reads_s, min(floors), max(floors), "-", "-"],
    ]
    print(
        table(
            f"{COLUMNS * ROWS} parcels, {args.runs} runs, s",
            ["what", "wall median", "wall min", "wall max", "CPU median", "peak RSS, MB"],
            rows,
        )
    )
    print(
        f"\ncommand / floor: {wall / reads_s:.1f}x; "
        f"per sheet {wall / (COLUMNS * ROWS) * 1000:.0f} ms"
    )
    print(f"files: {statistics.median(sizes) / 1e6:.1f} MB in all")
    print(f"load average after each run (1/5/15 min): {'; '.join(loads)}")


if __name__ == "__main__":
    main()
