"""Commune map at 1,000 / 10,000 / 100,000 parcels: HTML size, time to render in headless
Chromium (navigation start -> every layer drawn, median of 3 cold loads) and the peak memory
and time of building the page, for

- the served map (layers over 5,000 features drawn from ST_AsMVT vector tiles),
- the standalone file (big layers as inline geobuf, simplified and snapped to ~1 m),
- a plain ``folium.GeoJson`` of the same parcels (style_function by tenure, local Leaflet).

    .venv/bin/python bench/bench_maps.py [--sizes 1000,10000,100000] [--runs 3] [--no-plain]
        [--write]

Synthetic parcels (star-shaped hexagons of ~0.8 ha on a grid, one commune per size) go into
the bench's own embedded cluster in bench/out/pg-maps (GEO_COMUNA_DATA_DIR; gitignored).
``--write`` puts the table into bench/README.md under "## Maps" (only that section).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GEO_COMUNA_DATA_DIR", str(REPO / "bench" / "out" / "pg-maps"))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "maps"))

import common  # noqa: E402
import harness  # noqa: E402
from common import RINGS_TO_PARCELS  # noqa: E402

OUT = REPO / "bench" / "out" / "maps"
PREFIX = "BENCH-M-"
CELL_DEG = 0.0009  # ~100 m
#: the baseline page has no GeoComuna runtime: "drawn" is two frames after the load event
BASELINE_INIT = """window.addEventListener('load', () => requestAnimationFrame(() =>
    requestAnimationFrame(() => { window.__drawnAt = performance.now(); })));"""

PARCELS_SQL = (
    """
