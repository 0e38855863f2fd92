"""The national cross-state breakdown: commune_state_breakdown(NULL) and GET /states/breakdown
over 3,600 generated communes (the size of the national registry), side by side with one
hand-written SQL query giving the same rows.

    .venv/bin/python bench/breakdown.py [--communes 3600] [--runs 5]   # case (a)
    .venv/bin/python bench/breakdown.py --big-parcels 200000           # case (b)
    .venv/bin/python bench/breakdown.py --spread-parcels 1000000       # case (c)

(run as root, GEO_COMUNA_RUN_AS=root lets the bench's server stay root). Besides the national
view it times the per-commune view of the commune across a state line holding the most
parcels (the big one in case (b)) against the same two hand queries restricted to it, and
over HTTP the first request after a write, the stored repeat, the 304 and a commune's repeat.

Communes are deterministic (fixed seed) irregular 8-14 vertex polygons of 50-3,000 ha
(log-uniform), spread evenly over the 24 states and the Capital District; 85 % lie wholly
inside one state, 15 % are centred on a land border between two states, so they cross it.
They may overlap each other (the breakdown does not care). They replace the previous bench
communes (codes BENCH-C-*) through `geo-comuna import communes`. What else is stored counts
too: the states, the sample communes, and the tile communes with the 200,000 parcels of
import_parcels.py when it ran first (each parcel is placed in a state by a point on its
surface). Case (b) adds one commune across the Lara-Yaracuy line holding 200,000 parcels;
case (c) spreads parcels over the 3,600 generated communes; each run replaces what the
previous run added and leaves out what it was not asked for.

The function and two hand-written queries run interleaved, run by run, and their rows are
compared (counts exactly, areas within 0.01 ha): the peers are one query placing each parcel
by an index probe into state_parts, and one placing them part by part over the parcels' GiST
index; the ratio is taken against the faster of the two.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import psycopg
import shapely
from common import (
    CLI,
    NATIONAL_COMMUNE_PREFIX,
    OUT,
    REPO,
    env,
    fmt,
    free_port,
    header,
    prepare_database,
    server_cpu_reader,
    summary,
    table,
)
from serve_pages import start_server, stop_server

STATES = REPO / "geo_comuna" / "data" / "boundaries" / "ve_states.geojson"
COMMUNES_GPKG = OUT / "communes_3600.gpkg"
BREAKDOWN = "SELECT * FROM commune_state_breakdown(NULL)"
# The peer: the same rows from one hand-written query, every parcel placed by an index probe
# into state_parts under its point on surface (smallest state id on a line), every commune
# cut by the state parts it touches; what someone writes who needs the figure once.
HAND = """
WITH c AS (SELECT id, geom, ST_Area(geom::geography) AS m2 FROM communes WHERE {communes}),
inside AS (
    SELECT c.id AS commune_id, sp.state_id,
           sum(ST_Area(ST_Intersection(c.geom, sp.geom)::geography)) AS m2
    FROM c JOIN state_parts sp ON ST_Intersects(c.geom, sp.geom) GROUP BY 1, 2),
areas AS (
    SELECT commune_id, state_id, m2 FROM inside
    UNION ALL
    SELECT c.id, NULL, c.m2 - coalesce(sum(i.m2), 0)
    FROM c LEFT JOIN inside i ON i.commune_id = c.id GROUP BY c.id, c.m2),
{parcel_counts}
dwelling_counts AS (
    SELECT d.commune_id, (SELECT sp.state_id FROM state_parts sp
                          WHERE ST_Intersects(sp.geom, d.geom)
                          ORDER BY sp.state_id LIMIT 1) AS state_id,
           count(*) AS n, sum(d.residents) AS residents
    FROM dwellings d WHERE {dwellings} GROUP BY 1, 2),
keyed AS (
    SELECT commune_id, state_id FROM areas
    UNION SELECT commune_id, state_id FROM parcel_counts
    UNION SELECT commune_id, state_id FROM dwelling_counts)
SELECT k.commune_id, k.state_id, s.code, s.name,
       round((coalesce(a.m2, 0) / 10000)::numeric, 4)::double precision,
       round((100 * coalesce(a.m2, 0) / nullif(c.m2, 0))::numeric, 3)::double precision,
       coalesce(pc.n, 0), coalesce(dc.n, 0), coalesce(dc.residents, 0)
