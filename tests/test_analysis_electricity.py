"""Electricity gaps: two hand-built clusters, an isolated home, degenerate communes and the
5 de Marzo sample.

Cluster A: a home of 10 residents at (LON0, LAT0) with four homes of 1 at the corners of a
0.0002° square around it (11 m away along each axis). Cluster B: three homes of 1 in a row
0.0001° (11 m) apart, 0.005° (548 m) east. One home alone between them, 0.003° north. A good
power line runs east-west 0.001° (110.6 m) south of A; a precarious one closer does not count.
"""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis import electricity
from geo_comuna.analysis.base import to_json
from geo_comuna.analysis.electricity import parts
from tests.network_factories import LAT0, LON0, commune, dwelling, metres, power_line

pytestmark = pytest.mark.anyio

CENTRE = (LON0, LAT0)
CORNERS = [(LON0 + dx, LAT0 + dy) for dx in (-0.0001, 0.0001) for dy in (-0.0001, 0.0001)]
ROW = [(LON0 + 0.005 + k * 0.0001, LAT0) for k in range(3)]
ALONE = (LON0 + 0.0025, LAT0 + 0.003)
PARAMS = electricity.Params(cluster_radius_m=30, min_cluster_size=3)


async def two_clusters(conn: AsyncConnection) -> tuple[int, dict[str, int]]:
    cid = await commune(conn)
    await power_line(conn, cid, [(LON0 - 0.002, LAT0 - 0.001), (LON0 + 0.008, LAT0 - 0.001)])
    await power_line(
        conn,
        cid,
        [(LON0 - 0.002, LAT0 + 0.0002), (LON0 + 0.008, LAT0 + 0.0002)],
        condition="precarious",
    )
    ids = {"centre": await dwelling(conn, cid, *CENTRE, residents=10, electricity="none")}
    for n, p in enumerate(CORNERS):
        ids[f"corner{n}"] = await dwelling(conn, cid, *p, residents=1, electricity="precarious")
    for n, p in enumerate(ROW):
        ids[f"row{n}"] = await dwelling(conn, cid, *p, residents=1, electricity="precarious")
    ids["alone"] = await dwelling(conn, cid, *ALONE, residents=2, electricity="none")
    ids["formal"] = await dwelling(conn, cid, LON0, LAT0 + 0.00005, electricity="formal")
    return cid, ids


def split(result) -> tuple[list[dict], dict[int, dict]]:
    sites = [f for f in result.features if f["properties"]["kind"] == "transformer_site"]
    homes = {
        f["id"]: f["properties"] for f in result.features if f["properties"]["kind"] == "dwelling"
    }
    return sites, homes


async def test_two_clusters_and_their_sites(conn: AsyncConnection) -> None:
    cid, ids = await two_clusters(conn)
    result = await electricity.run(conn, cid, PARAMS)
    sites, homes = split(result)
    assert ids["formal"] not in homes and len(homes) == 9
    # distance to the good line only, due south: 0.001° of latitude, ~110.6 m
    assert homes[ids["centre"]]["line_distance_m"] == pytest.approx(
        metres(*CENTRE, LON0, LAT0 - 0.001), abs=0.05
    )
    assert homes[ids["alone"]]["cluster"] is None
    # A serves 14 residents, so it is cluster 1; B 3 residents
    assert [s["properties"]["residents"] for s in sites] == [14, 3]
    assert {homes[ids[k]]["cluster"] for k in ("centre", "corner0", "corner3")} == {1}
    assert {homes[ids[f"row{k}"]]["cluster"] for k in range(3)} == {2}
    # A's weighted median is the 10-resident home (its weight outweighs the other four's);
    # B's, with equal weights in a row, the middle home
    a, b = (s["geometry"]["coordinates"] for s in sites)
    assert metres(*a, *CENTRE) < 0.5 and metres(*b, *ROW[1]) < 0.5
    assert sites[0]["properties"]["reach_m"] == pytest.approx(metres(*CENTRE, *CORNERS[3]), abs=0.5)
    assert sites[0]["properties"]["nearest_dwelling"] == ids["centre"]
    assert sites[1]["properties"]["line_distance_m"] == pytest.approx(
        metres(*ROW[1], ROW[1][0], LAT0 - 0.001), abs=0.5
    )
    s = result.summary
    assert (s["clusters"], s["clustered_dwellings"], s["isolated_dwellings"]) == (2, 8, 1)
    assert s["precarious"] == 7 and s["none"] == 2 and s["residents"] == 19
    assert [r["cluster"] for r in result.rows] == [1, 2]


async def test_big_cluster_is_cut_for_transformers(conn: AsyncConnection) -> None:
    cid, _ = await two_clusters(conn)
    params = PARAMS.model_copy(update={"dwellings_per_site": 3})
    result = await electricity.run(conn, cid, params)
    sites, _ = split(result)
    # A's 5 homes -> ceil(5 / 3) = 2 k-means parts (not necessarily equal); B's 3 -> 1
    assert len(sites) == 3
    assert sum(s["properties"]["dwellings"] for s in sites) == 8
    assert 3 in [s["properties"]["dwellings"] for s in sites]  # B, whole


async def test_without_lines_or_homes(conn: AsyncConnection) -> None:
    cid = await commune(conn)
    empty = await electricity.run(conn, cid, PARAMS)
    assert empty.features == [] and "no dwellings" in empty.warnings[0]
    await dwelling(conn, cid, *CENTRE, electricity="formal")
    formal = await electricity.run(conn, cid, PARAMS)
    assert "formal electricity" in formal.warnings[0]
    for p in CORNERS:
        await dwelling(conn, cid, *p, electricity="none")
    no_line = await electricity.run(conn, cid, PARAMS)
    assert any("no power line in good condition" in w for w in no_line.warnings)
    sites, homes = split(no_line)
    assert len(sites) == 1 and sites[0]["properties"]["line_distance_m"] is None
    assert all(h["line_distance_m"] is None for h in homes.values())


async def test_sample_through_the_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/communes/5-DE-MARZO/analyses/electricity-gaps?f=geojson")
    assert r.status_code == 200, r.text
    geo = r.json()
    kinds = [f["properties"]["kind"] for f in geo["features"]]
    assert kinds.count("transformer_site") == geo["summary"]["clusters"] > 1
    assert kinds.count("dwelling") == geo["summary"]["dwellings"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                (await client.get("/communes/5-DE-MARZO/analyses/electricity-gaps?f=csv")).text
            )
        )
    )
    assert len(rows) == geo["summary"]["clusters"]
    assert sum(int(row["dwellings"]) for row in rows) == geo["summary"]["clustered_dwellings"]


async def test_too_many_pairs_to_hold_are_clustered_by_postgis(
    conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A radius that takes in more pairs of homes than numpy may hold at once: PostGIS'
    ST_ClusterDBSCAN clusters them, with the same answer to the byte."""
    cur = await conn.execute("SELECT id FROM communes WHERE code = '5-DE-MARZO'")
    cid = (await cur.fetchone())[0]
    params = electricity.Params(cluster_radius_m=25, min_cluster_size=4, dwellings_per_site=40)
    in_numpy = await electricity.run(conn, cid, params)
    monkeypatch.setattr(parts, "MAX_PAIRS", 0)
    assert parts.dbscan(np.zeros(5), np.arange(5.0), 1.0, 2) is None
    by_postgis = await electricity.run(conn, cid, params)
    assert in_numpy.summary["clusters"] > 5 and in_numpy.summary["isolated_dwellings"] > 0
    assert to_json(by_postgis.feature_collection()) == to_json(in_numpy.feature_collection())
