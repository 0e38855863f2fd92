"""Field work at scale: `geo-comuna package` and `geo-comuna sync` of a 20,000-parcel commune.

    PYTHONPATH=. .venv/bin/python bench/sync.py [--runs 3]

The commune BENCH-SYNC (a 0.1-degree square, ~12,000 ha, over Lara; made once, deterministic)
holds 20,000 square parcels of ~0.6 ha (a 160 x 125 grid). Each run:
1. package: `geo-comuna package BENCH-SYNC --out …zip` (every layer, projects, offline map,
   report);
2. edit: 100 parcels get another tenure in the unzipped comuna.gpkg (ogrinfo -sql UPDATE, as
   a GDAL-based editor writes it);
3. sync: `geo-comuna sync BENCH-SYNC comuna.gpkg`: 20,000 parcels compared, 100 written;
4. re-sync: the same file again: 20,000 compared, nothing written.
Wall clock is time.perf_counter around the subprocess, peak memory /usr/bin/time -v's
"Maximum resident set size" of the command (the database server's memory is not counted).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import psycopg
from common import CLI, fmt, header, load, prepare_database, summary, table
from import_parcels import Run, forget_audit, timed

COMMUNE = "BENCH-SYNC"
PARCELS = 20_000
COLUMNS, ROWS = 160, 125
#: the commune's south-west corner and side, degrees
X0, Y0, SIDE = -69.40, 9.95, 0.1
EDITED = 100


def ensure_commune(dsn: str) -> None:
    """The commune and its parcels, made in SQL once (set-based, a few seconds)."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id "
            "WHERE c.code = %s",
            (COMMUNE,),
        ).fetchone()[0]
        if found == PARCELS:
            return
        conn.execute(
            "DELETE FROM parcels WHERE commune_id IN (SELECT id FROM communes WHERE code = %s)",
            (COMMUNE,),
        )
        conn.execute("DELETE FROM communes WHERE code = %s", (COMMUNE,))
        conn.execute(
            "INSERT INTO communes (code, name, kind, status, geom) VALUES (%s, 'Bench sync', "
            "'rural', 'active', ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
            (COMMUNE, X0, Y0, X0 + SIDE, Y0 + SIDE),
        )
        dx, dy = SIDE / COLUMNS, SIDE / ROWS
        conn.execute(
            """INSERT INTO parcels (commune_id, code, tenure, land_use, geom)
               SELECT c.id, 'BS-' || i || '-' || j,
                      (ARRAY['occupied', 'regularizing', 'regularized'])[1 + (i + j) %% 3],
                      (ARRAY['crops', 'pasture', 'forest'])[1 + (i * j) %% 3],
                      ST_Multi(ST_MakeEnvelope(%(x)s + i * %(dx)s + %(g)s, %(y)s + j * %(dy)s
                          + %(g)s, %(x)s + (i + 1) * %(dx)s - %(g)s,
                          %(y)s + (j + 1) * %(dy)s - %(g)s, 4326))
               FROM communes c, generate_series(0, %(cols)s - 1) i,
                    generate_series(0, %(rows)s - 1) j
               WHERE c.code = %(code)s""",
            {
                "x": X0,
                "y": Y0,
                "dx": dx,
                "dy": dy,
                "g": dx / 20,
                "cols": COLUMNS,
                "rows": ROWS,
                "code": COMMUNE,
            },
        )


def edit(gpkg: Path) -> None:
    subprocess.run(
        [
            "ogrinfo",
            "-q",
            str(gpkg),
            "-sql",
            "UPDATE parcels SET tenure = CASE tenure WHEN 'disputed' THEN 'occupied' "
            f"ELSE 'disputed' END WHERE id IN (SELECT id FROM parcels ORDER BY id "
            f"LIMIT {EDITED})",
        ],
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    header("sync")
    dsn = prepare_database()
    ensure_commune(dsn)
    steps: dict[str, list[Run]] = {"package": [], "sync (100 changed)": [], "re-sync (none)": []}
    for run in range(args.runs):
        forget_audit(dsn)
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "out") as scratch:
            work = Path(scratch)
            out = work / "bench-sync.zip"
            steps["package"].append(timed([CLI, "package", COMMUNE, "--out", str(out)], None))
            with zipfile.ZipFile(out) as zf:
                zf.extract("comuna.gpkg", work)
            gpkg = work / "comuna.gpkg"
            edit(gpkg)
            synced = timed([CLI, "sync", COMMUNE, str(gpkg), "--lang", "en"], None)
            if f"{EDITED} features written" not in synced.stdout:
                sys.exit(f"the sync did not write {EDITED} features:\n{synced.stdout}")
            steps["sync (100 changed)"].append(synced)
            again = timed([CLI, "sync", COMMUNE, str(gpkg), "--lang", "en"], None)
            if "Nothing to change" not in again.stdout:
                sys.exit(f"the re-sync changed something:\n{again.stdout}")
            steps["re-sync (none)"].append(again)
        print(f"  run {run + 1} done, load {load()}", file=sys.stderr)
    rows = []
    for name, results in steps.items():
        med, lo, hi = summary([r.wall for r in results])
        rss = summary([r.peak_rss_mb for r in results])[0]
        rows.append([name, med, lo, hi, fmt(int(rss))])
    print(
        table(
            f"{PARCELS:,} parcels in one commune ({args.runs} runs), s",
            ["step", "wall median", "wall min", "wall max", "peak RSS median, MB"],
            rows,
        )
    )
    print(f"\nload average at the end (1/5/15 min): {load()}")


if __name__ == "__main__":
    main()
