"""Land recovery in a commune: where the recovered land is (by tenure, land use, year
recovered, per commune and per state), how tenure moved year by year, which abandoned or idle
parcels to recover next, and where the parcel map contradicts itself.

Areas are hectares on the WGS 84 spheroid (PostGIS geography). The breakdown, timeline,
candidates and conflicts are one SQL statement each (analysis/sql/land_recovery_*.sql);
Python adds the candidates' mean slope from the commune's DEM (terrain.py) and their score.
Features: candidates and conflicts, told apart by ``kind``. Formulas and defaults:
docs/analyses.md#land-recovery.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection
from pydantic import BaseModel, Field, model_validator

from geo_comuna import work
from geo_comuna.analysis import registry, terrain
from geo_comuna.analysis.base import Analysis, Result, sql_text
from geo_comuna.io import dems
from geo_comuna.layers.territory import TENURE


class Params(BaseModel):
    sliver_width_m: float = Field(
        1.0,
        ge=0.01,
        le=50,
        description="gaps between parcels narrower than this (m) are reported as slivers",
    )
    min_conflict_area_m2: float = Field(
        0.1,
        ge=0,
        le=10_000,
        description="overlaps, outside parts and slivers smaller than "
        "this (m²) are ignored as numerical noise",
    )
    max_slope_pct: float = Field(
        30.0,
        gt=0,
        le=500,
        description="mean slope (%) at which a candidate's slope term "
        "falls to 0 (flat ground scores 1)",
    )
    max_road_distance_m: float = Field(
        2000.0,
        gt=0,
        le=100_000,
        description="distance to the nearest road (m) at which a candidate's road term falls to 0",
    )
    weight_area: float = Field(1.0, ge=0, le=10, description="weight of the area term")
    weight_slope: float = Field(1.0, ge=0, le=10, description="weight of the slope term")
    weight_road: float = Field(1.0, ge=0, le=10, description="weight of the road term")
    max_candidates: int = Field(200, ge=1, le=10_000, description="candidates returned, best first")

    @model_validator(mode="after")
    def _some_weight(self) -> Params:
        if self.weight_area + self.weight_slope + self.weight_road <= 0:
            raise ValueError(
                "at least one of weight_area, weight_slope, weight_road must be above 0"
            )
        return self


def _ha(m2: float | None) -> float:
    return round((m2 or 0.0) / 10_000, 4)


# --- breakdown and timeline ----------------------------------------------------------------


def summarise_breakdown(rows: list[tuple]) -> dict[str, Any]:
    """Rows of land_recovery_breakdown.sql -> the commune's totals and lists by tenure, land
    use and year recovered, and the same per state."""

    def blank() -> dict[str, Any]:
        return {"by_tenure": [], "by_land_use": [], "by_year_recovered": []}

    commune: dict[str, Any] = {
        "parcels": 0,
        "area_ha": 0.0,
        "recovered_parcels": 0,
        "recovered_area_ha": 0.0,
        **blank(),
    }
    states: dict[str | None, dict[str, Any]] = {}
    for dimension, value, per_state, code, name, parcels, area, rec_parcels, rec_area in rows:
        target = commune
        if per_state:
            target = states.setdefault(code, {"state": code, "name": name, **blank()})
        figures = {
            "parcels": parcels,
            "area_ha": _ha(area),
            "recovered_parcels": rec_parcels,
            "recovered_area_ha": _ha(rec_area),
        }
        if dimension == "all":
            target.update(figures)
            continue
        key = {"year_recovered": "year"}.get(dimension, dimension)
        if dimension == "year_recovered" and value is not None:
            value = int(value)
        target[f"by_{dimension}"].append({key: value, "parcels": parcels, "area_ha": _ha(area)})
    return {
        **commune,
        "by_state": list(states.values()),
        "crosses_state_line": sum(1 for code in states if code is not None) > 1,
    }


def summarise_timeline(rows: list[tuple]) -> list[dict[str, Any]]:
    """Rows (year, status, transitions, area m²) -> one entry per year: transitions into each
    tenure status (0 when none) and the area (ha) that entered it."""
    years: dict[int, dict[str, Any]] = {}
    for year, status, transitions, area in rows:
        entry = years.setdefault(
            year,
            {
                "year": year,
                **{s: 0 for s in TENURE.values},
                "area_ha": {s: 0.0 for s in TENURE.values},
            },
        )
        entry[status] = transitions
        entry["area_ha"][status] = _ha(area)
    return list(years.values())


# --- candidates ----------------------------------------------------------------------------


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


async def _candidates(
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
        stats = await work.cpu(terrain.terrain_of, dem, geoms, params.max_slope_pct, warnings)
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
                "area_ha": _ha(area_m2),
                "mean_slope_pct": None if np.isnan(slope) else round(float(slope), 2),
                "road_distance_m": None if distance is None else round(distance, 1),
                "note": note,
            }
        )
    return candidates, [r[7] for r in rows], warnings


# --- the analysis --------------------------------------------------------------------------

#: every feature's properties, in this order (CSV columns)
COLUMNS = (
    "kind",
    "rank",
    "score",
    "parcel_ids",
    "codes",
    "tenure",
    "land_use",
    "area_m2",
    "area_ha",
    "mean_slope_pct",
    "road_distance_m",
    "area_term",
    "slope_term",
    "road_term",
    "note",
)


def csv_rows(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feature properties with the lists of parcels joined by spaces (one CSV cell each)."""
    return [
        {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in f["properties"].items()}
        for f in features
    ]


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    cur = await conn.execute(sql_text(__package__, "breakdown.sql"), {"commune": commune_id})
    summary = summarise_breakdown(await cur.fetchall())
    cur = await conn.execute(sql_text(__package__, "timeline.sql"), {"commune": commune_id})
    summary["timeline"] = summarise_timeline(await cur.fetchall())
    candidates, shapes, warnings = await _candidates(conn, commune_id, params)
    by_id = {c["parcel_ids"][0]: shape for c, shape in zip(candidates, shapes, strict=True)}
    ranked = rank_candidates(candidates, params)[: params.max_candidates]
    features = [
        {
            "type": "Feature",
            "geometry": by_id[c["parcel_ids"][0]],
            "properties": {k: c.get(k) for k in COLUMNS},
        }
        for c in ranked
    ]
    cur = await conn.execute(
        sql_text(__package__, "conflicts.sql"),
        {
            "commune": commune_id,
            "width": params.sliver_width_m,
            "min_m2": params.min_conflict_area_m2,
        },
    )
    counts = {"overlap": 0, "outside_commune": 0, "sliver": 0}
    for kind, ids, codes, area_m2, geometry in await cur.fetchall():
        counts[kind] += 1
        props = {
            "kind": kind,
            "parcel_ids": ids or [],
            "codes": codes or [],
            "area_m2": round(area_m2, 2),
            "area_ha": _ha(area_m2),
        }
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {k: props.get(k) for k in COLUMNS},
            }
        )
    if summary["parcels"] == 0:
        warnings.append("the commune has no parcels")
    summary["candidates"] = len(candidates)
    summary["conflicts"] = counts
    return Result(summary, features, rows=csv_rows(features), warnings=warnings)


registry.register(
    Analysis(
        name="land-recovery",
        title_es="Recuperación de tierras",
        title_en="Land recovery",
        params=Params,
        run=run,
        reads=("parcels", "communes", "states", "paths", "dems"),
    )
)
