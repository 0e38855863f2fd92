"""Terrain per parcel from the commune's DEM: elevation (m) and slope statistics, each DEM cell
weighted by the exact fraction of its area inside the parcel (the weighting exactextract uses).

Slope is Horn's 3x3 gradient on the DEM grid with the cell size in metres (a geographic-CRS DEM
has its cell converted to metres at each row's latitude on the CRS's ellipsoid); elevations are
taken as metres. Slope is reported both in percent (100 * rise / run) and in degrees; the mean
of each is the coverage-weighted mean of the per-cell values. Parcels are reprojected to the DEM
CRS with pyproj. A parcel not wholly on valid DEM cells (partly outside the DEM, or on nodata)
gets null statistics and a note, never zeros. Formulas and defaults: docs/analyses.md#terrain.

The zonal kernel is ours (numpy); bench/bench_terrain.py measures it against exactextract and
rasterstats on 20,000 parcels x 16 M cells.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import rasterio.errors
import rasterio.windows
import shapely
from affine import Affine
from psycopg import AsyncConnection
from pydantic import BaseModel, Field
from rasterio.crs import CRS

from geo_comuna.analysis import dem as dems
from geo_comuna.analysis import registry
from geo_comuna.analysis.base import Analysis, Result
from geo_comuna.errors import InvalidInput, NotFound

#: window cells handled at once by the zonal kernel (bounds memory to a few hundred MB)
BATCH_CELLS = 4_000_000
#: a parcel whose area off valid DEM cells exceeds this share gets no statistics
MAX_UNCOVERED = 1e-6


class Params(BaseModel):
    slope_threshold_pct: float = Field(
        30.0, gt=0, le=1000,
        description="slope (%, 100 * rise / run) above which ground counts as steep; "
                    "steep_share_pct is the parcel's area share above it")


# --- the grid ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """A north-up DEM window: elevations (m, NaN off data), its transform and CRS."""

    z: np.ndarray
    transform: Affine
    crs: CRS

    def cell_metres(self) -> tuple[np.ndarray, np.ndarray]:
        """Signed cell width and height in metres for every row (x step per column, y step
        per row; height is negative on a north-up grid)."""
        t, rows = self.transform, self.z.shape[0]
        if not self.crs.is_geographic:
            unit = self.crs.linear_units_factor[1]
            return np.full(rows, t.a * unit), np.full(rows, t.e * unit)
        geod = pyproj.CRS(self.crs.to_wkt()).get_geod()
        lat = t.f + t.e * (np.arange(rows) + 0.5)
        lon = np.full(rows, t.c)
        width = geod.inv(lon, lat, lon + abs(t.a), lat)[2]
        height = geod.inv(lon, lat - abs(t.e) / 2, lon, lat + abs(t.e) / 2)[2]
        return np.sign(t.a) * width, np.sign(t.e) * height

    def cell_area_m2(self) -> np.ndarray:
        """Area of one cell (m^2) per row."""
        width, height = self.cell_metres()
        return np.abs(width * height)


def gradient(grid: Grid, block_rows: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Horn's gradient (dz/dx east, dz/dy north; m/m) of every cell, NaN where z is NaN.

    A neighbour that is missing (off the grid or nodata) is extrapolated linearly from the
    opposite one (2*centre - opposite), or taken as the centre when both are missing: a plane
    keeps its exact slope up to the edge of the data."""
    z = grid.z
    height, width = z.shape
    cell_w, cell_h = grid.cell_metres()
    east, north = np.empty_like(z), np.empty_like(z)
    padded = np.pad(z, 1, constant_values=np.nan)
    for top in range(0, height, block_rows):
        bottom = min(top + block_rows, height)
        block = padded[top:bottom + 2]
        centre = block[1:-1, 1:-1]

        def at(dr: int, dc: int, block: np.ndarray = block, centre: np.ndarray = centre,
               n: int = bottom - top) -> np.ndarray:
            near = block[1 + dr:1 + dr + n, 1 + dc:1 + dc + width]
            far = block[1 - dr:1 - dr + n, 1 - dc:1 - dc + width]
            return np.where(np.isnan(near), np.where(np.isnan(far), centre, 2 * centre - far),
                            near)

        a, b, c = at(-1, -1), at(-1, 0), at(-1, 1)
        d, f = at(0, -1), at(0, 1)
        g, h, i = at(1, -1), at(1, 0), at(1, 1)
        per_col = ((c + 2 * f + i) - (a + 2 * d + g)) / 8
        per_row = ((g + 2 * h + i) - (a + 2 * b + c)) / 8
        east[top:bottom] = per_col / cell_w[top:bottom, None]
        north[top:bottom] = per_row / cell_h[top:bottom, None]
    return east, north


