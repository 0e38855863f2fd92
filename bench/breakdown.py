"""The national cross-state breakdown: commune_state_breakdown(NULL) and GET /states/breakdown
over 3,600 generated communes (the size of the national registry).

    .venv/bin/python bench/breakdown.py [--communes 3600] [--runs 5]

Communes are deterministic (fixed seed) irregular 8-14 vertex polygons of 50-3,000 ha
(log-uniform), spread evenly over the 24 states and the Capital District; 85 % lie wholly
inside one state, 15 % are centred on a land border between two states, so they cross it.
They may overlap each other (the breakdown does not care). They replace the previous bench
communes (codes BENCH-C-*) through `geo-comuna import communes`. What else is stored counts
too: the states, the sample communes, and the tile communes with the 200,000 parcels of
import_parcels.py when it ran first (each parcel is placed in a state by a point on its
surface).
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

STATES = REPO / "data" / "boundaries" / "ve_states.geojson"
COMMUNES_GPKG = OUT / "communes_3600.gpkg"
BREAKDOWN = "SELECT * FROM commune_state_breakdown(NULL)"
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


Timings = tuple[list[float], list[float]]  # wall seconds per run, server CPU seconds per run


def timed_runs(
    conn: psycopg.Connection, runs: int, server_cpu: Callable[[], float] | None
) -> tuple[Timings, list[tuple]]:
    rows = conn.execute(BREAKDOWN).fetchall()  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        cpu0 = server_cpu() if server_cpu else 0.0
        t0 = time.perf_counter()
        rows = conn.execute(BREAKDOWN).fetchall()
        walls.append(time.perf_counter() - t0)
        if server_cpu:
            cpus.append(server_cpu() - cpu0)
    return (walls, cpus), rows


def time_sql(dsn: str, runs: int) -> tuple[Timings, Timings, int, int]:
    """Timings, the same with no parcels (rolled back), rows, communes with more than one
    state."""
    server_cpu = server_cpu_reader()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        timings, rows = timed_runs(conn, runs, server_cpu)
        with conn.transaction(force_rollback=True):
            conn.execute("TRUNCATE parcels CASCADE")
            no_parcels, _ = timed_runs(conn, runs, server_cpu)
    per_commune: dict[int, int] = {}
    for r in rows:
        if r[1] is not None:
            per_commune[r[0]] = per_commune.get(r[0], 0) + 1
    return timings, no_parcels, len(rows), sum(1 for n in per_commune.values() if n > 1)


def _row(name: str, timings: Timings) -> list:
    walls, cpus = timings
    return [name, *summary(walls), fmt(summary(cpus)[0]) if cpus else "-"]


def time_http(runs: int) -> tuple[list[float], int, int]:
    """Seconds per GET /states/breakdown, body bytes, communes listed."""
    port = free_port()
    server = start_server(port, OUT / "serve-breakdown.log")
    times = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            client.get("/states/breakdown").raise_for_status()  # warm-up
            for _ in range(runs):
                t0 = time.perf_counter()
                response = client.get("/states/breakdown")
                body = response.content
                times.append(time.perf_counter() - t0)
                response.raise_for_status()
            listed = len(response.json()["communes"])
    finally:
        stop_server(server)
    return times, len(body), listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, default=3600)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    header("breakdown")
    dsn = prepare_database()
    started = time.perf_counter()
    frame = generate(args.communes, args.seed)
    generated = time.perf_counter() - started
    imported = store(dsn, frame, COMMUNES_GPKG)
    with psycopg.connect(dsn) as conn:
        communes, parcels, dwellings, parts = conn.execute(
            "SELECT (SELECT count(*) FROM communes), (SELECT count(*) FROM parcels), "
            "(SELECT count(*) FROM dwellings), (SELECT count(*) FROM state_parts)"
        ).fetchone()
    sql_times, no_parcels, rows, crossing = time_sql(dsn, args.runs)
    http_times, size, listed = time_http(args.runs)
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
                ["breakdown rows", rows],
                ["communes in more than one state", crossing],
                ["communes in GET /states/breakdown", listed],
            ],
        )
    )
    print(
        table(
            f"National breakdown, s ({args.runs} runs after a warm-up)",
            ["what", "wall median", "wall min", "wall max", "server CPU median"],
            [
                _row(BREAKDOWN, sql_times),
                _row("  same with the parcels table emptied (rolled back)", no_parcels),
                _row("GET /states/breakdown", (http_times, [])),
            ],
        )
    )
    print(
        f"\nresponse body {size / 1e6:.1f} MB; generating the communes took "
        f"{generated:.1f} s, `geo-comuna import communes` {imported:.1f} s. "
        f"Target: under 2 s. ({fmt(args.communes)} generated communes in {COMMUNES_GPKG})"
    )


if __name__ == "__main__":
    main()
