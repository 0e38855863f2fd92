"""Land recovery: hand-worked conflicts (two overlapping squares, a parcel half outside its
commune, a 1 m sliver), candidates ranked by hand, a known tenure history, a bulk insert
across two communes, the El Maizal sample across Lara and Portuguesa through the API, and the
degenerate cases.

Hand-built communes are drawn in metres in UTM 19N (EPSG:32619) from (X0, Y0), about
(-68.09, 9.05), far from every sample commune; expected areas and distances come from
pyproj.Geod on the WGS 84 ellipsoid, never from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis import land_recovery
from geo_comuna.analysis.land_recovery import Params, candidates, overlaps
from geo_comuna.io import dems
from tests.test_analysis_terrain import write_dem as terrain_dem

pytestmark = pytest.mark.anyio
X0, Y0 = 600_000.0, 1_000_000.0
TO_LONLAT = pyproj.Transformer.from_crs(32619, 4326, always_xy=True)
GEOD = pyproj.Geod(ellps="WGS84")


def lonlat(geom_m: shapely.Geometry) -> shapely.Geometry:
    """Metres from (X0, Y0) in UTM 19N -> lon/lat."""
    return shapely.transform(
        geom_m, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0] + X0, xy[:, 1] + Y0))
    )


def geodesic_m2(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance between two local points (m from X0, Y0)."""
    (lon1, lon2), (lat1, lat2) = TO_LONLAT.transform([a[0] + X0, b[0] + X0], [a[1] + Y0, b[1] + Y0])
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


async def add_commune(conn: AsyncConnection, code: str, geom_m: shapely.Geometry) -> int:
    cur = await conn.execute(
        "INSERT INTO communes (code, name, kind, status, geom) VALUES (%s, %s, 'rural', "
        "'active', ST_Multi(ST_GeomFromWKB(%s, 4326))) RETURNING id",
        (code, code.title(), shapely.to_wkb(lonlat(geom_m))),
    )
    return (await cur.fetchone())[0]


async def add_parcel(
    conn: AsyncConnection,
    commune_id: int,
    geom_m: shapely.Geometry,
    code: str,
    tenure: str = "occupied",
    land_use: str = "crops",
) -> int:
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, land_use, geom) VALUES "
        "(%s, %s, %s, %s, ST_Multi(ST_GeomFromWKB(%s, 4326))) RETURNING id",
        (commune_id, code, tenure, land_use, shapely.to_wkb(lonlat(geom_m))),
    )
    return (await cur.fetchone())[0]


async def run(conn: AsyncConnection, commune_id: int, **params: float) -> land_recovery.Result:
    return await land_recovery.run(conn, commune_id, Params(**params))


def of_kind(result: land_recovery.Result, kind: str) -> list[dict]:
    return [f for f in result.features if f["properties"]["kind"] == kind]


# --- conflicts -----------------------------------------------------------------------------


async def test_two_overlapping_squares(conn: AsyncConnection) -> None:
    """100 m squares, the second shifted 60 m east and 30 m north: they share 40 x 70 m."""
    cid = await add_commune(conn, "LAND-OVERLAP", shapely.box(-50, -50, 250, 250))
    a = await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A")
    b = await add_parcel(conn, cid, shapely.box(60, 30, 160, 130), "B")
    await add_parcel(conn, cid, shapely.box(0, 150, 50, 200), "C")  # touches nobody
    shared = lonlat(shapely.box(0, 0, 100, 100)).intersection(lonlat(shapely.box(60, 30, 160, 130)))
    found = of_kind(await run(conn, cid), "overlap")
    assert len(found) == 1
    props = found[0]["properties"]
    assert props["parcel_ids"] == [a, b] and props["codes"] == ["A", "B"]
    assert props["area_m2"] == pytest.approx(geodesic_m2(shared), abs=0.01)
    assert props["area_m2"] == pytest.approx(2800, rel=2e-3)  # 40 x 70 m, UTM scale aside
    # the GeoJSON carries 7 decimals (about 1 cm)
    assert geodesic_m2(shapely.geometry.shape(found[0]["geometry"])) == pytest.approx(
        geodesic_m2(shared), rel=1e-4
    )


async def test_parcel_half_outside_the_commune(conn: AsyncConnection) -> None:
    cid = await add_commune(conn, "LAND-EDGE", shapely.box(0, 0, 200, 200))
    pid = await add_parcel(conn, cid, shapely.box(150, 50, 250, 150), "EDGE")
    await add_parcel(conn, cid, shapely.box(10, 10, 60, 60), "INSIDE")
    found = of_kind(await run(conn, cid), "outside_commune")
    assert [f["properties"]["parcel_ids"] for f in found] == [[pid]]
    outside = lonlat(shapely.box(150, 50, 250, 150)).difference(lonlat(shapely.box(0, 0, 200, 200)))
    assert found[0]["properties"]["area_m2"] == pytest.approx(geodesic_m2(outside), abs=0.01)


