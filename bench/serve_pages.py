"""Serving parcels: /collections/parcels/items pages and items from `geo-comuna serve`, each
as a ratio to one SQL query giving the same features, measured in the same run.

    .venv/bin/python bench/serve_pages.py [--requests 200] [--threads 8] [--seconds 10]

Needs the 200,000 parcels stored (run import_parcels.py first). Runs VACUUM ANALYZE on
parcels (what autovacuum does soon after an import), starts `geo-comuna serve` on a free
127.0.0.1 port and, after a warm-up, sends over one keep-alive connection, one request at a
time, each request followed by its floor on a psycopg connection (so both see the machine
alike; the ratio is of the two medians):

- 1,000-item pages by key (``after=``, what the next links carry) at random depths in the
  200,000, and at the deepest page; the floor is string_agg(ST_AsGeoJSON(t.*)) over
  ``WHERE id > key ORDER BY id LIMIT 1000``;
- 1,000-item pages by offset (random < 10,000, and 190,000); floor: the same with OFFSET;
- ~0.01-degree bbox pages (limit 100); floor: the same box with && and ST_Intersects;
- one parcel by id, and again with its ETag in If-None-Match (304); floor: ST_AsGeoJSON of
  the row by id;
- the random-depth key page with ``Accept-Encoding: gzip``: bytes on the wire and time.

The page floor leaves out what our features carry and ST_AsGeoJSON(t.*) does not: a
parcel's commune code and its geodesic area (ST_Area on the spheroid); a second floor
builds exactly our features in one hand-written statement, to tell the service's own cost
from the area's. Latency is request sent to body read, with http.client (a thin client:
what is timed is the server), and the server process' CPU time per request (user + system,
/proc; not inflated by waiting for a core when the machine is loaded). Then a short
concurrent run: several client threads, each with its own connection, for a fixed time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
#: one SQL query per request kind: the features, GeoJSON text (9 decimals, as served), nothing else
FLOOR_KEY = (
    "SELECT string_agg(ST_AsGeoJSON(t.*, 'geom', 9), ',') FROM "
    "(SELECT * FROM parcels WHERE id > %s ORDER BY id LIMIT 1000) t"
)
FLOOR_OFFSET = (
    "SELECT string_agg(ST_AsGeoJSON(t.*, 'geom', 9), ',') FROM "
    "(SELECT * FROM parcels ORDER BY id LIMIT 1000 OFFSET %s) t"
)
FLOOR_BBOX = (
    "SELECT string_agg(ST_AsGeoJSON(t.*, 'geom', 9), ',') FROM "
    "(SELECT * FROM parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
    "AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY id LIMIT 100) t"
)
FLOOR_ITEM = "SELECT ST_AsGeoJSON(t.*, 'geom', 9) FROM parcels t WHERE id = %s"
#: our features exactly (commune code, geodesic area), in one hand-written statement
SAME_FEATURES = """
    SELECT string_agg('{"type":"Feature","id":' || t.id || ',"geometry":'
        || ST_AsGeoJSON(t.geom, 9, 0) || ',"properties":' || json_build_object(
            'commune', c.code, 'code', t.code, 'tenure', t.tenure, 'land_use', t.land_use,
            'recovered_on', t.recovered_on,
            'area_ha', round((ST_Area(t.geom::geography) / 10000)::numeric, 4))::text || '}',
        ',' ORDER BY t.id)
    FROM (SELECT * FROM parcels WHERE id > %s ORDER BY id LIMIT 1000) t
    LEFT JOIN communes c ON c.id = t.commune_id
"""


@dataclass
class Pair:
    """A request kind: its HTTP latencies and its floor's, taken alternately."""

    name: str
    http: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    wire: list[int] = field(default_factory=list)  # bytes on the wire per response
    #: CPU seconds the server process spent on the HTTP requests (user + system)
    cpu: float = 0.0


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a process so far: unlike wall time, not inflated by
    waiting for a core on a loaded machine."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    port: int, log: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`geo-comuna serve` with one worker (``extra``: more of its environment)."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**env(), **(extra or {})},
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