def slope_pct(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    return 100 * np.hypot(east, north)


# --- exact cell coverage -------------------------------------------------------------------

@dataclass(frozen=True)
class Coverage:
    """Every polygon's bounding window of cells (column-major, one spare row at the bottom),
    flattened: cells of polygon k are ``start[k]:start[k + 1]``."""

    start: np.ndarray
    row: np.ndarray
    col: np.ndarray
    frac: np.ndarray  # share of the cell's area inside the polygon, 0..1


def coverage(geoms: np.ndarray, transform: Affine) -> Coverage:
    """Exact share of every cell inside each (multi)polygon, in the grid's own coordinates.

    In grid units (u = column, v = row) the area of a polygon inside cell (r, c) is the sum,
    over its edges, of the signed integral of the part of the cell beyond the edge:
    ``du * (r + 1 - v_mid)`` for the edge piece inside the cell and ``du`` for every cell
    further down the column (a running sum). Edges are cut at every grid line first, so each
    piece lies in one cell; holes count negatively whatever their ring orientation."""
    n = len(geoms)
    (xmin, ymin, xmax, ymax) = shapely.bounds(geoms).T
    u_lo, u_hi = np.sort(np.stack([(xmin - transform.c) / transform.a,
                                   (xmax - transform.c) / transform.a]), axis=0)
    v_lo, v_hi = np.sort(np.stack([(ymin - transform.f) / transform.e,
                                   (ymax - transform.f) / transform.e]), axis=0)
    empty = shapely.is_empty(geoms) | np.isnan(u_lo)
    c0 = np.where(empty, 0, np.floor(u_lo)).astype(np.int64)
    r0 = np.where(empty, 0, np.floor(v_lo)).astype(np.int64)
    cols = np.where(empty, 0, np.maximum(np.ceil(u_hi) - c0, 1)).astype(np.int64)
    rows = np.where(empty, 0, np.maximum(np.ceil(v_hi) - r0, 1) + 1).astype(np.int64)
    size = cols * rows
    start = np.concatenate([[0], np.cumsum(size)])
    total = int(start[-1])

    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    shell = np.concatenate([[True], ring_part[1:] != ring_part[:-1]])
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    u = (xy[:, 0] - transform.c) / transform.a
    v = (xy[:, 1] - transform.f) / transform.e
    link = ring_of[1:] == ring_of[:-1]
    u0, v0, u1, v1 = u[:-1][link], v[:-1][link], u[1:][link], v[1:][link]
    edge_ring = ring_of[:-1][link]
    twice_area = np.bincount(edge_ring, u0 * v1 - u1 * v0, minlength=len(rings))
    ring_sign = np.sign(twice_area) * np.where(shell, 1.0, -1.0)
    edge_sign = ring_sign[edge_ring]
    edge_geom = part_geom[ring_part[edge_ring]]

    edge, t = _cut_at_grid_lines(u0, v0, u1, v1)
    same = edge[1:] == edge[:-1]
    e, ta, tb = edge[:-1][same], t[:-1][same], t[1:][same]
    du, dv = u1[e] - u0[e], v1[e] - v0[e]
    run = (tb - ta) * du
    keep = run != 0
    e, ta, tb, du, dv, run = e[keep], ta[keep], tb[keep], du[keep], dv[keep], run[keep]
    u_mid = u0[e] + (ta + tb) / 2 * du
    v_mid = v0[e] + (ta + tb) / 2 * dv
    g = edge_geom[e]
    col, row = np.floor(u_mid).astype(np.int64), np.floor(v_mid).astype(np.int64)
    cell = start[g] + (col - c0[g]) * rows[g] + (row - r0[g])
    weight = edge_sign[e] * run
    frac = np.bincount(cell, weight * (row + 1 - v_mid), minlength=total)[:total]
    frac += np.cumsum(np.bincount(cell + 1, weight, minlength=total + 1)[:total])
    frac = np.clip(frac, 0.0, 1.0)
    frac[frac < 1e-12] = 0.0

    owner = np.repeat(np.arange(n), size)
    local = np.arange(total) - start[owner]
    return Coverage(start, r0[owner] + local % rows[owner], c0[owner] + local // rows[owner],
                    frac)


def _cut_at_grid_lines(u0: np.ndarray, v0: np.ndarray, u1: np.ndarray,
                       v1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edge, t) of every edge's ends and grid-line crossings, sorted along each edge."""
    edges, ts = [np.arange(len(u0)), np.arange(len(u0))], [np.zeros(len(u0)), np.ones(len(u0))]
    for a, b in ((u0, u1), (v0, v1)):
        first = np.floor(np.minimum(a, b)).astype(np.int64) + 1
        count = np.maximum(np.ceil(np.maximum(a, b)).astype(np.int64) - first, 0)
        which = np.repeat(np.arange(len(a)), count)
        offset = np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count)
        edges.append(which)
        ts.append((first[which] + offset - a[which]) / (b[which] - a[which]))
    edge, t = np.concatenate(edges), np.concatenate(ts)
    order = np.lexsort((t, edge))
    return edge[order], t[order]