FROM keyed k JOIN c ON c.id = k.commune_id
LEFT JOIN areas a ON a.commune_id = k.commune_id AND a.state_id IS NOT DISTINCT FROM k.state_id
LEFT JOIN parcel_counts pc
       ON pc.commune_id = k.commune_id AND pc.state_id IS NOT DISTINCT FROM k.state_id
LEFT JOIN dwelling_counts dc
       ON dc.commune_id = k.commune_id AND dc.state_id IS NOT DISTINCT FROM k.state_id
LEFT JOIN states s ON s.id = k.state_id
WHERE k.state_id IS NOT NULL OR a.m2 > 1 OR pc.n > 0 OR dc.n > 0
"""
PROBE_COUNTS = """parcel_counts AS (
    SELECT p.commune_id, (SELECT sp.state_id FROM state_parts sp
                          WHERE ST_Intersects(sp.geom, ST_PointOnSurface(p.geom))
                          ORDER BY sp.state_id LIMIT 1) AS state_id, count(*) AS n
    FROM parcels p WHERE {parcels} GROUP BY 1, 2),"""
# The same, every parcel placed part by part instead: each state part walks the parcels' GiST
# index for the parcels its box meets, so PostGIS keeps the part prepared across them.
PARTS_COUNTS = """placed AS MATERIALIZED (
    SELECT p.id, min(sp.state_id) AS state_id
    FROM state_parts sp
    JOIN parcels p ON p.geom && sp.geom AND ST_Intersects(sp.geom, ST_PointOnSurface(p.geom))
    WHERE {parcels} GROUP BY p.id),
parcel_counts AS (
    SELECT p.commune_id, x.state_id, count(*) AS n
    FROM parcels p LEFT JOIN placed x ON x.id = p.id WHERE {parcels} GROUP BY 1, 2),"""


def hand(counts: str, commune: int | None = None) -> str:
    """A hand-written query (``counts``: PROBE_COUNTS or PARTS_COUNTS) for every commune, or
    for ``commune`` alone, as a per-commune request asks."""
    if commune is None:
        return HAND.format(
            parcel_counts=counts.format(parcels="true"), communes="true", dwellings="true"
        )
    return HAND.format(
        parcel_counts=counts.format(parcels=f"p.commune_id = {int(commune)}"),
        communes=f"id = {int(commune)}",
        dwellings=f"d.commune_id = {int(commune)}",
    )


HAND_PROBE, HAND_PARTS = hand(PROBE_COUNTS), hand(PARTS_COUNTS)
BIG_CODE = "BENCH-B-0001"
SPREAD_CODE = "BENCH-S"
BORDER_SHARE = 0.15
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0


def star(rng: np.random.Generator, lon: float, lat: float, area_ha: float) -> shapely.Polygon:
    """An irregular polygon of ``area_ha`` (planar approximation) around (lon, lat)."""
    n = int(rng.integers(8, 15))
    slot = 2 * np.pi / n
    angle = rng.uniform(0, 2 * np.pi) + slot * np.arange(n) + rng.uniform(-0.4, 0.4, n) * slot
    radius = rng.uniform(0.6, 1.0, n)
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    unit_area = 0.5 * abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    scale = np.sqrt(area_ha * 1e4 / unit_area)  # m per unit
    m_per_deg_lon = M_PER_DEG_LON_EQ * np.cos(np.radians(lat))
    return shapely.Polygon(
        np.column_stack([lon + x * scale / m_per_deg_lon, lat + y * scale / M_PER_DEG_LAT])
    )


def inside_point(rng: np.random.Generator, state: shapely.Geometry) -> tuple[float, float]:
    minx, miny, maxx, maxy = state.bounds
    for _ in range(10_000):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if state.contains(shapely.Point(x, y)):
            return x, y
    raise RuntimeError("no point found inside a state")


def land_borders(shapes: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Per state, the part of its outline shared with another state (not coast, not another
    country); empty for an island state."""
    near = [shapely.buffer(s, 1e-4) for s in shapes]  # outlines match to ~10 m, not exactly
    out = []
    for i, state in enumerate(shapes):
        touching = [near[j] for j in range(len(shapes)) if j != i and near[j].intersects(state)]
        out.append(
            state.boundary.intersection(shapely.union_all(touching))
            if touching
            else shapely.LineString()
        )
    return out


