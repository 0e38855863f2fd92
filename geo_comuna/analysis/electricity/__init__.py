"""Electricity gaps: homes with precarious or no electricity, how far each is from a power line
in good condition, and where a transformer would serve each cluster of them.

Distances are geodesic metres (WGS 84). Clusters are PostGIS DBSCAN in metres in the commune's
UTM zone, each cut by k-means into parts of about ``dwellings_per_site``. A cluster's suggested
transformer site is the residents-weighted geometric median of its dwellings: the point that
minimises the residents-weighted sum of straight distances to them.
docs/analyses.md ("Electricity gaps") gives every formula.

params.py holds the parameters; sql/dwellings.sql finds, measures and clusters the dwellings,
sql/sites.sql places one site per cluster; this module shapes the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncConnection

from geo_comuna.analysis.base import Analysis, FeaturesOf, Result, sql_text
from geo_comuna.analysis.electricity.params import Params
from geo_comuna.analysis.toolkit import network
from geo_comuna.layers import LAYERS

__all__ = ["ANALYSIS", "Params", "run", "sites"]


def _num(value: float | None, digits: int = 1) -> float | None:
    """Rounded, with None for unknown (None or NaN: JSON has no NaN)."""
    return None if value is None or np.isnan(value) else round(float(value), digits)


async def sites(
    conn: AsyncConnection, commune_id: int, srid: int, ids: list[int], clusters: list[int]
) -> list[tuple]:
    """One suggested transformer site per cluster, most residents first."""
    if not ids:
        return []
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "sites.sql"),
        {"commune": commune_id, "srid": srid, "ids": ids, "clusters": clusters},
    )
    return await cur.fetchall()


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """Dwellings with precarious or no electricity: distance to a good line, clusters and a
    transformer site per cluster. Features: sites, then dwellings; CSV rows: the sites."""
    warnings: list[str] = []
    srid = await network.utm_srid(conn, commune_id)
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "dwellings.sql"),
        {
            "commune": commune_id,
            "srid": srid,
            "radius": params.cluster_radius_m,
            "min_size": params.min_cluster_size,
            "max_size": params.dwellings_per_site,
        },
    )
    dwellings = await cur.fetchall()
    if not dwellings:
        cur = await conn.execute(
            "SELECT count(*) FROM dwellings WHERE commune_id = %s", (commune_id,)
        )
        warnings.append(
            "every mapped dwelling of this commune has formal electricity"
            if (await cur.fetchone())[0]
            else "this commune has no dwellings mapped"
        )
        return Result(
            summary={"dwellings": 0, "residents": 0, "clusters": 0},
            features=[],
            rows=[],
            warnings=warnings,
        )
    ids, residents, kind, sector, dbscan, line_m, geometry = zip(*dwellings, strict=True)
    line = np.array(line_m, float)
    if np.isnan(line).all():
        warnings.append(
            "this commune has no power line in good condition mapped: distances to a line are null"
        )
    clustered = [(i, c) for i, c in zip(ids, dbscan, strict=True) if c is not None]
    found = await sites(
        conn, commune_id, srid, [i for i, _ in clustered], [c for _, c in clustered]
    )
    number = {row[0]: n for n, row in enumerate(found, start=1)}  # by residents served

    features: list[dict[str, Any]] = []
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
        features.append(
            {"type": "Feature", "id": f"site-{n}", "geometry": site, "properties": props}
        )
        rows.append({k: v for k, v in props.items() if k != "kind"})
    features += [
        {
            "type": "Feature",
            "id": i,
            "geometry": g,
            "properties": {
                "kind": "dwelling",
                "residents": r,
                "electricity": e,
                "sector": s,
                "cluster": None if c is None else number[c],
                "line_distance_m": _num(d),
            },
        }
        for i, r, e, s, c, d, g in zip(
            ids, residents, kind, sector, dbscan, line.tolist(), geometry, strict=True
        )
    ]

    people = np.array(residents, float)
    in_cluster = np.array([c is not None for c in dbscan])
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
        "csv_rows": "transformer sites, most residents first",
    }
    return Result(summary=summary, features=features, rows=rows, warnings=warnings)


def _by_sector(
    sector: tuple[str | None, ...], people: np.ndarray, line: np.ndarray
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
)
