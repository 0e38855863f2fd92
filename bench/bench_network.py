"""Network analyses at scale: water hookups and electricity gaps for 100,000 dwellings on a
50,000-edge network and stair access for 50,000 dwellings on a 100,000-edge network, each as a
whole HTTP request (cold: a new app, so no cached answer), with scipy's multi-source Dijkstra
on the same graph alone as the floor.

    .venv/bin/python bench/bench_network.py [--runs 5] [--rebuild]

Synthetic communes (codes BENCH-NET-*) are written once into the bench's own embedded cluster
in bench/out/pg-network (GEO_COMUNA_DATA_DIR overrides it) with COPY: a square grid of 20 m
paths (each edge one path row, noded at the grid's vertices; every 20th row a road with
vehicles, stairways up every 5th column), a 30 m-high hill as DEM, working water mains along
five grid rows 3 m off the paths, power lines in good condition along five grid columns 3 m
off the paths, transit stops, and random dwellings. Timings are medians of --runs runs of the
whole request (``GET /communes/{code}/analyses/{name}`` through the app, as an admin, body
read), of ``run()`` (the analysis as the API calls it, from the database to the Result), then
of its stages, then the GeoJSON written as the API writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pyproj
import rasterio
from rasterio.transform import from_origin
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault(
    "GEO_COMUNA_DATA_DIR", str(Path(__file__).resolve().parent / "out" / "pg-network")
)

# the bench measures how long a request takes, not how soon it is refused
os.environ.setdefault("GEO_COMUNA_COMPUTE_SECONDS", "300")
os.environ.setdefault("GEO_COMUNA_RATE_PER_MINUTE", "0")
os.environ.setdefault("GEO_COMUNA_HEAVY_RATE_PER_MINUTE", "0")
os.environ.setdefault("GEO_COMUNA_TOKEN_RATE_PER_MINUTE", "0")
os.environ.setdefault("GEO_COMUNA_TOKEN_HEAVY_RATE_PER_MINUTE", "0")

from bench import common  # noqa: E402
from geo_comuna import accounts  # noqa: E402
from geo_comuna.analysis import electricity, stair_access, water_hookups  # noqa: E402
from geo_comuna.analysis.base import (
    sql_text,  # noqa: E402
    to_json,  # noqa: E402
)
from geo_comuna.analysis.stair_access import places  # noqa: E402
from geo_comuna.analysis.toolkit import dem as dem_reading  # noqa: E402
from geo_comuna.analysis.toolkit import network  # noqa: E402
from geo_comuna.io import dems  # noqa: E402

SPACING_M = 20.0
NULL = r"\N"  # COPY text format
UTM = 32620  # zone 20 N: the cases sit in Guárico, central Venezuela
CASES = {
    # code: (grid side in nodes, dwellings, origin lon/lat)
    "BENCH-NET-WATER": (158, 100_000, (-66.40, 8.60)),  # 2 x 158 x 157 = 49,612 edges
    "BENCH-NET-STAIRS": (224, 50_000, (-66.20, 8.60)),  # 2 x 224 x 223 = 99,904 edges
}


def hill(x: np.ndarray, y: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """Elevation (m): 200 m plus a 30 m Gaussian hill over the grid's centre."""
    return 200.0 + 30.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (side / 4) ** 2))


def write_dem(path: Path, x0: float, y0: float, side: float) -> None:
    cell = 10.0
    n = int(side / cell) + 20
    west, north = x0 - 10 * cell, y0 + side + 10 * cell
    cx = west + cell * (np.arange(n) + 0.5)
    cy = north - cell * (np.arange(n) + 0.5)
    band = hill(cx[None, :], cy[:, None], x0 + side / 2, y0 + side / 2, side)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype="float32",
        crs=f"EPSG:{UTM}",
        transform=from_origin(west, north, cell, cell),
    ) as dst:
        dst.write(band.astype("float32"), 1)


