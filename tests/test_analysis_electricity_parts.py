"""Cutting clusters into parts (analysis/electricity/parts.py) gives PostGIS' own
ST_ClusterKMeans answer, part number for part number, on points fed to both in the same order:
random homes, homes on a grid (ties everywhere), duplicates, and one part."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis.electricity.parts import clusters, kmeans

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
    key = clusters([0, 0, 1, 0, 1, None], x, y, per_part=2)
    # cluster 0 (three homes) in ceil(3 / 2) = 2 parts, cluster 1 (two homes) in one
    assert key[5] == -1
    assert sorted(set(key[[0, 1, 3]].tolist())) == [0, 1]
    assert key[2] == key[4] == 1_000_000
