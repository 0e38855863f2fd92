"""Import 1,000 to 1,000,000 parcels: `geo-comuna import parcels` against `ogr2ogr` with COPY,
each size from the same GeoPackage for both, all sizes in one run.

    .venv/bin/python bench/make_parcels.py --count N   # for each size below, once
    .venv/bin/python bench/import_sizes.py [--sizes 1000,10000,50000,200000,1000000]

Each size runs geo-comuna and ogr2ogr back to back, alternating which goes first (A B, B A...),
as import_parcels.py does for 200,000 (same reset before each run, same measures): 5 runs each
up to 50,000 parcels, 3 above (``--runs``/``--big-runs``). The load average is read before and
after each size, since the machine is shared: only the ratio within a size means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import psycopg
from common import fmt, header, parcels_gpkg, prepare_database, server_cpu_reader, table
from import_parcels import Run, ensure_parcel_communes, run_geo_comuna, run_ogr2ogr

GEO_COMUNA, OGR2OGR = "geo-comuna", "ogr2ogr"
SIZES = "1000,10000,50000,200000,1000000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated parcel counts")
    parser.add_argument("--runs", type=int, default=5, help="runs each up to 50,000 parcels")
    parser.add_argument("--big-runs", type=int, default=3, help="runs each above 50,000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    missing = [str(parcels_gpkg(n)) for n in sizes if not parcels_gpkg(n).exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run bench/make_parcels.py --count N for each")
    header("import_sizes")
    dsn = prepare_database()
    ensure_parcel_communes(dsn)
    server_cpu = server_cpu_reader()
    tools = {GEO_COMUNA: run_geo_comuna, OGR2OGR: run_ogr2ogr}
    rows, stage_rows = [], []
    for size in sizes:
        path = parcels_gpkg(size)
        runs: dict[str, list[Run]] = {GEO_COMUNA: [], OGR2OGR: []}
        load_before = os.getloadavg()[0]
        for run in range(args.runs if size <= 50_000 else args.big_runs):
            for name in (GEO_COMUNA, OGR2OGR) if run % 2 == 0 else (OGR2OGR, GEO_COMUNA):
                result = tools[name](dsn, server_cpu, path)
                runs[name].append(result)
                print(
                    f"  {size:,} run {run + 1} {name}: {result.wall:.2f} s, "
                    f"peak RSS {result.peak_rss_mb} MB",
                    file=sys.stderr,
                )
        load_after = os.getloadavg()[0]
        ours, peer = runs[GEO_COMUNA], runs[OGR2OGR]
        wall = statistics.median(r.wall for r in ours)
        peer_wall = statistics.median(r.wall for r in peer)
        pairs = [a.wall / b.wall for a, b in zip(ours, peer, strict=True)]
        rows.append(
            [
                fmt(size),
                len(ours),
                wall,
                peer_wall,
                f"**{wall / peer_wall:.2f}x**",
                f"{min(pairs):.2f}-{max(pairs):.2f}x",
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
    print("\ntarget: ratio <= 1.00x at every size, peak RSS < 200 MB at 1,000,000")


if __name__ == "__main__":
    main()
