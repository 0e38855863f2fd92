"""Load: 50 concurrent readers and 5 writers against the 200,000-parcel store for 60 s.

    .venv/bin/python bench/bench_load.py [--seconds 60] [--readers 50] [--writers 5] [--write]

Its own embedded cluster in bench/out/pg-load (GEO_COMUNA_DATA_DIR overrides it). The first
run loads the states and sample communes, then the tile communes and the 200,000 parcels of
bench/make_parcels.py (made if missing) with `geo-comuna import`, and runs VACUUM ANALYZE.

`geo-comuna serve` (one process, its default pool) listens on a free 127.0.0.1 port. Each
client is an asyncio task with its own keep-alive connection, all in this one process:

- readers pick at random: a 1,000-item page at a random offset, one parcel by id, a 0.01-degree
  bbox (limit 100), or GET /communes/{id}/states of a tile commune;
- writers, as an editor of 20 tile communes, alternate: read a parcel of a small shared set,
  then PATCH its notes with If-Match (writers racing on one parcel get 412, an expected
  outcome counted apart), and POST a new parcel.

Latency is request sent to body read. After the run the database is asked what was stored:
every acknowledged POST must be there under the id it was given, and every acknowledged PATCH
must be in audit_log with the note it wrote; no more, no less. Nothing else may fail.
``--write`` appends the figures to bench/README.md under "## Load".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from common import (
    OUT,
    PARCEL_COMMUNE_PREFIX,
    PARCELS_GPKG,
    REPO,
    cli,
    free_port,
    header,
    percentile,
    prepare_database,
    table,
)
from serve_pages import PAGE, bbox_url, start_server

PARCELS = 200_000
HOT_PARCELS = 50  # the writers' shared parcels: small, so that If-Match races happen
EDITOR_COMMUNES = 20


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    stale: int = 0  # 412: another writer changed the parcel first
    posted: dict[str, int] = field(default_factory=dict)  # code -> id given back
    patched: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def fail(self, what: str) -> None:
        if len(self.failures) < 1000:
            self.failures.append(what)


# ---------------------------------------------------------------- the store


def ensure_store(dsn: str) -> None:
    """States, sample and tile communes, 200,000 parcels: imported once, then kept."""
    with psycopg.connect(dsn) as conn:
        tiles = conn.execute(
            "SELECT count(*) FROM communes WHERE code LIKE %s", (PARCEL_COMMUNE_PREFIX + "%",)
        ).fetchone()[0]
        parcels = conn.execute("SELECT count(*) FROM parcels WHERE code LIKE 'LP-%'").fetchone()[0]
    if parcels >= PARCELS:
        return
    if not PARCELS_GPKG.exists():
        print("  making the parcels file (bench/make_parcels.py)", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "make_parcels.py")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if not tiles:
        print("  importing the tile communes", file=sys.stderr)
        cli("import", "communes", str(OUT / "parcel_communes.gpkg"))
    print(f"  importing {PARCELS:,} parcels", file=sys.stderr)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM parcels WHERE code LIKE 'LP-%'")
    cli("import", "parcels", str(PARCELS_GPKG))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE parcels")


def make_editor(dsn: str, run: str) -> tuple[str, list[str], list[int], list[int]]:
    """An editor of some tile communes: its token, those communes' codes, their parcels
    shared by the writers, and a few other parcel ids for readers."""
    with psycopg.connect(dsn) as conn:
        codes = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM communes WHERE code LIKE %s ORDER BY code LIMIT %s",
                (PARCEL_COMMUNE_PREFIX + "%", EDITOR_COMMUNES),
            )
        ]
        hot = [
            r[0]
            for r in conn.execute(
                "SELECT p.id FROM parcels p JOIN communes c ON c.id = p.commune_id "
                "WHERE c.code = ANY(%s) ORDER BY p.id LIMIT %s",
                (codes, HOT_PARCELS),
            )
        ]
        ids = [
            r[0] for r in conn.execute("SELECT id FROM parcels TABLESAMPLE SYSTEM (2) LIMIT 2000")
        ]
    args = ["users", "add", f"load-editor-{run}", "--role", "editor"]
    for code in codes:
        args += ["--commune", code]
    token = cli(*args).stdout.strip().splitlines()[-1]
    return token, codes, hot, ids


def tile_communes(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM communes WHERE code LIKE %s", (PARCEL_COMMUNE_PREFIX + "%",)
            )
        ]


# ---------------------------------------------------------------- clients


async def timed(
    client: httpx.AsyncClient,
    tally: Tally,
    name: str,
    method: str,
    url: str,
    expect: tuple[int, ...],
    **kwargs: object,
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
        await response.aread()
    except httpx.HTTPError as exc:
        tally.fail(f"{method} {url}: {type(exc).__name__} {exc}")
        return None
    tally.latencies[name].append(time.perf_counter() - started)
    if response.status_code not in expect:
        tally.fail(f"{method} {url} -> {response.status_code}: {response.text[:200]}")
        return None
    return response


async def reader(
    base: str,
    deadline: float,
    tally: Tally,
    rng: random.Random,
    ids: list[int],
    communes: list[int],
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < deadline:
            pick = rng.randrange(4)
            if pick == 0:
                url = (
                    f"/collections/parcels/items?limit={PAGE}"
                    f"&offset={rng.randrange(0, PARCELS - PAGE)}"
                )
                await timed(client, tally, "page of 1,000", "GET", url, (200,))
            elif pick == 1:
                url = f"/collections/parcels/items/{rng.choice(ids)}"
                await timed(client, tally, "one parcel", "GET", url, (200,))
            elif pick == 2:
                await timed(client, tally, "bbox 0.01°", "GET", bbox_url(rng), (200,))
            else:
                url = f"/communes/{rng.choice(communes)}/states"
                await timed(client, tally, "commune across states", "GET", url, (200,))


def new_parcel(rng: random.Random, code: str, commune: str, lon: float, lat: float) -> dict:
    size = 0.0004
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "commune": commune,
            "code": code,
            "tenure": "occupied",
            "land_use": rng.choice(["crops", "pasture", "idle"]),
            "notes": "alta durante la prueba de carga",
        },
    }


async def writer(
    base: str,
    deadline: float,
    tally: Tally,
    rng: random.Random,
    token: str,
    run: str,
    number: int,
    codes: list[str],
    hot: list[int],
    corners: dict[str, tuple[float, float]],
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            parcel = rng.choice(hot)
            got = await timed(
                client,
                tally,
                "writer: GET before PATCH",
                "GET",
                f"/collections/parcels/items/{parcel}",
                (200,),
            )
            if got is not None:
                note = f"load {run} w{number} n{n}"
                done = await timed(
                    client,
                    tally,
                    "PATCH notes (If-Match)",
                    "PATCH",
                    f"/collections/parcels/items/{parcel}",
                    (200, 412),
                    json={"properties": {"notes": note}},
                    headers={"If-Match": got.headers["etag"]},
                )
                if done is not None and done.status_code == 412:
                    tally.stale += 1
                elif done is not None:
                    tally.patched[parcel].append(note)
            commune = rng.choice(codes)
            lon, lat = corners[commune]
            code = f"LOAD-{run}-{number}-{n}"
            body = new_parcel(
                rng, code, commune, lon + rng.uniform(0.001, 0.045), lat + rng.uniform(0.001, 0.045)
            )
            done = await timed(
                client,
                tally,
                "POST new parcel",
                "POST",
                "/collections/parcels/items",
                (201,),
                json=body,
            )
            if done is not None:
                tally.posted[code] = done.json()["ids"][0]


async def load(
    base: str,
    seconds: float,
    readers: int,
    writers: int,
    token: str,
    run: str,
    codes: list[str],
    hot: list[int],
    ids: list[int],
    communes: list[int],
    corners: dict[str, tuple[float, float]],
    server_pid: int,
) -> tuple[Tally, float, dict[str, float]]:
    tally = Tally()
    rng = random.Random(11)
    warm = time.monotonic() + 5  # warm-up: every kind of request, figures dropped
    await asyncio.gather(
        *(reader(base, warm, Tally(), random.Random(i), ids, communes) for i in range(4))
    )
    before = (cpu_seconds(), cpu_seconds(server_pid), time.process_time())
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(
            reader(base, deadline, tally, random.Random(rng.random()), ids, communes)
            for _ in range(readers)
        ),
        *(
            writer(
                base,
                deadline,
                tally,
                random.Random(rng.random()),
                token,
                run,
                w,
                codes,
                hot,
                corners,
            )
            for w in range(writers)
        ),
    )
    wall = time.monotonic() - started
    cpu = {
        "machine": cpu_seconds() - before[0],
        "serve": cpu_seconds(server_pid) - before[1],
        "clients": time.process_time() - before[2],
    }
    return tally, wall, cpu


# ---------------------------------------------------------------- checks and report


def stored_writes(dsn: str, run: str, editor: str) -> tuple[dict[str, int], list[str]]:
    """The parcels this run POSTed (code -> id) and the notes its PATCHes left in audit_log."""
    with psycopg.connect(dsn) as conn:
        posted = dict(
            conn.execute(
                "SELECT code, id FROM parcels WHERE code LIKE %s", (f"LOAD-{run}-%",)
            ).fetchall()
        )
        notes = [
            r[0]
            for r in conn.execute(
                "SELECT after ->> 'notes' FROM audit_log WHERE layer = 'parcels' AND "
                "action = 'update' AND user_name = %s",
                (editor,),
            )
        ]
    return posted, notes


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of one process, or of the whole machine with no pid, s."""
    tick = os.sysconf("SC_CLK_TCK")
    if pid is None:
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        fields = [int(f) for f in Path("/proc/stat").read_text().split()[1:9]]
        return (sum(fields) - fields[3] - fields[4]) / tick
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / tick


