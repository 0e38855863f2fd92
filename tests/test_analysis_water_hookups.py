"""Water hookups on hand-built branches, a budget where greedy is not optimal, degenerate
communes and the 5 de Marzo sample.

Two branches leave the tap at O = ORIGIN (lon/lat offsets from LON0, LAT0):

         C  . n3            footpath O-C (0.001° north, 110.6 m) with n1, n2, n3 11 m east
         |  . n2            of it, 4 residents each (n3 beside C)
         |  . n1
  main --O=====M=====B      road O-M-B (two segments of one path, 109.7 m each)
   (12 m off O)       . e   e 11 m south of B, 5 residents
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis import water_hookups
from geo_comuna.analysis.toolkit import budget
from geo_comuna.errors import NotFound
from tests.network_factories import (
    LAT0,
    LON0,
    add_dem,
    commune,
    dwelling,
    main,
    metres,
    path,
    slope_dem,
)

pytestmark = pytest.mark.anyio

ORIGIN, C = (LON0, LAT0), (LON0, LAT0 + 0.001)
M, B = (LON0 + 0.001, LAT0), (LON0 + 0.002, LAT0)
MAIN_END = (LON0 - 0.0001, LAT0 - 0.00005)  # the main's end nearest O: 12.3 m, beyond reach
NORTH = [
    (LON0 + 0.0001, LAT0 + 0.0003),
    (LON0 + 0.0001, LAT0 + 0.0006),
    (LON0 + 0.0001, LAT0 + 0.001),
]
EAST = (LON0 + 0.002, LAT0 - 0.0001)


async def two_branches(conn: AsyncConnection) -> tuple[int, list[int], int]:
    cid = await commune(conn)
    await main(conn, cid, [(LON0 - 0.0005, LAT0 - 0.00005), MAIN_END])
    await main(
        conn, cid, [(LON0 - 0.0005, LAT0 + 0.0005), (LON0 - 0.0005, LAT0 + 0.001)], status="damaged"
    )  # not a source
    await path(conn, cid, [ORIGIN, C], "footpath")
    await path(conn, cid, [ORIGIN, M, B], "road", vehicles=True)
    north = [await dwelling(conn, cid, *p, residents=4, sector="Norte") for p in NORTH]
    east = await dwelling(conn, cid, *EAST, residents=5, sector="Este")
    await dwelling(conn, cid, LON0 + 0.0001, LAT0 + 0.0008, water="piped", sector="Norte")
    return cid, north, east


def by_id(result) -> dict[int, dict]:
    return {f["id"]: f["properties"] for f in result.features}


async def test_branches_share_their_pipe(conn: AsyncConnection) -> None:
    cid, north, east = await two_branches(conn)
    result = await water_hookups.run(conn, cid, water_hookups.Params())
    got = by_id(result)
    assert set(got) == {*north, east}  # the piped home is left out
    offset = metres(*ORIGIN, *MAIN_END)  # from the main to the tap O
    feet = [(LON0, lat) for _, lat in NORTH]
    connectors = [metres(*d, *f) for d, f in zip(NORTH, feet, strict=True)]
    for dw, foot, conn_m in zip(north, feet, connectors, strict=True):
        # each home's own pipe: main -> O -> up the footpath -> across to the home
        assert got[dw]["length_m"] == pytest.approx(
            offset + metres(*ORIGIN, *foot) + conn_m, abs=0.1
        )
        assert got[dw]["connection"] == "network"
    east_c = metres(*EAST, *B)
    assert got[east]["length_m"] == pytest.approx(
        offset + metres(*ORIGIN, *M) + metres(*M, *B) + east_c, abs=0.1
    )

    projects = {r["project"]: r for r in result.rows}
    # The northern branch: one pipe main -> O -> C (shared, counted once) plus three
    # service lines, not the sum of three pipes: 12.3 + 110.6 + 3 x 11 = 155.9 m.
    north_pipe = offset + metres(*ORIGIN, *C) + sum(connectors)
    east_pipe = offset + metres(*ORIGIN, *M) + metres(*M, *B) + east_c
    assert projects[1]["dwellings"] == 3 and projects[1]["residents"] == 12
    assert projects[1]["pipe_m"] == pytest.approx(north_pipe, abs=0.1)
    assert projects[1]["residents_per_m"] == pytest.approx(12 / north_pipe, rel=1e-3)
    assert projects[2]["dwellings"] == 1 and projects[2]["residents"] == 5
    assert projects[2]["pipe_m"] == pytest.approx(east_pipe, abs=0.1)
    assert {got[d]["project"] for d in north} == {1} and got[east]["project"] == 2
    assert result.summary["taps"] == 1 and result.summary["projects"] == 2
    # no DEM: said, and pumping is unknown rather than False
    assert any("no DEM" in w for w in result.warnings)
    assert got[north[0]]["needs_pumping"] is None
    # and so in the projects' rows: a 0 read as "none needs pumping"
    assert [r["needs_pumping"] for r in result.rows] == [None, None]
    assert "needs_pumping,max_rise_m" in result.csv() and ",0," not in result.csv()
    sectors = {s["sector"]: s for s in result.summary["by_sector"]}
    assert sectors["Norte"]["dwellings"] == 4 and sectors["Norte"]["dwellings_without_piped"] == 3


async def test_pipe_geometry_is_the_pipe(conn: AsyncConnection) -> None:
    """Each project's line runs main -> O -> its homes, and measures (geodesic) its pipe_m."""
    cid, north, _ = await two_branches(conn)
    far_id = await dwelling(conn, cid, LON0 - 0.001, LAT0 + 0.002, residents=2)
    result = await water_hookups.run(conn, cid, water_hookups.Params(max_connector_m=40))
    rows = {r["project"]: r for r in result.rows}
    lines = {f["properties"]["project"]: f for f in result.drawn_lines()}
    assert set(lines) == set(rows)
    for rank, feature in lines.items():
        cur = await conn.execute(
            "SELECT ST_Length(ST_GeomFromGeoJSON(%s)::geography)",
            (json.dumps(feature["geometry"]),),
        )
        # by hand: north 12.3 + 110.6 + 3 x 11 m, east 12.3 + 2 x 109.7 + 11 m, the far home
        # its straight line; each piece counted once
        assert (await cur.fetchone())[0] == pytest.approx(rows[rank]["pipe_m"], abs=0.2)
        assert feature["properties"]["pipe_m"] == rows[rank]["pipe_m"]
    north_line = lines[1]["geometry"]["coordinates"]
    ends = {tuple(round(c, 6) for c in pt) for piece in north_line for pt in piece}
    assert {tuple(round(c, 6) for c in p) for p in NORTH} <= ends  # reaches every home
    assert (round(C[0], 6), round(C[1], 6)) in ends  # up the footpath to C, n3's foot
    assert len(north_line) == 1 + 1 + 3  # tap offset, O-C once, three service lines
    far = by_id(result)[far_id]["project"]
    assert lines[far]["properties"]["connection"] == "straight_line"
    assert len(lines[far]["geometry"]["coordinates"]) == 1


