"""A commune's package over HTTP, kept once built: first request, repeats, a resumed download.

    PYTHONPATH=. .venv/bin/python bench/package_http.py [--runs 5] [--compute-seconds 20]

On the commune BENCH-SYNC of bench/sync.py (20,000 parcels, made once), against a `geo-comuna
serve` of its own (one worker; GEO_COMUNA_COMPUTE_SECONDS as given). Measured, each as
request sent to body read (httpx, a new connection each):
- the floor: `geo-comuna package BENCH-SYNC --out …` (the build alone, no HTTP), median;
- the first GET after a write (the build, or a 503 with Retry-After when it takes longer than
  the request waits: then it is asked again every Retry-After, here every 0.5 s, and the time
  is until the package came);
- repeated GETs of the same package (what every GET cost before packages were kept: a build);
- a GET with If-None-Match (304), and a GET of its second half (Range, If-Range: a download
  cut halfway going on).
Each run starts with a write (one parcel's note), so that its first GET builds anew.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from common import CLI, OUT, REPO, env, fmt, free_port, header, load, prepare_database, table
from serve_pages import start_server, stop_server
from sync import COMMUNE, ensure_commune

URL = f"/communes/{COMMUNE}/package"


def timed_get(base: str, headers: dict[str, str] | None = None) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    r = httpx.get(base + URL, headers=headers or {}, timeout=600)
    return time.perf_counter() - started, r


def first_package(base: str) -> tuple[float, int, httpx.Response]:
    """Until the package comes: seconds, the 503s on the way, the response."""
    started, waits = time.perf_counter(), 0
    while True:
        r = httpx.get(base + URL, timeout=600)
        if r.status_code != 503:
            return time.perf_counter() - started, waits, r
        assert r.headers.get("retry-after") == "60", r.text
        waits += 1
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compute-seconds", type=float, default=20.0)
    args = parser.parse_args()
    dsn = prepare_database()
    ensure_commune(dsn)
    header("package_http")
    print(f"- GEO_COMUNA_COMPUTE_SECONDS: {args.compute_seconds:g}\n")
    builds = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(
                [CLI, "package", COMMUNE, "--out", str(Path(tmp) / "p.zip"), "--public"],
                check=True,
                capture_output=True,
                env=env(),
                cwd=REPO,
            )
            builds.append(time.perf_counter() - started)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows: dict[str, list[float]] = {k: [] for k in ("first", "repeat", "304", "rest")}
    waits, size = [], 0
    server_env = {"GEO_COMUNA_COMPUTE_SECONDS": f"{args.compute_seconds:g}"}
    proc = start_server(port, OUT / "serve_package.log", server_env)
    try:
        for run in range(args.runs):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    "UPDATE parcels SET notes = %s WHERE id = (SELECT min(p.id) FROM parcels p "
                    "JOIN communes c ON c.id = p.commune_id WHERE c.code = %s)",
                    (f"run {run} {time.time()}", COMMUNE),
                )
            took, waited, r = first_package(base)
            assert r.status_code == 200, r.text[:500]
            rows["first"].append(took)
            waits.append(waited)
            etag, size = r.headers["etag"], len(r.content)
            for _ in range(5):
                took, again = timed_get(base)
                assert again.status_code == 200 and len(again.content) == size
                rows["repeat"].append(took)
                took, same = timed_get(base, {"If-None-Match": etag})
                assert same.status_code == 304
                rows["304"].append(took)
                half = size // 2
                took, rest = timed_get(base, {"Range": f"bytes={half}-", "If-Range": etag})
                assert rest.status_code == 206 and rest.content == r.content[half:]
                rows["rest"].append(took)
    finally:
        stop_server(proc)
    floor = statistics.median(builds)
    out = [["`geo-comuna package` (the build, no HTTP)", len(builds), fmt(floor), "1.00x", ""]]
    names = {
        "first": "first GET after a write (the build)",
        "repeat": "GET again (before: a build each time)",
        "304": "GET with If-None-Match: its ETag (304)",
        "rest": "GET of its second half (Range, If-Range)",
    }
    for key, name in names.items():
        median = statistics.median(rows[key])
        note = f"503s on the way: {max(waits)}" if key == "first" else ""
        out.append([name, len(rows[key]), fmt(median), f"{median / floor:.3f}x", note])
    print(
        table(
            f"Package of {COMMUNE} ({size / 2**20:.1f} MB), seconds (median)",
            ["request", "n", "s", "of the build", ""],
            out,
        )
    )
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
