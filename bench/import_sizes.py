"""Import 1,000 to 1,000,000 parcels: `geo-comuna import parcels` against `ogr2ogr` with COPY,
each size from the same GeoPackage for both, all sizes in one run.

    .venv/bin/python bench/make_parcels.py --count N   # for each size below, once
    .venv/bin/python bench/import_sizes.py [--sizes 1000,10000,50000,200000,1000000]

Each size runs geo-comuna and ogr2ogr back to back, alternating which goes first (A B, B A...),
as import_parcels.py does for 200,000 (same reset before each run, same measures): 5 runs each
up to 50,000 parcels, 3 above (``--runs``/``--big-runs``). The load average is read before and
after each size, since the machine is shared: only the ratio within a size means anything.

With ``--upload`` each run also imports the same file through a `geo-comuna serve` started
once (``POST /collections/parcels/import`` by curl, as a planner's browser or QGIS sends it):
the import as the service does it, with Python's start-up paid once and not per file. Its
time is curl's whole run (sending the file, the server saving it, the import, the answer);
its CPU and memory are the server process's (user + system over the run; peak RSS so far).
Files over the server's upload limit (``max_upload_bytes``) are not uploaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from common import (
    OUT,
    cli,
    fmt,
    free_port,
    header,
    parcels_gpkg,
    prepare_database,
    server_cpu_reader,
    table,
)
from import_parcels import (
    Run,
    ensure_parcel_communes,
    forget_audit,
    reset,
    run_geo_comuna,
    run_ogr2ogr,
    timed,
)
from serve_pages import cpu_of, peak_rss_mb, start_server, stop_server

from geo_comuna.settings import Settings

GEO_COMUNA, OGR2OGR, UPLOAD = "geo-comuna", "ogr2ogr", "upload"


class Uploads:
    """A `geo-comuna serve` taking the files as uploads, and an admin's token for it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = start_server(self.port, OUT / "serve_import.log")
        user = f"bench-import-{int(time.time())}"
        self.token = cli("users", "add", user, "--role", "admin").stdout.strip().splitlines()[-1]
        self.limit = Settings().max_upload_bytes

    def run(self, dsn: str, server_cpu: Callable[[], float] | None, path: Path) -> Run:
        forget_audit(dsn)
        reset(dsn, "TRUNCATE parcels, parcel_history RESTART IDENTITY CASCADE")
        before = cpu_of(self.server.pid)
        url = f"http://127.0.0.1:{self.port}/collections/parcels/import"
        auth = f"Authorization: Bearer {self.token}"
        sent = ["curl", "-sS", "--fail-with-body", "-H", auth, "-F", f"file=@{path}", url]
        run = timed(sent, server_cpu)
        run.client_cpu = cpu_of(self.server.pid) - before  # the service's, not curl's
        run.peak_rss_mb = int(peak_rss_mb(self.server.pid) or 0)
        return run

    def close(self) -> None:
        stop_server(self.server)


SIZES = "1000,10000,50000,200000,1000000"


def against(ours: list[Run], peer: list[Run]) -> tuple[float, float, str, str]:
    """The median wall time of ``ours`` and of ``peer``, their ratio and the range of the
    ratios of the runs taken one after the other."""
    wall = statistics.median(r.wall for r in ours)
    peer_wall = statistics.median(r.wall for r in peer)
    pairs = [a.wall / b.wall for a, b in zip(ours, peer, strict=True)]
    return wall, peer_wall, f"**{wall / peer_wall:.2f}x**", f"{min(pairs):.2f}-{max(pairs):.2f}x"


