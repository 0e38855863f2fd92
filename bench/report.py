"""The 5 de Marzo report over HTTP from `geo-comuna serve`: cold and warm, as a ratio to the
previous version of the code measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/report.py [--runs 3] [--warm 10] [--before DIR]

(run as root, GEO_COMUNA_RUN_AS=root lets the bench's servers stay root.)

``--before DIR``: a checkout of the previous version (``git worktree add /tmp/before main``);
its server runs the same database with ``PYTHONPATH=DIR``, one run of each version after the
other (interleaved), so both see the machine alike. Three times, each request sent to body
read over one keep-alive connection (http.client: what is timed is the server):

- **first**: the first report of a server just started (nothing cached, nothing imported
  lazily yet, PROJ's database not opened, templates not compiled);
- **cold**: on a server that has answered it once, right after a write that changes nothing
  (``UPDATE communes SET name = name WHERE false``: every writing statement bumps the
  layer's version, and every figure of the report reads communes), so every cached answer
  is stale: what the first reader after an import waits;
- **warm**: the same report again (median of ``--warm`` requests).

Medians of ``--runs`` runs; the load average at start and end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
from common import OUT, REPO, fmt, free_port, header, prepare_database, table
from serve_pages import start_server, stop_server

PATH = "/communes/5-DE-MARZO/report?lang=es"
BUMP = "UPDATE communes SET name = name WHERE false"
T = TypeVar("T")


def get(conn: http.client.HTTPConnection) -> float:
    t0 = time.perf_counter()
    conn.request("GET", PATH)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200 or b"Generado el" not in body:
        sys.exit(f"the report answered {response.status}: {body[:300]!r}")
    return elapsed


def one_run(code: Path, dsn: str, warm: int) -> dict[str, float | list[float]]:
    """first, cold and warm seconds of the server running ``code``."""
    os.environ["PYTHONPATH"] = str(code)  # env() of serve_pages passes it on
    port = free_port()
    server = start_server(port, OUT / f"report-serve-{code.name}.log")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        first = get(conn)
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(BUMP)
        cold = get(conn)
        warm_times = [get(conn) for _ in range(warm)]
        conn.close()
    finally:
        stop_server(server)
    return {"first": first, "cold": cold, "warm": statistics.median(warm_times)}


def revision(code: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return out.stdout.strip()[:60] or str(code)


def load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def each_version(
    before: Path | None, runs: int, one_run: Callable[[Path], T]
) -> tuple[dict[str, list[T]], str, str]:
    """``one_run(code)`` ``runs`` times for this checkout ("this") and, with ``before``, the
    previous version's ("before"), one version after the other so that both see the machine
    alike: the results per version, and the load average at start and at end."""
    versions = {"this": REPO} | ({"before": before.resolve()} if before else {})
    for name, code in versions.items():
        print(f"{name}: {revision(code)}")
    start = load()
    results: dict[str, list[T]] = {name: [] for name in versions}
    for _ in range(runs):
        for name, code in versions.items():
            results[name].append(one_run(code))
    return results, start, load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--before", type=Path, help="checkout of the previous version")
    args = parser.parse_args()
    header("report")
    dsn = prepare_database()
    runs, start_load, end_load = each_version(
        args.before, args.runs, lambda code: one_run(code, dsn, args.warm)
    )
    rows = []
    for what in ("first", "cold", "warm"):
        medians = {n: statistics.median(r[what] for r in runs[n]) for n in runs}
        spread = {n: (min(r[what] for r in runs[n]), max(r[what] for r in runs[n])) for n in runs}
        row: list[object] = [what, medians["this"], *spread["this"]]
        if "before" in medians:
            row += [medians["before"], f"{medians['this'] / medians['before']:.2f}x"]
        rows.append(row)
    headers = ["request", "this median, s", "min", "max"]
    if args.before:
        headers += ["before median, s", "this / before"]
    print(table(f"GET {PATH} ({args.runs} runs)", headers, rows))
    print(f"\nload average (1/5/15 min) at start {start_load}, at end {end_load}")
    print("\n".join(f"{n}: {[{k: fmt(v) for k, v in r.items()} for r in runs[n]]}" for n in runs))


if __name__ == "__main__":
    main()
