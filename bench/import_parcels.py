"""Import 200,000 parcels: `geo-comuna import parcels` against `ogr2ogr` with COPY, same file.

    .venv/bin/python bench/import_parcels.py [--runs 5]

Runs alternate (A B, B A, A B...) in one process so both tools see the same machine state.
Before each run: the target is emptied (geo-comuna: TRUNCATE parcels, parcel_history RESTART
IDENTITY CASCADE, which also empties production_units of the bench database, and the bench
database's audit log; ogr2ogr: -overwrite) and a CHECKPOINT is forced, so no run pays for
the previous run's dirty pages.
Wall clock is time.perf_counter around the subprocess; peak memory is /usr/bin/time -v's
"Maximum resident set size"; CPU seconds are the command's user + system time (time -v) and
the embedded cluster's (common.server_cpu_reader), which stay comparable when other work
shares the machine. Leaves the 200,000 parcels of the last geo-comuna run in place
for serve_pages.py and breakdown.py.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from common import (
    CLI,
    PARCEL_COMMUNE_PREFIX,
    PARCEL_COMMUNES_GPKG,
    PARCELS_GPKG,
    REPO,
    env,
    fmt,
    header,
    prepare_database,
    require_parcels_file,
    server_cpu_reader,
    summary,
    table,
)

TIME = "/usr/bin/time"
_TIME = {
    "rss": re.compile(r"Maximum resident set size \(kbytes\): (\d+)"),
    "user": re.compile(r"User time \(seconds\): ([\d.]+)"),
    "system": re.compile(r"System time \(seconds\): ([\d.]+)"),
}


def ensure_parcel_communes(dsn: str) -> None:
    """The tile communes the parcels refer to (imported once through the CLI)."""
    with psycopg.connect(dsn) as conn:
        have = conn.execute(
            "SELECT count(*) FROM communes WHERE code LIKE %s", (PARCEL_COMMUNE_PREFIX + "%",)
        ).fetchone()[0]
    if not have:
        proc = subprocess.run(
            [CLI, "import", "communes", str(PARCEL_COMMUNES_GPKG)],
            capture_output=True,
            text=True,
            env=env(),
            cwd=REPO,
        )
        if proc.returncode != 0:
            sys.exit(f"importing the tile communes failed:\n{proc.stderr}")


def reset(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)
        conn.execute("CHECKPOINT")


def forget_audit(dsn: str) -> None:
    """Empty the audit log of the bench database, so every run starts from the same state.

    The log is append-only by a trigger (migration 0006); this disposable database lifts it
    for the TRUNCATE only, in one transaction."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('audit_log')").fetchone()[0] is None:
            return
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("TRUNCATE audit_log")
        conn.execute("ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only")


@dataclass
class Run:
    wall: float  # s
    client_cpu: float  # s, user + system of the command
    server_cpu: float | None  # s, the database server's processes
    peak_rss_mb: int
    stdout: str


def settled(server_cpu: Callable[[], float]) -> float:
    """The server's CPU seconds once the command's backend has exited and been counted: read
    right after the command returns, an exiting backend can be in neither the live children
    nor the reaped ones yet (ogr2ogr once read 0.06 s, 3.6 s a second later)."""
    last = server_cpu()
    for _ in range(25):
        time.sleep(0.2)
        now = server_cpu()
        if now == last:
            return now
        last = now
    return last


def timed(cmd: list[str], server_cpu: Callable[[], float] | None) -> Run:
    """One command under /usr/bin/time -v: wall clock, CPU on both sides, peak memory."""
    cpu0 = server_cpu() if server_cpu else None
    started = time.perf_counter()
    proc = subprocess.run([TIME, "-v", *cmd], capture_output=True, text=True, env=env(), cwd=REPO)
    wall = time.perf_counter() - started
    cpu1 = settled(server_cpu) if server_cpu else None
    if proc.returncode != 0:
        sys.exit(
            f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}\n"
            f"{proc.stderr[-3000:]}"
        )
    found = {
        key: float(m[1]) if (m := rx.search(proc.stderr)) else 0.0 for key, rx in _TIME.items()
    }
    return Run(
        wall,
        found["user"] + found["system"],
        None if cpu0 is None else cpu1 - cpu0,
        int(found["rss"]) // 1024,
        proc.stdout,
    )


