"""A commune of few parcels with many vertices, through `geo-comuna serve`: 100 parcels of
49,999 vertices each (within the 50,000 one geometry may have,
Settings.max_vertices_per_geometry), each a wavy ring ~330 m across (its radius waving by 5%
every 2.5 m) that overlaps its neighbours on a 10 x 10 grid: 4,999,900 vertices, 884 ha.
Tiles, maps, land recovery, the report file and the package, each run on a server just
started, against the previous version of the code in the same run. Then land recovery of a
second commune, BENCH-G-0001: 1,000 GPS-walked parcels of 2,000 vertices, 0.5 m apart. Its
sliver search, which a request leaves out, takes minutes from the command:

    GEO_COMUNA_STATEMENT_TIMEOUT_MS=900000 .venv/bin/geo-comuna analyze land-recovery BENCH-G-0001

    PYTHONPATH=. .venv/bin/python bench/vertices.py [--runs 1] [--before DIR]

(run as root, GEO_COMUNA_RUN_AS=root lets the bench's servers stay root.)

``--before DIR``: a checkout of the previous version (``git worktree add /tmp/before main``),
run on the same database with ``PYTHONPATH=DIR``, one version after the other. After each
request the bench waits until no backend of the database is busy and reports how long that
took past the answer: work that a cancel or the statement timeout could not stop.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import statistics
import time
from pathlib import Path

import psycopg
from common import OUT, RINGS_TO_PARCELS, fmt, free_port, header, prepare_database, table
from report import each_version
from serve_pages import start_server, stop_server

CODE = "BENCH-V-0001"
SIDE = 10  # parcels along each side of the grid
CELL_DEG = 0.003  # grid step; each ring's radius is 0.0016 degrees at most: neighbours overlap
RING = 49_998  # vertices of each ring before the closing one

MAKE_SQL = (
    """
WITH c AS (
    INSERT INTO communes (code, name, kind, status, source, geom)
    VALUES (%(code)s, 'Bench: 100 parcels of 50,000 vertices', 'rural', 'active',
            'synthetic (bench/vertices.py)',
            ST_Multi(ST_MakeEnvelope(-66.0, 9.0, -66.0 + %(side)s * %(d)s,
                                     9.0 + %(side)s * %(d)s, 4326)))
    RETURNING id
), cells AS (
    SELECT g, -66.0 + ((g %% %(side)s) + 0.5) * %(d)s AS cx,
           9.0 + ((g / %(side)s) + 0.5) * %(d)s AS cy
    FROM generate_series(0, %(side)s * %(side)s - 1) g
), rings AS (  -- a radius that waves as the angle turns: a simple ring, whatever the waves
    SELECT g, ST_MakeLine(ARRAY(
        SELECT ST_MakePoint(cx + 0.0016 * (0.95 + 0.05 * sin(k * 0.05)) * cos(k * 2 * pi() / %(n)s),
                            cy + 0.0016 * (0.95 + 0.05 * sin(k * 0.05)) * sin(k * 2 * pi() / %(n)s))
        FROM generate_series(0, %(n)s - 1) k)) AS line
    FROM cells
)
"""
    + RINGS_TO_PARCELS
)


#: 1,000 parcels walked with a GPS: squares of 49.5 m on a 50 m grid (0.5 m apart, slivers
#: everywhere at the default width of 1 m), 500 vertices a side, each ±10 cm off the side
#: (not near the corners, so that each ring stays simple); made in UTM 19N, stored in lon/lat
GPS_CODE = "BENCH-G-0001"
GPS_SQL = (
    """