async def test_pumping_from_the_dem(conn: AsyncConnection, tmp_path: Path) -> None:
    cid, north, east = await two_branches(conn)
    await add_dem(conn, cid, slope_dem(tmp_path, 20_000.0))  # 900 m + 20 m per 0.001° north
    got = by_id(await water_hookups.run(conn, cid, water_hookups.Params(head_threshold_m=5)))
    # the source is the main's end at LAT0 - 0.00005: 899 m
    assert got[north[2]]["source_elevation_m"] == pytest.approx(899, abs=0.05)
    assert got[north[2]]["elevation_diff_m"] == pytest.approx(21, abs=0.05)  # 920 - 899
    assert got[north[2]]["needs_pumping"] is True
    assert got[north[0]]["elevation_diff_m"] == pytest.approx(7, abs=0.05)  # 906 - 899 > 5
    assert got[north[0]]["needs_pumping"] is True
    assert got[east]["elevation_diff_m"] == pytest.approx(-1, abs=0.05)  # 898 - 899
    assert got[east]["needs_pumping"] is False


async def test_far_home_gets_a_straight_line(conn: AsyncConnection) -> None:
    cid, _, _ = await two_branches(conn)
    far = (LON0 - 0.001, LAT0 + 0.002)  # 110 m from any path
    far_id = await dwelling(conn, cid, *far, residents=2)
    result = await water_hookups.run(conn, cid, water_hookups.Params(max_connector_m=40))
    props = by_id(result)[far_id]
    assert props["connection"] == "straight_line" and props["connector_m"] is None
    # straight to the nearest point of the working main: its west end (the home lies
    # west of it)
    assert props["length_m"] == pytest.approx(metres(*far, LON0 - 0.0005, LAT0 - 0.00005), abs=0.1)
    assert result.summary["straight_line"] == 1
    assert any("a straight line to the main" in w for w in result.warnings)  # one home
    row = next(r for r in result.rows if r["project"] == props["project"])
    assert row["connection"] == "straight_line" and row["dwellings"] == 1


