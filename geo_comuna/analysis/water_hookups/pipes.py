"""Each dwelling's pipe: along the path network from a tap when a branch reaches it, else a
straight line to the nearest working main; where its water comes from, and how far it must
rise from there (the commune's DEM).

Lengths are geodesic metres; elevations are metres, sampled from the DEM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import commune_code, sql_text
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.network import Dwellings
from geo_comuna.analysis.water_hookups import lines
from geo_comuna.analysis.water_hookups.params import Params
from geo_comuna.analysis.water_hookups.projects import (
    group_projects,
    load_taps,
    route,
    source_tree,
)
from geo_comuna.errors import NotFound, Said


async def has_mains(conn: AsyncConnection, commune_id: int) -> bool:
    """Has the commune a working or leaking water main, something to connect to?"""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT FROM water_mains WHERE commune_id = %s "
        "AND status IN ('working', 'leaking'))",
        (commune_id,),
    )
    return bool((await cur.fetchone())[0])


async def no_mains(conn: AsyncConnection, commune_id: int) -> NotFound:
    """The refusal of a commune without such a main (has_mains), naming it by its code."""
    code = await commune_code(conn, commune_id)
    return NotFound(
        Said(
            f"commune {code} has no working or leaking water main to connect to; map them "
            "in layer water_mains",
            f"la comuna {code} no tiene ninguna tubería de agua operativa o con fugas a la "
            "que conectar; trácelas en la capa water_mains",
        ),
        layer="water_mains",
    )


async def straight_lines(
    conn: AsyncConnection, commune_id: int, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance (m) from each dwelling to the nearest working main, and the main's point."""
    if not len(ids):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "straight.sql"),
        {"commune": commune_id, "ids": np.sort(ids).tolist()},
    )
    _, dist, lon, lat = (np.array(c, float) for c in zip(*await cur.fetchall(), strict=True))
    return dist, lon, lat


@dataclass(frozen=True)
class Pipes:
    """Per dwelling (aligned with ``Dwellings.ids``): its pipe and the point on a main where
    its water comes from. Projects are the network branches first (``n_network`` of them),
    then one straight line per dwelling no branch reaches."""

    on_network: np.ndarray  # bool
    length_m: np.ndarray  # the whole pipe, connector included
    connector_m: np.ndarray  # service line to the paths (NaN: a straight line)
    project: np.ndarray  # project index
    source_lon: np.ndarray
    source_lat: np.ndarray
    project_pipe_m: np.ndarray  # per project
    n_network: int
    taps: int  # taps a network project starts from
    #: where each project's pipe runs (lines.py)
    pieces: lines.Pieces


def _branches(net: network.Network, taps: Any, att: network.Attachment, dw: Dwellings) -> tuple:
    """The tree from every tap, each dwelling's route on it, the branch projects and where
    their pipes run (CPU)."""
    tree, weights = source_tree(net, taps)
    routes = route(net, att, tree)
    projects = group_projects(net, tree, weights, att, routes)
    pieces = lines.network_pieces(net, tree, taps, att, routes, projects, (dw.lon, dw.lat))
    return tree, routes, projects, pieces