async def test_a_one_metre_sliver(conn: AsyncConnection) -> None:
    """A and B 1 m apart along 100 m; C 3 m north of A: only the 1 m gap is a sliver when
    slivers are under 2 m, and nothing is under 0.5 m."""
    cid = await add_commune(conn, "LAND-SLIVER", shapely.box(-20, -20, 240, 240))
    a = await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A")
    b = await add_parcel(conn, cid, shapely.box(101, 0, 201, 100), "B")
    await add_parcel(conn, cid, shapely.box(0, 103, 100, 203), "C")
    slivers = of_kind(await run(conn, cid, sliver_width_m=2), "sliver")
    assert len(slivers) == 1
    props = slivers[0]["properties"]
    assert props["parcel_ids"] == [a, b]
    assert props["area_m2"] == pytest.approx(
        geodesic_m2(lonlat(shapely.box(100, 0, 101, 100))), rel=1e-3
    )
    assert of_kind(await run(conn, cid, sliver_width_m=0.5), "sliver") == []


async def budget_commune(conn: AsyncConnection) -> tuple[int, int, int]:
    """Three squares 1 m apart (15 vertices, one cluster) and, 100 m east, two more 1 m apart
    (10 vertices), the second 1 m outside the commune: its id and theirs (D, E)."""
    cid = await add_commune(conn, "LAND-BUDGET", shapely.box(-20, -20, 300, 240))
    await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A")
    await add_parcel(conn, cid, shapely.box(101, 0, 150, 100), "B")
    await add_parcel(conn, cid, shapely.box(0, 101, 100, 150), "C")
    d = await add_parcel(conn, cid, shapely.box(250, 0, 260, 100), "D")
    e = await add_parcel(conn, cid, shapely.box(261, 0, 301, 100), "E")
    return cid, d, e


async def requested(conn: AsyncConnection, cid: int) -> land_recovery.Result:
    """Land recovery as a request runs it: with a deadline."""
    with work.scope(work.default_limits(), None, seconds=60):
        return await run(conn, cid, sliver_width_m=2)


@pytest.mark.parametrize(
    ("budget", "most"), [("MAX_SLIVER_VERTICES", 25), ("MAX_PARCEL_VERTICES", 5)]
)
async def test_a_request_looks_for_no_sliver_in_a_commune_past_its_budget(
    conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch, budget: str, most: int
) -> None:
    """Measuring how far apart two parcels of 50,000 vertices are compares every vertex of
    one with every vertex of the other, in a call nothing stops: clustering 30 such parcels
    had not finished after 2 minutes. A request looks for slivers only while the parcels
    have at most MAX_SLIVER_VERTICES vertices in all and MAX_PARCEL_VERTICES in one; past
    either, none, and the warning says why. The parts outside the commune are still found."""
    cid, _, e = await budget_commune(conn)
    monkeypatch.setattr(land_recovery, budget, most)
    assert len(of_kind(await requested(conn, cid), "sliver")) >= 3
    monkeypatch.setattr(land_recovery, budget, most - 1)
    past = await requested(conn, cid)
    assert of_kind(past, "sliver") == [] and past.summary["conflicts"]["sliver"] is None
    assert [f["properties"]["parcel_ids"] for f in of_kind(past, "outside_commune")] == [[e]]
    [said] = [w for w in past.warnings if w.startswith(land_recovery.SLIVERS_SKIPPED)]
    assert "25 vertices, at most 5 in one" in said


@pytest.mark.parametrize("budget", ["MAX_UNIONED_VERTICES", "MAX_BUFFERED_VERTICES"])
async def test_slivers_are_not_looked_for_in_a_cluster_past_its_budget(
    conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch, budget: str
) -> None:
    """Each cluster's union and buffers are GEOS calls that neither the statement timeout nor
    a cancel stops (1,000 GPS-walked parcels: 10 minutes). In a request (work with a
    deadline), a cluster past its budget of vertices is not looked in: a warning names how
    many parcels, and the sliver count is None (left out of pages, not shown as none found).
    Other clusters, and the parts outside the commune, are still found. A command, with no
    deadline, looks in every cluster."""
    cid, d, e = await budget_commune(conn)
    monkeypatch.setattr(land_recovery, budget, 15)
    within = await requested(conn, cid)
    assert within.summary["conflicts"]["sliver"] == len(of_kind(within, "sliver")) >= 3
    assert not any("vertices" in w for w in within.warnings)
    monkeypatch.setattr(land_recovery, budget, 14)
    past = await requested(conn, cid)
    assert [f["properties"]["parcel_ids"] for f in of_kind(past, "sliver")] == [[d, e]]
    assert past.summary["conflicts"]["sliver"] is None
    assert [f["properties"]["parcel_ids"] for f in of_kind(past, "outside_commune")] == [[e]]
    [said] = [w for w in past.warnings if w.startswith(land_recovery.SLIVERS_SKIPPED)]
    assert "among 3 parcels" in said
    commanded = await run(conn, cid, sliver_width_m=2)  # no deadline
    assert len(of_kind(commanded, "sliver")) == len(of_kind(within, "sliver"))
    assert not commanded.warnings