def report(
    tally: Tally,
    wall: float,
    args: argparse.Namespace,
    posted_ok: bool,
    patched_ok: bool,
    stored: tuple[int, int],
    cpu: dict[str, float],
) -> str:
    rows = []
    for name, values in sorted(tally.latencies.items()):
        rows.append(
            [
                name,
                len(values),
                len(values) / wall,
                percentile(values, 50) * 1000,
                percentile(values, 95) * 1000,
                percentile(values, 99) * 1000,
            ]
        )
    total = sum(len(v) for v in tally.latencies.values())
    rows.append(["all", total, total / wall, "", "", ""])
    acknowledged = len(tally.posted) + sum(len(v) for v in tally.patched.values())
    lines = [
        table(
            f"{args.readers} readers + {args.writers} writers for {wall:.0f} s on loopback: "
            "latency, ms",
            ["request", "count", "req/s", "p50", "p95", "p99"],
            rows,
        ),
        "",
        f"- failed requests: {len(tally.failures)} (target 0)",
        f"- 412 Precondition Failed (a writer lost an If-Match race; expected): {tally.stale}",
        f"- writes acknowledged: {acknowledged} ({len(tally.posted)} POST, "
        f"{acknowledged - len(tally.posted)} PATCH); stored: {stored[0]} parcels + "
        f"{stored[1]} audited PATCHes; every acknowledged one stored, nothing else: "
        f"{'yes' if posted_ok and patched_ok else 'NO'}",
        f"- CPU seconds during the run ({os.cpu_count()} CPUs x {wall:.0f} s = "
        f"{(os.cpu_count() or 1) * wall:.0f} available): machine {cpu['machine']:.0f}, of "
        f"which `serve` {cpu['serve']:.0f}, the bench's own clients {cpu['clients']:.0f}, "
        f"PostgreSQL and anything else {cpu['machine'] - cpu['serve'] - cpu['clients']:.0f}",
    ]
    return "\n".join(lines)


