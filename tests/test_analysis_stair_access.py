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
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis import stair_access
from geo_comuna.errors import NotFound
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
    assert props["reachable"] is False and props["minutes"] is None and not props["flagged"]
    assert result.summary["unreachable"] == 1
    assert any("1 dwellings reach no destination" in w for w in result.warnings)


async def test_degenerate_communes(conn: AsyncConnection, tmp_path: Path) -> None:
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
    # a DEM that lies elsewhere: walked as flat, and said so
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
    assert "no paths" in r.json()["detail"]


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