async def test_conflicts_come_in_the_order_postgresql_gives_them(conn: AsyncConnection) -> None:
    """Overlaps (shared.sql, beside) and the other conflicts (conflicts.sql) are measured apart
    and merged in Python: in the order ORDER BY kind, area_m2 DESC, parcel_ids gives over
    both, ties of equal area by their parcels' ids. Here three copies of one square over a
    fourth give overlaps of equal area, two parcels reach out of the commune by the same
    area, and two gaps 1 m wide are slivers."""
    cid = await add_commune(conn, "LAND-ORDER", shapely.box(0, 0, 400, 300))
    await add_parcel(conn, cid, shapely.box(10, 10, 110, 110), "BASE")
    for n in range(3):  # each overlaps BASE by the same 50 x 100 m, and the others wholly
        await add_parcel(conn, cid, shapely.box(60, 10, 160, 110), f"COPY{n}")
    await add_parcel(conn, cid, shapely.box(350, 10, 420, 60), "EAST")  # 20 x 50 m out
    await add_parcel(conn, cid, shapely.box(350, 240, 420, 290), "EAST2")  # the same
    await add_parcel(conn, cid, shapely.box(200, 150, 300, 250), "S1")
    await add_parcel(conn, cid, shapely.box(301, 150, 340, 250), "S2")  # 1 m from S1
    await add_parcel(conn, cid, shapely.box(200, 251, 290, 280), "S3")  # 1 m from S1
    params = Params(sliver_width_m=2)
    result = await land_recovery.run(conn, cid, params)
    got = [
        (f["properties"]["kind"], f["properties"]["parcel_ids"])
        for f in result.features
        if f["properties"]["kind"] != "candidate"
    ]
    first, second = await overlaps.overlapping(conn, cid)
    query = (
        f"SELECT kind, coalesce(parcel_ids, '{{}}') FROM ("
        f"({land_recovery.sql_text(land_recovery.__name__, 'shared.sql')}) UNION ALL "
        f"({land_recovery.sql_text(land_recovery.__name__, 'conflicts.sql')})) x "
        "ORDER BY kind, area_m2 DESC, parcel_ids"
    )
    values = {
        "commune": cid,
        "first": first,
        "second": second,
        "width": params.sliver_width_m,
        "min_m2": params.min_conflict_area_m2,
        "slivers": True,
        "most_unioned": None,
        "most_buffered": None,
    }
    cur = await conn.execute(query, values)
    expected = [(kind, list(ids)) for kind, ids in await cur.fetchall()]
    kinds = [kind for kind, _ in got]
    assert kinds.count("overlap") == 6 and kinds.count("outside_commune") == 2
    assert kinds.count("sliver") >= 2
    assert got == expected


async def test_slivers_of_many_separate_clusters(conn: AsyncConnection) -> None:
    """Slivers are found per cluster of nearby parcels (conflicts.sql); on a commune of many
    clusters, worked by hand: 6 pairs of 50 m squares 0.6 m apart (a 0.6 x 50 m sliver
    each, naming the pair), 4 lone squares with a notch 0.5 m wide and 20 m deep in their
    top edge (a 0.5 x 20 m sliver each, naming the one parcel), 2 pairs 3 m apart and 10
    lone squares (no sliver). Blocks are 40 m apart: wider than any gap looked for."""
    cid = await add_commune(conn, "LAND-CLUSTERS", shapely.box(-50, -50, 3000, 400))
    expected: dict[tuple[int, ...], float] = {}
    x = 0.0

    def block(width: float) -> float:
        nonlocal x
        start, x = x, x + width + 40
        return start

    for k in range(6):
        x0 = block(100.6)
        pair = [shapely.box(x0, 0, x0 + 50, 50), shapely.box(x0 + 50.6, 0, x0 + 100.6, 50)]
        ids = tuple(
            [
                await add_parcel(conn, cid, g, f"PAIR{k}{side}")
                for side, g in zip("AB", pair, strict=True)
            ]
        )
        expected[ids] = geodesic_m2(lonlat(shapely.box(x0 + 50, 0, x0 + 50.6, 50)))
    for k in range(4):
        x0 = block(50)
        notched = shapely.box(x0, 0, x0 + 50, 50).difference(
            shapely.box(x0 + 20, 30, x0 + 20.5, 50)
        )
        pid = await add_parcel(conn, cid, notched, f"NOTCH{k}")
        expected[(pid,)] = geodesic_m2(lonlat(shapely.box(x0 + 20, 30, x0 + 20.5, 50)))
    for k in range(2):
        x0 = block(103)
        await add_parcel(conn, cid, shapely.box(x0, 0, x0 + 50, 50), f"WIDE{k}A")
        await add_parcel(conn, cid, shapely.box(x0 + 53, 0, x0 + 103, 50), f"WIDE{k}B")
    for k in range(10):
        x0 = block(50)
        await add_parcel(conn, cid, shapely.box(x0, 200, x0 + 50, 250), f"LONE{k}")

    slivers = of_kind(await run(conn, cid, sliver_width_m=1), "sliver")
    found = {tuple(f["properties"]["parcel_ids"]): f["properties"]["area_m2"] for f in slivers}
    assert set(found) == set(expected)
    for ids, area in expected.items():
        assert found[ids] == pytest.approx(area, rel=1e-3), ids


