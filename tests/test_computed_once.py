"""Each costly shape of a statement is made once per row. PostgreSQL merges a subquery, or a
CTE used once, into the statement around it, and every use of one of its columns there (a
filter, ST_IsEmpty, ST_Area, ST_AsGeoJSON...) then computes its expression again: the
overlaps of land recovery were cut four times each and each cluster's union made five times
(100 parcels of 50,000 vertices: 11.6 s instead of 4.0 s), a tile made each feature's shape
twice. Counted here by PostgreSQL itself (track_functions: calls of every function, in the
test's own transaction), on hand cases whose number of shapes is known."""

from __future__ import annotations

import math

import httpx
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.land_recovery import overlaps
from tests.test_analysis_land import TO_LONLAT, X0, Y0, add_commune, add_parcel

pytestmark = pytest.mark.anyio
LAND = "geo_comuna.analysis.land_recovery"


async def counted(conn: AsyncConnection) -> dict[str, int]:
    """Calls of every function so far in the transaction, by name."""
    cur = await conn.execute(
        "SELECT funcname, sum(calls)::integer FROM pg_stat_xact_user_functions GROUP BY 1"
    )
    return dict(await cur.fetchall())


async def calls(conn: AsyncConnection, statement: str, params: dict) -> dict[str, int]:
    """Calls of each function made by one statement."""
    await conn.execute("SET LOCAL track_functions = 'all'")
    before = await counted(conn)
    await (await conn.execute(statement, params)).fetchall()
    after = await counted(conn)
    return {name: n - before.get(name, 0) for name, n in after.items() if n > before.get(name, 0)}


async def test_an_overlap_is_cut_once(conn: AsyncConnection) -> None:
    """Two 100 m squares sharing 40 x 70 m and one that touches nobody: one pair, one cut,
    one geodesic area, one GeoJSON."""
    cid = await add_commune(conn, "ONCE-OVERLAP", shapely.box(-50, -50, 250, 250))
    await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A")
    await add_parcel(conn, cid, shapely.box(60, 30, 160, 130), "B")
    await add_parcel(conn, cid, shapely.box(0, 150, 50, 200), "C")
    first, second = await overlaps.overlapping(conn, cid)
    assert len(first) == 1
    made = await calls(
        conn,
        sql_text(LAND, "shared.sql"),
        {"commune": cid, "first": first, "second": second, "min_m2": 1.0},
    )
    assert made["st_intersection"] == 1
    assert made["st_relate"] == 1
    assert made["st_asgeojson"] == 1


async def test_a_cluster_is_unioned_and_buffered_once(conn: AsyncConnection) -> None:
    """A and B 1 m apart, C 3 m north of A: with slivers under 2 m, parcels 12 m apart or
    less are clustered, so the three are one cluster: one union, buffered out and back in."""
    cid = await add_commune(conn, "ONCE-SLIVER", shapely.box(-20, -20, 240, 240))
    await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A")
    await add_parcel(conn, cid, shapely.box(101, 0, 201, 100), "B")
    await add_parcel(conn, cid, shapely.box(0, 103, 100, 203), "C")
    made = await calls(
        conn,
        sql_text(LAND, "conflicts.sql"),
        {
            "commune": cid,
            "width": 2.0,
            "min_m2": 1.0,
            "slivers": True,
            "most_unioned": 1_000_000,
            "most_buffered": 50_000,
        },
    )
    assert made["st_union"] == 1
    assert made["st_buffer"] == 2
    assert made["st_asgeojson"] == 1  # the one sliver, between A and B


async def test_a_tile_makes_each_shape_once(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """Three parcels in one zoom-16 tile: three shapes simplified and cut to the tile."""
    cid = await add_commune(conn, "ONCE-TILE", shapely.box(-50, -50, 250, 250))
    for k in range(3):
        await add_parcel(conn, cid, shapely.box(k * 50, 0, k * 50 + 40, 40), f"T{k}")
    lon, lat = TO_LONLAT.transform(X0 + 60, Y0 + 20)
    z, n = 16, 2**16
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    await conn.execute("SET LOCAL track_functions = 'all'")
    before = await counted(conn)
    tile = await client.get(f"/tiles/parcels/{z}/{x}/{y}.pbf")
    assert tile.status_code == 200 and tile.content
    after = await counted(conn)
    assert after["st_asmvtgeom"] - before.get("st_asmvtgeom", 0) == 3
    assert after["st_simplify"] - before.get("st_simplify", 0) == 3


async def test_a_commune_map_measures_each_state_once(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """El Maizal lies across Lara and Portuguesa: its map places the two states' names at the
    centres of the largest circles inside the commune's two sides: one circle each."""
    await conn.execute("SET LOCAL track_functions = 'all'")
    before = await counted(conn)
    page = await client.get("/maps/communes/EL-MAIZAL")
    assert page.status_code == 200
    after = await counted(conn)
    made = {name: n - before.get(name, 0) for name, n in after.items()}
    assert made["st_maximuminscribedcircle"] == 2