def run_geo_comuna(
    dsn: str, server_cpu: Callable[[], float] | None, path: Path = PARCELS_GPKG
) -> Run:
    forget_audit(dsn)
    reset(dsn, "TRUNCATE parcels, parcel_history RESTART IDENTITY CASCADE")
    return timed([CLI, "import", "parcels", str(path)], server_cpu)


def run_ogr2ogr(dsn: str, server_cpu: Callable[[], float] | None, path: Path = PARCELS_GPKG) -> Run:
    reset(dsn, "SELECT 1")
    return timed(
        [
            "ogr2ogr",
            "--config",
            "PG_USE_COPY",
            "YES",
            "-f",
            "PostgreSQL",
            f"PG:{dsn}",
            str(path),
            "-nln",
            "parcels_ogr",
            "-overwrite",
            "-lco",
            "GEOMETRY_NAME=geom",
            "-lco",
            "SPATIAL_INDEX=GIST",
        ],
        server_cpu,
    )


GEO_COMUNA, OGR2OGR = "geo-comuna import", "ogr2ogr (PG_USE_COPY)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_parcels_file()
    header("import_parcels")
    dsn = prepare_database()
    ensure_parcel_communes(dsn)
    server_cpu = server_cpu_reader()
    runs: dict[str, list[Run]] = {GEO_COMUNA: [], OGR2OGR: []}
    tools = {GEO_COMUNA: run_geo_comuna, OGR2OGR: run_ogr2ogr}
    for run in range(args.runs):
        for name in (GEO_COMUNA, OGR2OGR) if run % 2 == 0 else (OGR2OGR, GEO_COMUNA):
            result = tools[name](dsn, server_cpu)
            runs[name].append(result)
            print(
                f"  run {run + 1} {name}: {result.wall:.2f} s, peak RSS {result.peak_rss_mb} MB",
                file=sys.stderr,
            )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS parcels_ogr")
        stored = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
    rows = []
    for name, results in runs.items():
        med, lo, hi = summary([r.wall for r in results])
        client = summary([r.client_cpu for r in results])[0]
        server = (
            summary([r.server_cpu for r in results])[0]
            if all(r.server_cpu is not None for r in results)
            else None
        )
        total = client + server if server is not None else None
        peak = max(r.peak_rss_mb for r in results)
        rows.append([name, med, lo, hi, f"{200_000 / med:,.0f}", client, server, total, peak])
    print(
        table(
            f"Import of {PARCELS_GPKG.name} ({args.runs} runs each, alternating), s",
            [
                "tool",
                "wall median",
                "wall min",
                "wall max",
                "features/s",
                "CPU client",
                "CPU server",
                "CPU total",
                "peak RSS, MB",
            ],
            rows,
        )
    )
    stages: dict[str, list[float]] = {}
    for result in runs[GEO_COMUNA]:
        for stage, value in json.loads(result.stdout)["seconds"].items():
            stages.setdefault(stage, []).append(value)
    print(
        table(
            'Stages reported by `geo-comuna import` (its JSON "seconds"), s',
            ["stage", "median", "min", "max"],
            [[stage, *summary(values)] for stage, values in stages.items()],
        )
    )
    wall_ratio = rows[0][1] / rows[1][1]
    cpu_ratio = f"{rows[0][7] / rows[1][7]:.2f}x" if rows[0][7] and rows[1][7] else "-"
    print(
        f"\ngeo-comuna / ogr2ogr (medians): wall {wall_ratio:.2f}x, CPU {cpu_ratio}; target "
        f"<= 1.00x. Peak RSS target < 2048 MB: max {rows[0][8]} MB. CPU: client = the "
        "command's user + system time; server = the embedded cluster's processes. "
        f"Parcels stored now: {fmt(stored)}"
    )


if __name__ == "__main__":
    main()
