"""Serving parcels: latency of /collections/parcels/items pages from `geo-comuna serve`.

    .venv/bin/python bench/serve_pages.py [--requests 200] [--threads 8] [--seconds 10]

Needs the 200,000 parcels stored (run import_parcels.py first). Runs VACUUM ANALYZE on
parcels (what autovacuum does soon after an import), starts `geo-comuna serve` on a free
127.0.0.1 port and, after a warm-up, sends with one keep-alive httpx client, one request at a
time: 1,000-item pages at random offsets in the first 10,000, a deep page (offset 190,000)
and ~0.01-degree bbox queries (limit 100). Latency is request sent to body read. For
comparison, in the same run: PostGIS alone building the same 1,000-item pages
(string_agg of ST_AsGeoJSON over an ORDER BY id LIMIT/OFFSET subquery, via psycopg), and the
service function geo_comuna.features.query.page without HTTP. Then a short concurrent run:
several client threads, each with its own connection, for a fixed time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from common import (
    CLI,
    OUT,
    REPO,
    env,
    fmt,
    free_port,
    header,
    percentile,
    prepare_database,
    table,
)
from make_parcels import EAST, NORTH, SOUTH, WEST

PAGE = 1000
DEEP_OFFSET = 190_000
BBOX_DEG = 0.01
GRID = (WEST, SOUTH, EAST, NORTH)  # where make_parcels.py puts the parcels
POSTGIS_PAGE = (
    "SELECT string_agg(ST_AsGeoJSON(t.*, 'geom', 6), ',') FROM "
    "(SELECT * FROM parcels ORDER BY id LIMIT 1000 OFFSET %s) t"
)


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env(),
            cwd=REPO,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"geo-comuna serve exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    sys.exit(f"geo-comuna serve did not answer within 60 s; see {log}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def peak_rss_mb(pid: int) -> float | None:
    """The server's peak resident memory so far (Linux /proc VmHWM), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sequential(client: httpx.Client, urls: list[str]) -> tuple[list[float], float, int]:
    """(latencies in s, wall s, mean body bytes); every answer must be 200 with features."""
    latencies, size = [], 0
    started = time.perf_counter()
    for url in urls:
        t0 = time.perf_counter()
        response = client.get(url)
        body = response.content
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200 or not body.startswith(b'{"type":"FeatureCollection"'):
            sys.exit(f"GET {url} -> {response.status_code}: {body[:300]!r}")
        size += len(body)
    return latencies, time.perf_counter() - started, size // len(urls)


def check_page(client: httpx.Client, url: str, expected: int) -> None:
    doc = client.get(url).json()
    if doc["numberReturned"] != expected or len(doc["features"]) != expected:
        sys.exit(f"GET {url}: {doc['numberReturned']} features, expected {expected}")


def page_urls(rng: random.Random, count: int) -> list[str]:
    return [
        f"/collections/parcels/items?limit={PAGE}&offset={rng.randrange(0, 9001)}"
        for _ in range(count)
    ]


def bbox_url(rng: random.Random) -> str:
    """A page of up to 100 parcels in a random BBOX_DEG square of the parcels' grid."""
    w, s, e, n = GRID
    x, y = rng.uniform(w, e - BBOX_DEG), rng.uniform(s, n - BBOX_DEG)
    return (
        f"/collections/parcels/items?limit=100&bbox={x:.5f},{y:.5f},"
        f"{x + BBOX_DEG:.5f},{y + BBOX_DEG:.5f}"
    )


def bbox_urls(rng: random.Random, count: int) -> list[str]:
    return [bbox_url(rng) for _ in range(count)]


def postgis_alone(dsn: str, offsets: list[int]) -> list[float]:
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for offset in offsets[:20]:  # warm-up
            conn.execute(POSTGIS_PAGE, (offset,)).fetchone()
        for offset in offsets:
            t0 = time.perf_counter()
            text = conn.execute(POSTGIS_PAGE, (offset,)).fetchone()[0]
            times.append(time.perf_counter() - t0)
            if not text:
                sys.exit("PostGIS returned no features: are the parcels stored?")
    return times


