"""Clustering homes and cutting clusters into parts (analysis/electricity/parts.py) gives
PostGIS' own ST_ClusterDBSCAN and ST_ClusterKMeans answers, home for home, on points fed to both
in the same order: random homes, homes on a grid (ties everywhere), duplicates, and one part."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis.electricity import parts
from geo_comuna.analysis.electricity.parts import clusters, dbscan, kmeans
from geo_comuna.errors import InvalidInput

pytestmark = pytest.mark.anyio


async def postgis_kmeans(conn: AsyncConnection, x: np.ndarray, y: np.ndarray, k: int) -> list:
    cur = await conn.execute(
        "SELECT ST_ClusterKMeans(ST_MakePoint(x, y), %s) OVER (ORDER BY n) FROM "
        "unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p (x, y, n) ORDER BY n",
        (k, x.tolist(), y.tolist()),
    )
    return [r[0] for r in await cur.fetchall()]


def cases() -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(16)
    # UTM metres, like the homes of a barrio: random, then a grid where many homes lie
    # exactly as far from two centres, then repeated points
    rx, ry = 500_000 + rng.uniform(0, 800, 3000), 1_000_000 + rng.uniform(0, 600, 3000)
    gx, gy = np.meshgrid(np.arange(30) * 7.0 + 400_000, np.arange(20) * 7.0 + 900_000)
    dx = np.repeat(rx[:40], 3)
    dy = np.repeat(ry[:40], 3)
    return [
        ("random", rx, ry, 38),
        ("random, two parts", rx[:500], ry[:500], 2),
        ("grid", gx.ravel(), gy.ravel(), 9),
        ("duplicates", dx, dy, 7),
        ("one part", rx[:50], ry[:50], 1),
    ]


@pytest.mark.parametrize("case", range(5))
async def test_kmeans_is_postgis_kmeans(conn: AsyncConnection, case: int) -> None:
    name, x, y, k = cases()[case]
    theirs = await postgis_kmeans(conn, x, y, k)
    assert kmeans(x, y, k).tolist() == theirs, name


def test_clusters_keys_and_isolated_homes() -> None:
    x = np.array([0.0, 1.0, 100.0, 5.0, 101.0, 50.0])
    y = np.zeros(6)
    key = clusters(np.array([0, 0, 1, 0, 1, -1]), x, y, per_part=2)
    # cluster 0 (three homes) in ceil(3 / 2) = 2 parts, cluster 1 (two homes) in one
    assert key[5] == -1
    assert sorted(set(key[[0, 1, 3]].tolist())) == [0, 1]
    assert key[2] == key[4] == 1_000_000


async def postgis_dbscan(
    conn: AsyncConnection, x: np.ndarray, y: np.ndarray, eps: float, min_points: int
) -> list[int]:
    cur = await conn.execute(
        "SELECT ST_ClusterDBSCAN(ST_MakePoint(x, y), %s, %s) OVER (ORDER BY n) FROM "
        "unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p (x, y, n) ORDER BY n",
        (eps, min_points, x.tolist(), y.tolist()),
    )
    return [-1 if r[0] is None else r[0] for r in await cur.fetchall()]


def by_first_point(labels: list[int]) -> list[int]:
    """The same partition, numbered in the order of each cluster's first point."""
    number: dict[int, int] = {}
    return [-1 if a < 0 else number.setdefault(a, len(number)) for a in labels]


def dbscan_cases() -> list[tuple[str, np.ndarray, np.ndarray, float, int]]:
    rng = np.random.default_rng(21)
    rx, ry = 500_000 + rng.uniform(0, 800, 3000), 1_000_000 + rng.uniform(0, 600, 3000)
    gx, gy = (a.ravel() * 7.0 + 400_000 for a in np.meshgrid(np.arange(30), np.arange(20)))
    dx, dy = np.repeat(rx[:40], 3), np.repeat(ry[:40], 3)
    return [
        # sparse: many clusters, border points between two, noise
        ("random, small radius", rx, ry, 12.0, 4),
        ("random, large radius", rx, ry, 20.0, 6),
        # a grid whose spacing is the radius: every distance on the limit
        ("grid on the radius", gx, gy, 7.0, 5),
        ("duplicates", dx, dy, 5.0, 3),
        ("every point a core", rx[:300], ry[:300], 30.0, 1),
        ("fewer points than a core needs", rx[:3], ry[:3], 1000.0, 4),
    ]


@pytest.mark.parametrize("case", range(6))
async def test_dbscan_is_postgis_dbscan(conn: AsyncConnection, case: int) -> None:
    name, x, y, eps, min_points = dbscan_cases()[case]
    theirs = await postgis_dbscan(conn, x, y, eps, min_points)
    mine = dbscan(x, y, eps, min_points).tolist()
    # the same clusters, border points included; PostGIS numbers them by its union-find's
    # roots, we by first point
    assert mine == by_first_point(theirs), name
    assert len(set(mine)) > 1 or name.startswith("fewer")


def test_dbscan_by_hand() -> None:
    # points 1 m apart along a line at 0, 1, 2, 3 and 4 m, and one at 50 m. With 3 points
    # within 1 m (itself included) 1, 2 and 3 are cores; 0 and 4 have 2: borders of the
    # cluster; 50 is alone
    x = np.array([0.0, 1.0, 2.0, 3.0, 50.0, 4.0])
    assert dbscan(x, np.zeros(6), eps=1.0, min_points=3).tolist() == [0, 0, 0, 0, -1, 0]
    # a radius just short of 1 m: every point is its own cluster, numbered in order
    assert dbscan(x, np.zeros(6), eps=0.999, min_points=1).tolist() == [0, 1, 2, 3, 4, 5]


def test_too_many_parts_for_one_request_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,000 homes in one cluster, one per site: 1,000 x 1,000 measures for the seeds alone
    monkeypatch.setattr(parts, "MAX_KMEANS_WORK", 100_000)
    x = np.arange(1000.0)
    with pytest.raises(InvalidInput, match="at least 10 dwellings per site"):
        clusters([0] * 1000, x, np.zeros(1000), per_part=1)
    assert len(set(clusters([0] * 1000, x, np.zeros(1000), per_part=10).tolist())) == 100
