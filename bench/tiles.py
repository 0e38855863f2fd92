"""Vector tiles of the 200,000 bench parcels from zoom 0 to 14: the time PostgreSQL takes to
build each tile as /tiles/parcels/{z}/{x}/{y}.pbf builds it (features/tiles.tile, the app's
tile caches bypassed), against the one statement a tile server that draws every feature
would run (ST_AsMVT over ST_AsMVTGeom of every parcel in the tile, as pg_tileserv and Martin
do), in the same run.

    .venv/bin/python bench/make_parcels.py && .venv/bin/python bench/import_parcels.py --runs 1
    .venv/bin/python bench/tiles.py [--runs 7]

At each zoom the tile taken is the one holding the most parcels. Runs alternate which of the
two goes first; medians, with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from common import conninfo, fmt, header, table
from psycopg import AsyncConnection

from geo_comuna.accounts import EVERYWHERE
from geo_comuna.features import tiles
from geo_comuna.features.filters import Filters
from geo_comuna.layers import get_layer
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings

#: what a tile server drawing every feature runs: each parcel clipped and quantised
EVERY_FEATURE = """
    WITH env AS (
        SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
               ST_Transform(ST_ClipByBox2D(
                   ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096),
                   ST_TileEnvelope(0, 0, 0)), 4326) AS lonlat
    )
    SELECT ST_AsMVT(q, 'parcels', 4096, 'geom', 'id') FROM (
        SELECT t.id, t.tenure, t.land_use,
               ST_AsMVTGeom(ST_Transform(t.geom, 3857), env.tile, 4096, 64, true) AS geom
        FROM env, parcels t WHERE t.geom && env.lonlat
    ) q WHERE q.geom IS NOT NULL"""

#: per zoom, the tile holding the most parcels (by the centre of each parcel's box)
BUSIEST = """
    SELECT x, y, count(*) FROM (
        SELECT floor((ST_X(c) + 180) / 360 * 2 ^ %(z)s)::int AS x,
               floor((1 - ln(tan(radians(ST_Y(c))) + 1 / cos(radians(ST_Y(c)))) / pi()) / 2
                     * 2 ^ %(z)s)::int AS y
        FROM (SELECT ST_Centroid(postgis_getbbox(geom)::geometry) AS c FROM parcels) p
    ) t GROUP BY x, y ORDER BY count(*) DESC LIMIT 1"""


async def timed(work) -> tuple[float, bytes]:
    start = time.perf_counter()
    body = await work()
    return time.perf_counter() - start, body


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-zoom", type=int, default=14)
    args = parser.parse_args()
    header("tiles")
    layer = get_layer("parcels")
    names = Styles.load(Settings().styles_path).slim_properties(layer)
    rows = []
    async with await AsyncConnection.connect(conninfo(), autocommit=True) as conn:
        parcels = (await (await conn.execute("SELECT count(*) FROM parcels")).fetchone())[0]
        if parcels < 100_000:
            sys.exit("import the bench parcels first: bench/import_parcels.py --runs 1")
        print(f"{parcels:,} parcels; properties drawn: {', '.join(names)}")
        for z in range(args.max_zoom + 1):
            x, y, held = await (await conn.execute(BUSIEST, {"z": z})).fetchone()
            load_before = os.getloadavg()[0]

            async def ours(z=z, x=x, y=y) -> bytes:
                return await tiles.tile(conn, layer, z, x, y, Filters(), names, EVERYWHERE)

            async def every(z=z, x=x, y=y) -> bytes:
                cur = await conn.execute(EVERY_FEATURE, {"z": z, "x": x, "y": y})
                return bytes((await cur.fetchone())[0] or b"")

            times: dict[str, list[float]] = {"ours": [], "every": []}
            sizes = {}
            for run in range(args.runs):
                for name in ("ours", "every") if run % 2 == 0 else ("every", "ours"):
                    seconds, body = await timed(ours if name == "ours" else every)
                    times[name].append(seconds)
                    sizes[name] = len(body)
            summary = await tiles._wants_summary(conn, layer, z, x, y, Filters(), EVERYWHERE)
            a, b = statistics.median(times["ours"]), statistics.median(times["every"])
            rows.append(
                [
                    f"{z}/{x}/{y}",
                    f"{held:,}",
                    "summary grid" if summary else "features",
                    fmt(a * 1000, 1),
                    f"{sizes['ours']:,}",
                    fmt(b * 1000, 1),
                    f"{sizes['every']:,}",
                    f"{a / b:.2f}x",
                    f"{load_before:.2f}-{os.getloadavg()[0]:.2f}",
                ]
            )
            print(" | ".join(rows[-1]), file=sys.stderr)
    print(
        table(
            f"Tiles of the busiest place at each zoom, median of {args.runs} runs",
            [
                "tile",
                "parcels centred in it",
                "drawn as",
                "ours ms",
                "bytes",
                "every feature ms",
                "bytes",
                "ratio",
                "load",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