async def lay_pipes(
    conn: AsyncConnection,
    commune_id: int,
    dw: Dwellings,
    params: Params,
    warnings: list[str],
    paths: tuple[int, network.Network],
) -> Pipes:
    """One Dijkstra from all taps gives every dwelling its network pipe and branch project;
    the dwellings it misses get a straight line to the nearest main. ``paths``: the commune's
    UTM zone and its paths' graph."""
    srid, net = paths
    if not net.n_edges:
        warnings.append(
            Said(
                "this commune has no paths mapped: every length is a straight line to the "
                "nearest main",
                "esta comuna no tiene veredas mapeadas: cada longitud es una línea recta a la "
                "tubería más cercana",
            )
        )
    # the homes are attached (CPU, on a worker) while the taps are read (the database)
    async with work.beside(network.attach_dwellings(net, dw, params.max_connector_m)) as attaching:
        taps = await load_taps(conn, commune_id, net, srid, params.tap_reach_m)
        att = await attaching
    tree, routes, projects, pieces = await work.cpu(_branches, net, taps, att, dw)
    on = routes.on_network
    off = np.flatnonzero(~on)
    if len(off) and net.n_edges:
        warnings.append(far_from_paths(len(off), params.max_connector_m))

    # Where each dwelling's water comes from: its project's tap point on the main, or the
    # nearest point of the nearest main for a straight line.
    straight_m, straight_lon, straight_lat = await straight_lines(conn, commune_id, dw.ids[off])
    length = routes.length_m.copy()
    length[off] = straight_m
    src_lon, src_lat = np.zeros(len(dw.ids)), np.zeros(len(dw.ids))
    if on.any():  # the tap's point on the main: the row of the root -> tap leg used
        row = tree.via[projects.tap[projects.of_dwelling[on]]] - 2 * net.n_edges
        src_lon[on], src_lat[on] = taps.lon[row], taps.lat[row]
    src_lon[off], src_lat[off] = straight_lon, straight_lat
    proj = projects.of_dwelling.copy()
    proj[off] = len(projects.key) + np.arange(len(off))
    return Pipes(
        on_network=on,
        length_m=length,
        connector_m=np.where(on, att.connector_m, np.nan),
        project=proj,
        source_lon=src_lon,
        source_lat=src_lat,
        project_pipe_m=np.concatenate([projects.pipe_m, straight_m]),
        n_network=len(projects.key),
        taps=len(np.unique(projects.tap)),
        pieces=pieces
        + lines.Pieces.of(
            len(projects.key) + np.arange(len(off)),
            np.column_stack([dw.lon[off], dw.lat[off]]),
            np.column_stack([straight_lon, straight_lat]),
        ),
    )


@dataclass(frozen=True)
class Rise:
    """Per dwelling: its elevation, its source's and the difference (m; NaN where unknown)."""

    elevation_m: np.ndarray
    source_elevation_m: np.ndarray
    rise_m: np.ndarray

    def needs_pumping(self, head_threshold_m: float) -> np.ndarray:
        """Rising more than the main's head covers (False where the rise is unknown)."""
        return (self.rise_m > head_threshold_m) & ~np.isnan(self.rise_m)


async def elevation_rise(
    conn: AsyncConnection, commune_id: int, dw: Dwellings, pipes: Pipes, warnings: list[str]
) -> Rise:
    """Dwelling elevation, source elevation and rise from the commune's DEM."""
    dem, (z_home, z_src) = await network.elevations_at(
        conn,
        commune_id,
        (dw.lon, dw.lat),
        (pipes.source_lon, pipes.source_lat),
        warnings=warnings,
    )
    if dem is None:
        warnings.append(
            Said(
                "this commune has no DEM: elevations and needs_pumping are null "
                "(register a GeoTIFF DEM for the commune to get them)",
                "esta comuna no tiene modelo de elevación: las elevaciones y si hace falta "
                "bombeo quedan vacías (registre un DEM GeoTIFF de la comuna para tenerlos)",
            )
        )
    elif unknown := int((np.isnan(z_home) | np.isnan(z_src)).sum()):
        warnings.append(
            Said(
                f"{unknown} of {len(dw.ids)} dwellings or their sources lie outside "
                f"the DEM '{dem.name}': their needs_pumping is null",
                f"{unknown} de {len(dw.ids)} viviendas o sus fuentes quedan fuera del modelo "
                f"de elevación '{dem.name}': queda vacío si necesitan bombeo",
            )
        )
    return Rise(z_home, z_src, z_home - z_src)


def far_from_paths(n: int, reach_m: float) -> Said:
    """The warning for ``n`` homes the paths do not reach, in the number's form (found from
    outside: "1 dwellings are over 50 m...")."""
    if n == 1:
        return Said(
            f"1 dwelling is over {reach_m:g} m from the paths or on a path no main reaches: a "
            "straight line to the main",
            f"1 vivienda está a más de {reach_m:g} m de las veredas o en una vereda a la que "
            "no llega ninguna tubería: una línea recta a la tubería",
        )
    return Said(
        f"{n} dwellings are over {reach_m:g} m from the paths or on paths no main reaches: "
        "straight lines to the main",
        f"{n} viviendas están a más de {reach_m:g} m de las veredas o en veredas a las que no "
        "llega ninguna tubería: líneas rectas a la tubería",
    )