def service_alone(dsn: str, offsets: list[int]) -> list[float]:
    """geo_comuna.features.query.page on one connection, as the API calls it (no HTTP)."""
    from geo_comuna.accounts import PUBLIC
    from geo_comuna.db.pool import connect
    from geo_comuna.features import query
    from geo_comuna.layers import get_layer
    from geo_comuna.settings import Settings

    async def main() -> list[float]:
        settings = Settings()
        conn = await connect(settings, dsn)
        layer, counts, times = get_layer("parcels"), query.CountCache(), []
        try:
            for i, offset in enumerate(offsets[:20] + offsets):
                t0 = time.perf_counter()
                await query.page(
                    conn,
                    layer,
                    query.Filters(),
                    limit=PAGE,
                    offset=offset,
                    counts=counts,
                    access=PUBLIC,
                )
                if i >= 20:
                    times.append(time.perf_counter() - t0)
        finally:
            await conn.close()
        return times

    return asyncio.run(main())


def concurrent(base: str, threads: int, seconds: float, seed: int) -> tuple[list[float], float]:
    """``threads`` clients, each its own keep-alive connection, for ``seconds``."""
    results: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []
    start = threading.Barrier(threads + 1)

    def client(index: int) -> None:
        rng = random.Random(seed + index)
        with httpx.Client(base_url=base, timeout=60) as http:
            start.wait()
            deadline = time.perf_counter() + seconds
            for _ in range(100_000):  # bounded; the deadline ends it first
                if time.perf_counter() >= deadline:
                    break
                t0 = time.perf_counter()
                response = http.get(page_urls(rng, 1)[0])
                _ = response.content
                results[index].append(time.perf_counter() - t0)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    break

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    t0 = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - t0
    if failures:
        sys.exit(f"concurrent run failed: {failures[0]}")
    return [x for r in results for x in r], wall


def row(name: str, latencies: list[float], wall: float | None, size: int | None) -> list:
    ms = [x * 1000 for x in latencies]
    return [
        name,
        len(ms),
        percentile(ms, 50),
        percentile(ms, 95),
        max(ms),
        f"{len(ms) / wall:,.1f}" if wall else "-",
        f"{size / 1024:,.0f}" if size else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    header("serve_pages")
    dsn = prepare_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
        if stored < DEEP_OFFSET + PAGE:
            sys.exit(f"{stored} parcels stored; run bench/import_parcels.py first")
        conn.execute("VACUUM ANALYZE parcels")
    os.environ.update(env())  # service_alone builds Settings()
    rng = random.Random(args.seed)
    pages, bboxes = page_urls(rng, args.requests), bbox_urls(rng, args.requests)
    deep = [f"/collections/parcels/items?limit={PAGE}&offset={DEEP_OFFSET}"] * args.requests
    offsets = [int(u.rsplit("=", 1)[1]) for u in pages]
    port = free_port()
    server = start_server(port, OUT / "serve.log")
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            check_page(client, pages[0], PAGE)
            check_page(client, deep[0], PAGE)
            runs: list[tuple[str, list[str]]] = [
                (f"page of {PAGE}, random offset < 10,000", pages),
                (f"deep page of {PAGE}, offset {DEEP_OFFSET:,}", deep),
                (f"bbox ~{BBOX_DEG} deg, limit 100", bboxes),
            ]
            for _, urls in runs:  # warm-up: plans, count cache, connections
                sequential(client, urls[:20])
            for name, urls in runs:
                latencies, wall, size = sequential(client, urls)
                rows.append(row(f"HTTP {name}", latencies, wall, size))
        base_times: list[tuple[str, Callable[[str, list[int]], list[float]]]] = [
            ("PostGIS alone: string_agg(ST_AsGeoJSON), same offsets", postgis_alone),
            ("query.page() without HTTP, same offsets", service_alone),
        ]
        for name, measure in base_times:
            times = measure(dsn, offsets)
            rows.append(row(name, times, sum(times), None))
        latencies, wall = concurrent(
            f"http://127.0.0.1:{port}", args.threads, args.seconds, args.seed
        )
        rows.append(
            row(
                f"HTTP page of {PAGE}, {args.threads} threads x {args.seconds:g} s",
                latencies,
                wall,
                None,
            )
        )
        server_rss = peak_rss_mb(server.pid)
    finally:
        stop_server(server)
    print(
        table(
            f"Parcels pages ({fmt(stored)} stored), latency in ms",
            ["request", "n", "p50", "p95", "max", "req/s", "body KiB"],
            rows,
        )
    )
    print(
        f"\nserver peak RSS: {fmt(server_rss, 0)} MB. Target: p50 < 50 ms for the 1,000-item "
        "page (peers: tipg 93-107 ms p50, PostGIS alone 5-6.5 ms)."
    )


if __name__ == "__main__":
    main()