# --- zonal statistics ----------------------------------------------------------------------

STATS = ("mean_elevation_m", "min_elevation_m", "max_elevation_m", "mean_slope_pct",
         "mean_slope_deg", "steep_share_pct", "uncovered_pct")


def zonal(grid: Grid, slope: np.ndarray, geoms: np.ndarray,
          threshold_pct: float) -> dict[str, np.ndarray]:
    """Per polygon (in the grid's CRS): the STATS, NaN where the polygon is not wholly on
    valid cells (``uncovered_pct`` says how much is not). Weights are coverage x cell area."""
    out = {name: np.full(len(geoms), np.nan) for name in STATS}
    if not len(geoms):
        return out
    size = _window_cells(geoms, grid.transform)
    batch_of = np.cumsum(size) // BATCH_CELLS
    for batch in np.unique(batch_of):
        chosen = np.flatnonzero(batch_of == batch)
        for name, values in _zonal_batch(grid, slope, geoms[chosen], threshold_pct).items():
            out[name][chosen] = values
    return out


def _window_cells(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    xmin, ymin, xmax, ymax = np.nan_to_num(shapely.bounds(geoms)).T
    return (np.abs(xmax - xmin) / abs(transform.a) + 2) * (np.abs(ymax - ymin)
                                                          / abs(transform.e) + 3)


def _zonal_batch(grid: Grid, slope: np.ndarray, geoms: np.ndarray,
                 threshold_pct: float) -> dict[str, np.ndarray]:
    cov = coverage(geoms, grid.transform)
    height, width = grid.z.shape
    n = len(geoms)
    owner = np.repeat(np.arange(n), np.diff(cov.start))
    on_grid = (cov.row >= 0) & (cov.row < height) & (cov.col >= 0) & (cov.col < width)
    flat = np.where(on_grid, cov.row * width + cov.col, 0)
    z = np.where(on_grid, grid.z.ravel()[flat], np.nan)
    s = np.where(on_grid, slope.ravel()[flat], np.nan)
    valid = ~np.isnan(z) & ~np.isnan(s)
    area = np.bincount(owner, cov.frac, minlength=n)
    off = np.bincount(owner, np.where(valid, 0.0, cov.frac), minlength=n)
    w = np.where(valid, cov.frac * grid.cell_area_m2()[np.clip(cov.row, 0, height - 1)], 0.0)
    z, s = np.where(valid, z, 0.0), np.where(valid, s, 0.0)
    total = np.bincount(owner, w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = {
            "mean_elevation_m": np.bincount(owner, w * z, minlength=n) / total,
            "mean_slope_pct": np.bincount(owner, w * s, minlength=n) / total,
            "mean_slope_deg": np.bincount(owner, w * np.degrees(np.arctan(s / 100)),
                                          minlength=n) / total,
            "steep_share_pct": 100 * np.bincount(owner, w * (s > threshold_pct),
                                                 minlength=n) / total,
            "uncovered_pct": 100 * off / area,
        }
    touched = valid & (cov.frac > 0)
    nonempty = cov.start[:-1] < cov.start[1:]
    for name, reduce, blank in (("min_elevation_m", np.minimum, np.inf),
                                ("max_elevation_m", np.maximum, -np.inf)):
        values = np.full(n, np.nan)
        if nonempty.any():
            values[nonempty] = reduce.reduceat(np.where(touched, z, blank),
                                               cov.start[:-1][nonempty])
        stats[name] = values
    incomplete = ~(stats["uncovered_pct"] <= 100 * MAX_UNCOVERED) | (total <= 0)
    for name in STATS[:-1]:
        stats[name][incomplete] = np.nan
    return stats


# --- the analysis --------------------------------------------------------------------------

def read_grid(dem: dems.Dem, bounds: tuple[float, float, float, float] | None = None) -> Grid:
    """The DEM (or the window of it around ``bounds``, in the DEM's CRS, plus a 2-cell halo)
    as a north-up grid in float64 with NaN for nodata."""
    with dems.opened(dem) as src:
        t = src.transform
        if t.b or t.d:
            raise InvalidInput(f"DEM {dem.name!r} has a rotated grid; warp it north-up first "
                               "(gdalwarp)")
        window = rasterio.windows.Window(0, 0, src.width, src.height)
        if bounds is not None:
            window = (rasterio.windows.from_bounds(*bounds, transform=t)
                      .round_offsets("floor").round_lengths("ceil"))
            window = rasterio.windows.Window(window.col_off - 2, window.row_off - 2,
                                             window.width + 4, window.height + 4)
            window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        z = src.read(1, window=window, masked=True).astype(np.float64).filled(np.nan)
        transform = src.window_transform(window)
        crs = src.crs
    if transform.e > 0:  # south-up: flip to north-up
        z, transform = z[::-1], transform * Affine.translation(0, z.shape[0]) * Affine.scale(1,
                                                                                             -1)
    return Grid(z, transform, crs)


def to_crs(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """lon/lat geometries in ``crs`` (pyproj, always x/y order)."""
    transformer = pyproj.Transformer.from_crs(4326, crs.to_wkt(), always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))


def terrain_of(dem: dems.Dem, geoms_lonlat: np.ndarray,
               threshold_pct: float) -> dict[str, np.ndarray]:
    """STATS for lon/lat polygons on a DEM (blocking: run it in a thread)."""
    with dems.opened(dem) as src:
        crs = src.crs
    geoms = to_crs(geoms_lonlat, crs)
    bounds = tuple(shapely.total_bounds(geoms)) if len(geoms) else None
    try:
        grid = read_grid(dem, bounds)
    except rasterio.errors.WindowError:  # no overlap at all
        return {name: np.full(len(geoms), np.nan if name != "uncovered_pct" else 100.0)
                for name in STATS}
    east, north = gradient(grid)
    return zonal(grid, slope_pct(east, north), geoms, threshold_pct)


async def dem_for(conn: AsyncConnection, commune_id: int) -> dems.Dem:
    """The commune's DEM, or NotFound naming the two ways to add one."""
    dem = await dems.for_commune(conn, commune_id)
    if dem is None:
        raise NotFound(f"commune {commune_id} has no DEM; add one with `geo-comuna dem add "
                       f"COMMUNE FILE.tif` or POST /communes/{commune_id}/dems")
    return dem


def _clean(value: float, digits: int) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    dem = await dem_for(conn, commune_id)
    cur = await conn.execute(
        "SELECT ST_AsBinary(c.geom), ST_Area(ST_Intersection(c.geom, d.footprint)::geography)"
        " / nullif(ST_Area(c.geom::geography), 0) FROM communes c, dems d "
        "WHERE c.id = %s AND d.id = %s", (commune_id, dem.id))
    commune_wkb, covered = await cur.fetchone()
    if not covered:
        raise InvalidInput(f"DEM {dem.name!r} does not cover commune {commune_id}: its "
                           f"footprint {[round(b, 5) for b in dem.footprint.bounds]} (lon/lat) "
                           "misses the commune; add a DEM of the commune")
    cur = await conn.execute(
        "SELECT id, code, land_use, ST_Area(geom::geography) / 10000, ST_AsBinary(geom), "
        "ST_AsGeoJSON(geom, 7)::json FROM parcels WHERE commune_id = %s ORDER BY id",
        (commune_id,))
    parcels = await cur.fetchall()
    geoms = shapely.from_wkb([commune_wkb] + [p[4] for p in parcels])
    stats = await asyncio.to_thread(terrain_of, dem, geoms, params.slope_threshold_pct)
    warnings = []
    if covered < 1 - 1e-6:
        warnings.append(f"the DEM covers only {100 * covered:.1f} % of the commune")
    if not parcels:
        warnings.append("the commune has no parcels")
    features = []
    for k, (pid, code, land_use, area_ha, _, geometry) in enumerate(parcels, start=1):
        props: dict[str, Any] = {"parcel_id": pid, "code": code, "land_use": land_use,
                                 "area_ha": round(area_ha, 4)}
        props.update({name: _clean(stats[name][k], 2) for name in STATS[:-1]})
        uncovered = stats["uncovered_pct"][k]
        props["note"] = None if not uncovered > 100 * MAX_UNCOVERED else (
            f"{uncovered:.1f} % of the parcel lies outside the DEM or on nodata cells: "
            "no statistics")
        features.append({"type": "Feature", "id": pid, "geometry": geometry,
                         "properties": props})
    without = sum(1 for f in features if f["properties"]["note"])
    if without:
        warnings.append(f"{without} parcel(s) not wholly on the DEM have null statistics")
    summary = {"dem": {"id": dem.id, "name": dem.name, "crs": dem.crs,
                       "resolution_m": round(dem.resolution_m, 3)},
               "parcels": len(parcels), "parcels_with_statistics": len(parcels) - without,
               "commune": {name: _clean(stats[name][0], 2) for name in STATS}}
    return Result(summary, features, warnings=warnings)


registry.register(Analysis(
    name="terrain", title_es="Relieve por parcela", title_en="Terrain per parcel",
    params=Params, run=run))