def append_readme(text: str) -> None:
    """Add this run at the end of the "## Load" section (made at the end of the file if
    missing); other sections, which other benches write, are left as they are."""
    readme = REPO / "bench" / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start = current.find("## Load\n")
    if start < 0:
        current = (current.rstrip("\n") + "\n\n" if current else "") + "## Load\n\n" + text
    else:
        end = current.find("\n## ", start)
        end = len(current) if end < 0 else end + 1
        current = current[:end].rstrip("\n") + "\n\n" + text + "\n\n" + current[end:]
    readme.write_text(current.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="append to bench/README.md")
    args = parser.parse_args()
    if not os.environ.get("GEO_COMUNA_DATABASE_URL"):
        os.environ.setdefault("GEO_COMUNA_DATA_DIR", str(OUT / "pg-load"))
    started_load = os.getloadavg()
    header("bench_load")
    dsn = prepare_database()
    ensure_store(dsn)
    run = time.strftime("%Y%m%d%H%M%S")
    token, codes, hot, ids = make_editor(dsn, run)
    with psycopg.connect(dsn) as conn:
        corners = {
            c: (x, y)
            for c, x, y in conn.execute(
                "SELECT code, ST_XMin(geom), ST_YMin(geom) FROM communes WHERE code = ANY(%s)",
                (codes,),
            )
        }
    communes = tile_communes(dsn)
    port = free_port()
    log = OUT / "serve-load.log"
    server = start_server(port, log)
    try:
        tally, wall, cpu = asyncio.run(
            load(
                f"http://127.0.0.1:{port}",
                args.seconds,
                args.readers,
                args.writers,
                token,
                run,
                codes,
                hot,
                ids,
                communes,
                corners,
                server.pid,
            )
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    posted, notes = stored_writes(dsn, run, f"load-editor-{run}")
    posted_ok = posted == tally.posted
    acknowledged_notes = sorted(n for v in tally.patched.values() for n in v)
    patched_ok = sorted(notes) == acknowledged_notes
    text = report(tally, wall, args, posted_ok, patched_ok, (len(posted), len(notes)), cpu)
    print(
        f"- `.venv/bin/python bench/bench_load.py` ({args.seconds:.0f} s; one uvicorn "
        "process with its default pool; clients are asyncio tasks in one Python process "
        "on the same machine)"
    )
    print(text)
    for failure in tally.failures[:20]:
        print(f"  failed: {failure}", file=sys.stderr)
    if args.write:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load1, load5, _ = os.getloadavg()
        append_readme(
            f"- {stamp}; {os.cpu_count()} CPUs; load average before the run "
            f"{started_load[0]:.1f} (1 min) / {started_load[1]:.1f} (5 min), after "
            f"{load1:.1f} / {load5:.1f}; `.venv/bin/python bench/bench_load.py` "
            f"({args.seconds:.0f} s, one uvicorn process, default pool; the clients run "
            f"in one Python process on the same machine)\n{text}"
        )
    if tally.failures or not (posted_ok and patched_ok):
        sys.exit(
            json.dumps(
                {
                    "failed": len(tally.failures),
                    "posts_stored": posted_ok,
                    "patches_stored": patched_ok,
                }
            )
        )


if __name__ == "__main__":
    main()
