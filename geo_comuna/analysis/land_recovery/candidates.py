"""Recovery candidates: abandoned or idle parcels read by candidates.sql, their mean slope on the
commune's DEM (toolkit/slope.py) and their score."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.land_recovery.params import Params
from geo_comuna.analysis.land_recovery.summary import ha
from geo_comuna.analysis.toolkit.slope import terrain_of
from geo_comuna.io import dems


def rank_candidates(candidates: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Score and order candidates, best first (ties by parcel id). Each candidate has
    ``area_ha``, ``mean_slope_pct`` (None: unknown) and ``road_distance_m`` (None: unknown).

    Terms, each 0..1: area = area_ha / the largest candidate's area_ha; slope = 1 -
    min(mean_slope_pct / max_slope_pct, 1); road = 1 - min(road_distance_m /
    max_road_distance_m, 1). Score = 100 * sum(weight * term) / sum(weight) over the terms
    known for the candidate (an unknown term leaves the weighted mean, it does not count 0)."""
    largest = max((c["area_ha"] for c in candidates), default=0.0)
    for c in candidates:
        terms = {"area": (params.weight_area, c["area_ha"] / largest if largest > 0 else 0.0)}
        if c["mean_slope_pct"] is not None:
            terms["slope"] = (
                params.weight_slope,
                1 - min(c["mean_slope_pct"] / params.max_slope_pct, 1.0),
            )
        if c["road_distance_m"] is not None:
            terms["road"] = (
                params.weight_road,
                1 - min(c["road_distance_m"] / params.max_road_distance_m, 1.0),
            )
        weight = sum(w for w, _ in terms.values())
        c["score"] = (
            round(100 * sum(w * t for w, t in terms.values()) / weight, 2) if weight > 0 else 0.0
        )
        for name in ("area", "slope", "road"):
            c[f"{name}_term"] = round(terms[name][1], 4) if name in terms else None
    ranked = sorted(candidates, key=lambda c: (-c["score"], c["parcel_ids"][0]))
    for rank, c in enumerate(ranked, start=1):
        c["rank"] = rank
    return ranked


async def read_candidates(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[list[dict[str, Any]], list[dict], list[str]]:
    """(candidate properties, their geometries, warnings)."""
    cur = await conn.execute(sql_text(__package__, "candidates.sql"), {"commune": commune_id})
    rows = await cur.fetchall()
    warnings: list[str] = []
    slopes = np.full(len(rows), np.nan)
    dem = await dems.for_commune(conn, commune_id)
    if rows and dem is None:
        warnings.append(
            "the commune has no DEM: candidates are scored without slope "
            "(add one with `geo-comuna dem add`)"
        )
    elif rows:
        geoms = shapely.from_wkb([r[6] for r in rows])
        stats = await work.cpu(terrain_of, dem, geoms, params.max_slope_pct, warnings)
        slopes = stats["mean_slope_pct"]
    if rows and all(r[5] is None for r in rows):
        warnings.append(
            "there are no roads (paths of kind 'road'): candidates are scored without road distance"
        )
    candidates = []
    for (pid, code, tenure, land_use, area_m2, distance, _, _), slope in zip(
        rows, slopes, strict=True
    ):
        note = None
        if dem is not None and np.isnan(slope):
            note = "not wholly on the DEM: scored without slope"
        candidates.append(
            {
                "kind": "candidate",
                "parcel_ids": [pid],
                "codes": [code],
                "tenure": tenure,
                "land_use": land_use,
                "area_m2": round(area_m2, 2),
                "area_ha": ha(area_m2),
                "mean_slope_pct": None if np.isnan(slope) else round(float(slope), 2),
                "road_distance_m": None if distance is None else round(distance, 1),
                "note": note,
            }
        )
    return candidates, [r[7] for r in rows], warnings
