"""Transformer sites (analysis/electricity/median.py, sites.py) are PostGIS' own: each part's
weighted geometric median equals ST_GeometricMedian's to the last bit, and the farthest and the
nearest home are those ST_Distance(geography) and <-> give, on homes fed in the same order."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis.electricity import sites
from geo_comuna.analysis.electricity.median import medians

pytestmark = pytest.mark.anyio


async def postgis_medians(
    conn: AsyncConnection, x: np.ndarray, y: np.ndarray, w: np.ndarray, g: np.ndarray
) -> tuple[list[float], list[float]]:
    cur = await conn.execute(
        "SELECT ST_X(m), ST_Y(m) FROM (SELECT g, ST_GeometricMedian(ST_Collect("
        "ST_MakePointM(x, y, w) ORDER BY n)) AS m FROM unnest(%s::float8[], %s::float8[], "
        "%s::float8[], %s::int[]) WITH ORDINALITY AS p (x, y, w, g, n) GROUP BY g) s ORDER BY g",
        (x.tolist(), y.tolist(), w.tolist(), g.tolist()),
    )
    rows = await cur.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def median_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(8)

    def homes(n: int, k: int, zero: float = 0.0) -> tuple[np.ndarray, ...]:
        g = np.r_[np.arange(k), rng.integers(0, k, n - k)]
        x, y = 500_000 + rng.uniform(0, 300, n), 1_000_000 + rng.uniform(0, 300, n)
        w = rng.integers(1, 9, n).astype(float)
        w[rng.uniform(size=n) < zero] = 0.0
        w[np.bincount(g, w, k)[g] == 0] = 1.0  # a part of empty homes is weighted evenly
        return x, y, w, g

    x, y, w, g = homes(900, 100)
    x[1::3], y[1::3] = x[::3][: len(x[1::3])], y[::3][: len(y[1::3])]
    return [
        ("residents as weights", *homes(2000, 200)),
        ("homes of 0 residents among others", *homes(1500, 300, zero=0.5)),
        ("homes on the same spot", x, y, w, g),
        ("one home per part", *homes(40, 40)),
        (
            "homes in a row",
            np.arange(30) * 5.0 + 4e5,
            np.full(30, 1e6),
            np.ones(30),
            np.repeat(np.arange(6), 5),
        ),
        # the first estimate falls on a home: Vardi and Zhang's step
        (
            "a heavy home at the centre",
            np.array([0.0, 10, 0, -10, 0]),
            np.array([0.0, 0, 10, 0, -10]),
            np.array([50.0, 1, 1, 1, 1]),
            np.zeros(5, int),
        ),
    ]


@pytest.mark.parametrize("case", range(6))
async def test_medians_are_postgis_medians(conn: AsyncConnection, case: int) -> None:
    name, x, y, w, g = median_cases()[case]
    mx, my = medians(x, y, w, g, int(g.max()) + 1)
    theirs = await postgis_medians(conn, x, y, w, g)
    assert (mx.tolist(), my.tolist()) == theirs, name


async def test_reach_and_nearest_are_postgis(conn: AsyncConnection) -> None:
    rng = np.random.default_rng(4)
    n, k = 400, 12
    lon, lat = -66.9 + rng.uniform(0, 0.01, n), 10.5 + rng.uniform(0, 0.01, n)
    ids = np.arange(1, n + 1) * 3
    key = rng.integers(0, k, n) * 7  # keys need not be consecutive
    lon[5], lat[5] = lon[9], lat[9]  # two homes on one spot: the lower id is the nearest
    key[5] = key[9]
    x, y = lon * 1e5, lat * 1e5  # any plane will do for placing the sites here
    placed = sites.place(key, x, y, rng.integers(0, 6, n))
    at = (-66.9 + rng.uniform(0, 0.01, k), 10.5 + rng.uniform(0, 0.01, k))
    at[0][list(placed.key).index(key[9])] = lon[9]
    at[1][list(placed.key).index(key[9])] = lat[9]
    reach, nearest = sites.reach_and_nearest(placed, lon, lat, ids, at)
    cur = await conn.execute(
        "WITH h AS (SELECT * FROM unnest(%s::float8[], %s::float8[], %s::int[], %s::int[]) "
        "AS h (lon, lat, id, key)), s AS (SELECT * FROM unnest(%s::int[], %s::float8[], "
        "%s::float8[]) AS s (key, lon, lat)) "
        "SELECT s.key, (SELECT max(ST_Distance(ST_Point(s.lon, s.lat, 4326)::geography, "
        "ST_Point(h.lon, h.lat, 4326)::geography)) FROM h WHERE h.key = s.key), "
        "(SELECT h.id FROM h WHERE h.key = s.key ORDER BY ST_Point(h.lon, h.lat, 4326) <-> "
        "ST_Point(s.lon, s.lat, 4326), h.id LIMIT 1) FROM s ORDER BY s.key",
        (
            lon.tolist(),
            lat.tolist(),
            ids.tolist(),
            key.tolist(),
            placed.key.tolist(),
            at[0].tolist(),
            at[1].tolist(),
        ),
    )
    rows = await cur.fetchall()
    assert reach.tolist() == [r[1] for r in rows]
    assert nearest.tolist() == [r[2] for r in rows]
    assert nearest[list(placed.key).index(key[9])] == ids[5]
