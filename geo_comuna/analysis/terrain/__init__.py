"""Terrain per parcel from the commune's DEM: elevation (m) and slope statistics, each DEM cell
weighted by the exact share of its area inside the parcel (toolkit/zonal.py, the weighting
exactextract uses), and Horn's slope (toolkit/slope.py).

Slope is reported both in percent (100 * rise / run) and in degrees; the mean of each is the
coverage-weighted mean of the per-cell values. A parcel not wholly on valid DEM cells (partly
outside the DEM, or on nodata) gets null statistics and a note, never zeros. Formulas and
defaults: docs/analyses.md#terrain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import Analysis, Result, commune_code
from geo_comuna.analysis.terrain.params import Params
from geo_comuna.analysis.toolkit.dem import dem_for
from geo_comuna.analysis.toolkit.slope import terrain_of
from geo_comuna.analysis.toolkit.zonal import MAX_UNCOVERED, STATS
from geo_comuna.errors import InvalidInput, Said

__all__ = ["ANALYSIS", "Params", "run"]


def _clean(value: float, digits: int) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    dem = await dem_for(conn, commune_id)
    cur = await conn.execute(
        "SELECT ST_AsBinary(c.geom), ST_Area(ST_Intersection(c.geom, d.footprint)::geography)"
        " / nullif(ST_Area(c.geom::geography), 0) FROM communes c, dems d "
        "WHERE c.id = %s AND d.id = %s",
        (commune_id, dem.id),
    )
    commune_wkb, covered = await cur.fetchone()
    if not covered:
        code = await commune_code(conn, commune_id)
        bounds = [round(b, 5) for b in dem.footprint.bounds]
        raise InvalidInput(
            Said(
                f"DEM {dem.name!r} does not cover commune {code}: its footprint {bounds} "
                "(lon/lat) misses the commune; add a DEM of the commune",
                f"el MDE {dem.name!r} no cubre la comuna {code}: su huella {bounds} (lon/lat) "
                "no alcanza la comuna; agregue un MDE de la comuna",
            )
        )
    cur = await conn.execute(
        "SELECT id, code, land_use, ST_Area(geom::geography) / 10000, ST_AsBinary(geom), "
        "ST_AsGeoJSON(geom, 7)::json FROM parcels WHERE commune_id = %s ORDER BY id",
        (commune_id,),
    )
    parcels = await cur.fetchall()
    geoms = shapely.from_wkb([commune_wkb] + [p[4] for p in parcels])
    warnings: list[str] = []
    stats = await work.cpu(terrain_of, dem, geoms, params.slope_threshold_pct, warnings)
    if covered < 1 - 1e-6:
        share = f"{100 * covered:.1f}"
        warnings.append(
            Said(
                f"the DEM covers only {share} % of the commune",
                f"el modelo de elevación cubre solo el {share.replace('.', ',')} % de la comuna",
            )
        )
    if not parcels:
        warnings.append(Said("the commune has no parcels", "la comuna no tiene parcelas"))
    features = []
    for k, (pid, code, land_use, area_ha, _, geometry) in enumerate(parcels, start=1):
        props: dict[str, Any] = {
            "parcel_id": pid,
            "code": code,
            "land_use": land_use,
            "area_ha": round(area_ha, 4),
        }
        props.update({name: _clean(stats[name][k], 2) for name in STATS[:-1]})
        uncovered = stats["uncovered_pct"][k]
        props["note"] = (
            None
            if not uncovered > 100 * MAX_UNCOVERED
            else (
                f"{uncovered:.1f} % of the parcel lies outside the DEM or on nodata cells: "
                "no statistics"
            )
        )
        features.append({"type": "Feature", "id": pid, "geometry": geometry, "properties": props})
    without = sum(1 for f in features if f["properties"]["note"])
    if without:
        warnings.append(
            Said(
                f"{without} parcel(s) not wholly on the DEM have null statistics",
                f"{without} parcela(s) que no están enteras sobre el modelo de elevación "
                "quedan sin estadísticas",
            )
        )
    summary = {
        "dem": {
            "id": dem.id,
            "name": dem.name,
            "crs": dem.crs,
            "resolution_m": round(dem.resolution_m, 3),
        },
        "parcels": len(parcels),
        "parcels_with_statistics": len(parcels) - without,
        "commune": {name: _clean(stats[name][0], 2) for name in STATS},
    }
    return Result(summary, features, warnings=warnings)


#: this analysis' entry in analysis/registry.py
ANALYSIS = Analysis(
    name="terrain",
    title_es="Relieve por parcela",
    title_en="Terrain per parcel",
    params=Params,
    run=run,
    reads=("parcels", "communes", "dems"),
    grows_with="parcels",
)