WITH c AS (
    INSERT INTO communes (code, name, kind, status, source, geom)
    VALUES (%(code)s, %(name)s, 'rural', 'active', 'synthetic (bench/bench_maps.py)',
            ST_Multi(ST_MakeEnvelope(%(x0)s, %(y0)s, %(x0)s + %(side)s * %(d)s,
                                     %(y0)s + %(side)s * %(d)s, 4326)))
    RETURNING id
), cells AS (
    SELECT g, %(x0)s + ((g %% %(side)s) + 0.5) * %(d)s AS cx,
           %(y0)s + ((g / %(side)s) + 0.5) * %(d)s AS cy
    FROM generate_series(0, %(n)s - 1) g
), rings AS (
    SELECT g, ST_MakeLine(ARRAY(
        SELECT ST_MakePoint(cx + 0.45 * %(d)s * (0.75 + 0.25 * random()) * cos(a),
                            cy + 0.45 * %(d)s * (0.75 + 0.25 * random()) * sin(a))
        FROM unnest(ARRAY[0, 1.047, 2.094, 3.142, 4.189, 5.236]) a)) AS line
    FROM cells
)
"""
    + RINGS_TO_PARCELS
)


def make_parcels(dsn: str, sizes: list[int]) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for i, n in enumerate(sizes):
            code = f"{PREFIX}{n}"
            have = conn.execute(
                "SELECT count(*) FROM parcels p JOIN communes c ON "
                "c.id = p.commune_id WHERE c.code = %s",
                (code,),
            ).fetchone()[0]
            if have == n:
                continue
            with conn.transaction():
                conn.execute(
                    "DELETE FROM parcels WHERE commune_id IN "
                    "(SELECT id FROM communes WHERE code = %s)",
                    (code,),
                )
                conn.execute("DELETE FROM communes WHERE code = %s", (code,))
                side = int(n**0.5 + 0.999999)
                conn.execute("SELECT setseed(0.42)")  # same parcels on every machine
                conn.execute(
                    PARCELS_SQL,
                    {
                        "code": code,
                        "name": f"Bench {n:,} parcels",
                        "x0": -69.9 + 0.4 * i,
                        "y0": 9.2,
                        "side": side,
                        "d": CELL_DEG,
                        "n": n,
                    },
                )
            conn.execute("ANALYZE parcels")
            print(f"  made {n:,} parcels", file=sys.stderr)


async def _build_ours(dsn: str, code: str, standalone: bool) -> str:
    from psycopg import AsyncConnection

    from geo_comuna.features.query import resolve_commune
    from geo_comuna.maps.commune import commune_map
    from geo_comuna.maps.page import Page

    conn = await AsyncConnection.connect(dsn, autocommit=True)
    try:
        commune_id = await resolve_commune(conn, code)
        return await commune_map(conn, commune_id, Page(lang="en", standalone=standalone))
    finally:
        await conn.close()


async def _build_plain(dsn: str, code: str) -> str:
    """What one would write without geo_comuna/maps: all parcels into one folium.GeoJson."""
    import folium
    from psycopg import AsyncConnection

    from geo_comuna.maps import assets
    from geo_comuna.maps.styles import STYLES_PATH

    colours = json.loads(STYLES_PATH.read_text())["domains"]["tenure"]
    conn = await AsyncConnection.connect(dsn, autocommit=True)
    try:
        cur = await conn.execute(
            "SELECT json_build_object('type', 'FeatureCollection', 'features', "
            "json_agg(ST_AsGeoJSON(q.*, 'geom', 6)::json))::text, ST_Extent(q.geom)::text "
            "FROM (SELECT p.id, p.code, p.tenure, p.geom FROM parcels p JOIN communes c "
            "ON c.id = p.commune_id WHERE c.code = %s) q",
            (code,),
        )
        text, _ = await cur.fetchone()
    finally:
        await conn.close()
    data = json.loads(text)
    m = folium.Map(tiles=None)
    m.default_js = [("leaflet", assets.LEAFLET[1].path().as_uri())]
    m.default_css = [("leaflet_css", assets.LEAFLET[0].path().as_uri())]
    layer = folium.GeoJson(
        data,
        name="parcels",
        style_function=lambda f: {
            "fillColor": colours[f["properties"]["tenure"]],
            "color": "#444",
            "weight": 0.6,
            "fillOpacity": 0.6,
        },
    )
    layer.add_to(m)
    m.fit_bounds(layer.get_bounds())
    return m.get_root().render()


def measure_build(make) -> tuple[str, float, float]:
    """(html, seconds, peak MB of Python allocations while building)."""
    tracemalloc.start()
    started = time.perf_counter()
    # Playwright's sync API keeps an event loop on this thread: build on another one
    with ThreadPoolExecutor(1) as pool:
        html = pool.submit(lambda: asyncio.run(make())).result()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return html, seconds, peak


def render_ms(browser, url: str, *, ours: bool, offline_: bool) -> float:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    if offline_:
        harness.offline(context)
    page = context.new_page()
    try:
        if ours:
            visit = harness.open_map(page, url, timeout_ms=120_000)
            if visit.errors:
                raise RuntimeError(f"console errors at {url}: {visit.errors[:3]}")
            return float(visit.state["ready_ms"])
        page.add_init_script(BASELINE_INIT)
        page.goto(url, wait_until="load", timeout=300_000)
        page.wait_for_function("() => window.__drawnAt !== undefined", timeout=300_000)
        assert page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
        return float(page.evaluate("window.__drawnAt"))
    finally:
        context.close()


def run(sizes: list[int], runs: int, plain: bool = True) -> list[list[object]]:
    from playwright.sync_api import sync_playwright

    from geo_comuna.api.app import create_app
    from geo_comuna.settings import Settings

    dsn = common.prepare_database()
    make_parcels(dsn, sizes)
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[list[object]] = []
    app = create_app(Settings(), conninfo=dsn)

    def cold_tiles() -> None:
        app.state.tiles.clear()  # the next tile request builds its tiles again

    with (
        harness.serve(app) as base,
        sync_playwright() as playwright,
    ):
        browser = harness.launch(playwright)
        for n in sizes:
            code = f"{PREFIX}{n}"
            variants = [
                (
                    "served, empty tile cache (vector tiles > 5,000)",
                    lambda c=code: _build_ours(dsn, c, False),
                    True,
                    False,
                    cold_tiles,
                ),
                (
                    "served, tiles cached by the app",
                    lambda c=code: _build_ours(dsn, c, False),
                    True,
                    False,
                    None,
                ),
                (
                    "standalone file (geobuf > 5,000, picture > 20,000)",
                    lambda c=code: _build_ours(dsn, c, True),
                    True,
                    True,
                    None,
                ),
                ("plain folium.GeoJson", lambda c=code: _build_plain(dsn, c), False, True, None),
            ]
            if not plain:
                variants = variants[:-1]
            for name, make, ours, is_file, before in variants:
                html, seconds, peak = measure_build(make)
                if is_file:
                    path = OUT / f"{n}-{name.split()[0]}.html"
                    path.write_text(html, encoding="utf-8")
                    url = path.as_uri()
                else:
                    url = f"{base}/maps/communes/{code}?lang=en"
                times = []
                for _ in range(runs):
                    if before is not None:
                        before()
                    times.append(render_ms(browser, url, ours=ours, offline_=is_file))
                median, low, high = common.summary([t / 1000 for t in times])
                rows.append(
                    [
                        f"{n:,}",
                        name,
                        round(len(html.encode()) / 1e6, 2),
                        round(median, 2),
                        f"{low:.2f}–{high:.2f}",
                        round(peak, 1),
                        round(seconds, 2),
                    ]
                )
                print(" | ".join(map(str, rows[-1])), file=sys.stderr)
        browser.close()
    return rows


def write_readme(text: str) -> None:
    readme = REPO / "bench" / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start = current.find("## Maps")
    if start < 0:
        current = (current.rstrip("\n") + "\n\n" if current else "") + text
    else:
        end = current.find("\n## ", start + 1)
        current = current[:start] + text + (current[end + 1 :] if end >= 0 else "")
    readme.write_text(current.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    parser.add_argument(
        "--no-plain",
        action="store_true",
        help="skip the plain folium.GeoJson baseline (minutes at 100,000)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run(sizes, args.runs, plain=not args.no_plain)
    lines = [
        "## Maps\n",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
        f"{os.cpu_count()} CPUs; browser: Debian Chromium, headless, 1200x800",
        f"- `.venv/bin/python bench/bench_maps.py` (median of {args.runs} cold loads; render "
        "= navigation start to every shown layer drawn, `performance.now()`; served pages "
        "include fetching their vector tiles from a local uvicorn; files open from disk "
        "with the network cut off)",
        "- build = building the HTML in Python (queries included); peak = tracemalloc peak "
        "of Python allocations while building",
        common.table(
            "Commune map: size and time to render",
            [
                "parcels",
                "page",
                "HTML MB",
                "render s (median)",
                "render s (min–max)",
                "build peak MB",
                "build s",
            ],
            rows,
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_readme(text)


if __name__ == "__main__":
    main()
