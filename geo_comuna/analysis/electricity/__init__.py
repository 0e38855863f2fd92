"""Electricity gaps: homes with precarious or no electricity, how far each is from a power line
in good condition, and where a transformer would serve each cluster of them.

Distances are geodesic metres (WGS 84). Clusters are PostGIS' DBSCAN in metres in the
commune's UTM zone, each cut by k-means into parts of about ``dwellings_per_site``. A part's
suggested transformer site is the residents-weighted geometric median of its dwellings: the
point that minimises the residents-weighted sum of straight distances to them. DBSCAN, k-means
and the medians are PostGIS' own algorithms step for step, in numpy (parts.py, median.py),
with the same answers. docs/analyses.md ("Electricity gaps") gives every formula.

params.py holds the parameters; sql/dwellings.sql reads the dwellings and
sql/line_distances.sql measures them to the lines; parts.py clusters and cuts them; sites.py
places a site per part and sql/sites.sql measures the sites; this module shapes the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import Analysis, FeaturesOf, Result, sql_text
from geo_comuna.analysis.electricity import parts, sites
from geo_comuna.analysis.electricity.params import Params
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.features import PointFeatures
from geo_comuna.errors import Said
from geo_comuna.layers import LAYERS

__all__ = ["ANALYSIS", "Params", "run"]


def _num(value: float | None, digits: int = 1) -> float | None:
    """Rounded, with None for unknown (None or NaN: JSON has no NaN)."""
    return None if value is None or np.isnan(value) else round(float(value), digits)


def _grouped(
    dbscan: np.ndarray, x: np.ndarray, y: np.ndarray, residents: list[int], params: Params
) -> tuple:
    """Each dwelling's cluster key (-1: isolated; DBSCAN cluster * 1,000,000 + k-means part)
    and the parts' sites (sites.Sites), from their DBSCAN clusters and UTM x/y in id order."""
    key = parts.clusters(dbscan, x, y, params.dwellings_per_site)
    return key, sites.place(key, x, y, np.array(residents, np.int64))


async def _clusters(
    conn: AsyncConnection,
    commune_id: int,
    srid: int,
    ids: list[int],
    x: np.ndarray,
    y: np.ndarray,
    params: Params,
) -> np.ndarray:
    """Each dwelling's DBSCAN cluster (-1: isolated), numbered by first dwelling: in numpy, or
    by PostGIS when the radius takes in too many pairs of dwellings to hold at once (a
    dwelling written in between is isolated)."""
    eps, min_points = params.cluster_radius_m, params.min_cluster_size
    found = await work.cpu(parts.dbscan, x, y, eps, min_points)
    if found is not None:
        return found
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "dbscan.sql"),
        {"commune": commune_id, "srid": srid, "radius": eps, "min_size": min_points},
    )
    read, clusters = await cur.fetchone()
    by_id = dict(zip(read, clusters, strict=True))
    labels = [by_id.get(i) for i in ids]
    return parts.by_first_point(np.array([-1 if c is None else c for c in labels], np.int64))


async def line_distances(
    conn: AsyncConnection, commune_id: int, ids: list[int] | None = None
) -> tuple[list[int], list[float | None]]:
    """Each gap dwelling's (or only those of ``ids``) distance to the nearest good power line
    (m; None without one), by id."""
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "line_distances.sql"), {"commune": commune_id, "ids": ids}
    )
    found, metres = await cur.fetchone()
    return found, metres


async def _distances_of(
    conn: AsyncConnection, commune_id: int, ids: list[int], read: tuple[list, list]
) -> list[float | None]:
    """The distances ``read`` (by id) for ``ids``. Read beside the dwellings on another
    connection, they may miss a dwelling written in between: those are read again here."""
    found, metres = read
    if found == ids:
        return metres
    by_id = dict(zip(found, metres, strict=True))
    missing = [i for i in ids if i not in by_id]
    if missing:
        by_id.update(zip(*await line_distances(conn, commune_id, missing), strict=True))
    return [by_id.get(i) for i in ids]


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """Dwellings with precarious or no electricity: distance to a good line, clusters and a
    transformer site per cluster. Features: sites, then dwellings; CSV rows: the sites.

    With a second connection (work.spare_connection) the distances to the lines are measured
    while the dwellings are clustered, cut and given their sites: each on its own CPU. (Not
    while they are read: that query would have to share its CPU.)"""
    srid = await network.utm_srid(conn, commune_id)
    cur = conn.cursor(binary=True)
    await cur.execute(sql_text(__package__, "dwellings.sql"), {"commune": commune_id, "srid": srid})
    columns = await cur.fetchone()
    order = network.by_id(np.array(columns[0], np.int64))
    homes = [
        c if isinstance(order, slice) else np.array(c, object)[order].tolist() for c in columns
    ]
    if not homes[0]:
        return await _nothing(conn, commune_id)
    async with work.spare_connection() as other:
        if other is None:
            return await _answer(conn, None, commune_id, srid, homes, params)
        async with work.beside(line_distances(other, commune_id)) as distances:
            return await _answer(conn, distances, commune_id, srid, homes, params)


async def _nothing(conn: AsyncConnection, commune_id: int) -> Result:
    """The empty answer, saying why: no dwellings, or all with formal electricity."""
    cur = await conn.execute("SELECT count(*) FROM dwellings WHERE commune_id = %s", (commune_id,))
    return Result(
        summary={"dwellings": 0, "residents": 0, "clusters": 0},
        features=[],
        rows=[],
        warnings=[
            Said(
                "every mapped dwelling of this commune has formal electricity",
                "toda vivienda mapeada de esta comuna tiene conexión eléctrica formal",
            )
            if (await cur.fetchone())[0]
            else Said(
                "this commune has no dwellings mapped", "esta comuna no tiene viviendas mapeadas"
            )
        ],
    )


