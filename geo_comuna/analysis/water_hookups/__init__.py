"""Water hookups: how far each home without piped water is from a working main along the paths,
which homes one branch line can serve together, and which branches a budget should build first.

Lengths are geodesic metres. A pipe is assumed to follow the path network (pipes are laid under
roads, footpaths and stairways) from a *tap*: a path vertex within ``tap_reach_m`` of a working
or leaking main, or the vertex nearest to each such main. One Dijkstra from all taps at once
gives every dwelling its shortest pipe; the shortest-path tree groups dwellings into projects.
docs/analyses.md ("Water hookups") gives every formula.

params.py holds the parameters; projects.py the taps, the tree and its branch projects;
pipes.py each dwelling's pipe, source and rise; ranking.py the ranking and the budget choice;
report.py the features, CSV rows and summary; lines.py where each project's pipe runs.
"""

from __future__ import annotations

import functools

from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import Analysis, FeaturesOf, Result
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.water_hookups import report
from geo_comuna.analysis.water_hookups.params import Params
from geo_comuna.analysis.water_hookups.pipes import (
    Pipes,
    Rise,
    elevation_rise,
    has_mains,
    lay_pipes,
    no_mains,
)
from geo_comuna.analysis.water_hookups.projects import (
    group_projects,
    load_taps,
    route,
    source_tree,
)
from geo_comuna.analysis.water_hookups.ranking import choose, rank_all, rank_projects
from geo_comuna.layers import LAYERS

__all__ = [
    "ANALYSIS",
    "Params",
    "group_projects",
    "load_taps",
    "rank_projects",
    "route",
    "run",
    "source_tree",
]


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """Pipe length, branch project and pumping need for every dwelling without piped water;
    projects ranked by residents per metre, and chosen under a budget when one is given.
    CSV rows are the projects."""
    if not await has_mains(conn, commune_id):  # said before the paths are read and cut
        dw, totals = await _homes(conn, commune_id)  # (found from outside: 8 s a report)
        if not len(dw.ids):
            return report.nothing_to_connect(totals)
        raise await no_mains(conn, commune_id)
    paths = None
    async with work.spare_connection() as other:
        if other is None:
            dw, totals = await _homes(conn, commune_id)
        else:  # the paths read and cut on a second connection, on a CPU of their own
            async with work.beside(_paths(other, commune_id)) as reading:
                dw, totals = await _homes(conn, commune_id)
                paths = await reading if len(dw.ids) else None
    if not len(dw.ids):
        return report.nothing_to_connect(totals)
    if paths is None:  # no second connection: read after the homes, on the request's own
        paths = await _paths(conn, commune_id)
    warnings: list[str] = []
    pipes = await lay_pipes(conn, commune_id, dw, params, warnings, paths)
    rise = await elevation_rise(conn, commune_id, dw, pipes, warnings)
    return await work.cpu(_rank_and_report, dw, pipes, rise, totals, params, warnings)


async def _homes(conn: AsyncConnection, commune_id: int) -> tuple[network.Dwellings, dict]:
    """The dwellings without piped water, and the residents and homes per sector."""
    dw = await network.load_dwellings(conn, commune_id, without_piped=True)
    return dw, await report.sector_totals(conn, commune_id)


async def _paths(conn: AsyncConnection, commune_id: int) -> tuple[int, network.Network]:
    """The commune's UTM zone and its paths as a graph."""
    srid = await network.utm_srid(conn, commune_id)
    return srid, await network.load(conn, commune_id, srid)


def _rank_and_report(
    dw: network.Dwellings,
    pipes: Pipes,
    rise: Rise,
    totals: dict,
    params: Params,
    warnings: list[str],
) -> Result:
    """Ranking, the budget's choice and the answer: the CPU-heavy part, on a worker."""
    threshold = params.head_threshold_m
    ranking = rank_all(dw, pipes, rise, threshold)
    budget_info, greedy, exact = choose(ranking, params)
    listed = ranking.order[: params.max_projects]
    return Result(
        summary=report.summary(dw, pipes, rise, ranking, threshold, totals, budget_info),
        features=report.dwelling_features(dw, pipes, rise, ranking, threshold),
        rows=report.project_rows(ranking, listed, params.cost_per_m, greedy, exact),
        warnings=warnings,
        lines=functools.partial(report.project_lines, ranking, pipes, greedy),  # drawn if read
    )


#: this analysis' entry in analysis/registry.py
ANALYSIS = Analysis(
    name="water-hookups",
    title_es="Conexiones de agua",
    title_en="Water hookups",
    params=Params,
    run=run,
    reads=("dwellings", "water_mains", "paths", "communes", "dems"),
    features_of=FeaturesOf(LAYERS["dwellings"]),
    grows_with="dwellings",
)