def copy_rows(cur: psycopg.Cursor, table: str, columns: str, lines: list[str]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buf = io.StringIO("\n".join(lines) + "\n")
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def build(
    conn: psycopg.Connection, code: str, side_nodes: int, homes: int, origin: tuple[float, float]
) -> int:
    """Write one synthetic commune (replacing an earlier one); returns its id."""
    rng = np.random.default_rng(side_nodes)
    to_utm = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    to_lonlat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
    x0, y0 = to_utm.transform(*origin)
    side = SPACING_M * (side_nodes - 1)
    ii, jj = np.meshgrid(np.arange(side_nodes), np.arange(side_nodes), indexing="ij")
    gx, gy = x0 + SPACING_M * ii, y0 + SPACING_M * jj
    lon, lat = to_lonlat.transform(gx, gy)
    z = hill(gx, gy, x0 + side / 2, y0 + side / 2, side)

    with conn.cursor() as cur:
        old = cur.execute("SELECT id FROM communes WHERE code = %s", (code,)).fetchone()
        if old:
            for table in ("dwellings", "paths", "water_mains", "power_lines", "facilities"):
                cur.execute(f"DELETE FROM {table} WHERE commune_id = %s", old)  # noqa: S608
            cur.execute("DELETE FROM dems WHERE commune_id = %s", old)
            cur.execute("DELETE FROM communes WHERE id = %s", old)
        corner = to_lonlat.transform([x0 - 50, x0 + side + 50], [y0 - 50, y0 + side + 50])
        cid = cur.execute(
            "INSERT INTO communes (code, name, kind, status, source, geom) VALUES (%s, %s, "
            "'urban', 'registered', 'synthetic benchmark grid', "
            "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))) RETURNING id",
            (code, code.title(), corner[0][0], corner[1][0], corner[0][1], corner[1][1]),
        ).fetchone()[0]

        lines = []
        for horizontal in (True, False):  # edges (i, j) -> (i + 1, j), then (i, j) -> (i, j + 1)
            a = (slice(0, -1), slice(None)) if horizontal else (slice(None), slice(0, -1))
            b = (slice(1, None), slice(None)) if horizontal else (slice(None), slice(1, None))
            ja = jj[a].ravel()
            ia = ii[a].ravel()
            road = horizontal & (ja % 20 == 0)
            stair = (not horizontal) & (ia % 5 == 2)
            steps = np.round(np.abs(z[b] - z[a]).ravel() / 0.17).astype(int)
            for la, ta, lb, tb, r, s, st in zip(
                lon[a].ravel(),
                lat[a].ravel(),
                lon[b].ravel(),
                lat[b].ravel(),
                np.broadcast_to(road, ja.shape),
                np.broadcast_to(stair, ja.shape),
                steps,
                strict=True,
            ):
                kind = "road" if r else ("stairway" if s and st > 0 else "footpath")
                count = st if kind == "stairway" else NULL
                lines.append(
                    f"{cid}\t{kind}\t{count}\t"
                    f"{'t' if r else 'f'}\tf\t"
                    f"SRID=4326;LINESTRING({la:.7f} {ta:.7f},{lb:.7f} {tb:.7f})"
                )
        copy_rows(cur, "paths", "commune_id, kind, steps, vehicles, transit, geom", lines)

        mains = []
        for row in np.linspace(0, side_nodes - 1, 5).astype(int):
            mx, my = [x0 - 30, x0 + side + 30], [y0 + SPACING_M * row - 3] * 2
            mlon, mlat = to_lonlat.transform(mx, my)
            mains.append(
                f"{cid}\tmain\tworking\tSRID=4326;LINESTRING({mlon[0]:.7f} "
                f"{mlat[0]:.7f},{mlon[1]:.7f} {mlat[1]:.7f})"
            )
        copy_rows(cur, "water_mains", "commune_id, kind, status, geom", mains)
        add_power_lines(cur, cid, origin, side_nodes)

        sx, sy = x0 + rng.uniform(0, side, 30), y0 + rng.uniform(0, side, 30)
        stops = [
            f"{cid}\ttransit_stop\tSRID=4326;POINT({a:.7f} {b:.7f})"
            for a, b in zip(*to_lonlat.transform(sx, sy), strict=True)
        ]
        copy_rows(cur, "facilities", "commune_id, kind, geom", stops)

        hx, hy = x0 + rng.uniform(0, side, homes), y0 + rng.uniform(0, side, homes)
        water = rng.choice(["intermittent", "truck", "none"], homes)
        power = rng.choice(["formal", "precarious", "none"], homes, p=[0.6, 0.3, 0.1])
        sector = np.where(hy - y0 > side / 2, "Norte", "Sur")
        people = rng.integers(1, 9, homes)
        dwell = [
            f"{cid}\t{r}\t{w}\t{p}\t{s}\tSRID=4326;POINT({a:.7f} {b:.7f})"
            for r, w, p, s, a, b in zip(
                people, water, power, sector, *to_lonlat.transform(hx, hy), strict=True
            )
        ]
        copy_rows(
            cur, "dwellings", "commune_id, residents, water, electricity, sector, geom", dwell
        )
    conn.commit()
    return cid


def add_power_lines(
    cur: psycopg.Cursor, cid: int, origin: tuple[float, float], side_nodes: int
) -> None:
    """Five power lines in good condition along grid columns, 3 m off the paths."""
    to_utm = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    to_lonlat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
    x0, y0 = to_utm.transform(*origin)
    side = SPACING_M * (side_nodes - 1)
    lines = []
    for col in np.linspace(0, side_nodes - 1, 5).astype(int):
        lx, ly = [x0 + SPACING_M * col + 3] * 2, [y0 - 30, y0 + side + 30]
        llon, llat = to_lonlat.transform(lx, ly)
        lines.append(
            f"{cid}\tlow\tgood\tSRID=4326;LINESTRING({llon[0]:.7f} "
            f"{llat[0]:.7f},{llon[1]:.7f} {llat[1]:.7f})"
        )
    copy_rows(cur, "power_lines", "commune_id, voltage, condition, geom", lines)


async def register_dem(
    dsn: str, cid: int, origin: tuple[float, float], side_nodes: int, folder: Path
) -> None:
    to_utm = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    x0, y0 = to_utm.transform(*origin)
    tif = folder / f"dem_{cid}.tif"
    write_dem(tif, x0, y0, SPACING_M * (side_nodes - 1))
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await dems.register(conn, cid, tif)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def ready(conn: psycopg.Connection, code: str, homes: int) -> int | None:
    row = conn.execute(
        "SELECT c.id, (SELECT count(*) FROM dwellings d WHERE d.commune_id = c.id), "
        "(SELECT count(*) FROM dems m WHERE m.commune_id = c.id), "
        "(SELECT count(*) FROM power_lines l WHERE l.commune_id = c.id) FROM communes c "
        "WHERE c.code = %s",
        (code,),
    ).fetchone()
    if not (row and row[1] == homes and row[2] == 1):
        return None
    if not row[3]:  # written before the bench had power lines
        side, _, origin = CASES[code]
        with conn.cursor() as cur:
            add_power_lines(cur, row[0], origin, side)
        conn.commit()
    return row[0]


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the PostgreSQL backend ``pid`` has used, when it runs on
    this machine (the embedded cluster); None otherwise."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


async def timed_cpu(
    conn: psycopg.AsyncConnection, fn: Callable[[], Awaitable[object]], runs: int
) -> tuple[float, float | None, object]:
    """Median wall time, and median CPU time of this process plus the database backend:
    on a busy machine wall time waits for a CPU, CPU time does not."""
    pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
    walls, cpus, out = [], [], None
    for _ in range(runs):
        db0, py0, start = backend_cpu(pid), time.process_time(), time.perf_counter()
        out = await fn()
        walls.append(time.perf_counter() - start)
        db1 = backend_cpu(pid)
        if db0 is not None and db1 is not None:
            cpus.append(time.process_time() - py0 + db1 - db0)
    return statistics.median(walls), statistics.median(cpus) if cpus else None, out


def dijkstra_alone(
    n: int,
    tails: np.ndarray,
    heads: np.ndarray,
    weights: np.ndarray,
    sources: np.ndarray,
    runs: int,
) -> float:
    """scipy's multi-source Dijkstra on a prebuilt CSR graph, nothing else."""
    graph = csr_matrix((np.maximum(weights, 1e-9), (tails, heads)), shape=(n, n))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        dijkstra(graph, directed=True, indices=sources, min_only=True, return_predecessors=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def http_request(
    dsn: str, code: str, name: str, runs: int
) -> tuple[float, float | None, int]:
    """Median seconds of the whole request, as an admin, body read; its median CPU seconds
    (this process, server and client, plus every process of the embedded cluster); and the
    body's bytes. Each run is a new app (lifespan run, pool open, outside the timing): no
    cached answer."""
    from geo_comuna.api.app import create_app
    from geo_comuna.settings import Settings

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        _, token = await accounts.add_user(conn, f"bench-net-{uuid.uuid4().hex[:8]}", "admin", [])
    finally:
        await conn.close()
    server_cpu = common.server_cpu_reader()
    times, cpus, size = [], [], 0
    for _ in range(runs):
        app = create_app(Settings(), conninfo=dsn)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
                timeout=600,
            ) as client:
                db0 = server_cpu() if server_cpu else None
                cpu0, start = time.process_time(), time.perf_counter()
                r = await client.get(f"/communes/{code}/analyses/{name}")
                times.append(time.perf_counter() - start)
                if db0 is not None and server_cpu:
                    cpus.append(time.process_time() - cpu0 + server_cpu() - db0)
                if r.status_code != 200:
                    sys.exit(f"{name}: {r.status_code} {r.text[:300]}")
                size = len(r.content)
    return statistics.median(times), statistics.median(cpus) if cpus else None, size


async def stages_electricity(conn: psycopg.AsyncConnection, cid: int, runs: int) -> list[tuple]:
    params = electricity.Params()
    srid = await network.utm_srid(conn, cid)
    query = sql_text("geo_comuna.analysis.electricity", "dwellings.sql")

    async def read() -> tuple:
        cur = conn.cursor(binary=True)
        await cur.execute(query, {"commune": cid, "srid": srid})
        return await cur.fetchone()

    t_sql, cpu_sql, row = await timed_cpu(conn, read, runs)
    t_lines, cpu_lines, _ = await timed_cpu(
        conn, lambda: electricity.line_distances(conn, cid), runs
    )
    x, y = np.array(row[6], float), np.array(row[7], float)
    steps = []
    for _ in range(runs):
        start = time.perf_counter()
        label = electricity.parts.dbscan(x, y, params.cluster_radius_m, params.min_cluster_size)
        mid = time.perf_counter()
        key = electricity.parts.clusters(label, x, y, params.dwellings_per_site)
        end = time.perf_counter()
        placed = electricity.sites.place(key, x, y, np.array(row[1]))
        steps.append((mid - start, end - mid, time.perf_counter() - end))
    t_dbscan, t_kmeans, t_median = (statistics.median(s) for s in zip(*steps, strict=True))
    homes = (row[4], row[5], row[0])
    t_sites, cpu_sites, _ = await timed_cpu(
        conn, lambda: electricity._measured(conn, cid, srid, placed, homes), runs
    )
    return [
        ("dwellings (SQL)", t_sql, cpu_sql),
        ("their nearest good line (SQL; beside the rest)", t_lines, cpu_lines),
        ("DBSCAN (numpy, k-d tree)", t_dbscan),
        ("clusters cut into parts (k-means, numpy)", t_kmeans),
        ("sites: weighted geometric medians (numpy)", t_median),
        ("sites in WGS 84, to the lines (SQL), reach and nearest home", t_sites, cpu_sites),
    ]


async def stages_water(conn: psycopg.AsyncConnection, cid: int, runs: int) -> list[tuple]:
    params = water_hookups.Params()
    srid = await network.utm_srid(conn, cid)
    t_dw, dw = await timed(lambda: network.load_dwellings(conn, cid, without_piped=True), runs)
    t_net, net = await timed(lambda: network.load(conn, cid, srid), runs)
    t_att, att = await timed(
        lambda: network.attach_dwellings(net, dw, params.max_connector_m), runs
    )
    t_taps, taps = await timed(
        lambda: water_hookups.load_taps(conn, cid, net, srid, params.tap_reach_m), runs
    )
    start = time.perf_counter()
    tree, weights = water_hookups.source_tree(net, taps)
    routes = water_hookups.route(net, att, tree)
    t_tree = time.perf_counter() - start
    start = time.perf_counter()
    water_hookups.group_projects(net, tree, weights, att, routes)
    t_group = time.perf_counter() - start
    alone = dijkstra_alone(
        net.n_nodes,
        np.concatenate([net.a, net.b]),
        np.concatenate([net.b, net.a]),
        np.concatenate([net.length_m, net.length_m]),
        np.unique(taps.node),
        runs,
    )
    return [
        ("load dwellings (SQL)", t_dw),
        ("load network (SQL + snap)", t_net),
        ("attach dwellings to their segments", t_att),
        ("taps (SQL)", t_taps),
        ("graph + Dijkstra + routes", t_tree),
        ("projects from the tree", t_group),
        ("scipy Dijkstra alone, multi-source", alone),
    ]


async def stages_stairs(conn: psycopg.AsyncConnection, cid: int, runs: int) -> list[tuple]:
    params = stair_access.Params()
    srid = await network.utm_srid(conn, cid)
    dw = await network.load_dwellings(conn, cid)
    net = await network.load(conn, cid, srid)
    stop_points = await places.transit_stop_points(conn, cid, params)
    t_att, (homes, stops) = await timed(
        lambda: places.attached(net, dw, stop_points, cid, params), runs
    )
    found = await dems.for_commune(conn, cid)
    start = time.perf_counter()
    (z_node, z_home, z_att), _ = dem_reading.elevations(
        found, (net.node_lon, net.node_lat), (dw.lon, dw.lat), (homes.lon, homes.lat)
    )
    t_dem = time.perf_counter() - start
    start = time.perf_counter()
    stair_access.walk_all(net, z_node, homes, z_home, z_att, stops, params)
    stair_access.walk_all(net, -z_node, homes, -z_home, -z_att, stops, params)
    t_walk = time.perf_counter() - start
    legs = stair_access.segment_legs(net, z_node, params)
    road = np.unique(np.concatenate([net.a[net.vehicles], net.b[net.vehicles]]))
    alone = dijkstra_alone(net.n_nodes, legs.head, legs.tail, legs.cost["seconds"], road, runs)
    return [
        ("attach dwellings and transit stops (one search)", t_att),
        ("DEM at nodes and dwellings", t_dem),
        ("both walks: graphs, 2 Dijkstras, sums", t_walk),
        ("scipy Dijkstra alone, multi-source (one direction)", alone),
    ]


async def measure(dsn: str, ids: dict[str, int], runs: int, only: list[str]) -> None:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        cases = [
            ("stair-access", stair_access, "BENCH-NET-STAIRS", stages_stairs),
            ("water-hookups", water_hookups, "BENCH-NET-WATER", stages_water),
            ("electricity-gaps", electricity, "BENCH-NET-WATER", stages_electricity),
        ]
        for name, module, code, stages in cases:
            if only and name not in only:
                continue
            cid = ids[code]
            srid = await network.utm_srid(conn, cid)
            net = await network.load(conn, cid, srid)
            homes = CASES[code][1]
            t_http, cpu_http, size = await http_request(dsn, code, name, runs)
            t_run, cpu_run, result = await timed_cpu(
                conn, lambda m=module, c=cid: m.run(conn, c, m.Params()), runs
            )
            start, cpu0 = time.perf_counter(), time.process_time()
            to_json(result.feature_collection(as_written=True))
            t_json, cpu_json = time.perf_counter() - start, time.process_time() - cpu0
            rows = [
                (f"whole HTTP request, cold ({size / 1e6:.1f} MB of JSON)", t_http, cpu_http),
                ("run(): database to Result", t_run, cpu_run),
                *(
                    (stage[0], stage[1], stage[2] if len(stage) > 2 else None)
                    for stage in await stages(conn, cid, runs)
                ),
                ("the GeoJSON written as the API writes it", t_json, cpu_json),
            ]
            floor = next((t for stage, t, _ in rows if stage.startswith("scipy")), None)
            if floor:
                rows.append(
                    (f"ratio: whole request / scipy floor = {t_http / floor:,.0f}x", None, None)
                )
                if cpu_http:
                    rows.append(
                        (f"ratio: request CPU / scipy floor = {cpu_http / floor:,.0f}x", None, None)
                    )
            print(
                common.table(
                    f"{name}: {homes:,} dwellings, {net.n_edges:,} edges, {net.n_nodes:,} nodes "
                    f"(median of {runs})",
                    ["stage", "wall s", "CPU s (Python + PostgreSQL)"],
                    rows,
                )
            )
            print(f"\nsummary: {json.dumps(result.summary, default=str)[:400]}...\n")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="write the communes again")
    parser.add_argument(
        "--only", action="append", default=[], help="stair-access, water-hookups, electricity-gaps"
    )
    args = parser.parse_args()
    dsn = common.conninfo()
    common.cli("db", "upgrade")
    ids = {}
    with psycopg.connect(dsn) as conn:
        for code, (side, homes, origin) in CASES.items():
            cid = None if args.rebuild else ready(conn, code, homes)
            if cid is None:
                start = time.perf_counter()
                cid = build(conn, code, side, homes, origin)
                asyncio.run(register_dem(dsn, cid, origin, side, common.OUT))
                print(f"wrote {code} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            ids[code] = cid
    common.header("Network analyses")
    print(f"- load average before measuring: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    asyncio.run(measure(dsn, ids, args.runs, args.only))
    print(f"- load average after: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
