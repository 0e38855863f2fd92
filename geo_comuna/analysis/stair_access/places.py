"""Where the walks run, start and end, read from PostGIS: the commune's paths, its transit
stops and dwellings attached to them, and their DEM elevations. A commune with no paths, or
with nowhere to walk to, is refused here.

Connectors are metres; elevations metres from the commune's DEM (NaN: walked as flat).
"""

from __future__ import annotations

import numpy as np
from psycopg import AsyncConnection

from geo_comuna.analysis.base import commune_code
from geo_comuna.analysis.stair_access.params import Params
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.network import Attachment, Dwellings, Network
from geo_comuna.errors import NotFound, Said


async def walkable_paths(conn: AsyncConnection, commune_id: int) -> Network:
    """The commune's roads, footpaths and stairways; NotFound when it has none."""
    srid = await network.utm_srid(conn, commune_id)
    net = await network.load(conn, commune_id, srid)
    if not net.n_edges:
        code = await commune_code(conn, commune_id)
        raise NotFound(
            Said(
                f"commune {code} has no paths mapped: stair access walks the roads, "
                "footpaths and stairways of layer paths",
                f"la comuna {code} no tiene caminos trazados: el acceso por escaleras recorre "
                "las vías, caminos y escaleras de la capa paths",
            ),
            layer="paths",
        )
    return net


async def transit_stop_points(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The commune's transit stops as (ids, lon, lat), sorted by id (none unless
    ``params.transit_stops``)."""
    rows: list[tuple] = []
    if params.transit_stops:
        cur = await conn.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM facilities "
            "WHERE commune_id = %s AND kind = 'transit_stop' ORDER BY id",
            (commune_id,),
        )
        rows = await cur.fetchall()
    return (
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], float),
        np.array([r[2] for r in rows], float),
    )


async def attached(
    conn: AsyncConnection,
    net: Network,
    dw: Dwellings,
    stops: tuple[np.ndarray, ...],
    commune_id: int,
    params: Params,
) -> tuple[Attachment, Attachment]:
    """The dwellings and the transit stops on the paths (one search for both); NotFound when
    there is neither a stop nor a road with vehicle access to walk to."""
    homes, at_stops = await network.attach_points(
        net, [(dw.ids, dw.lon, dw.lat), stops], params.max_connector_m
    )
    if not net.vehicles.any() and not at_stops.attached.any():
        code = await commune_code(conn, commune_id)
        raise NotFound(
            Said(
                f"commune {code} has no road with vehicle access and no transit stop on its "
                "paths: there is nowhere to walk to",
                f"la comuna {code} no tiene ninguna vía con acceso vehicular ni parada de "
                "transporte en sus caminos: no hay adónde caminar",
            ),
            layer="paths",
        )
    return homes, at_stops


async def elevations(
    conn: AsyncConnection,
    commune_id: int,
    net: Network,
    dw: Dwellings,
    homes: Attachment,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DEM elevation (m) of every node, dwelling and dwelling's attachment point; NaN (walked
    as flat) where unknown."""
    dem, (z_node, z_home, z_att) = await network.elevations_at(
        conn,
        commune_id,
        (net.node_lon, net.node_lat),
        (dw.lon, dw.lat),
        (np.nan_to_num(homes.lon), np.nan_to_num(homes.lat)),
        warnings=warnings,
    )
    missing = int(np.isnan(z_node).sum())
    if dem is None:
        warnings.append(
            Said(
                "this commune has no DEM: every path is walked as flat and a "
                "stairway's steps all count as climbed (register a GeoTIFF DEM)",
                "esta comuna no tiene modelo de elevación: cada vereda se camina como plana y "
                "todos los escalones de una escalera cuentan como subidos (registre un DEM "
                "GeoTIFF)",
            )
        )
    elif missing == net.n_nodes:
        warnings.append(
            Said(
                f"the DEM '{dem.name}' does not cover this commune's paths: every "
                "path is walked as flat and stairway steps all count as climbed",
                f"el modelo de elevación '{dem.name}' no cubre las veredas de esta comuna: "
                "cada vereda se camina como plana y todos los escalones cuentan como subidos",
            )
        )
    elif missing:
        warnings.append(
            Said(
                f"{missing} of {net.n_nodes} path nodes lie outside the DEM "
                f"'{dem.name}': segments touching them are walked as flat",
                f"{missing} de {net.n_nodes} nodos de las veredas quedan fuera del modelo de "
                f"elevación '{dem.name}': los tramos que los tocan se caminan como planos",
            )
        )
    return z_node, z_home, z_att
