"""Stair access on a hand-built hill and on the 5 de Marzo sample.

The hand-built network (lon/lat offsets from LON0, LAT0; about 110.6 m per 0.001° of latitude
and 109.7 m per 0.001° of longitude at 10° N):

    D1 .               T = (0, 0.001)          D1 = (0, 0.0011), 11 m north of T
       T\\                                      stairway Q-T, 20 steps
       |  \\  diagonal footpath T-E            footpath O-Q, diagonal footpath T-E
  stop-Q    \\                                  stop 11 m west of Q (when asked for)
    D2-|      \\                                D2 11 m east of O-Q, a quarter of the way up
       O=======E  road with vehicles            D3 11 m south of the road; O = ORIGIN
          D3
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis import stair_access
from geo_comuna.analysis.toolkit import network
from geo_comuna.errors import NotFound
from geo_comuna.io import dems
from tests.network_factories import (
    LAT0,
    LON0,
    add_dem,
    commune,
    dwelling,
    facility,
    metres,
    path,
    slope_dem,
)

pytestmark = pytest.mark.anyio

ORIGIN, E = (LON0, LAT0), (LON0 + 0.001, LAT0)
Q, T = (LON0, LAT0 + 0.0005), (LON0, LAT0 + 0.001)
D1, D2, D3 = (LON0, LAT0 + 0.0011), (LON0 + 0.0001, LAT0 + 0.00025), (LON0 + 0.0005, LAT0 - 0.0001)
STOP = (LON0 - 0.0001, LAT0 + 0.0005)
RISE = 20_000.0  # DEM: metres per degree north, so O 900 m, Q 910 m, T 920 m, D1 922 m


def tobler(dh: float, dx: float) -> float:
    """Seconds to walk dx metres rising dh: v = 6 exp(-3.5 |dh/dx + 0.05|) km/h."""
    return dx / (6 / 3.6 * math.exp(-3.5 * abs(dh / dx + 0.05)))


# the hand arithmetic's lengths (geodesic, WGS 84)
L_OQ, L_QT = metres(*ORIGIN, *Q), metres(*Q, *T)
L_TE = metres(*T, *E)
C1 = metres(*D1, *T)  # D1 joins the network at T
FOOT2 = (LON0, D2[1])
C2, A2 = metres(*D2, *FOOT2), metres(*ORIGIN, *FOOT2)  # D2's connector; its foot from O
C3 = metres(*D3, LON0 + 0.0005, LAT0)
C_STOP = metres(*STOP, *Q)


async def hill(conn: AsyncConnection, with_stop: bool = False) -> tuple[int, list[int]]:
    cid = await commune(conn)
    await path(conn, cid, [ORIGIN, E], "road", vehicles=True)
    await path(conn, cid, [ORIGIN, Q], "footpath")
    await path(conn, cid, [Q, T], "stairway", steps=20)
    await path(conn, cid, [T, E], "footpath")
    ids = [
        await dwelling(conn, cid, *D1, residents=3, sector="Arriba"),
        await dwelling(conn, cid, *D2, residents=5, sector="Abajo"),
        await dwelling(conn, cid, *D3, residents=2, sector="Abajo"),
    ]
    if with_stop:
        await facility(conn, cid, *STOP)
    return cid, ids


def by_id(result) -> dict[int, dict]:
    return {f["id"]: f["properties"] for f in result.features}


async def test_flat_without_dem(conn: AsyncConnection) -> None:
    cid, (d1, d2, d3) = await hill(conn)
    result = await stair_access.run(conn, cid, stair_access.Params())
    assert any("no DEM" in w for w in result.warnings)
    got = by_id(result)
    flat = tobler(0, 1)  # seconds per metre on the flat, 0.7144
    # D1: flat to T, the stairway (direction unknown: 20 steps at 1.0 s, counted as climbed),
    # then the footpath to the road at O: 11.06 + 55.3 + 55.3 m. The diagonal T-E (155.7 m
    # flat, 111 s) loses to 110.6 m + 20 s = 99 s.
    assert got[d1]["metres"] == pytest.approx(C1 + L_QT + L_OQ, abs=0.05)
    assert got[d1]["steps"] == 20 and got[d1]["steps_climbed"] == 20
    assert got[d1]["minutes"] == pytest.approx(((C1 + L_QT + L_OQ) * flat + 20) / 60, abs=0.01)
    assert got[d1]["destination"] == "road" and got[d1]["elevation_gain_m"] == 0
    # D2: 11 m across, then 27.6 m down the footpath to O
    assert got[d2]["metres"] == pytest.approx(C2 + A2, abs=0.05)
    assert got[d2]["minutes"] == pytest.approx((C2 + A2) * flat / 60, abs=0.01)
    assert got[d2]["steps"] == 0
    # D3 stands by the road: its 11 m connector is the whole walk
    assert got[d3]["metres"] == pytest.approx(C3, abs=0.05)
    assert result.summary["dwellings"] == 3 and result.summary["unreachable"] == 0

    # each walk drawn: D1 -> T -> Q -> O, D2 -> its foot -> O, D3 -> the road; as long as walked
    walks = {f["id"]: f for f in result.drawn_lines()}
    assert set(walks) == {d1, d2, d3}
    for dw, pts in ((d1, [D1, T, Q, ORIGIN]), (d2, [D2, FOOT2, ORIGIN])):
        line = walks[dw]["geometry"]["coordinates"]
        assert [tuple(round(c, 6) for c in p) for p in line] == [
            tuple(round(c, 6) for c in p) for p in pts
        ]
    for dw, walk in walks.items():
        line = walk["geometry"]["coordinates"]
        walked = sum(metres(*a, *b) for a, b in zip(line, line[1:], strict=False))
        assert walked == pytest.approx(got[dw]["metres"], abs=0.1)
        assert walk["properties"]["minutes"] == got[dw]["minutes"]


async def test_slopes_and_stairs_are_directed(conn: AsyncConnection, tmp_path: Path) -> None:
    cid, (d1, d2, _) = await hill(conn)
    await add_dem(conn, cid, slope_dem(tmp_path, RISE))
    result = await stair_access.run(conn, cid, stair_access.Params())
    assert result.warnings == []
    got = by_id(result)
    # Out, D1 walks down: 2 m down to T, 20 steps down at 0.7 s plus 55.3 m at the flat pace,
    # then 10 m down the footpath.
    out_s = tobler(-2, C1) + tobler(0, L_QT) + 20 * 0.7 + tobler(-10, L_OQ)
    assert got[d1]["minutes"] == pytest.approx(out_s / 60, abs=0.01)
    assert got[d1]["steps"] == 20 and got[d1]["steps_climbed"] == 0
    assert got[d1]["elevation_gain_m"] == pytest.approx(0, abs=0.05)
    # Back home it climbs the same way: 10 m up the footpath, 20 steps up at 1.0 s, 2 m up.
    back_s = tobler(10, L_OQ) + tobler(0, L_QT) + 20 * 1.0 + tobler(2, C1)
    # (the diagonal back would take tobler(20, L_TE) + tobler(2, C1), longer)
    assert tobler(20, L_TE) > tobler(10, L_OQ) + tobler(0, L_QT) + 20
    assert got[d1]["minutes_back"] == pytest.approx(back_s / 60, abs=0.01)
    assert got[d1]["steps_climbed_back"] == 20
    assert got[d1]["elevation_gain_back_m"] == pytest.approx(22, abs=0.05)
    # D2 (905 m, as its foot on the footpath): 27.6 m down to O, 5 m up coming back
    assert got[d2]["minutes"] == pytest.approx((tobler(0, C2) + tobler(-5, A2)) / 60, abs=0.01)
    assert got[d2]["minutes_back"] == pytest.approx((tobler(5, A2) + tobler(0, C2)) / 60, abs=0.01)
    assert got[d2]["elevation_gain_back_m"] == pytest.approx(5, abs=0.05)


async def test_slow_stairs_send_the_climb_home_round_by_the_diagonal(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    cid, (d1, _, _) = await hill(conn)
    await add_dem(conn, cid, slope_dem(tmp_path, RISE))
    params = stair_access.Params(step_seconds_up=5.0)
    got = by_id(await stair_access.run(conn, cid, params))
    stairs_back = tobler(10, L_OQ) + tobler(0, L_QT) + 20 * 5.0
    diagonal_back = tobler(20, L_TE)
    assert diagonal_back < stairs_back  # 174 s against 214 s
    assert got[d1]["minutes_back"] == pytest.approx((diagonal_back + tobler(2, C1)) / 60, abs=0.01)
    assert got[d1]["steps_climbed_back"] == 0
    # going out, down the stairs is still quicker (0.7 s a step)
    assert got[d1]["steps"] == 20
    assert got[d1]["metres"] == pytest.approx(C1 + L_QT + L_OQ, abs=0.05)


async def test_transit_stop_is_a_destination(conn: AsyncConnection, tmp_path: Path) -> None:
    cid, (d1, d2, _) = await hill(conn, with_stop=True)
    await add_dem(conn, cid, slope_dem(tmp_path, RISE))
    got = by_id(await stair_access.run(conn, cid, stair_access.Params()))
    # D1: down the stairs to Q, then 11 m across to the stop (flat pace)
    assert got[d1]["destination"] == "transit_stop"
    assert got[d1]["metres"] == pytest.approx(C1 + L_QT + C_STOP, abs=0.05)
    stop_s = tobler(-2, C1) + tobler(0, L_QT) + 20 * 0.7 + tobler(0, C_STOP)
    assert got[d1]["minutes"] == pytest.approx(stop_s / 60, abs=0.01)
    assert got[d2]["destination"] == "road"  # 27.6 m down beats 27.6 m up and 11 m across
    without = by_id(await stair_access.run(conn, cid, stair_access.Params(transit_stops=False)))
    assert without[d1]["destination"] == "road"


async def test_thresholds_flag_and_summarise_by_sector(conn: AsyncConnection) -> None:
    cid, (d1, d2, d3) = await hill(conn)
    result = await stair_access.run(conn, cid, stair_access.Params(max_steps=10, max_minutes=1.0))
    got = by_id(result)
    assert got[d1]["over_steps"] and got[d1]["over_minutes"] and got[d1]["flagged"]
    assert not got[d2]["flagged"] and not got[d3]["flagged"]
    sectors = {s["sector"]: s for s in result.summary["by_sector"]}
    assert sectors["Arriba"]["flagged"] == {"dwellings": 1, "residents": 3}
    assert sectors["Abajo"]["flagged"] == {"dwellings": 0, "residents": 0}
    assert result.summary["flagged"] == {"dwellings": 1, "residents": 3}


async def test_unreachable_dwelling_is_said(conn: AsyncConnection) -> None:
    cid, _ = await hill(conn)
    far = await dwelling(conn, cid, LON0 + 0.005, LAT0 + 0.005)
    result = await stair_access.run(conn, cid, stair_access.Params())
    props = by_id(result)[far]
    assert props["reachable"] is False and props["minutes"] is None
    # found from outside: a home with no way out was not flagged, and a summary of homes
    # mostly without one led with "0 flagged"; its measures are not over any limit
    assert props["flagged"] and not props["over_minutes"] and not props["over_steps"]
    summary = result.summary
    assert summary["unreachable"] == 1 and summary["reachable"] == summary["dwellings"] - 1
    flagged = [i for i, p in by_id(result).items() if p["flagged"]]
    assert far in flagged and summary["flagged"]["dwellings"] == len(flagged)
    assert any("1 dwellings reach no destination" in w for w in result.warnings)


async def test_degenerate_communes(
    conn: AsyncConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = await commune(conn)
    empty = await stair_access.run(conn, cid, stair_access.Params())
    assert empty.features == [] and "no dwellings" in empty.warnings[0]
    await dwelling(conn, cid, *D2)
    with pytest.raises(NotFound, match="no paths"):
        await stair_access.run(conn, cid, stair_access.Params())
    await path(conn, cid, [ORIGIN, Q], "footpath")
    with pytest.raises(NotFound, match="nowhere to walk"):
        await stair_access.run(conn, cid, stair_access.Params())
    await path(conn, cid, [ORIGIN, E], "road", vehicles=True)

    # a DEM that lies elsewhere (stored before dems refused one that misses its commune, or
    # the commune's outline moved since): walked as flat, and said so
    async def anywhere(*_: object) -> None:
        return None

    monkeypatch.setattr(dems, "_covers", anywhere)
    await add_dem(conn, cid, slope_dem(tmp_path, RISE, west=LON0 + 0.5))
    off = await stair_access.run(conn, cid, stair_access.Params())
    assert any("does not cover" in w for w in off.warnings)
    assert off.summary["unreachable"] == 0


async def test_api_no_paths_is_a_problem(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    cid = await commune(conn, "NET-EMPTY")
    await dwelling(conn, cid, *D1)
    r = await client.get("/communes/NET-EMPTY/analyses/stair-access")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    # the commune by its code, in the language asked (found from outside: "commune 10 has
    # no paths", and in English on a Spanish report)
    assert "commune NET-EMPTY has no paths" in r.json()["detail"], r.text
    r = await client.get("/communes/NET-EMPTY/analyses/stair-access", params={"lang": "es"})
    assert "la comuna NET-EMPTY no tiene caminos trazados" in r.json()["detail"], r.text


async def test_sample_hill_through_the_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/communes/5-DE-MARZO/analyses/stair-access")
    assert r.status_code == 200, r.text
    body = r.json()
    summary = body["summary"]
    assert summary["unreachable"] == 0
    props = [f["properties"] for f in body["features"]]
    assert sum(p["steps"] > 100 for p in props) > 50  # hundreds of stairs up the hill
    sectors = {s["sector"]: s for s in summary["by_sector"]}
    assert sectors["La Cumbre"]["steps"]["median"] > sectors["La Bajada"]["steps"]["median"]
    assert (
        sectors["La Cumbre"]["minutes_back"]["median"]
        > sectors["La Bajada"]["minutes_back"]["median"]
    )
    assert summary["flagged"]["dwellings"] > 0
    # found from outside: "286.2 steps" at the 90th percentile and "414.8" at most; a
    # quantile of steps is one home's whole count, as its feature gives it
    for block in (summary, *summary["by_sector"]):
        for figure in ("steps", "steps_climbed_back"):
            assert all(isinstance(v, int) for v in block[figure].values()), block[figure]
    assert summary["steps"]["max"] == max(p["steps"] for p in props)
    assert summary["steps"]["median"] in {p["steps"] for p in props}

    rows = list(
        csv.DictReader(
            io.StringIO((await client.get("/communes/5-DE-MARZO/analyses/stair-access?f=csv")).text)
        )
    )
    assert len(rows) == summary["dwellings"] and "steps_climbed_back" in rows[0]
    geo = (
        await client.get("/communes/5-DE-MARZO/analyses/stair-access?f=geojson&max_steps=100")
    ).json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == summary["dwellings"]
    assert geo["features"][0]["geometry"]["type"] == "Point"

    bad = await client.get("/communes/5-DE-MARZO/analyses/stair-access?max_minutes=-1")
    assert bad.status_code == 400


# PostGIS' own answer for attaching points: the nearest path by KNN, its nearest segment, the
# closest point on it and two geodesic distances; network.attach_dwellings must give the same.
POSTGIS_ATTACH = """
SELECT t.id, n.path_id, n.seg, n.along_m, n.connector_m, n.lon, n.lat
FROM dwellings t
CROSS JOIN LATERAL (
    SELECT p.id AS path_id, (s.path)[1] AS seg,
           ST_Distance(ST_StartPoint(s.geom)::geography, cp.geom::geography) AS along_m,
           ST_Distance(t.geom::geography, cp.geom::geography) AS connector_m,
           ST_X(cp.geom) AS lon, ST_Y(cp.geom) AS lat
    FROM (SELECT id, geom FROM paths WHERE commune_id = %(cid)s
          ORDER BY geom <-> t.geom LIMIT 1) p
    CROSS JOIN LATERAL (SELECT d.path, d.geom FROM ST_DumpSegments(p.geom) d
                        ORDER BY d.geom <-> t.geom LIMIT 1) s
    CROSS JOIN LATERAL (SELECT ST_ClosestPoint(s.geom, t.geom) AS geom) cp
) n
WHERE t.commune_id = %(cid)s
ORDER BY t.id
"""


async def test_attachment_is_postgis_own(conn: AsyncConnection) -> None:
    """Dwellings attach where PostGIS would attach them, to the same figures: on a random
    tangle of long straight paths among short winding ones (segments of very unequal length,
    so the nearest segment often is not the one with the nearest midpoint)."""
    rng = np.random.default_rng(7)
    cid = await commune(conn)
    for _ in range(6):  # long: ~1 km straight across
        a, b = rng.uniform(0, 0.01, 2), rng.uniform(0, 0.01, 2)
        await path(conn, cid, [(LON0 + a[0], LAT0 + a[1]), (LON0 + b[0], LAT0 + b[1])])
    for _ in range(40):  # short and winding: ten ~10-20 m segments
        walk = np.cumsum(rng.normal(0, 0.0001, (11, 2)), axis=0) + rng.uniform(0, 0.01, 2)
        await path(conn, cid, [(LON0 + x, LAT0 + y) for x, y in walk], "road", vehicles=True)
    for x, y in rng.uniform(-0.001, 0.011, (300, 2)):
        await dwelling(conn, cid, LON0 + x, LAT0 + y)

    net = await network.load(conn, cid, await network.utm_srid(conn, cid))
    dw = await network.load_dwellings(conn, cid)
    got = await network.attach_dwellings(net, dw, 1e9)
    cur = await conn.execute(POSTGIS_ATTACH, {"cid": cid})
    ids, path_id, seg, along, connector, lon, lat = map(
        np.array, zip(*await cur.fetchall(), strict=True)
    )
    assert got.ids.tolist() == ids.tolist()
    assert got.edge.tolist() == net.edge_of(path_id, seg).tolist()
    assert got.lon.tolist() == lon.tolist() and got.lat.tolist() == lat.tolist()
    assert np.abs(got.along_m - along).max() < 1e-7
    assert np.abs(got.connector_m - connector).max() < 1e-7
    # the limit: beyond it a dwelling stays off the network
    near = await network.attach_dwellings(net, dw, 20)
    assert (near.attached == (connector <= 20)).all() and 0 < near.attached.sum() < len(ids)


async def test_attachment_looks_past_nearer_midpoints(conn: AsyncConnection) -> None:
    """A dwelling 1 m off a long segment, near its end, with a tangle of short segments 10 m
    away: the short ones' midpoints are all nearer than the long one's (50 m off), yet the long
    segment is the nearest, as PostGIS says."""
    cid = await commune(conn)
    step = 0.0009  # ~100 m of longitude
    await path(conn, cid, [(LON0 + i * step, LAT0) for i in range(21)], "road", vehicles=True)
    tangle = [(LON0 + 5 * step + 0.00002 * (i % 2), LAT0 + 0.0001 + 0.00001 * i) for i in range(11)]
    await path(conn, cid, tangle)
    home = await dwelling(conn, cid, LON0 + 5 * step + 0.00001, LAT0 + 0.00001)
    net = await network.load(conn, cid, await network.utm_srid(conn, cid))
    got = await network.attach_dwellings(net, await network.load_dwellings(conn, cid), 50)
    cur = await conn.execute(POSTGIS_ATTACH, {"cid": cid})
    (row,) = await cur.fetchall()
    assert (
        row[0] == home
        and net.kind[net.edge_of(np.array([row[1]]), np.array([row[2]]))[0]] == network.ROAD
    )
    assert got.edge.tolist() == net.edge_of(np.array([row[1]]), np.array([row[2]])).tolist()
    assert got.connector_m[0] == pytest.approx(row[4], abs=1e-7)
