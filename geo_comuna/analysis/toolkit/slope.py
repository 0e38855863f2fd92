"""Slope of a DEM grid and the terrain of polygons on a stored DEM: Horn's 3x3 gradient, and
each polygon's elevation (m) and slope statistics, every DEM cell weighted by the exact share
of its area inside the polygon (zonal.py). The terrain analysis reports these per parcel; land
recovery scores its candidates by their mean slope; the hillshade lights the gradient.

The gradient uses the cell size in metres (a geographic-CRS DEM has its cell measured on the
CRS's ellipsoid at each row's latitude); elevations are taken as metres. Slope is in percent
(100 * rise / run). Polygons are reprojected to the DEM's CRS with pyproj.
"""

from __future__ import annotations

import numpy as np
import pyproj
import rasterio.errors
import shapely
from rasterio.crs import CRS

from geo_comuna.analysis.toolkit.dem import coarsened_warning, opened, read_window
from geo_comuna.analysis.toolkit.zonal import STATS, Grid, zonal
from geo_comuna.io.dems import Dem


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


def to_crs(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """lon/lat geometries in ``crs`` (pyproj, always x/y order)."""
    transformer = pyproj.Transformer.from_crs(4326, crs.to_wkt(), always_xy=True)
    return shapely.transform(
        geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def terrain_of(
    dem: Dem, geoms_lonlat: np.ndarray, threshold_pct: float, warnings: list[str]
) -> dict[str, np.ndarray]:
    """STATS for lon/lat polygons on a DEM (blocking: run it with work.cpu); says in
    ``warnings`` when the DEM window had to be read at coarser cells."""
    with opened(dem) as src:
        crs = src.crs
    geoms = to_crs(geoms_lonlat, crs)
    bounds = tuple(shapely.total_bounds(geoms)) if len(geoms) else None
    try:
        grid = read_window(dem, bounds)
    except rasterio.errors.WindowError:  # no overlap at all
        return {
            name: np.full(len(geoms), np.nan if name != "uncovered_pct" else 100.0)
            for name in STATS
        }
    warnings.extend(coarsened_warning(dem, grid))
    east, north = gradient(grid)
    return zonal(grid, slope_pct(east, north), geoms, threshold_pct)
