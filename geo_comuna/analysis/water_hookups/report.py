"""The water-hookup result: a GeoJSON feature per dwelling, a CSV row per listed project, and
the summary with each sector's share of residents without piped water.

Lengths in metres, rounded to 0.1 m; null where unknown (JSON has no NaN).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncConnection

from geo_comuna.analysis.base import Result
from geo_comuna.analysis.toolkit.features import LineFeatures, PointFeatures
from geo_comuna.analysis.toolkit.network import Dwellings, as_features, rounded
from geo_comuna.analysis.water_hookups.pipes import Pipes, Rise
from geo_comuna.analysis.water_hookups.ranking import Ranking, whole_metres
from geo_comuna.errors import Said


async def sector_totals(conn: AsyncConnection, commune_id: int) -> dict[str, tuple[int, int]]:
    """All dwellings and residents per sector (piped ones included)."""
    cur = await conn.execute(
        "SELECT coalesce(sector, ''), count(*), coalesce(sum(residents), 0) FROM dwellings "
        "WHERE commune_id = %s GROUP BY 1",
        (commune_id,),
    )
    return {s: (int(n), int(r)) for s, n, r in await cur.fetchall()}


def nothing_to_connect(totals: dict[str, tuple[int, int]]) -> Result:
    """The result for a commune with no dwelling lacking piped water."""
    return Result(
        summary={"dwellings_without_piped_water": 0, "residents": 0, "projects": 0},
        features=[],
        rows=[],
        warnings=[
            "this commune has no dwellings mapped"
            if not totals
            else "every mapped dwelling of this commune has piped water"
        ],
    )


def dwelling_features(
    dw: Dwellings, pipes: Pipes, rise: Rise, ranking: Ranking, head_threshold_m: float
) -> PointFeatures:
    """One GeoJSON feature per dwelling without piped water; ``needs_pumping`` is the rule
    the summary and the projects count by (Rise.needs_pumping, on the rise as measured; null
    where it is unknown). On the rise as shown, rounded to 0.1 m, a home rising 0.04 m above
    its source with a threshold of 0 was counted by the summary and the CSV, not by its own
    flag."""
    pumping = rise.needs_pumping(head_threshold_m).astype(object)
    pumping[np.isnan(rise.rise_m)] = None
    return as_features(
        dw,
        {
            "residents": dw.residents.astype(np.int64).tolist(),
            "water": dw.water,
            "sector": dw.sector,
            "length_m": rounded(pipes.length_m),
            "connection": np.where(pipes.on_network, "network", "straight_line").tolist(),
            "connector_m": rounded(pipes.connector_m),
            "project": ranking.rank[pipes.project].astype(np.int64).tolist(),
            "elevation_m": rounded(rise.elevation_m),
            "source_elevation_m": rounded(rise.source_elevation_m),
            "elevation_diff_m": rounded(rise.rise_m),
            "needs_pumping": pumping.tolist(),
        },
    )


def project_lines(
    ranking: Ranking, pipes: Pipes, chosen_greedy: np.ndarray | None = None
) -> LineFeatures:
    """One GeoJSON feature per project, best ranked first: where its pipe runs from the main
    to its homes (a MultiLineString whose geodesic length is ``pipe_m``). With a budget, each
    says whether the budget's choice takes it (``chosen_greedy``, as the CSV rows do): the
    map then draws those only."""
    order = ranking.order
    properties = {
        "project": ranking.rank[order].astype(np.int64).tolist(),
        "connection": np.where(order < ranking.n_network, "network", "straight_line").tolist(),
        "dwellings": ranking.dwellings[order].astype(np.int64).tolist(),
        "residents": ranking.residents[order].astype(np.int64).tolist(),
        "pipe_m": np.round(ranking.pipe_m[order].astype(float), 1).tolist(),
    }
    if chosen_greedy is not None:
        properties["chosen_greedy"] = chosen_greedy[order].astype(bool).tolist()
    return pipes.pieces.features(order, properties)


def project_rows(
    ranking: Ranking,
    listed: np.ndarray,
    cost_per_m: float | None,
    chosen_greedy: np.ndarray | None,
    chosen_exact: np.ndarray | None,
) -> list[dict[str, Any]]:
    """The CSV rows: one per listed project (indexes in rank order)."""
    rows = []
    for i in listed.tolist():
        pipe, residents, max_rise = ranking.pipe_m[i], ranking.residents[i], ranking.max_rise_m[i]
        row: dict[str, Any] = {
            "project": int(ranking.rank[i]),
            "connection": "network" if i < ranking.n_network else "straight_line",
            "dwellings": int(ranking.dwellings[i]),
            "residents": int(residents),
            "pipe_m": round(float(pipe), 1),
            "residents_per_m": round(float(residents / max(pipe, 1e-9)), 4),
            # no rise known for any of its homes (no DEM, off it): unknown, as the summary's
            "needs_pumping": None if np.isnan(max_rise) else int(ranking.needs_pumping[i]),
            "max_rise_m": None if np.isnan(max_rise) else round(float(max_rise), 1),
        }
        if cost_per_m is not None:  # as the budget pays it: the greedy rows add up to its cost
            row["cost"] = round(float(whole_metres(pipe)) * cost_per_m, 2)
        if chosen_greedy is not None:
            row["chosen_greedy"] = bool(chosen_greedy[i])
            row["chosen_optimum"] = None if chosen_exact is None else bool(chosen_exact[i])
        rows.append(row)
    return rows


def summary(
    dw: Dwellings,
    pipes: Pipes,
    rise: Rise,
    ranking: Ranking,
    head_threshold_m: float,
    totals: dict[str, tuple[int, int]],
    budget_info: dict[str, Any] | None,
) -> dict[str, Any]:
    """Counts for the commune and per sector, and the choice under the budget if any."""
    pumping = rise.needs_pumping(head_threshold_m)
    return {
        "dwellings_without_piped_water": len(dw.ids),
        "residents": int(dw.residents.sum()),
        "on_network": int(pipes.on_network.sum()),
        "straight_line": int((~pipes.on_network).sum()),
        "taps": pipes.taps,
        "projects": len(ranking.pipe_m),
        "pipe_m_all_projects": round(float(ranking.pipe_m.sum()), 1),
        "median_length_m": round(float(np.median(pipes.length_m)), 1),
        "needs_pumping": None
        if np.isnan(rise.rise_m).all()
        else {"dwellings": int(pumping.sum()), "residents": int(dw.residents[pumping].sum())},
        "by_sector": _by_sector(dw, pipes.length_m, totals),
        "budget": budget_info,
        "csv_rows": Said(
            "projects, best ranked first", "proyectos, los mejor clasificados primero"
        ),
    }


def _by_sector(
    dw: Dwellings, length: np.ndarray, totals: dict[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Per sector: homes and residents in all, without piped water, and median pipe length."""
    sectors = dw.sector_names
    out = []
    for name, (homes, people) in sorted(totals.items()):
        mine = sectors == name
        without = int(dw.residents[mine].sum())
        out.append(
            {
                "sector": name or None,
                "dwellings": homes,
                "residents": people,
                "dwellings_without_piped": int(mine.sum()),
                "residents_without_piped": without,
                "share_residents_without_piped_pct": round(100 * without / people, 1)
                if people
                else None,
                "median_length_m": round(float(np.median(length[mine])), 1) if mine.any() else None,
            }
        )
    return out