async def budget_case(conn: AsyncConnection) -> tuple[int, dict[str, float]]:
    """Three branches from O, where a main ends: N 66.4 m (9 residents), E and W 54.8 m
    (7 each); each home stands at its branch's end."""
    cid = await commune(conn)
    await main(conn, cid, [ORIGIN, (LON0, LAT0 - 0.0005)])
    ends = {"N": (LON0, LAT0 + 0.0006), "E": (LON0 + 0.0005, LAT0), "W": (LON0 - 0.0005, LAT0)}
    for name, end in ends.items():
        await path(conn, cid, [ORIGIN, end], "footpath")
        await dwelling(conn, cid, *end, residents=9 if name == "N" else 7)
    return cid, {name: metres(*ORIGIN, *end) for name, end in ends.items()}


async def test_budget_greedy_gap_is_reported(conn: AsyncConnection) -> None:
    cid, length = await budget_case(conn)
    cost = {k: math.ceil(v) for k, v in length.items()}  # 67, 55, 55 whole metres
    budget_m = cost["E"] + cost["W"]  # 110
    # greedy takes N first (9 / 66.4 = 0.136 per m beats 7 / 54.8 = 0.128), then neither E
    # nor W fits in the 43 m left: 9 residents. E + W use exactly 110 m: 14 residents.
    assert 9 / length["N"] > 7 / length["E"] and cost["N"] + cost["E"] > budget_m
    result = await water_hookups.run(conn, cid, water_hookups.Params(budget_m=budget_m))
    plan = result.summary["budget"]
    assert plan["greedy"] == {"projects": 1, "pipe_m": cost["N"], "residents": 9}
    assert plan["optimum"] == {"projects": 2, "pipe_m": budget_m, "residents": 14}
    assert plan["gap_residents"] == 5 and plan["gap_pct"] == pytest.approx(35.71, abs=0.01)
    # the bound, by residents per whole metre: N whole (9 / 67 = 0.134 beats 7 / 55 =
    # 0.127), then 43 of E's 55 m: 9 + 7 x 43 / 55 = 14.47 >= 14
    assert 9 / cost["N"] > 7 / cost["E"]
    assert plan["upper_bound_residents"] == round(9 + 7 * (budget_m - cost["N"]) / cost["E"], 1)
    rows = {r["residents"]: r for r in result.rows}
    assert rows[9]["chosen_greedy"] and not rows[9]["chosen_optimum"]
    assert [r["pipe_m"] for r in result.rows] == pytest.approx(
        [length["N"], length["E"], length["W"]], abs=0.1
    )

    # money mode: 2 per metre, 220 to spend is the same 110 m
    money = await water_hookups.run(conn, cid, water_hookups.Params(cost_per_m=2, budget_money=220))
    assert money.summary["budget"]["gap_residents"] == 5
    # a row costs its whole metres, as the budget pays them: 2 x 67, the greedy's cost
    assert money.rows[0]["cost"] == 2 * cost["N"] == money.summary["budget"]["greedy"]["cost"]


def test_budget_choices_against_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 9))
        costs = rng.integers(1, 60, n)
        values = rng.integers(0, 40, n).astype(float)
        cap = int(rng.integers(0, 150))
        best = max(
            values[[i for i in range(n) if mask >> i & 1]].sum()
            for mask in range(2**n)
            if costs[[i for i in range(n) if mask >> i & 1]].sum() <= cap
        )
        exact = budget.exact_choice(costs, values, cap)
        assert costs[exact].sum() <= cap and values[exact].sum() == best
        # ranked by the pipe's metres, paid in whole metres (found from outside: the bound,
        # taken in this order, fell below what the greedy served)
        pipe = costs - rng.random(n) * 0.99
        order = water_hookups.rank_projects(values, pipe)
        greedy = budget.greedy_choice(costs, values, order, cap)
        assert costs[greedy].sum() <= cap and values[greedy].sum() <= best
        assert budget.fractional_bound(costs, values, cap) >= best - 1e-9


def test_the_bound_is_taken_per_whole_metre() -> None:
    """Worked by hand from 5 de Marzo's case (found from outside): A serves 8 over 9.1 m of
    pipe (10 whole metres), B 5 over 5.7 m (6). By the pipe, A ranks first (0.879 against
    0.877 per metre); per whole metre B does (0.833 against 0.8). With 6 m the greedy skips
    A and takes B: 5 residents. The bound in the greedy's order was 8 x 6 / 10 = 4.8, below
    it; per whole metre it is B whole and nothing of A: 5."""
    costs, values, pipe = np.array([10, 6]), np.array([8.0, 5.0]), np.array([9.1, 5.7])
    order = water_hookups.rank_projects(values, pipe)
    assert order.tolist() == [0, 1]
    assert values[budget.greedy_choice(costs, values, order, 6)].sum() == 5
    assert budget.fractional_bound(costs, values, 6) == 5
    assert budget.fractional_bound(costs, values, 11) == 5 + 8 * 5 / 10