WITH c AS (
    INSERT INTO communes (code, name, kind, status, source, geom)
    VALUES (%(code)s, 'Bench: 1,000 GPS-walked parcels of 2,000 vertices', 'rural', 'active',
            'synthetic (bench/vertices.py)',
            ST_Multi(ST_Transform(ST_MakeEnvelope(499990, 1099990, 502010, 1101260, 32619),
                                  4326)))
    RETURNING id
), cells AS (
    SELECT g, 500000 + (g %% 40) * 50.0 AS x0, 1100000 + (g / 40) * 50.0 AS y0
    FROM generate_series(0, 999) g
), walked AS (
    SELECT g, k,
           CASE k / 500 WHEN 0 THEN x0 + 49.5 * (k %% 500) / 500.0 WHEN 1 THEN x0 + 49.5
                        WHEN 2 THEN x0 + 49.5 - 49.5 * (k %% 500) / 500.0 ELSE x0 END
           + CASE WHEN k / 500 IN (1, 3) AND k %% 500 BETWEEN 5 AND 495
                  THEN 0.2 * (random() - 0.5) ELSE 0 END AS x,
           CASE k / 500 WHEN 0 THEN y0 WHEN 1 THEN y0 + 49.5 * (k %% 500) / 500.0
                        WHEN 2 THEN y0 + 49.5 ELSE y0 + 49.5 - 49.5 * (k %% 500) / 500.0 END
           + CASE WHEN k / 500 IN (0, 2) AND k %% 500 BETWEEN 5 AND 495
                  THEN 0.2 * (random() - 0.5) ELSE 0 END AS y
    FROM cells, generate_series(0, 1999) k
), rings AS (
    SELECT g, ST_Transform(ST_SetSRID(ST_MakeLine(ST_MakePoint(x, y) ORDER BY k), 32619), 4326)
               AS line
    FROM walked GROUP BY g
)"""
    + RINGS_TO_PARCELS
)


def make_commune(
    dsn: str, code: str, parcels: int, vertices: int, make: str, **params: float
) -> None:
    """Commune ``code`` made by ``make`` unless it holds ``parcels`` of ``vertices`` in all."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute(
            "SELECT count(*), coalesce(sum(ST_NPoints(p.geom)), 0) FROM parcels p "
            "JOIN communes c ON c.id = p.commune_id WHERE c.code = %s",
            (code,),
        ).fetchone()
        if have == (parcels, vertices):
            return
        with conn.transaction():
            conn.execute(
                "DELETE FROM parcels WHERE commune_id IN (SELECT id FROM communes WHERE code = %s)",
                (code,),
            )
            conn.execute("DELETE FROM communes WHERE code = %s", (code,))
            conn.execute("SELECT setseed(0.3)")  # the same parcels on every machine
            conn.execute(make, {"code": code, **params})
        conn.execute("ANALYZE parcels")


def busiest_tile(z: int) -> str:
    """The tile at zoom ``z`` over the commune's centre."""
    lon, lat = -66.0 + SIDE * CELL_DEG / 2, 9.0 + SIDE * CELL_DEG / 2
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/parcels/{z}/{x}/{y}.pbf"


def requests() -> list[tuple[str, str]]:
    return [
        ("tile, zoom 13", busiest_tile(13)),
        ("tile, zoom 15", busiest_tile(15)),
        ("the commune's map", f"/maps/communes/{CODE}"),
        ("land recovery's map, first", f"/maps/communes/{CODE}/land-recovery"),
        ("land recovery", f"/communes/{CODE}/analyses/land-recovery"),
        ("land recovery's map, its answer kept", f"/maps/communes/{CODE}/land-recovery"),
        ("the report file", f"/communes/{CODE}/report?download=true"),
        ("the package", f"/communes/{CODE}/package"),
        (f"land recovery of {GPS_CODE}", f"/communes/{GPS_CODE}/analyses/land-recovery"),
    ]


def busy_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def until_idle(dsn: str, most: float = 180.0) -> float:
    """Seconds until no backend is busy (at most ``most``)."""
    started = time.perf_counter()
    while busy_backends(dsn) and time.perf_counter() - started < most:
        time.sleep(0.2)
    return time.perf_counter() - started


def one_run(code: Path, dsn: str) -> dict[str, tuple[int, int, float, float]]:
    """Each request on the server running ``code``: (status, bytes, seconds, seconds the
    database stayed busy after the answer)."""
    os.environ["PYTHONPATH"] = str(code)  # env() of serve_pages passes it on
    until_idle(dsn)
    port = free_port()
    server = start_server(port, OUT / f"vertices-serve-{code.name}.log")
    out = {}
    try:
        for name, path in requests():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            t0 = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            out[name] = (response.status, len(body), time.perf_counter() - t0, until_idle(dsn))
            conn.close()
    finally:
        stop_server(server)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--before", type=Path, help="checkout of the previous version")
    args = parser.parse_args()
    header("vertices")
    dsn = prepare_database()
    make_commune(
        dsn, CODE, SIDE * SIDE, SIDE * SIDE * (RING + 1), MAKE_SQL, side=SIDE, d=CELL_DEG, n=RING
    )
    make_commune(dsn, GPS_CODE, 1_000, 2_001_000, GPS_SQL)
    runs, start_load, end_load = each_version(
        args.before, args.runs, lambda code: one_run(code, dsn)
    )
    rows = []
    for what, _ in requests():
        row: list[object] = [what]
        for name in runs:
            got = [r[what] for r in runs[name]]
            statuses = "/".join(sorted({str(g[0]) for g in got}))
            row += [
                statuses,
                fmt(int(statistics.median(g[1] for g in got))),
                statistics.median(g[2] for g in got),
                statistics.median(g[3] for g in got),
            ]
        rows.append(row)
    headers = ["request"]
    for name in runs:
        headers += [f"{name}: status", "bytes", "s", "database busy after, s"]
    print(table(f"{CODE} through serve ({args.runs} run(s) each)", headers, rows))
    print(f"\nload average (1/5/15 min) at start {start_load}, at end {end_load}")


if __name__ == "__main__":
    main()
