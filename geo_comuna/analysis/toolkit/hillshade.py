"""Hillshade of a commune's DEM for the maps: the surface (Horn's gradient, slope.py) lit
from an azimuth and an altitude, and a PNG of it warped to Web Mercator (or lon/lat) for a
Leaflet ImageOverlay, whose corners are the returned lon/lat bounds.

On a map the shade belongs to the commune, not to the DEM's rectangle: the picture is made
transparent outside the commune's boundary, with an anti-aliased edge (the boundary is
rasterised at 4x4 sub-pixels and the share covered becomes the alpha), so it neither shows as
a grey box nor ends in the DEM's cell steps."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import pyproj
import rasterio.features
import rasterio.warp
import shapely
from affine import Affine
from psycopg import AsyncConnection
from pydantic import BaseModel, Field
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from geo_comuna import work
from geo_comuna.analysis.toolkit.dem import read_window
from geo_comuna.analysis.toolkit.slope import gradient
from geo_comuna.analysis.toolkit.zonal import Grid
from geo_comuna.io.dems import Dem

Bounds = tuple[float, float, float, float]  # west, south, east, north (degrees)


class Params(BaseModel):
    azimuth: float = Field(
        315.0,
        ge=0,
        le=360,
        description="direction the light comes from, "
        "degrees clockwise from north (315 = north-west)",
    )
    altitude: float = Field(
        45.0, gt=0, le=90, description="height of the light above the horizon, degrees"
    )
    z_factor: float = Field(1.0, gt=0, le=100, description="vertical exaggeration (unitless)")
    crs: Literal["EPSG:3857", "EPSG:4326"] = Field(
        "EPSG:3857",
        description="CRS of the image: EPSG:3857 lines up with Leaflet's web "
        "maps; EPSG:4326 is plain lon/lat",
    )
    max_size: int = Field(2048, ge=64, le=8192, description="longest side of the PNG, pixels")
    clip: bool = Field(
        True,
        description="transparent outside the commune's boundary (false: the whole DEM)",
    )


#: sub-pixels per pixel side when the clip boundary is rasterised (its edge's anti-aliasing),
#: fewer for a big picture so the sub-pixel grid stays under CLIP_MAX_SIDE on a side
CLIP_SUPERSAMPLE = 4
CLIP_MAX_SIDE = 4096


def illumination(
    east: np.ndarray, north: np.ndarray, azimuth: float, altitude: float
) -> np.ndarray:
    """Cosine of the angle between the surface normal (-dz/dx, -dz/dy, 1) and the direction
    of the light, clipped to 0..1 (1 faces the light, 0 is in its own shadow); NaN stays NaN."""
    az, alt = np.radians(azimuth), np.radians(altitude)
    light = (np.sin(az) * np.cos(alt), np.cos(az) * np.cos(alt), np.sin(alt))
    lit = (light[2] - east * light[0] - north * light[1]) / np.sqrt(1 + east**2 + north**2)
    return np.clip(lit, 0.0, 1.0)


def _shade(
    dem: Dem, azimuth: float, altitude: float, z_factor: float, max_cells: int | None = None
) -> tuple[Grid, np.ndarray]:
    grid = read_window(dem, None, max_cells, np.float32)
    east, north = gradient(grid)
    return grid, illumination(east * z_factor, north * z_factor, azimuth, altitude)


def _to_byte(lit: np.ndarray) -> np.ndarray:
    """1..255 for lit 0..1, 0 for nodata."""
    return np.where(np.isnan(lit), 0, 1 + np.rint(254 * np.nan_to_num(lit))).astype(np.uint8)


def hillshade(
    dem: Dem, azimuth: float = 315.0, altitude: float = 45.0, z_factor: float = 1.0
) -> tuple[np.ndarray, Bounds]:
    """The shade on the DEM's own grid (uint8: 1 dark .. 255 lit, 0 nodata) and the DEM's
    lon/lat bounds."""
    _, lit = _shade(dem, azimuth, altitude, z_factor)
    return _to_byte(lit), tuple(dem.footprint.bounds)


def _output_grid(grid: Grid, crs: str) -> tuple[Affine, int, int]:
    """The north-up grid in ``crs`` that covers ``grid`` with as many cells along its diagonal
    (the rule of GDAL's suggested warp output, worked out with pyproj: rasterio's own builds a
    VRT, a driver geo_comuna keeps out of its process)."""
    height, width = grid.z.shape
    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (width, height)
    to_crs = pyproj.Transformer.from_crs(grid.crs.to_wkt(), crs, always_xy=True)
    west, south, east, north = to_crs.transform_bounds(
        min(left, right), min(top, bottom), max(left, right), max(top, bottom), densify_pts=21
    )
    cell = math.hypot(east - west, north - south) / math.hypot(width, height)
    out_w, out_h = (
        max(1, math.ceil((east - west) / cell)),
        max(1, math.ceil((north - south) / cell)),
    )
    return Affine(cell, 0, west, 0, -cell, north), out_w, out_h


def coverage(
    outline: shapely.Geometry, crs: str, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """Share (0..1) of each pixel of the grid inside ``outline`` (lon/lat), counted on
    up to CLIP_SUPERSAMPLE x CLIP_SUPERSAMPLE sub-pixels: a soft edge instead of a staircase."""
    k = max(1, min(CLIP_SUPERSAMPLE, CLIP_MAX_SIDE // max(shape)))
    to_crs = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    projected = shapely.transform(outline, lambda xy: np.column_stack(to_crs.transform(*xy.T)))
    height, width = shape
    fine = rasterio.features.rasterize(
        [(projected, 1)],
        out_shape=(height * k, width * k),
        transform=transform @ Affine.scale(1 / k),
        fill=0,
        dtype="uint8",
    )
    return fine.reshape(height, k, width, k).mean(axis=(1, 3))


def hillshade_png(
    dem: Dem, params: Params | None = None, outline: shapely.Geometry | None = None
) -> tuple[bytes, Bounds]:
    """A grey + alpha PNG of the shade warped to ``params.crs`` (bilinear), no side longer
    than ``params.max_size``, and its lon/lat bounds (west, south, east, north); with an
    ``outline`` (lon/lat) and ``params.clip``, transparent outside it."""
    params = params or Params()
    # more cells than twice the picture's pixels per side would only be averaged away
    budget = min(work.limits().max_raster_window_cells, (2 * params.max_size) ** 2)
    grid, lit = _shade(dem, params.azimuth, params.altitude, params.z_factor, budget)
    transform, out_w, out_h = _output_grid(grid, params.crs)
    scale = max(out_w, out_h) / params.max_size
    if scale > 1:
        out_w, out_h = max(1, round(out_w / scale)), max(1, round(out_h / scale))
        transform = transform @ transform.scale(scale)
    warped = np.full((out_h, out_w), np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        lit.astype(np.float32),
        warped,
        src_transform=grid.transform,
        src_crs=grid.crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=params.crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    gray = _to_byte(warped)
    alpha = np.where(gray > 0, 255, 0).astype(np.uint8)
    if outline is not None and params.clip:
        share = coverage(outline, params.crs, transform, (out_h, out_w))
        alpha = np.rint(alpha * share).astype(np.uint8)
    with MemoryFile() as mem, warnings.catch_warnings():
        # the bounds travel beside the image (Leaflet wants them), not inside the PNG
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with mem.open(driver="PNG", width=out_w, height=out_h, count=2, dtype="uint8") as png:
            png.write(np.stack([gray, alpha]))
        data = mem.read()
    west, north = transform @ (0, 0)
    east, south = transform @ (out_w, out_h)
    if params.crs != "EPSG:4326":  # a Mercator rectangle is a lon/lat rectangle
        to_lonlat = pyproj.Transformer.from_crs(params.crs, 4326, always_xy=True)
        (west, east), (south, north) = to_lonlat.transform([west, east], [south, north])
    return data, (west, south, east, north)


async def commune_hillshade(
    conn: AsyncConnection, commune_id: int, dem: Dem, params: Params | None = None
) -> tuple[bytes, Bounds]:
    """``hillshade_png`` of the commune's DEM, clipped to the commune's boundary (off the
    event loop)."""
    cur = await conn.execute("SELECT ST_AsBinary(geom) FROM communes WHERE id = %s", (commune_id,))
    row = await cur.fetchone()
    outline = shapely.from_wkb(row[0]) if row and row[0] is not None else None
    return await work.cpu(hillshade_png, dem, params, outline)