async def test_no_paths_means_straight_lines(conn: AsyncConnection) -> None:
    cid = await commune(conn)
    await main(conn, cid, [(LON0 - 0.0005, LAT0 - 0.00005), MAIN_END])
    home = (LON0 - 0.0003, LAT0 + 0.0005)
    dw = await dwelling(conn, cid, *home)
    result = await water_hookups.run(conn, cid, water_hookups.Params())
    assert any("no paths" in w for w in result.warnings)
    props = by_id(result)[dw]
    assert props["connection"] == "straight_line"
    assert props["length_m"] == pytest.approx(metres(*home, LON0 - 0.0003, LAT0 - 0.00005), abs=0.1)


async def test_degenerate_communes(conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = await commune(conn)
    empty = await water_hookups.run(conn, cid, water_hookups.Params())
    assert empty.features == [] and empty.rows == []
    assert "no dwellings" in empty.warnings[0]
    await dwelling(conn, cid, *ORIGIN, water="piped")
    piped = await water_hookups.run(conn, cid, water_hookups.Params())
    assert "piped water" in piped.warnings[0]
    await dwelling(conn, cid, *C)
    with pytest.raises(NotFound, match="no working or leaking water main") as refused:
        await water_hookups.run(conn, cid, water_hookups.Params())
    # named by its code, in both languages (found from outside: "commune 10 has no ...")
    cur = await conn.execute("SELECT code FROM communes WHERE id = %s", (cid,))
    (code,) = await cur.fetchone()
    assert f"commune {code} has no working" in refused.value.said("en")
    assert f"la comuna {code} no tiene ninguna tubería" in refused.value.said("es")

    # refused before the paths are read and cut (found from outside: a commune of 50,000
    # homes and no main attached every home first, seconds on every report)
    async def no_paths_needed(*_: object) -> None:
        raise AssertionError("the paths were read for a commune without a main")

    @asynccontextmanager
    async def spare() -> AsyncIterator[object]:
        yield object()  # a second connection: the paths would be read beside the homes

    monkeypatch.setattr(water_hookups, "_paths", no_paths_needed)
    with work.lending(spare), pytest.raises(NotFound, match="no working or leaking"):
        await water_hookups.run(conn, cid, water_hookups.Params())


async def test_sample_through_the_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/communes/5-DE-MARZO/analyses/water-hookups?budget_m=500")
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    sectors = {s["sector"]: s for s in summary["by_sector"]}
    share = {k: v["share_residents_without_piped_pct"] for k, v in sectors.items()}
    assert share["La Cumbre"] > share["La Bajada"]  # more people without water high up
    assert summary["needs_pumping"]["dwellings"] > 0
    assert summary["budget"]["greedy"]["pipe_m"] <= 500
    assert summary["budget"]["upper_bound_residents"] >= summary["budget"]["greedy"]["residents"]
    assert summary["csv_rows"] == "projects, best ranked first"
    # found from outside: asked in Spanish, its notes were English
    es = await client.get("/communes/5-DE-MARZO/analyses/water-hookups?budget_m=500&lang=es")
    spanish = es.json()["summary"]
    assert spanish["csv_rows"] == "proyectos, los mejor clasificados primero"
    assert spanish["budget"]["optimum_note"].startswith(f"{summary['projects']} proyectos: ")
    assert spanish["budget"]["greedy"] == summary["budget"]["greedy"]  # the numbers as they are

    text = (
        await client.get("/communes/5-DE-MARZO/analyses/water-hookups?f=csv&max_projects=25")
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == min(25, summary["projects"]) and rows[0]["project"] == "1"
    ratios = [float(row["residents_per_m"]) for row in rows]
    assert ratios == sorted(ratios, reverse=True)
    geo = (await client.get("/communes/5-DE-MARZO/analyses/water-hookups?f=geojson")).json()
    assert len(geo["features"]) == summary["dwellings_without_piped_water"]
    # each home's flag is the rule the summary and the projects count by (a home rising
    # 0.04 m, shown as 0.0, was counted by them and not flagged)
    flagged = [f["properties"] for f in geo["features"] if f["properties"]["needs_pumping"]]
    assert len(flagged) == summary["needs_pumping"]["dwellings"] > 0
    assert sum(f["residents"] for f in flagged) == summary["needs_pumping"]["residents"]
    per_project: dict[int, int] = {}
    for f in flagged:
        per_project[f["project"]] = per_project.get(f["project"], 0) + 1
    every = (
        await client.get("/communes/5-DE-MARZO/analyses/water-hookups?f=csv&max_projects=10000")
    ).text
    counted = {
        int(row["project"]): int(row["needs_pumping"])
        for row in csv.DictReader(io.StringIO(every))
        if int(row["needs_pumping"])
    }
    assert counted == per_project
    # every project's pipe drawn, as long as measured (shared stretches once)
    assert len(geo["lines"]) == summary["projects"]
    for line in geo["lines"]:
        drawn = sum(metres(*a, *b) for a, b in line["geometry"]["coordinates"])
        assert drawn == pytest.approx(line["properties"]["pipe_m"], abs=0.1 + 1e-3 * drawn)

    # the chosen rows' costs add up to what the budget says it spends (whole metres each)
    money = "/communes/5-DE-MARZO/analyses/water-hookups?cost_per_m=10&budget_money=5009"
    answer = (await client.get(money)).json()["summary"]["budget"]
    rows = list(csv.DictReader(io.StringIO((await client.get(money + "&f=csv")).text)))
    spent = sum(float(row["cost"]) for row in rows if row["chosen_greedy"] == "True")
    assert spent == pytest.approx(answer["greedy"]["cost"]) and 0 < spent <= 5009

    bad = await client.get("/communes/5-DE-MARZO/analyses/water-hookups?budget_money=100")
    assert bad.status_code == 400 and "cost_per_m" in bad.json()["detail"]
    # found from outside: 'parámetros no válidos: : Value error, budget_money needs ...'
    bad = await client.get("/communes/5-DE-MARZO/analyses/water-hookups?budget_money=100&lang=es")
    assert bad.json()["detail"] == (
        "parámetros no válidos: budget_money necesita cost_per_m (lo que cuesta un metro de "
        "tubería)"
    )


async def test_what_the_answer_would_not_use_is_refused(client: httpx.AsyncClient) -> None:
    """Found from outside: max_projects=5 still gave every project in JSON and GeoJSON, and
    a budget of half a metre answered 0 projects without a word (0 itself was refused)."""
    url = "/communes/5-DE-MARZO/analyses/water-hookups"
    for f in ("json", "geojson"):
        r = await client.get(url, params={"f": f, "max_projects": 5})
        assert r.status_code == 400 and "max_projects" in r.json()["detail"], r.text
        assert "CSV" in r.json()["detail"]
    assert (await client.get(url, params={"f": "csv", "max_projects": 5})).status_code == 200
    for tiny in ({"budget_m": 0.5}, {"budget_money": 100, "cost_per_m": 1000}):
        r = await client.get(url, params={**tiny, "lang": "es"})
        assert r.status_code == 400, r.text
        assert "no alcanza para un metro de tubería" in r.json()["detail"], r.text
    r = await client.get(url, params={"budget_m": 1.5})
    assert r.status_code == 200 and r.json()["summary"]["budget"]["budget_m"] == 1


def test_one_home_far_from_the_paths_is_said_in_the_singular() -> None:
    from geo_comuna.analysis.water_hookups.pipes import far_from_paths

    one, two = far_from_paths(1, 50.0), far_from_paths(2, 50.0)
    assert one.startswith("1 dwelling is over 50 m") and one.es.startswith("1 vivienda está")
    assert two.startswith("2 dwellings are over 50 m") and two.es.startswith("2 viviendas están")


async def test_a_format_it_has_not_is_refused_naming_those_it_has(
    client: httpx.AsyncClient,
) -> None:
    """Found from outside: ?f=html on an analysis was refused with the parameter's pattern,
    '(^(json|geojson|csv)$)', in Spanish too."""
    url = "/communes/5-DE-MARZO/analyses/water-hookups"
    english = await client.get(url, params={"f": "html", "lang": "en"})
    assert english.status_code == 400, english.text
    # a page, as f=html asks (a person's browser)
    assert "must be one of json, geojson, csv" in english.text, english.text
    spanish = await client.get(url, params={"f": "html", "lang": "es"})
    assert "«f» debe ser uno de: json, geojson, csv" in html.unescape(spanish.text), spanish.text
    assert "^(" not in english.text + spanish.text
    # and a CSV is named by the commune's code (found from outside: water-hookups-1.csv)
    csv = await client.get(url, params={"f": "csv"})
    assert csv.status_code == 200, csv.text
    assert 'filename="water-hookups-5-DE-MARZO.csv"' in csv.headers["content-disposition"]