async def test_overlaps_found_in_bulk_are_those_postgis_finds(conn: AsyncConnection) -> None:
    """overlaps.py finds the overlapping pairs with GEOS in bulk; PostGIS's own self-join
    (ST_Intersects, then ST_Relate '2********', the form conflicts.sql had) finds the same
    pairs on a commune of 612 parcels: a 20 x 20 grid of 50 m squares sharing their edges
    (touching only: no pair), 150 random rectangles and triangles over it (overlapping,
    containing, contained), 30 copies of grid squares (equal), 30 squares with a hole
    holding another parcel (inside the hole: no pair) and two-part parcels."""
    cid = await add_commune(conn, "LAND-BULK", shapely.box(-100, -100, 1100, 1100))
    rng = np.random.default_rng(11)
    shapes = [
        shapely.box(50 * i, 50 * j, 50 * i + 50, 50 * j + 50) for i in range(20) for j in range(20)
    ]
    for _ in range(150):
        x, y = rng.uniform(0, 950, 2)
        w, h = rng.uniform(5, 120, 2)
        shapes.append(
            shapely.box(x, y, x + w, y + h)
            if rng.random() < 0.5
            else shapely.Polygon([(x, y), (x + w, y), (x + w / 2, y + h)])
        )
    shapes += [shapes[int(k)] for k in rng.integers(0, 400, 30)]
    for _ in range(30):
        x, y = rng.uniform(0, 900, 2)
        shapes.append(
            shapely.box(x, y, x + 60, y + 60).difference(
                shapely.box(x + 10, y + 10, x + 50, y + 50)
            )
        )
        shapes.append(shapely.box(x + 20, y + 20, x + 40, y + 40))
    for _ in range(2):
        x, y = rng.uniform(0, 800, 2)
        shapes.append(
            shapely.MultiPolygon(
                [shapely.box(x, y, x + 30, y + 30), shapely.box(x + 100, y, x + 130, y + 30)]
            )
        )
    for n, shape in enumerate(shapes):
        await add_parcel(conn, cid, shape, f"B{n}")
    cur = await conn.execute(
        "SELECT a.id, b.id FROM parcels a JOIN parcels b ON a.id < b.id "
        "AND ST_Intersects(a.geom, b.geom) AND ST_Relate(a.geom, b.geom, '2********') "
        "WHERE a.commune_id = %(c)s AND b.commune_id = %(c)s",
        {"c": cid},
    )
    expected = sorted(await cur.fetchall())
    first, second = await overlaps.overlapping(conn, cid)
    assert sorted(zip(first, second, strict=True)) == expected
    assert len(expected) > 300
    cur = await conn.execute(
        "SELECT count(*) FROM parcels a JOIN parcels b ON a.id < b.id "
        "AND ST_Touches(a.geom, b.geom) WHERE a.commune_id = %(c)s AND b.commune_id = %(c)s",
        {"c": cid},
    )
    assert (await cur.fetchone())[0] > 700  # the grid's shared edges and corners: no pair


# --- candidates ----------------------------------------------------------------------------


def write_dem(folder: Path) -> Path:
    """10 m cells over x -100..1800, y -100..600: a 20 % ramp eastwards (z = 0.2 x) where
    x < 1000 and y < 300, flat (0 m) elsewhere. P1 lies on the ramp, P2 and P3 on the flat,
    every one at least 5 cells from the edges of the ramp."""
    cols, rows = 190, 70
    x = -100 + 10 * (np.arange(cols) + 0.5)
    y = 600 - 10 * (np.arange(rows) + 0.5)
    z = np.where((x[None, :] < 1000) & (y[:, None] < 300), 0.2 * x[None, :], 0.0)
    return terrain_dem(folder, z, west=X0 - 100, north=Y0 + 600, name="ramp.tif")


async def test_candidates_ranked_by_hand(conn: AsyncConnection, tmp_path: Path) -> None:
    """A road along x = 0 (y 0..1000) and three candidates (weights 1, 1, 1):

    P1 abandoned crops 200 x 200 m, on the 20 % ramp, 100 m from the road:
       area 1, slope 1 - 20/30 = 1/3, road 1 - 100/2000 = 0.95   -> 76.11
    P3 abandoned idle  200 x 200 m, flat, 1,500 m from the road:
       area 1, slope 1, road 1 - 1500/2000 = 0.25                 -> 75.00
    P2 occupied idle   100 x 100 m, flat, 100 m from the road:
       area 1/4, slope 1, road 0.95                              -> 73.33
    Without the DEM the slope term leaves the mean: P1 97.5, P3 62.5, P2 60.0."""
    cid = await add_commune(conn, "LAND-RANK", shapely.box(-100, -100, 1800, 600))
    p1 = await add_parcel(conn, cid, shapely.box(100, 0, 300, 200), "P1", "abandoned", "crops")
    p2 = await add_parcel(conn, cid, shapely.box(100, 400, 200, 500), "P2", "occupied", "idle")
    p3 = await add_parcel(conn, cid, shapely.box(1500, 0, 1700, 200), "P3", "abandoned", "idle")
    await add_parcel(conn, cid, shapely.box(400, 400, 500, 500), "NOT", "occupied", "crops")
    road = shapely.LineString([(0, 0), (0, 1000)])
    await conn.execute(
        "INSERT INTO paths (commune_id, kind, geom) VALUES (%s, 'road', ST_GeomFromWKB(%s, 4326))",
        (cid, shapely.to_wkb(lonlat(road))),
    )

    # hand arithmetic, with the geodesic areas and distances of the drawn shapes
    area = {
        p: geodesic_m2(lonlat(g))
        for p, g in (
            (p1, shapely.box(100, 0, 300, 200)),
            (p2, shapely.box(100, 400, 200, 500)),
            (p3, shapely.box(1500, 0, 1700, 200)),
        )
    }
    largest = max(area.values())
    road_km = {
        p1: metres((100, 100), (0, 100)),
        p2: metres((100, 450), (0, 450)),
        p3: metres((1500, 100), (0, 100)),
    }
    slope = {p1: 20.0, p2: 0.0, p3: 0.0}

    def expected(pid: int, with_slope: bool) -> float:
        terms = [area[pid] / largest, 1 - road_km[pid] / 2000]
        if with_slope:
            terms.append(1 - slope[pid] / 30)
        return 100 * sum(terms) / len(terms)

    without = await run(conn, cid)
    assert any("no DEM" in w for w in without.warnings)
    ranked = of_kind(without, "candidate")
    assert [f["properties"]["parcel_ids"][0] for f in ranked] == [p1, p3, p2]
    for f in ranked:
        pid = f["properties"]["parcel_ids"][0]
        assert f["properties"]["score"] == pytest.approx(expected(pid, False), abs=0.01)
        assert f["properties"]["slope_term"] is None

    await dems.register(conn, cid, write_dem(tmp_path))
    result = await run(conn, cid)
    assert result.warnings == []
    ranked = of_kind(result, "candidate")
    assert [f["properties"]["parcel_ids"][0] for f in ranked] == [p1, p3, p2]
    assert [f["properties"]["rank"] for f in ranked] == [1, 2, 3]
    for f in ranked:
        props = f["properties"]
        pid = props["parcel_ids"][0]
        assert props["mean_slope_pct"] == pytest.approx(slope[pid], abs=1e-6)
        assert props["road_distance_m"] == pytest.approx(road_km[pid], abs=0.1)
        assert props["score"] == pytest.approx(expected(pid, True), abs=0.01)
    assert [round(f["properties"]["score"], 1) for f in ranked] == [76.1, 75.0, 73.3]
    assert result.summary["candidates"] == 3

    # weights move the ranking: on distance alone P2 (100 m) ties P1 and beats P3
    by_road = of_kind(await run(conn, cid, weight_area=0, weight_slope=0), "candidate")
    assert [f["properties"]["parcel_ids"][0] for f in by_road] == [p1, p2, p3]