def measure(
    args: argparse.Namespace,
    sizes: list[int],
    dsn: str,
    server_cpu: Callable[[], float] | None,
    uploads: Uploads | None,
) -> tuple[list[list[object]], list[list[object]], list[list[object]]]:
    """Each size's runs, alternating the tools: rows of the three tables."""
    tools: dict[str, Callable[..., Run]] = {GEO_COMUNA: run_geo_comuna, OGR2OGR: run_ogr2ogr}
    rows: list[list[object]] = []
    stage_rows: list[list[object]] = []
    upload_rows: list[list[object]] = []
    for size in sizes:
        path = parcels_gpkg(size)
        named = [GEO_COMUNA, OGR2OGR]
        if uploads and path.stat().st_size <= uploads.limit:
            tools[UPLOAD] = uploads.run
            named.append(UPLOAD)
        runs: dict[str, list[Run]] = {name: [] for name in named}
        load_before = os.getloadavg()[0]
        for run in range(args.runs if size <= 50_000 else args.big_runs):
            for name in named if run % 2 == 0 else named[::-1]:
                result = tools[name](dsn, server_cpu, path)
                runs[name].append(result)
                print(
                    f"  {size:,} run {run + 1} {name}: {result.wall:.2f} s, "
                    f"peak RSS {result.peak_rss_mb} MB",
                    file=sys.stderr,
                )
        load_after = os.getloadavg()[0]
        ours, peer = runs[GEO_COMUNA], runs[OGR2OGR]
        wall, peer_wall, ratio, per_pair = against(ours, peer)
        rows.append(
            [
                fmt(size),
                len(ours),
                wall,
                peer_wall,
                ratio,
                per_pair,
                statistics.median(r.client_cpu for r in ours),
                statistics.median(r.client_cpu for r in peer),
                max(r.peak_rss_mb for r in ours),
                max(r.peak_rss_mb for r in peer),
                f"{load_before:.1f}, {load_after:.1f}",
            ]
        )
        seconds = [json.loads(r.stdout)["seconds"] for r in ours]
        read = statistics.median(s["read"] for s in seconds)
        total = statistics.median(s["total"] for s in seconds)
        outside = statistics.median(r.wall - s["total"] for r, s in zip(ours, seconds, strict=True))
        stage_rows.append([fmt(size), outside, read, total, wall])
        if UPLOAD in runs:
            sent = runs[UPLOAD]
            upload_rows.append(
                [
                    fmt(size),
                    len(sent),
                    *against(sent, peer),
                    statistics.median(r.client_cpu for r in sent),
                    max(r.peak_rss_mb for r in sent),
                    f"{load_before:.1f}, {load_after:.1f}",
                ]
            )
    return rows, stage_rows, upload_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated parcel counts")
    parser.add_argument("--runs", type=int, default=5, help="runs each up to 50,000 parcels")
    parser.add_argument("--big-runs", type=int, default=3, help="runs each above 50,000")
    parser.add_argument(
        "--upload", action="store_true", help="also upload each file to a running server"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    missing = [str(parcels_gpkg(n)) for n in sizes if not parcels_gpkg(n).exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run bench/make_parcels.py --count N for each")
    header("import_sizes")
    dsn = prepare_database()
    ensure_parcel_communes(dsn)
    server_cpu = server_cpu_reader()
    uploads = Uploads() if args.upload else None
    try:
        rows, stage_rows, upload_rows = measure(args, sizes, dsn, server_cpu, uploads)
    finally:
        if uploads:
            uploads.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS parcels_ogr")
    print(
        table(
            "Import of parcels_<size>.gpkg, geo-comuna against ogr2ogr (PG_USE_COPY), "
            "alternating, s",
            [
                "parcels",
                "runs each",
                "geo-comuna median",
                "ogr2ogr median",
                "ratio of medians",
                "ratio per pair",
                "client CPU",
                "ogr2ogr client CPU",
                "peak RSS, MB",
                "ogr2ogr peak RSS, MB",
                "load (before, after)",
            ],
            rows,
        )
    )
    print(
        table(
            "Where geo-comuna's time went (medians), s",
            [
                "parcels",
                "start-up, connection, migrations check, exit (wall - total)",
                'first batch read, waited for ("read")',
                'import: reading to commit ("total")',
                "wall",
            ],
            stage_rows,
        )
    )
    if upload_rows:
        print(
            table(
                "The same files uploaded to a running geo-comuna serve (curl, "
                "POST /collections/parcels/import) against ogr2ogr, same runs, s",
                [
                    "parcels",
                    "runs",
                    "upload median",
                    "ogr2ogr median",
                    "ratio of medians",
                    "ratio per pair",
                    "server process CPU",
                    "server peak RSS so far, MB",
                    "load (before, after)",
                ],
                upload_rows,
            )
        )
    print("\ntarget: ratio <= 1.00x at every size, peak RSS < 200 MB at 1,000,000")


if __name__ == "__main__":
    main()
