"""Terrain per parcel from the commune's DEM: elevation (m) and slope statistics, each DEM cell
weighted by the exact share of its area inside the parcel (zonal.py, the weighting exactextract
uses), and Horn's slope.

Slope is Horn's 3x3 gradient on the DEM grid with the cell size in metres (a geographic-CRS DEM
has its cell measured on the CRS's ellipsoid at each row's latitude); elevations are taken as
metres. Slope is reported both in percent (100 * rise / run) and in degrees; the mean of each
is the coverage-weighted mean of the per-cell values. Parcels are reprojected to the DEM CRS
with pyproj. A parcel not wholly on valid DEM cells (partly outside the DEM, or on nodata)
gets null statistics and a note, never zeros. Formulas and defaults: docs/analyses.md#terrain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj
import rasterio.errors
import shapely
from psycopg import AsyncConnection
from pydantic import BaseModel, Field
from rasterio.crs import CRS

from geo_comuna import work
from geo_comuna.analysis import registry
from geo_comuna.analysis.base import Analysis, Result
from geo_comuna.analysis.toolkit.zonal import MAX_UNCOVERED, STATS, Grid, zonal
from geo_comuna.errors import InvalidInput, NotFound
from geo_comuna.io import dems


class Params(BaseModel):
    slope_threshold_pct: float = Field(
        30.0,
        gt=0,
        le=1000,
        description="slope (%, 100 * rise / run) above which ground counts as steep; "
        "steep_share_pct is the parcel's area share above it",
    )


# --- slope ---------------------------------------------------------------------------------


def gradient(grid: Grid, block_rows: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Horn's gradient (dz/dx east, dz/dy north; m/m) of every cell, NaN where z is NaN.

    Beyond the grid's edge the surface is extended linearly (a plane keeps its exact slope up
    to the edge); a nodata neighbour is extrapolated from the opposite one (2*centre -
    opposite), or taken as the centre when both are nodata."""
    z = grid.z
    height, width = z.shape
    cell_w, cell_h = grid.cell_metres()
    east, north = np.empty_like(z), np.empty_like(z)
    padded = _extend(z)
    for top in range(0, height, block_rows):
        n = min(top + block_rows, height) - top
        block = padded[top : top + n + 2]
        centre = block[1:-1, 1:-1]
        gaps = bool(np.isnan(block).any())

        def at(
            dr: int,
            dc: int,
            block: np.ndarray = block,
            centre: np.ndarray = centre,
            n: int = n,
            gaps: bool = gaps,
        ) -> np.ndarray:
            near = block[1 + dr : 1 + dr + n, 1 + dc : 1 + dc + width]
            if not gaps:
                return near
            far = block[1 - dr : 1 - dr + n, 1 - dc : 1 - dc + width]
            return np.where(np.isnan(near), np.where(np.isnan(far), centre, 2 * centre - far), near)

        a, b, c = at(-1, -1), at(-1, 0), at(-1, 1)
        d, f = at(0, -1), at(0, 1)
        g, h, i = at(1, -1), at(1, 0), at(1, 1)
        east[top : top + n] = ((c + 2 * f + i) - (a + 2 * d + g)) / 8 / cell_w[top : top + n, None]
        north[top : top + n] = ((g + 2 * h + i) - (a + 2 * b + c)) / 8 / cell_h[top : top + n, None]
    missing = np.isnan(z)
    east[missing] = north[missing] = np.nan
    return east, north


def _extend(z: np.ndarray) -> np.ndarray:
    """z with one more cell on every side, extrapolated linearly (2 * edge - next)."""
    if min(z.shape) < 2:
        return np.pad(z, 1, mode="edge")
    out = np.empty((z.shape[0] + 2, z.shape[1] + 2), dtype=z.dtype)
    out[1:-1, 1:-1] = z
    out[0, 1:-1], out[-1, 1:-1] = 2 * z[0] - z[1], 2 * z[-1] - z[-2]
    out[:, 0], out[:, -1] = 2 * out[:, 1] - out[:, 2], 2 * out[:, -2] - out[:, -3]
    return out


def slope_pct(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    return 100 * np.hypot(east, north)


# --- the analysis --------------------------------------------------------------------------


def to_crs(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """lon/lat geometries in ``crs`` (pyproj, always x/y order)."""
    transformer = pyproj.Transformer.from_crs(4326, crs.to_wkt(), always_xy=True)
    return shapely.transform(
        geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def terrain_of(
    dem: dems.Dem, geoms_lonlat: np.ndarray, threshold_pct: float, warnings: list[str]
) -> dict[str, np.ndarray]:
    """STATS for lon/lat polygons on a DEM (blocking: run it with work.cpu); says in
    ``warnings`` when the DEM window had to be read at coarser cells."""
    with dems.opened(dem) as src:
        crs = src.crs
    geoms = to_crs(geoms_lonlat, crs)
    bounds = tuple(shapely.total_bounds(geoms)) if len(geoms) else None
    try:
        grid = dems.read_window(dem, bounds)
    except rasterio.errors.WindowError:  # no overlap at all
        return {
            name: np.full(len(geoms), np.nan if name != "uncovered_pct" else 100.0)
            for name in STATS
        }
    warnings.extend(dems.coarsened_warning(dem, grid))
    east, north = gradient(grid)
    return zonal(grid, slope_pct(east, north), geoms, threshold_pct)


async def dem_for(conn: AsyncConnection, commune_id: int) -> dems.Dem:
    """The commune's DEM, or NotFound naming the two ways to add one."""
    dem = await dems.for_commune(conn, commune_id)
    if dem is None:
        code = (
            await (
                await conn.execute("SELECT code FROM communes WHERE id = %s", (commune_id,))
            ).fetchone()
            or [commune_id]
        )[0]
        raise NotFound(
            f"commune {code} has no DEM; add one with `geo-comuna dem add {code} "
            f"FILE.tif` or POST /communes/{code}/dems"
        )
    return dem


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
        raise InvalidInput(
            f"DEM {dem.name!r} does not cover commune {commune_id}: its "
            f"footprint {[round(b, 5) for b in dem.footprint.bounds]} (lon/lat) "
            "misses the commune; add a DEM of the commune"
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
        warnings.append(f"the DEM covers only {100 * covered:.1f} % of the commune")
    if not parcels:
        warnings.append("the commune has no parcels")
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
        warnings.append(f"{without} parcel(s) not wholly on the DEM have null statistics")
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


registry.register(
    Analysis(
        name="terrain",
        title_es="Relieve por parcela",
        title_en="Terrain per parcel",
        params=Params,
        run=run,
        reads=("parcels", "communes", "dems"),
    )
)