async def _measured(
    conn: AsyncConnection,
    commune_id: int,
    srid: int,
    placed: sites.Sites,
    homes: tuple[list[float], list[float], list[int]],
) -> list[tuple]:
    """The sites as rows (cluster key, dwellings, residents, reach_m, line_distance_m,
    nearest_dwelling, GeoJSON), most residents first, then most dwellings, then by key."""
    if not len(placed.key):
        return []
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "sites.sql"),
        {"commune": commune_id, "srid": srid, "x": placed.x.tolist(), "y": placed.y.tolist()},
    )
    lon, lat, geometry, to_line = zip(*await cur.fetchall(), strict=True)
    reach, nearest = await work.cpu(
        sites.reach_and_nearest,
        placed,
        *(np.array(v) for v in homes),
        (np.array(lon, float), np.array(lat, float)),
    )
    rows = zip(
        placed.key.tolist(),
        placed.dwellings.tolist(),
        placed.residents.tolist(),
        reach.tolist(),
        to_line,
        nearest.tolist(),
        geometry,
        strict=True,
    )
    return sorted(rows, key=lambda row: (-row[2], -row[1], row[0]))


async def _answer(
    conn: AsyncConnection,
    distances: asyncio.Future | None,
    commune_id: int,
    srid: int,
    homes: list[list],
    params: Params,
) -> Result:
    ids, residents, kind, sector, lon, lat, x, y = homes
    warnings: list[str] = []
    x, y = np.array(x, float), np.array(y, float)
    dbscan = await _clusters(conn, commune_id, srid, ids, x, y, params)
    cluster, placed = await work.cpu(_grouped, dbscan, x, y, residents, params)
    line_m = await _distances_of(
        conn,
        commune_id,
        ids,
        await distances if distances is not None else await line_distances(conn, commune_id),
    )
    line = np.array([np.nan if d is None else d for d in line_m], float)
    if np.isnan(line).all():
        warnings.append(
            Said(
                "this commune has no power line in good condition mapped: distances to a line "
                "are null",
                "esta comuna no tiene líneas eléctricas en buen estado mapeadas: las distancias "
                "a una línea quedan vacías",
            )
        )
    found = await _measured(conn, commune_id, srid, placed, (lon, lat, ids))
    number = {row[0]: n for n, row in enumerate(found, start=1)}  # by residents served

    before: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for n, (_, homes, people, reach, to_line, nearest, site) in enumerate(found, start=1):
        props = {
            "kind": "transformer_site",
            "cluster": n,
            "dwellings": int(homes),
            "residents": int(people),
            "reach_m": _num(reach),
            "line_distance_m": _num(to_line),
            "nearest_dwelling": nearest,
        }
        before.append({"type": "Feature", "id": f"site-{n}", "geometry": site, "properties": props})
        rows.append({k: v for k, v in props.items() if k != "kind"})
    features = PointFeatures(
        ids,
        np.array(lon, float),
        np.array(lat, float),
        {
            "kind": ["dwelling"] * len(ids),
            "residents": residents,
            "electricity": kind,
            "sector": sector,
            "cluster": [number[c] if c >= 0 else None for c in cluster.tolist()],
            "line_distance_m": [None if d != d else round(d, 1) for d in line.tolist()],
        },
        before=before,
    )

    people = np.array(residents, float)
    in_cluster = cluster >= 0
    known = ~np.isnan(line)
    summary = {
        "dwellings": len(ids),
        "residents": int(people.sum()),
        "precarious": int((np.array(kind) == "precarious").sum()),
        "none": int((np.array(kind) == "none").sum()),
        "clusters": len(found),
        "clustered_dwellings": int(in_cluster.sum()),
        "clustered_residents": int(people[in_cluster].sum()),
        "isolated_dwellings": int((~in_cluster).sum()),
        "line_distance_m": None
        if not known.any()
        else {"median": _num(np.median(line[known])), "max": _num(line[known].max())},
        "by_sector": _by_sector(sector, people, line),
        "csv_rows": Said(
            "transformer sites, most residents first",
            "sitios de transformador, más habitantes primero",
        ),
    }
    return Result(summary=summary, features=features, rows=rows, warnings=warnings)


def _by_sector(
    sector: list[str | None], people: np.ndarray, line: np.ndarray
) -> list[dict[str, Any]]:
    names = np.array([s or "" for s in sector])
    out = []
    for name in sorted(set(names.tolist())):
        mine = names == name
        known = mine & ~np.isnan(line)
        out.append(
            {
                "sector": name or None,
                "dwellings": int(mine.sum()),
                "residents": int(people[mine].sum()),
                "median_line_distance_m": _num(np.median(line[known])) if known.any() else None,
            }
        )
    return out


#: this analysis' entry in analysis/registry.py
ANALYSIS = Analysis(
    name="electricity-gaps",
    title_es="Brechas eléctricas",
    title_en="Electricity gaps",
    params=Params,
    run=run,
    reads=("dwellings", "power_lines", "communes"),
    features_of=FeaturesOf(
        LAYERS["dwellings"], groups=("transformer_site",), pointers=("nearest_dwelling",)
    ),
    grows_with="dwellings",
)