async def test_a_candidate_without_a_weighed_term_is_not_scored(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    """The slope weighed alone, on write_dem's ramp: P1 (20 %) scores 100 * (1 - 20/30) =
    33.33, the flat P2 and P3 100 each (a tie, broken by parcel id). OFF reaches past the
    DEM's north-east corner: its slope is unknown, so nothing weighed is known for it. It was
    ranked last with a score of 0.0, as if it were the steepest; it is listed after the
    others, without a score or a rank, and its note says why."""
    cid = await add_commune(conn, "LAND-OFF", shapely.box(-100, -100, 2000, 800))
    p1 = await add_parcel(conn, cid, shapely.box(100, 0, 300, 200), "P1", "abandoned", "crops")
    p2 = await add_parcel(conn, cid, shapely.box(100, 400, 200, 500), "P2", "occupied", "idle")
    p3 = await add_parcel(conn, cid, shapely.box(1500, 0, 1700, 200), "P3", "abandoned", "idle")
    off = await add_parcel(conn, cid, shapely.box(1700, 500, 1900, 700), "OFF", "abandoned")
    await dems.register(conn, cid, write_dem(tmp_path))

    result = await run(conn, cid, weight_area=0, weight_road=0)
    props = [f["properties"] for f in of_kind(result, "candidate")]
    assert [p["parcel_ids"][0] for p in props] == [p2, p3, p1, off]
    assert [p["rank"] for p in props] == [1, 2, 3, None]
    expected = [100.0, 100.0, 100 * (1 - 20 / 30)]
    assert [p["score"] for p in props[:3]] == pytest.approx(expected, abs=0.01)
    unscored = props[3]
    assert unscored["score"] is None and unscored["mean_slope_pct"] is None
    assert unscored["slope_term"] is None and "not scored" in unscored["note"]

    # with the area weighed too OFF is scored again, on its area alone
    both = of_kind(await run(conn, cid, weight_road=0), "candidate")
    scored = {f["properties"]["parcel_ids"][0]: f["properties"] for f in both}
    assert scored[off]["score"] == pytest.approx(100 * scored[off]["area_term"], abs=0.01)
    assert scored[off]["rank"] is not None and "scored without slope" in scored[off]["note"]


async def test_distance_bounds_hold_around_postgis(conn: AsyncConnection) -> None:
    """candidates.bounds() against PostGIS' own geodesic distances: parcels from 10 m to 5 km
    across, roads of up to 6 vertices with edges of up to 0.3 degrees, from crossing to 20 km
    apart, at latitudes from the equator to 75 degrees, both hemispheres. Every distance lies
    within its bounds, and where the bounds are meant to be tight (13 degrees of the equator,
    as Venezuela; short edges) they are within 3 %, or ranking by them would prune nothing."""
    rng = np.random.default_rng(16)
    rows = []
    for _ in range(400):
        lat = rng.choice([-75, -40, -10, 0, 5, 10, 12, 35, 60, 75]) + rng.uniform(-1, 1)
        lon = rng.uniform(-170, 170)
        side = 10 ** rng.uniform(-4, -1.35)  # 0.0001-0.045 degrees
        parcel = shapely.box(lon, lat, lon + side, lat + side * rng.uniform(0.3, 3))
        edge = 10 ** rng.uniform(-4, np.log10(0.3))
        start = np.array([lon, lat]) + rng.uniform(-1, 1, 2) * 10 ** rng.uniform(-4.5, -0.7)
        steps = rng.normal(size=(int(rng.integers(1, 6)), 2))
        steps *= edge / np.hypot(steps[:, 0], steps[:, 1])[:, None]
        road = shapely.LineString(np.vstack([start, start + np.cumsum(steps, axis=0)]))
        rows.append((shapely.to_wkb(parcel), shapely.to_wkb(road)))
    cur = await conn.execute(
        """SELECT ST_Distance(p, r), ST_Distance(p::geography, r::geography),
                  ST_XMin(p), ST_YMin(p), ST_XMax(p), ST_YMax(p),
                  (SELECT max(ST_Length(s.geom)) FROM ST_DumpSegments(r) s)
           FROM (SELECT ST_GeomFromWKB(u.p, 4326) AS p, ST_GeomFromWKB(u.r, 4326) AS r
                 FROM unnest(%s::bytea[], %s::bytea[]) u(p, r)) x""",
        ([p for p, _ in rows], [r for _, r in rows]),
    )
    planar, geodesic, *box, longest = np.array(await cur.fetchall(), dtype=float).T
    box = np.column_stack(box)
    diagonal = np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    low, high = candidates.bounds(planar, box, candidates.bow(diagonal) + candidates.bow(longest))
    assert (low <= geodesic).all() and (geodesic <= high).all()
    assert (geodesic == 0).sum() > 40 and (geodesic < 50).sum() > 60  # touching, and near
    assert (geodesic > 5_000).sum() > 20
    tight = (abs(box[:, 1]) < 13) & (diagonal < 0.01) & (longest < 0.01) & (geodesic > 100)
    assert tight.sum() > 20
    assert (high[tight] / low[tight]).max() < 1.03
    # across the antimeridian lon/lat distances mean nothing: no bounds
    far_east = np.array([[179.99, 10.0, 179.995, 10.005]])
    assert candidates.bounds(np.array([0.5]), far_east, np.array([0.0])) == (0.0, np.inf)


async def test_the_best_candidates_are_those_of_measuring_every_road(
    conn: AsyncConnection,
) -> None:
    """Scored on the road alone (weight_area 0, no DEM): 150 candidates 995-1,000 m east of
    a north-south road and 150 candidates 1,000-1,000.7 m north of an east-west road, 10 m
    squares. A degree of longitude is ~1.2 % shorter than one of latitude here, so in lon/lat
    the northern ones look nearer: only the lower bound of each distance ranks the eastern
    ones first (an upper bound, or the planar order, would choose northern ones). Scores
    come in steps of 0.01 (0.2 m), so many tie and go by parcel id.

    Ranked with every candidate measured (max_candidates 300, each at the distance one
    statement measuring every road gives) and with only the best 12 wanted, the 12 are the
    same, with the same scores, distances and terms, and some candidates were never
    measured on the spheroid for them (here, where the planar order misleads, most were)."""
    cid = await add_commune(conn, "LAND-MANY", shapely.box(-1000, -6000, 14000, 3000))
    for road in (
        shapely.LineString([(0, 0), (4000, 0)]),
        shapely.LineString([(10000, -4000), (10000, 0)]),
    ):
        await conn.execute(
            "INSERT INTO paths (commune_id, kind, geom) "
            "VALUES (%s, 'road', ST_GeomFromWKB(%s, 4326))",
            (cid, shapely.to_wkb(lonlat(road))),
        )
    rng = np.random.default_rng(7)
    for n in range(150):
        along, off, north_off = rng.uniform(500, 3500), rng.uniform(0, 5), rng.uniform(0, 0.7)
        north = shapely.box(along, 1000 + north_off, along + 10, 1010 + north_off)
        east = shapely.box(10995 + off, -along - 10, 11005 + off, -along)
        await add_parcel(conn, cid, north, f"N{n}", "abandoned")
        await add_parcel(conn, cid, east, f"E{n}", "abandoned")

    def ranked(found: list[dict]) -> list[tuple]:
        return [tuple(sorted(c.items())) for c in found]

    async def best(wanted: int) -> tuple[list[dict], int]:
        params = Params(max_candidates=wanted, weight_area=0)
        read, roads, _ = await candidates.read_candidates(conn, cid, params)
        return await candidates.best(conn, read, roads, params)

    every, _ = await best(300)
    # every road measured, as one statement would: the nearest of the 8 nearest in lon/lat
    cur = await conn.execute(
        "SELECT p.id, (SELECT min(ST_Distance(p.geom::geography, k.geom::geography)) FROM "
        "(SELECT geom FROM paths WHERE kind = 'road' ORDER BY geom <-> p.geom LIMIT 8) k) "
        "FROM parcels p WHERE p.commune_id = %s",
        (cid,),
    )
    nearest = {pid: round(distance, 1) for pid, distance in await cur.fetchall()}
    assert {c["parcel_ids"][0]: c["road_distance_m"] for c in every} == nearest
    assert [c["codes"][0][0] for c in every[:150]] == ["E"] * 150
    assert len({c["score"] for c in every[:12]}) < 12  # ties among the best

    found, measured = await best(12)
    assert ranked(found) == ranked(every[:12])
    assert 12 <= measured < 300


# --- breakdown and timeline ----------------------------------------------------------------


async def test_timeline_from_a_known_history(conn: AsyncConnection) -> None:
    cid = await add_commune(conn, "LAND-HISTORY", shapely.box(0, 0, 300, 100))
    ids = [
        await add_parcel(conn, cid, shapely.box(100 * k, 0, 100 * k + 90, 90), f"H{k}")
        for k in range(3)
    ]
    # each add_parcel() is its own INSERT statement: its first-tenure row names that parcel only
    await conn.execute("DELETE FROM parcel_history WHERE parcel_ids @> ANY(%s::int[])", (ids,))
    history = [
        (ids[0], None, "abandoned", "2010-03-05"),
        (ids[1], None, "abandoned", "2010-06-01"),
        (ids[1], "abandoned", "occupied", "2012-01-15"),
        (ids[1], "occupied", "regularizing", "2015-08-30"),
        (ids[2], None, "occupied", "2012-11-02"),
    ]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO parcel_history (parcel_id, from_status, to_status, "
            "changed_at) VALUES (%s, %s, %s, %s::date)",
            history,
        )
    timeline = (await run(conn, cid)).summary["timeline"]
    assert [
        (
            t["year"],
            t["abandoned"],
            t["occupied"],
            t["regularizing"],
            t["regularized"],
            t["disputed"],
        )
        for t in timeline
    ] == [(2010, 2, 0, 0, 0, 0), (2012, 0, 2, 0, 0, 0), (2015, 0, 0, 1, 0, 0)]
    ha = geodesic_m2(lonlat(shapely.box(0, 0, 90, 90))) / 10_000
    assert timeline[0]["area_ha"]["abandoned"] == pytest.approx(2 * ha, abs=2e-4)


async def test_timeline_counts_a_bulk_insert_per_parcel_of_the_commune(
    conn: AsyncConnection,
) -> None:
    """One INSERT statement writes parcels of two communes in two tenures: its first-tenure
    rows (one per tenure, migration 0011) count once per parcel, in each parcel's commune.

    By hand: the statement (dated 2011-04-01) writes in A two abandoned parcels (A0 90x90 m,
    A1 90x45 m) and one occupied (A2 90x90 m), in B two abandoned and one occupied; A1 goes
    to occupied on 2014-07-01. A: 2011 abandoned 2 (A0 + A1), occupied 1 (A2); 2014 occupied
    1 (A1). B: 2011 abandoned 2, occupied 1. The ids interleave the communes and end at the
    largest integer (A2), whose range is open above."""
    a = await add_commune(conn, "LAND-BULK-A", shapely.box(0, 0, 300, 100))
    b = await add_commune(conn, "LAND-BULK-B", shapely.box(0, 200, 300, 300))
    boxes = {  # in id order
        "B0": (b, "abandoned", shapely.box(0, 200, 90, 290)),
        "A0": (a, "abandoned", shapely.box(0, 0, 90, 90)),
        "B1": (b, "occupied", shapely.box(100, 200, 190, 290)),
        "A1": (a, "abandoned", shapely.box(100, 0, 190, 45)),
        "B2": (b, "abandoned", shapely.box(200, 200, 290, 290)),
        "A2": (a, "occupied", shapely.box(200, 0, 290, 90)),
    }
    largest = 2**31 - 1
    cur = await conn.execute(
        "INSERT INTO parcels (id, commune_id, code, tenure, land_use, geom) "
        "SELECT i, c, code, t, 'crops', ST_Multi(ST_GeomFromWKB(g, 4326)) "
        "FROM unnest(%s::int[], %s::int[], %s::text[], %s::text[], %s::bytea[]) "
        "u(i, c, code, t, g) RETURNING code, id",
        (
            list(range(largest - len(boxes) + 1, largest + 1)),
            [c for c, _, _ in boxes.values()],
            list(boxes),
            [t for _, t, _ in boxes.values()],
            [shapely.to_wkb(lonlat(g)) for _, _, g in boxes.values()],
        ),
    )
    ids = dict(await cur.fetchall())
    assert ids["A2"] == largest
    cur = await conn.execute(
        "UPDATE parcel_history SET changed_at = '2011-04-01' "
        "WHERE parcel_ids @> ANY(%s::int[]) RETURNING to_status, parcels",
        (list(ids.values()),),
    )
    assert sorted(await cur.fetchall()) == [("abandoned", 4), ("occupied", 2)]
    await conn.execute("UPDATE parcels SET tenure = 'occupied' WHERE id = %s", (ids["A1"],))
    await conn.execute(
        "UPDATE parcel_history SET changed_at = '2014-07-01' WHERE parcel_id = %s", (ids["A1"],)
    )

    def ha(*codes: str) -> float:
        return sum(geodesic_m2(lonlat(boxes[c][2])) for c in codes) / 10_000

    def counts(timeline: list[dict]) -> list[tuple[int, ...]]:
        return [
            (t["year"], t["abandoned"], t["occupied"], t["regularizing"], t["regularized"])
            for t in timeline
        ]

    in_a = (await run(conn, a)).summary["timeline"]
    assert counts(in_a) == [(2011, 2, 1, 0, 0), (2014, 0, 1, 0, 0)]
    assert in_a[0]["area_ha"]["abandoned"] == pytest.approx(ha("A0", "A1"), abs=2e-4)
    assert in_a[0]["area_ha"]["occupied"] == pytest.approx(ha("A2"), abs=2e-4)
    assert in_a[1]["area_ha"]["occupied"] == pytest.approx(ha("A1"), abs=2e-4)
    in_b = (await run(conn, b)).summary["timeline"]
    assert counts(in_b) == [(2011, 2, 1, 0, 0)]
    assert in_b[0]["area_ha"]["abandoned"] == pytest.approx(ha("B0", "B2"), abs=2e-4)


async def test_el_maizal_per_state_through_the_api(client: httpx.AsyncClient) -> None:
    got = (await client.get("/communes/EL-MAIZAL/analyses/land-recovery")).json()
    summary = got["summary"]
    states = {s["state"]: s for s in summary["by_state"]}
    assert set(states) == {"VE-K", "VE-P"} and summary["crosses_state_line"]
    assert summary["parcels"] == 96 and summary["recovered_parcels"] == 90
    assert states["VE-K"]["parcels"] + states["VE-P"]["parcels"] == 96
    for key in ("area_ha", "recovered_area_ha"):
        assert states["VE-K"][key] + states["VE-P"][key] == pytest.approx(summary[key], abs=1e-3)
    assert sum(t["parcels"] for t in summary["by_tenure"]) == 96
    assert sum(t["area_ha"] for t in summary["by_land_use"]) == pytest.approx(
        summary["area_ha"], abs=1e-3
    )
    assert {t["tenure"]: t["parcels"] for t in summary["by_tenure"]} == {
        "regularized": 52,
        "regularizing": 21,
        "occupied": 15,
        "disputed": 2,
        "abandoned": 6,
    }
    not_recovered = [y for y in summary["by_year_recovered"] if y["year"] is None]
    assert not_recovered[0]["parcels"] == 6
    # parcels are counted in the state of their point on surface, as /communes/X/states does
    breakdown = (await client.get("/communes/EL-MAIZAL/states")).json()["states"]
    assert {s["code"]: s["parcels"] for s in breakdown} == {
        code: s["parcels"] for code, s in states.items()
    }
    # the six abandoned idle parcels are the candidates; the sample has no conflicts
    assert summary["candidates"] == 6
    assert summary["conflicts"] == {"overlap": 0, "outside_commune": 0, "sliver": 0}
    assert any("no DEM" in w for w in got["warnings"])

    geojson = json.loads(
        (await client.get("/communes/EL-MAIZAL/analyses/land-recovery?f=geojson")).text
    )
    assert geojson["type"] == "FeatureCollection"
    assert [f["properties"]["rank"] for f in geojson["features"]] == [1, 2, 3, 4, 5, 6]
    rows = list(
        csv.DictReader(
            io.StringIO((await client.get("/communes/EL-MAIZAL/analyses/land-recovery?f=csv")).text)
        )
    )
    assert len(rows) == 6 and rows[0]["kind"] == "candidate"
    assert rows[0]["parcel_ids"].isdigit() and rows[0]["codes"].startswith("EM-P")


async def test_csv_carries_every_kind(conn: AsyncConnection) -> None:
    cid = await add_commune(conn, "LAND-CSV", shapely.box(0, 0, 200, 200))
    await add_parcel(conn, cid, shapely.box(0, 0, 100, 100), "A", "abandoned", "idle")
    await add_parcel(conn, cid, shapely.box(50, 50, 250, 150), "B")
    rows = list(csv.DictReader(io.StringIO((await run(conn, cid)).csv())))
    assert [r["kind"] for r in rows] == ["candidate", "outside_commune", "overlap"]
    assert rows[2]["parcel_ids"].count(" ") == 1 and float(rows[2]["area_m2"]) > 0


async def test_empty_commune_and_bad_parameters(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    await add_commune(conn, "LAND-EMPTY", shapely.box(0, 0, 100, 100))
    got = await client.get("/communes/LAND-EMPTY/analyses/land-recovery")
    assert got.status_code == 200
    body = got.json()
    assert body["summary"]["parcels"] == 0 and body["features"] == []
    assert body["summary"]["timeline"] == [] and "the commune has no parcels" in body["warnings"]
    for f in ("json", "geojson"):  # found from outside: English with ?lang=es
        said = await client.get(f"/communes/LAND-EMPTY/analyses/land-recovery?f={f}&lang=es")
        assert said.json()["warnings"] == ["la comuna no tiene parcelas"]
    csv_text = (await client.get("/communes/LAND-EMPTY/analyses/land-recovery?f=csv")).text
    assert csv_text == ""
    zero = await client.get(
        "/communes/LAND-EMPTY/analyses/land-recovery?weight_area=0&weight_slope=0&weight_road=0"
    )
    assert zero.status_code == 400 and "weight" in zero.json()["detail"]
    wide = await client.get("/communes/LAND-EMPTY/analyses/land-recovery?sliver_width_m=500")
    assert wide.status_code == 400 and "sliver_width_m" in wide.json()["detail"]


async def test_a_ranking_on_terms_that_are_all_unknown_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """El Maizal has no DEM: with the slope weighed alone every score was 0.0 and the ranking
    followed the parcels' codes, with the usual warning only. It is a 400 saying what each
    term needs; weighing the area too scores again."""
    url = "/communes/EL-MAIZAL/analyses/land-recovery"
    alone = {"weight_area": 0, "weight_road": 0, "weight_slope": 1}
    r = await client.get(url, params=alone)
    assert r.status_code == 400, r.text[:300]
    assert "every weighted term is unknown" in r.json()["detail"]
    r = await client.get(url, params={**alone, "weight_area": 1})
    assert r.status_code == 200
    scores = [
        f["properties"]["score"]
        for f in r.json()["features"]
        if f["properties"]["kind"] == "candidate"
    ]
    assert scores and max(scores) > 0