class Http:
    """One keep-alive HTTP/1.1 connection; GET returns (status, headers, body)."""

    def __init__(self, port: int, pid: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.pid = pid  # the server's, for its CPU time

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def close(self) -> None:
        self.conn.close()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_pair(
    pair: Pair,
    client: Http,
    db: psycopg.Connection,
    requests: list[tuple[str, dict[str, str], str, tuple]],
    status: int = 200,
) -> None:
    """Each (path, headers, floor SQL, floor params): the request, then its floor."""
    for path, headers, floor, params in requests:
        cpu = cpu_of(client.pid)
        elapsed, (code, got, body) = timed(lambda: client.get(path, headers))  # noqa: B023
        pair.cpu += cpu_of(client.pid) - cpu
        if code != status:
            sys.exit(f"GET {path} -> {code}: {body[:300]!r}")
        pair.http.append(elapsed)
        pair.wire.append(len(body))
        elapsed, row = timed(lambda: db.execute(floor, params).fetchone())  # noqa: B023
        if not row or row[0] is None:
            sys.exit(f"the floor of {pair.name} found nothing: {floor} {params}")
        pair.floor.append(elapsed)


def key_pages(rng: random.Random, ids: list[int], count: int) -> list[tuple[str, dict, str, tuple]]:
    """1,000-item pages after random ids anywhere in the layer."""
    keys = [ids[rng.randrange(0, len(ids) - PAGE - 1)] for _ in range(count)]
    return [
        (f"/collections/parcels/items?limit={PAGE}&after={k}", {}, FLOOR_KEY, (k,)) for k in keys
    ]


def bbox_requests(rng: random.Random, count: int) -> list[tuple[str, dict, str, tuple]]:
    out = []
    w, s, e, n = GRID
    for _ in range(count):
        x, y = rng.uniform(w, e - BBOX_DEG), rng.uniform(s, n - BBOX_DEG)
        box = (round(x, 5), round(y, 5), round(x + BBOX_DEG, 5), round(y + BBOX_DEG, 5))
        path = "/collections/parcels/items?limit=100&bbox=" + ",".join(f"{v:.5f}" for v in box)
        out.append((path, {}, FLOOR_BBOX, box + box))
    return out


def ms(values: list[float], pct: float = 50) -> float:
    return percentile([v * 1000 for v in values], pct)


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
                offset = rng.randrange(0, 9001)
                response = http.get(f"/collections/parcels/items?limit={PAGE}&offset={offset}")
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
    values = [x * 1000 for x in latencies]
    return [
        name,
        len(values),
        percentile(values, 50),
        percentile(values, 95),
        max(values),
        f"{len(values) / wall:,.1f}" if wall else "-",
        f"{size / 1024:,.0f}" if size else "-",
    ]


def load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


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
        ids = [r[0] for r in conn.execute("SELECT id FROM parcels ORDER BY id")]
        if len(ids) < DEEP_OFFSET + PAGE:
            sys.exit(f"{len(ids)} parcels stored; run bench/import_parcels.py first")
        conn.execute("VACUUM ANALYZE parcels")
    rng = random.Random(args.seed)
    n = args.requests
    deepest = ids[-PAGE - 1]
    one = [ids[rng.randrange(0, len(ids))] for _ in range(n)]
    pairs: list[tuple[Pair, list, int]] = [
        (Pair(f"page of {PAGE} by key (next links), random depth"), key_pages(rng, ids, n), 200),
        (
            Pair(f"page of {PAGE} by key, the last page"),
            [
                (
                    f"/collections/parcels/items?limit={PAGE}&after={deepest}",
                    {},
                    FLOOR_KEY,
                    (deepest,),
                )
            ]
            * n,
            200,
        ),
        (
            Pair(f"page of {PAGE} by offset < 10,000"),
            [
                (f"/collections/parcels/items?limit={PAGE}&offset={o}", {}, FLOOR_OFFSET, (o,))
                for o in (rng.randrange(0, 9001) for _ in range(n))
            ],
            200,
        ),
        (
            Pair(f"page of {PAGE} by offset {DEEP_OFFSET:,}"),
            [
                (
                    f"/collections/parcels/items?limit={PAGE}&offset={DEEP_OFFSET}",
                    {},
                    FLOOR_OFFSET,
                    (DEEP_OFFSET,),
                )
            ]
            * n,
            200,
        ),
        (Pair(f"bbox ~{BBOX_DEG} deg, limit 100"), bbox_requests(rng, n), 200),
        (
            Pair("one parcel by id"),
            [(f"/collections/parcels/items/{i}", {}, FLOOR_ITEM, (i,)) for i in one],
            200,
        ),
    ]
    gzip = Pair(f"page of {PAGE} by key, Accept-Encoding: gzip")
    gzip_requests = [
        (p, {"Accept-Encoding": "gzip"}, f, a) for p, _, f, a in key_pages(rng, ids, n)
    ]
    plain = [(p, {"Accept-Encoding": "identity"}, f, a) for p, _, f, a in gzip_requests]
    same = Pair("the same page: our features in one hand-written statement")
    started = load()
    port = free_port()
    server = start_server(port, OUT / "serve.log")
    rows, concurrent_row = [], None
    try:
        client = Http(port, server.pid)
        with psycopg.connect(dsn, autocommit=True) as db:
            for _pair, requests, status in pairs:  # warm-up: plans, count cache, connections
                run_pair(Pair("warm-up"), client, db, requests[:20], status)
            for pair, requests, status in pairs:
                run_pair(pair, client, db, requests, status)
            # 304: the ETag of each parcel first, then If-None-Match with it
            tags = [(i, client.get(f"/collections/parcels/items/{i}")[1]["etag"]) for i in one]
            cached = Pair("one parcel, If-None-Match: its ETag (304)")
            run_pair(
                cached,
                client,
                db,
                [
                    (f"/collections/parcels/items/{i}", {"If-None-Match": t}, FLOOR_ITEM, (i,))
                    for i, t in tags
                ],
                status=304,
            )
            pairs.append((cached, [], 304))
            identity = Pair(f"page of {PAGE} by key, Accept-Encoding: identity")
            for packed, bare in zip(gzip_requests, plain, strict=True):  # alternately
                run_pair(gzip, client, db, [packed])
                run_pair(identity, client, db, [bare])
            pairs += [(identity, [], 200), (gzip, [], 200)]
            for _path, _, _, params in key_pages(rng, ids, n):
                elapsed, _ = timed(lambda: db.execute(SAME_FEATURES, params).fetchone())  # noqa: B023
                same.floor.append(elapsed)
                elapsed, _ = timed(lambda: db.execute(FLOOR_KEY, params).fetchone())  # noqa: B023
                same.http.append(elapsed)
        client.close()
        latencies, wall = concurrent(
            f"http://127.0.0.1:{port}", args.threads, args.seconds, args.seed
        )
        concurrent_row = row(
            f"HTTP page of {PAGE} by offset, {args.threads} threads x {args.seconds:g} s",
            latencies,
            wall,
            None,
        )
        server_rss = peak_rss_mb(server.pid)
    finally:
        stop_server(server)
    ended = load()
    for pair, _, _ in pairs:
        http_p50, floor_p50 = ms(pair.http), ms(pair.floor)
        rows.append(
            [
                pair.name,
                len(pair.http),
                http_p50,
                ms(pair.http, 95),
                floor_p50,
                f"{http_p50 / floor_p50:.2f}x",
                f"{http_p50 - floor_p50:+.3f}",
                f"{pair.cpu / len(pair.http) * 1000:.2f}",
                f"{statistics.mean(pair.wire) / 1024:,.1f}",
            ]
        )
    print(
        table(
            f"Parcels ({fmt(len(ids))} stored): HTTP against one SQL query, same run, ms",
            [
                "request",
                "n",
                "HTTP p50",
                "HTTP p95",
                "SQL p50",
                "ratio",
                "diff",
                "server CPU/req",
                "KiB sent",
            ],
            rows,
        )
    )
    print(
        f"\nOur features in one hand-written SQL statement: p50 {ms(same.floor):.3f} ms against "
        f"{ms(same.http):.3f} ms for the floor's ST_AsGeoJSON(t.*) "
        f"({ms(same.floor) / ms(same.http):.2f}x): the cost of the commune code and the "
        "geodesic area."
    )
    print(
        table("Concurrent", ["request", "n", "p50", "p95", "max", "req/s", "KiB"], [concurrent_row])
    )
    print(
        f"\nload average (1/5/15 min) at start {started}, at end {ended}; "
        f"server peak RSS: {fmt(server_rss, 0)} MB."
    )


if __name__ == "__main__":
    main()
