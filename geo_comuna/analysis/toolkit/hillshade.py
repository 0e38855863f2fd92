"""Hillshade of a commune's DEM for the maps: the surface (Horn's gradient, slope.py) lit
from an azimuth and an altitude, and a PNG of it warped to Web Mercator (or lon/lat) for a
Leaflet ImageOverlay, whose corners are the returned lon/lat bounds."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import pyproj
import rasterio.warp
from affine import Affine
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


def hillshade_png(dem: Dem, params: Params | None = None) -> tuple[bytes, Bounds]:
    """A grey + alpha PNG of the shade warped to ``params.crs`` (bilinear), no side longer
    than ``params.max_size``, and its lon/lat bounds (west, south, east, north)."""
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
