"""Many workers: requests/s and p95 of `geo-comuna serve --workers N` at 1, 2 and 4 workers,
with 8 and 32 concurrent clients.

    .venv/bin/python bench/workers.py [--seconds 8] [--runs 3]

Its own embedded cluster in bench/out/pg (GEO_COMUNA_DATA_DIR overrides it) with the states and
the sample communes (no rate limits: common.env). Three servers are started at once, one per
worker count, each on a free 127.0.0.1 port, and measured in turn, interleaved run by run so
that the machine's load falls on all of them alike. Each client is an asyncio task with its own
keep-alive connection (of one httpx client), all in this one process; for a run of
``--seconds`` it sends, picked at random: a page of up to 100 parcels at a random offset (50
%), one parcel by id (30 %), a parcels vector tile at zoom 14 over a sample commune (20 %;
cached by the server after its first build). Latency is request sent to body read. Reported:
the median over runs of the requests/s and of each run's p50 and p95, requests/s as a ratio to
one worker in the same run, and the CPU time per request of the server's processes and of
PostgreSQL (from /proc: what a request costs, whatever else runs on the machine). The clients
share the machine's CPUs with the servers and PostgreSQL: their CPU time is printed, and so is
the load before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from common import (
    CLI,
    OUT,
    REPO,
    env,
    free_port,
    header,
    load,
    percentile,
    prepare_database,
    server_cpu_reader,
    table,
)

WORKERS = (1, 2, 4)
CLIENTS = (8, 32)
TILE_ZOOM = 14


def start(workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env(),
            cwd=REPO,
            start_new_session=True,  # its workers are stopped with it
        )
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen[bytes], base: str, workers: int, log: Path) -> None:
    """Up when every worker answers: as many distinct connections as workers, each a new
    connection, until the server has answered on all (``/conformance`` is cheap)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"geo-comuna serve exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{base}/conformance", timeout=2).status_code == 200:
                started = log.read_text().count("Application startup complete")
                if started >= workers:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    sys.exit(f"geo-comuna serve --workers {workers} did not start in 120 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live children: the server's workers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            text = Path(f"/proc/{current}/stat").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
        pending += [int(c) for c in children]
    return total / tick


def targets(dsn: str) -> tuple[int, list[int], list[tuple[int, int]]]:
    """How many parcels, their ids, and the zoom-14 tiles holding parcel centres."""
    with psycopg.connect(dsn) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM parcels ORDER BY id")]
        centres = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM parcels) p"
        ).fetchall()
    n = 1 << TILE_ZOOM
    tiles = set()
    for lon, lat in centres:  # Web Mercator tile index (the slippy-map formula)
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        tiles.add((x, y))
    return len(ids), ids, sorted(tiles)


async def client(
    http: httpx.AsyncClient, rng: random.Random, stop_at: float, count: int, ids: list, tiles: list
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    while time.monotonic() < stop_at:
        pick = rng.random()
        if pick < 0.5:
            url = f"/collections/parcels/items?limit=100&offset={rng.randrange(count)}"
        elif pick < 0.8:
            url = f"/collections/parcels/items/{rng.choice(ids)}"
        else:
            x, y = rng.choice(tiles)
            url = f"/tiles/parcels/{TILE_ZOOM}/{x}/{y}.pbf"
        t0 = time.perf_counter()
        r = await http.get(url)
        await r.aread()
        latencies.append(time.perf_counter() - t0)
        failures += r.status_code != 200
    return latencies, failures


async def measure(
    base: str, clients: int, seconds: float, seed: int, count: int, ids: list, tiles: list
) -> tuple[float, float, float, int, int]:
    """(requests/s, p50 ms, p95 ms, failures, requests) of ``clients`` clients for
    ``seconds``. One httpx client with a connection per simulated client, opened before the
    clock starts (making 32 clients, each with its TLS context, costs seconds of CPU on a
    busy machine)."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.gather(*(http.get("/conformance") for _ in range(clients)))
        stop_at = time.monotonic() + seconds
        t0 = time.perf_counter()
        done = await asyncio.gather(
            *(
                client(http, random.Random(seed * 1000 + i), stop_at, count, ids, tiles)
                for i in range(clients)
            )
        )
        wall = time.perf_counter() - t0
    latencies = [v for lat, _ in done for v in lat]
    failures = sum(f for _, f in done)
    return (
        len(latencies) / wall,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 95) * 1000,
        failures,
        len(latencies),
    )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers stopped by finally
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    header("workers")
    dsn = prepare_database()
    count, ids, tiles = targets(dsn)
    database_cpu = server_cpu_reader()
    assert database_cpu is not None, "the CPU of the bench's own embedded cluster is read"
    load_before = load()
    OUT.mkdir(exist_ok=True)
    servers = {}
    try:
        for workers in WORKERS:
            log = OUT / f"serve-workers-{workers}.log"
            servers[workers] = (*start(workers, log), log)
        for workers, (proc, base, log) in servers.items():
            wait_ready(proc, base, workers, log)
        for _, base, _ in servers.values():  # warm: imports, pools, tile cache
            asyncio.run(measure(base, 8, 2.0, 0, count, ids, tiles))
        results: dict[tuple[int, int], list[tuple]] = {}
        cpu0 = time.process_time()
        for run in range(args.runs):
            for clients in CLIENTS:
                for workers, (proc, base, _) in servers.items():
                    api0, pg0 = cpu_of(proc.pid), database_cpu()
                    figures = asyncio.run(
                        measure(base, clients, args.seconds, run + 1, count, ids, tiles)
                    )
                    n = figures[4]
                    cpu = ((cpu_of(proc.pid) - api0) / n, (database_cpu() - pg0) / n)
                    results.setdefault((workers, clients), []).append((*figures, *cpu))
                    print(f"run {run + 1}: {workers} workers, {clients} clients: {figures} {cpu}")
        client_cpu = time.process_time() - cpu0
    finally:
        for proc, _, _ in servers.values():
            stop(proc)
    load_after = load()
    rows = []
    for clients in CLIENTS:
        one = statistics.median(r[0] for r in results[(1, clients)])
        for workers in WORKERS:
            runs = results[(workers, clients)]
            rps = statistics.median(r[0] for r in runs)
            rows.append(
                [
                    clients,
                    workers,
                    f"{rps:.0f}",
                    f"{statistics.median(r[1] for r in runs):.1f}",
                    f"{statistics.median(r[2] for r in runs):.1f}",
                    f"{rps / one:.2f}x",
                    f"{statistics.median(r[5] for r in runs) * 1000:.1f}",
                    f"{statistics.median(r[6] for r in runs) * 1000:.1f}",
                    sum(r[3] for r in runs),
                ]
            )
    measured = sum(len(v) for v in results.values()) * args.seconds
    print(
        table(
            f"`serve --workers N`, {count} sample parcels, medians of {args.runs} runs of "
            f"{args.seconds:.0f} s",
            [
                *("clients", "workers", "req/s", "p50 ms", "p95 ms", "req/s vs 1 worker"),
                *("API CPU ms/req", "PostgreSQL CPU ms/req", "errors"),
            ],
            rows,
        )
    )
    print(
        f"CPUs: {os.cpu_count()}; load (1/5/15 min) before {load_before}, after "
        f"{load_after}; the clients used {client_cpu:.0f} s of CPU in {measured:.0f} s "
        "measured"
    )


if __name__ == "__main__":
    main()
