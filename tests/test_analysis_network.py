"""The shared network layer: segments and snapped nodes from PostGIS, attachment of points,
and the tree helpers every network analysis builds on (checked on hand-made trees)."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis.toolkit import network
from tests.network_factories import LAT0, LON0, commune, dwelling, metres, path

pytestmark = pytest.mark.anyio


def hand_tree() -> tuple[network.Tree, np.ndarray]:
    """Edges (id: tail->head, weight): 0: 0->1 5, 1: 0->1 2 (the lighter twin), 2: 1->2 1,
    3: 0->2 10, 4: 2->3 0; node 4 is cut off. From 0: dist 0, 2, 3, 3; 1 via edge 1."""
    tails = np.array([0, 0, 1, 0, 2])
    heads = np.array([1, 1, 2, 2, 3])
    weights = np.array([5.0, 2.0, 1.0, 10.0, 0.0])
    return network.shortest_tree(5, tails, heads, weights, 0), weights


def test_shortest_tree_keeps_the_lighter_parallel_edge() -> None:
    tree, _ = hand_tree()
    assert tree.dist[:4] == pytest.approx([0, 2, 3, 3])  # a zero weight counts (as 1e-9)
    assert np.isinf(tree.dist[4])
    assert tree.pred.tolist() == [-1, 0, 1, 2, -1]
    assert tree.via.tolist() == [-1, 1, 2, 4, -1]


def test_tree_helpers() -> None:
    tree, weights = hand_tree()
    metres_to_root = network.accumulate(tree, weights * 10)
    assert metres_to_root.tolist() == pytest.approx([0, 20, 30, 30, 0])
    below_root = network.top_ancestor(tree, tree.pred == 0)
    assert below_root.tolist() == [0, 1, 1, 1, 4]
    assert network.mark_paths(tree, np.array([3])).tolist() == [False, True, True, True, False]
    assert network.mark_paths(tree, np.array([1, 1])).tolist() == [False, True, False, False, False]


def test_accumulate_on_a_long_chain() -> None:
    """10,000 nodes in a row: pointer jumping adds up every edge (about 14 rounds)."""
    n = 10_000
    tree = network.shortest_tree(n, np.arange(n - 1), np.arange(1, n), np.ones(n - 1), 0)
    assert network.accumulate(tree, np.full(n - 1, 0.5))[-1] == pytest.approx((n - 1) * 0.5)
    assert network.top_ancestor(tree, tree.pred == 0)[-1] == 1
    assert network.mark_paths(tree, np.array([n - 1])).sum() == n - 1


async def test_segments_snapping_and_attachment(conn: AsyncConnection) -> None:
    cid = await commune(conn)
    a, b, c = (LON0, LAT0), (LON0, LAT0 + 0.0005), (LON0, LAT0 + 0.0015)
    stair = await path(conn, cid, [a, b, c], "stairway", steps=30)
    # meets the stairway's start 1 cm off: the same node once snapped to the 0.5 m grid
    await path(conn, cid, [(LON0 + 1e-7, LAT0), (LON0 + 0.001, LAT0)], "road", vehicles=True)
    srid = await network.utm_srid(conn, cid)
    assert srid == 32619  # 67° W: UTM zone 19 north
    net = await network.load(conn, cid, srid)
    assert net.n_edges == 3 and net.n_nodes == 4  # a (shared), b, c, the road's far end
    first, second = net.edge_of(np.array([stair, stair]), np.array([1, 2]))
    assert net.length_m[first] == pytest.approx(metres(*a, *b), abs=0.01)
    assert net.length_m[second] == pytest.approx(metres(*b, *c), abs=0.01)
    # the stairway's 30 steps by segment length: a third, two thirds
    assert net.steps[first] == pytest.approx(10, abs=0.01)
    assert net.steps[second] == pytest.approx(20, abs=0.01)
    assert net.kind[first] == network.STAIRWAY and net.vehicles.sum() == 1

    home = (LON0 + 0.0001, LAT0 + 0.001)  # 11 m east of the second segment
    near = await dwelling(conn, cid, *home)
    far = await dwelling(conn, cid, LON0 + 0.003, LAT0 + 0.003)
    att = await network.attach_dwellings(net, await network.load_dwellings(conn, cid), 50)
    assert att.ids.tolist() == [near, far]  # sorted
    assert att.edge.tolist() == [second, -1]
    assert att.along_m[0] == pytest.approx(metres(*b, LON0, LAT0 + 0.001), abs=0.01)
    assert att.connector_m[0] == pytest.approx(metres(*home, LON0, LAT0 + 0.001), abs=0.01)
    assert np.isnan(att.connector_m[1])


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(-66.915, 10.464), (-69.3, 9.5), (-61.2, 8.1), (-72.4, 7.8), (-60.1, 4.5), (-70.0, -12.0),
     (13.4, 52.5), (151.2, -33.9), (-179.5, 1.0), (179.5, -1.0)],
)  # fmt: skip
def test_utm_zone_is_the_one_proj_names(lon: float, lat: float) -> None:
    """The zone by arithmetic is the one PROJ's database gives for the point."""
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    from geo_comuna.analysis.toolkit.network import _utm_code

    zones = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    assert _utm_code(lon, lat) == int(next(z.code for z in zones if z.code[:3] in ("326", "327")))


@pytest.mark.parametrize("split", [False, True])
async def test_geodesics_are_postgis_geography(
    conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    # measured in one run, or in two halves on two threads (long runs): the same metres as
    # ST_Distance and ST_Length on geography, to the last bit
    monkeypatch.setattr(network, "SHARED_GEODESICS", 2 if split else 10**9)
    monkeypatch.setattr(network, "_TWO_CPUS", True)
    rng = np.random.default_rng(9)
    lon1, lat1 = -67 + rng.uniform(0, 0.05, 301), 10.4 + rng.uniform(0, 0.05, 301)
    lon2, lat2 = lon1 + rng.normal(0, 0.001, 301), lat1 + rng.normal(0, 0.001, 301)
    cur = await conn.execute(
        "SELECT ST_Distance(ST_Point(a, b, 4326)::geography, ST_Point(c, d, 4326)::geography),"
        " ST_Length(ST_MakeLine(ST_Point(a, b, 4326), ST_Point(c, d, 4326))::geography)"
        " FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[])"
        " WITH ORDINALITY AS p (a, b, c, d, n) ORDER BY n",
        (lon1.tolist(), lat1.tolist(), lon2.tolist(), lat2.tolist()),
    )
    distance, length = zip(*await cur.fetchall(), strict=True)
    assert network.geodesic_m(lon1, lat1, lon2, lat2).tolist() == list(distance)
    assert network.geodesic_m(lon1, lat1, lon2, lat2, rounded=False).tolist() == list(length)