def border_point(rng: np.random.Generator, border: shapely.Geometry) -> tuple[float, float]:
    point = (
        shapely.line_interpolate_point(shapely.line_merge(border), rng.uniform(), normalized=True)
        if border.geom_type == "LineString"
        else _point_on(rng, border)
    )
    return point.x, point.y


def _point_on(rng: np.random.Generator, border: shapely.Geometry) -> shapely.Point:
    """A uniformly placed point on a (multi)line: pick a part by length, then a spot on it."""
    parts = [p for p in shapely.get_parts(border) if p.geom_type == "LineString"]
    lengths = np.array([p.length for p in parts])
    part = parts[int(rng.choice(len(parts), p=lengths / lengths.sum()))]
    return part.interpolate(rng.uniform(), normalized=True)


def generate(count: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    states = gpd.read_file(STATES, engine="pyogrio")
    states = states[states["iso_3166_2"] != "VE-W"].reset_index(drop=True)  # islands only
    shapes = list(states.geometry)
    for shape in shapes:
        shapely.prepare(shape)
    borders = land_borders(shapes)
    geoms, crossing = [], []
    for i in range(count):
        s = i % len(shapes)
        area = float(np.exp(rng.uniform(np.log(50), np.log(3000))))
        on_border = rng.uniform() < BORDER_SHARE and borders[s].length > 0
        for _ in range(1000):
            if on_border:
                geom = star(rng, *border_point(rng, borders[s]), area)
                break
            geom = star(rng, *inside_point(rng, shapes[s]), area)
            if shapes[s].contains(geom):
                break
        geoms.append(geom)
        crossing.append(on_border)
    founded = [date(2013, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 3650, count)]
    families = rng.integers(150, 6000, count)
    return gpd.GeoDataFrame(
        {
            "code": [f"{NATIONAL_COMMUNE_PREFIX}{i:04d}" for i in range(1, count + 1)],
            "name": [f"Comuna nacional {i}" for i in range(1, count + 1)],
            "kind": rng.choice(["rural", "urban", "mixed"], count, p=[0.45, 0.35, 0.20]),
            "founded": founded,
            "families": families,
            "population": families * 4,
            "status": rng.choice(["registered", "active"], count, p=[0.3, 0.7]),
            "source": "bench/breakdown.py",
            "placed_on_border": crossing,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def store(dsn: str, frame: gpd.GeoDataFrame, path: Path) -> float:
    """Replace the bench's national communes with ``frame`` via the CLI; import seconds."""
    path.unlink(missing_ok=True)
    frame.drop(columns="placed_on_border").to_file(
        path, layer="communes", driver="GPKG", engine="pyogrio", use_arrow=True
    )
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM parcels WHERE code LIKE %s", (SPREAD_CODE + "-%",))  # (c)'s
        conn.execute("DELETE FROM communes WHERE code LIKE %s", (NATIONAL_COMMUNE_PREFIX + "%",))
    started = time.perf_counter()
    proc = subprocess.run(
        [CLI, "import", "communes", str(path)], capture_output=True, text=True, env=env(), cwd=REPO
    )
    if proc.returncode != 0:
        sys.exit(f"importing the communes failed:\n{proc.stdout}\n{proc.stderr}")
    seconds = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE communes, parcels")
    return seconds


def store_big(dsn: str, parcels: int) -> None:
    """Case (b): one commune across the Lara-Yaracuy line holding ``parcels`` parcels of ~1 ha
    (a grid of squares, 500 to a row), replacing the one a previous run stored; none when 0.

    Written with SQL, not the CLI: the shape of the data is what is measured here, not the
    import. The tables are analysed afterwards, as after `geo-comuna import`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        old = conn.execute("SELECT id FROM communes WHERE code = %s", (BIG_CODE,)).fetchone()
        if old:
            conn.execute("DELETE FROM parcels WHERE commune_id = %s", old)
            conn.execute("DELETE FROM communes WHERE id = %s", old)
        if parcels:
            rows, step = -(-parcels // 500), 0.0009  # degrees: ~100 m, a ~1 ha cell
            lon, lat = -69.09, 9.876  # on the Lara-Yaracuy line
            (commune,) = conn.execute(
                "INSERT INTO communes (code, name, kind, status, source, geom) "
                "VALUES (%s, 'Comuna grande', 'rural', 'active', 'bench/breakdown.py', "
                "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))) RETURNING id",
                (
                    BIG_CODE,
                    lon - 250 * step,
                    lat - rows * step / 2,
                    lon + 250 * step,
                    lat + rows * step / 2,
                ),
            ).fetchone()
            conn.execute(
                "INSERT INTO parcels (commune_id, tenure, geom) "
                "SELECT %(c)s, (ARRAY['occupied', 'regularizing', 'abandoned'])[1 + i %% 3], "
                "ST_Multi(ST_MakeEnvelope(x0, y0, x0 + 0.8 * %(s)s, y0 + 0.8 * %(s)s, 4326)) "
                "FROM generate_series(0, %(n)s - 1) i, "
                "LATERAL (SELECT %(x)s + (i %% 500) * %(s)s AS x0, "
                "                %(y)s + (i / 500) * %(s)s AS y0) o",
                {
                    "c": commune,
                    "n": parcels,
                    "s": step,
                    "x": lon - 250 * step,
                    "y": lat - rows * step / 2,
                },
            )
        conn.execute("VACUUM ANALYZE communes, parcels")


Timings = tuple[list[float], list[float]]  # wall seconds per run, server CPU seconds per run


def store_spread(dsn: str, parcels: int) -> None:
    """Case (c): ``parcels`` parcels spread evenly over the generated communes (BENCH-C-*), a
    ~0.2 ha square around each of random points of the commune (codes SPREAD_CODE-n, unique
    in their commune as the natural key of migration 0020 asks), replacing those of a
    previous run; none when 0. They may overlap (the breakdown does not care)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM parcels WHERE code LIKE %s", (SPREAD_CODE + "-%",))
        if parcels:
            conn.execute("SELECT setseed(0.3)")
            conn.execute(
                "INSERT INTO parcels (commune_id, code, tenure, geom) "
                "SELECT c.id, %(code)s || '-' || g.path[1], 'occupied', "
                "       ST_Multi(ST_Expand(g.geom, 0.0002)) "
                "FROM (SELECT id, geom, count(*) OVER () AS n FROM communes "
                "      WHERE code LIKE %(prefix)s) c, "
                "LATERAL ST_Dump(ST_GeneratePoints(c.geom, (%(parcels)s / c.n)::integer, 5)) g",
                {"code": SPREAD_CODE, "prefix": NATIONAL_COMMUNE_PREFIX + "%", "parcels": parcels},
            )
        conn.execute("VACUUM ANALYZE parcels")


def timed_runs(
    conn: psycopg.Connection, queries: list[str], runs: int, server_cpu: Callable[[], float] | None
) -> tuple[list[Timings], list[list[tuple]]]:
    """Each query ``runs`` times after a warm-up, interleaved run by run (the order turning
    each run), so that a change of load weighs on all alike."""
    rows = [conn.execute(q).fetchall() for q in queries]  # warm-up
    timings: list[Timings] = [([], []) for _ in queries]
    for run in range(runs):
        order = list(range(len(queries)))
        if run % 2:
            order.reverse()
        for i in order:
            cpu0 = server_cpu() if server_cpu else 0.0
            t0 = time.perf_counter()
            conn.execute(queries[i]).fetchall()
            timings[i][0].append(time.perf_counter() - t0)
            if server_cpu:
                timings[i][1].append(server_cpu() - cpu0)
    return timings, rows


def differences(ours: list[tuple], hand: list[tuple]) -> int:
    """Rows on which the function and the hand query disagree (counts exactly, areas within
    the rounding of two ways to cut a commune)."""

    def key(rows: list[tuple]) -> dict:
        return {(r[0], r[1]): r for r in rows}

    a, b = key(ours), key(hand)
    bad = len(a.keys() ^ b.keys())
    for k in a.keys() & b.keys():
        x, y = a[k], b[k]
        if x[6:] != y[6:] or abs(x[4] - y[4]) > 0.01 + 1e-6 * abs(y[4]):
            bad += 1
    return bad


def time_sql(dsn: str, runs: int) -> tuple[list[Timings], Timings, list[tuple], int, int]:
    """Timings of the function and of the two hand queries, of the function with no parcels
    (rolled back), the function's rows, communes with more than one state, rows where a hand
    query differs."""
    server_cpu = server_cpu_reader()
    queries = [BREAKDOWN, HAND_PROBE, HAND_PARTS]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        timings, (rows, *hand_rows) = timed_runs(conn, queries, runs, server_cpu)
        with conn.transaction(force_rollback=True):
            conn.execute("TRUNCATE parcels CASCADE")
            (no_parcels,), _ = timed_runs(conn, [BREAKDOWN], runs, server_cpu)
    per_commune: dict[int, int] = {}
    for r in rows:
        if r[1] is not None:
            per_commune[r[0]] = per_commune.get(r[0], 0) + 1
    crossing = sum(1 for n in per_commune.values() if n > 1)
    differ = sum(differences(rows, h) for h in hand_rows)
    return timings, no_parcels, rows, crossing, differ


def largest_crossing(dsn: str, rows: list[tuple]) -> tuple[int, str, int]:
    """The commune a per-commune request costs most for, from the national ``rows``: the
    commune in more than one state holding the most parcels (the big one in case (b));
    (id, code, parcels)."""
    states: dict[int, int] = {}
    parcels: dict[int, int] = {}
    for r in rows:
        states[r[0]] = states.get(r[0], 0) + (r[1] is not None)
        parcels[r[0]] = parcels.get(r[0], 0) + r[6]
    commune = max((c for c in states if states[c] > 1), key=lambda c: parcels[c])
    with psycopg.connect(dsn) as conn:
        (code,) = conn.execute("SELECT code FROM communes WHERE id = %s", (commune,)).fetchone()
    return commune, code, parcels[commune]


def time_commune(dsn: str, commune: int, runs: int) -> tuple[list[Timings], int]:
    """The per-commune path (GET /communes/{id}/states): the function for one commune and
    the two hand queries restricted to it, interleaved; rows where a hand query differs."""
    server_cpu = server_cpu_reader()
    queries = [
        f"SELECT * FROM commune_state_breakdown(ARRAY[{int(commune)}])",
        hand(PROBE_COUNTS, commune),
        hand(PARTS_COUNTS, commune),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        timings, (rows, *hand_rows) = timed_runs(conn, queries, runs, server_cpu)
    return timings, sum(differences(rows, h) for h in hand_rows)


def _row(name: str, timings: Timings) -> list:
    walls, cpus = timings
    return [name, *summary(walls), fmt(summary(cpus)[0]) if cpus else "-"]


BUMP = "UPDATE parcels SET notes = notes WHERE false"  # a statement: a new parcels version


def time_http(dsn: str, runs: int, commune: str) -> dict[str, list[float] | int]:
    """GET /states/breakdown: the first request after a write (computed), the repeat (the
    stored answer, gzipped as httpx asks), the repeat with If-None-Match (304); and one
    commune's first request after the write and its repeat. Seconds per request; body
    bytes; communes listed."""
    port = free_port()
    server = start_server(port, OUT / "serve-breakdown.log")
    out: dict[str, list[float] | int] = {
        "first": [],
        "repeat": [],
        "304": [],
        "commune first": [],
        "commune": [],
    }
    try:
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client,
            psycopg.connect(dsn, autocommit=True) as conn,
        ):
            client.get("/states/breakdown").raise_for_status()  # warm-up
            for _ in range(runs):
                conn.execute(BUMP)
                t0 = time.perf_counter()
                response = client.get("/states/breakdown")
                out["first"].append(time.perf_counter() - t0)
                response.raise_for_status()
                for kind, url, headers in (
                    ("repeat", "/states/breakdown", {}),
                    ("304", "/states/breakdown", {"If-None-Match": response.headers["etag"]}),
                    ("commune first", f"/communes/{commune}/states", {}),
                    ("commune", f"/communes/{commune}/states", {}),
                ):
                    t0 = time.perf_counter()
                    again = client.get(url, headers=headers)
                    again.read()
                    out[kind].append(time.perf_counter() - t0)
                    assert again.status_code == (304 if kind == "304" else 200), again.text
                    if kind == "repeat":  # as sent: httpx asks for gzip
                        out["gzipped"] = int(again.headers["content-length"])
            out["bytes"] = len(response.content)
            out["listed"] = len(response.json()["communes"])
    finally:
        stop_server(server)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, default=3600)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--big-parcels",
        type=int,
        default=0,
        help="case (b): add one commune across a state line holding this many parcels",
    )
    parser.add_argument(
        "--spread-parcels",
        type=int,
        default=0,
        help="case (c): add this many parcels spread over the generated communes",
    )
    args = parser.parse_args()
    header("breakdown")
    dsn = prepare_database()
    started = time.perf_counter()
    frame = generate(args.communes, args.seed)
    generated = time.perf_counter() - started
    imported = store(dsn, frame, COMMUNES_GPKG)
    store_big(dsn, args.big_parcels)
    store_spread(dsn, args.spread_parcels)
    with psycopg.connect(dsn) as conn:
        communes, parcels, dwellings, parts = conn.execute(
            "SELECT (SELECT count(*) FROM communes), (SELECT count(*) FROM parcels), "
            "(SELECT count(*) FROM dwellings), (SELECT count(*) FROM state_parts)"
        ).fetchone()
    (ours, probe, by_parts), no_parcels, rows, crossing, differ = time_sql(dsn, args.runs)
    hand_s = min(summary(probe[0])[0], summary(by_parts[0])[0])
    commune_id, commune_code, commune_parcels = largest_crossing(dsn, rows)
    (one, one_probe, one_parts), one_differ = time_commune(dsn, commune_id, args.runs)
    one_hand = min(summary(one_probe[0])[0], summary(one_parts[0])[0])
    load = Path("/proc/loadavg").read_text()
    http = time_http(dsn, args.runs, commune_code)
    print(
        table(
            "Data",
            ["what", "count"],
            [
                ["generated communes (BENCH-C-*)", args.communes],
                ["  placed across a state border", int(frame["placed_on_border"].sum())],
                ["communes stored in all", communes],
                ["parcels stored", parcels],
                ["dwellings stored", dwellings],
                ["state_parts (subdivided states)", parts],
                ["breakdown rows", len(rows)],
                ["communes in more than one state", crossing],
                [f"one commune ({BIG_CODE}) across a state line, parcels", args.big_parcels],
                ["parcels spread over the generated communes", args.spread_parcels],
                ["rows where a hand query differs from the function", differ],
                [f"per-commune case: {commune_code}, parcels", commune_parcels],
                ["  rows where a hand query differs from the function", one_differ],
                ["communes in GET /states/breakdown", http["listed"]],
            ],
        )
    )
    print(
        table(
            f"National breakdown, s ({args.runs} runs after a warm-up)",
            ["what", "wall median", "wall min", "wall max", "server CPU median"],
            [
                _row(BREAKDOWN, ours),
                _row("one hand-written query, a parcel's state by index probe", probe),
                _row("one hand-written query, parcels placed part by part", by_parts),
                _row("  same with the parcels table emptied (rolled back)", no_parcels),
            ],
        )
    )
    print(
        table(
            f"One commune ({commune_code}, {fmt(commune_parcels)} parcels), s",
            ["what", "wall median", "wall min", "wall max", "server CPU median"],
            [
                _row("commune_state_breakdown(ARRAY[id])", one),
                _row("one hand-written query, a parcel's state by index probe", one_probe),
                _row("one hand-written query, parcels placed part by part", one_parts),
            ],
        )
    )
    print(
        table(
            "HTTP, s",
            ["what", "median", "min", "max"],
            [
                ["GET /states/breakdown, first after a write", *summary(http["first"])],
                ["GET /states/breakdown, repeat (stored, gzip)", *summary(http["repeat"])],
                ["GET /states/breakdown, If-None-Match (304)", *summary(http["304"])],
                [
                    f"GET /communes/{commune_code}/states, first after a write",
                    *summary(http["commune first"]),
                ],
                [f"GET /communes/{commune_code}/states, repeat", *summary(http["commune"])],
            ],
        )
    )
    print(
        f"\nresponse body {http['bytes'] / 1e6:.2f} MB ({http['gzipped'] / 1e6:.2f} MB "
        f"gzipped); generating the communes took {generated:.1f} s, "
        f"`geo-comuna import communes` {imported:.1f} s. Function / faster hand query, "
        f"medians: national {summary(ours[0])[0] / hand_s:.2f}x, one commune "
        f"{summary(one[0])[0] / one_hand:.2f}x (target: within 1.3x). Load average at the "
        f"end of the SQL runs: {load.split()[:3]}, at the end: "
        f"{Path('/proc/loadavg').read_text().split()[:3]}. "
        f"({fmt(args.communes)} generated communes in {COMMUNES_GPKG})"
    )


if __name__ == "__main__":
    main()
