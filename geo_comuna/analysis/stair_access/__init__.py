"""Stair access: the walk from every home to the nearest road that vehicles use, or to a transit
stop, over the commune's roads, footpaths and stairways; how long it takes and how many steps
and metres of height it climbs.

Walking is timed by Tobler's hiking function on roads and footpaths, with the slope from the
commune's DEM at segment ends, and by a pace per step on stairways. Slopes make the walk
one-way: each segment is an edge in both directions with its own time. One Dijkstra, run
backwards from every destination at once, times all dwellings. docs/analyses.md
("Stair access") gives every formula.

params.py holds the parameters; places.py reads the paths, stops and elevations; legs.py
costs each piece of a walk; walks.py finds every dwelling's walk; report.py shapes the
features, the walks' lines and the summary.
"""

from __future__ import annotations

import functools

import numpy as np
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import Analysis, FeaturesOf, Result
from geo_comuna.analysis.stair_access import places, report
from geo_comuna.analysis.stair_access.legs import MEASURES, segment_legs, tobler_mps
from geo_comuna.analysis.stair_access.params import Params
from geo_comuna.analysis.stair_access.walks import Walks, walk_all
from geo_comuna.analysis.toolkit import network
from geo_comuna.errors import Said
from geo_comuna.layers import LAYERS

__all__ = [
    "ANALYSIS",
    "MEASURES",
    "Params",
    "Walks",
    "run",
    "segment_legs",
    "tobler_mps",
    "walk_all",
]


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """The walk from every dwelling to a road with vehicle access or a transit stop: metres,
    steps climbed, elevation gained and minutes; flagged over the thresholds; summarised per
    commune and sector. CSV rows are the dwellings."""
    warnings: list[str] = []
    async with work.spare_connection() as other:
        dw, net = await _homes_and_paths(conn, other, commune_id)
    if net is None:
        warnings.append(
            Said("this commune has no dwellings mapped", "esta comuna no tiene viviendas mapeadas")
        )
        return Result(summary={"dwellings": 0, "residents": 0}, features=[], warnings=warnings)
    stop_points = await places.transit_stop_points(conn, commune_id, params)
    homes, stops = await places.attached(conn, net, dw, stop_points, commune_id, params)
    z_node, z_home, z_att = await places.elevations(conn, commune_id, net, dw, homes, warnings)
    return await work.cpu(
        _walks_and_report, dw, net, stops, homes, (z_node, z_home, z_att), params, warnings
    )


async def _homes_and_paths(
    conn: AsyncConnection, other: AsyncConnection | None, commune_id: int
) -> tuple[network.Dwellings, network.Network | None]:
    """The dwellings and the paths (None for a commune without dwellings: not read), side by
    side when the request has a second connection (each query on its own CPU)."""
    if other is None:
        dw = await network.load_dwellings(conn, commune_id)
        return dw, await places.walkable_paths(conn, commune_id) if len(dw.ids) else None
    async with work.beside(places.walkable_paths(other, commune_id)) as paths:
        dw = await network.load_dwellings(conn, commune_id)
        return dw, await paths if len(dw.ids) else None


def _walks_and_report(
    dw: network.Dwellings,
    net: network.Network,
    stops: network.Attachment,
    homes: network.Attachment,
    elevations: tuple[np.ndarray, np.ndarray, np.ndarray],
    params: Params,
    warnings: list[str],
) -> Result:
    """Both walks (out and back, the slopes make them differ) and the answer: the CPU-heavy
    part, on a worker."""
    z_node, z_home, z_att = elevations
    out = walk_all(net, z_node, homes, z_home, z_att, stops, params)
    back = walk_all(net, -z_node, homes, -z_home, -z_att, stops, params)
    lost = int((~out.reachable).sum())
    if lost:
        warnings.append(
            Said(
                f"{lost} dwellings reach no destination: over "
                f"{params.max_connector_m:g} m from the paths, or on paths cut off "
                "from every road and stop",
                f"{lost} viviendas no llegan a ningún destino: a más de "
                f"{params.max_connector_m:g} m de las veredas, o en veredas aisladas "
                "de toda vía y parada",
            )
        )
    flagged = report.flags(out, back, params)
    return Result(
        summary=report.summary(dw, net, stops, out, back, flagged, params),
        features=report.dwelling_features(dw, homes, out, back, flagged),
        warnings=warnings,
        lines=functools.partial(report.walk_lines, dw, net, homes, out),  # drawn if read
    )


#: this analysis' entry in analysis/registry.py
ANALYSIS = Analysis(
    name="stair-access",
    title_es="Acceso por escaleras",
    title_en="Stair access",
    params=Params,
    run=run,
    reads=("dwellings", "paths", "facilities", "communes", "dems"),
    features_of=FeaturesOf(LAYERS["dwellings"]),
    grows_with="dwellings",
)
