"""DEMs per commune: registered from a single-band GeoTIFF in any CRS, kept in PostGIS as a
GeoTIFF that geo_comuna wrote itself (table ``dems``, migration 0002), read back with rasterio.
Elevations are metres above the DEM's own vertical datum.

An upload is hostile: it must start as a TIFF, is opened by the GTiff driver only (rasterio's
GDAL knows no other file format, geo_comuna/gdal.py), its size is checked from its header
before any cell is read (Limits: cells and uncompressed bytes), and what is stored is a copy
written block by block, never the uploaded bytes. Stored DEMs are opened as GeoTIFF only, and
each request reads at most Limits.max_raster_window_cells cells (a larger window is read at
coarser cells, averaged, and the Grid says by how much).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import rasterio.errors
import rasterio.warp
import rasterio.windows
import shapely
from affine import Affine
from psycopg import AsyncConnection
from rasterio.enums import Resampling
from rasterio.io import DatasetReader, MemoryFile

from geo_comuna import gdal, work
from geo_comuna.analysis.toolkit.zonal import Grid
from geo_comuna.errors import InvalidFile, TooLarge, UnknownCRS
from geo_comuna.io import sniff

rasterio = gdal.raster()
#: rows copied at a time when the upload is written again
_ROWS = 256


@dataclass(frozen=True)
class Dem:
    id: int
    commune_id: int
    name: str
    crs: str
    resolution_m: float
    footprint: shapely.Geometry  # lon/lat
    tiff: bytes


@dataclass(frozen=True)
class Checked:
    """An uploaded DEM once accepted: its description and the GeoTIFF to store."""

    crs: str
    width: int
    height: int
    resolution_m: float
    footprint: shapely.Geometry  # lon/lat
    tiff: bytes


def _open(source: Path | MemoryFile, label: str) -> DatasetReader:
    try:
        if isinstance(source, MemoryFile):
            return source.open(driver="GTiff")
        return rasterio.open(source, driver="GTiff")
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidFile(f"cannot read {label} as a GeoTIFF: {exc}") from None


def check(path: Path, limits: work.Limits) -> Checked:
    """Accept a DEM upload or refuse it (blocking: run it with work.cpu)."""
    sniff.geotiff(path)
    with _open(path, path.name) as src:
        _check_shape(src, path.name, limits)
        crs = src.crs.to_string()
        outline = shapely.box(*src.bounds).segmentize(
            max(src.bounds.right - src.bounds.left, src.bounds.top - src.bounds.bottom) / 16
        )
        footprint = shapely.geometry.shape(
            rasterio.warp.transform_geom(src.crs, "EPSG:4326", shapely.geometry.mapping(outline))
        )
        res = abs(src.res[0])
        if src.crs.is_geographic:  # degrees -> metres at the raster's centre
            lon, lat = footprint.centroid.x, footprint.centroid.y
            res = pyproj.Geod(ellps="WGS84").inv(lon, lat, lon + res, lat)[2]
        try:
            tiff = _copy(src)
        except rasterio.errors.RasterioIOError as exc:  # a truncated or corrupt cell block
            raise InvalidFile(f"cannot read the cells of {path.name}: {exc}") from None
        return Checked(crs, src.width, src.height, res, footprint, tiff)


def _check_shape(src: DatasetReader, name: str, limits: work.Limits) -> None:
    """What the header says, before a cell is read: one band, a CRS that reaches lon/lat, a
    north-up grid, and a size within the limits."""
    if src.count != 1:
        raise InvalidFile(f"{name} has {src.count} bands; a DEM has one")
    if src.crs is None:
        raise UnknownCRS(
            f"{name} has no CRS; write one into the GeoTIFF (gdal_edit.py -a_srs EPSG:xxxx)"
        )
    try:  # a local (engineering) CRS cannot be placed on the globe
        pyproj.Transformer.from_crs(src.crs.to_wkt(), 4326)
    except pyproj.exceptions.ProjError:
        raise UnknownCRS(
            f"{name}: its CRS {src.crs.to_string()!r} cannot be transformed to lon/lat; write "
            "a geographic or projected CRS into it (gdal_edit.py -a_srs EPSG:xxxx)"
        ) from None
    if src.transform.b or src.transform.d:
        raise InvalidFile(f"{name} has a rotated grid; warp it north-up first (gdalwarp)")
    cells = src.width * src.height
    itemsize = np.dtype(src.dtypes[0]).itemsize
    unpacked = cells * itemsize
    rows, cols = src.block_shapes[0]
    block = rows * cols * itemsize
    if block > limits.max_dem_bytes:  # GDAL decodes a whole tile or strip at a time
        raise TooLarge(
            f"{name} declares blocks of {cols} x {rows} cells ({block // 2**20} MB each, whatever "
            f"its size), over {limits.max_dem_bytes // 2**20} MB: write it again with tiles "
            "(gdal_translate -co TILED=YES)"
        )
    if cells > limits.max_dem_cells or unpacked > limits.max_dem_bytes:
        raise TooLarge(
            f"{name} is {src.width} x {src.height} cells ({unpacked // 2**20} MB uncompressed); "
            f"the limits are {limits.max_dem_cells:,} cells and "
            f"{limits.max_dem_bytes // 2**20} MB: clip it to the commune or resample it "
            "(gdalwarp -te ... -tr ...)"
        )


def _copy(src: DatasetReader) -> bytes:
    """The DEM written again as a tiled, compressed GeoTIFF: same cells, georeferencing and
    nodata, nothing else of the upload (no other metadata, no overviews)."""
    dtype = src.dtypes[0]
    profile = {
        "driver": "GTiff",
        "width": src.width,
        "height": src.height,
        "count": 1,
        "dtype": dtype,
        "crs": src.crs,
        "transform": src.transform,
        "nodata": src.nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            for top in range(0, src.height, _ROWS):
                window = rasterio.windows.Window(0, top, src.width, min(_ROWS, src.height - top))
                dst.write(src.read(1, window=window), 1, window=window)
        return mem.read()


async def register(
    conn: AsyncConnection, commune_id: int, path: Path, name: str | None = None
) -> Dem:
    """Store (or replace, by name) a commune's DEM: checked and written again off the event
    loop, within the request's limits."""
    checked = await work.cpu(check, path, work.limits())
    name = name or path.stem
    cur = await conn.execute(
        """INSERT INTO dems (commune_id, name, crs, width, height, resolution_m, footprint, tiff)
           VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326), %s)
           ON CONFLICT (commune_id, name) DO UPDATE SET crs = EXCLUDED.crs,
               width = EXCLUDED.width, height = EXCLUDED.height,
               resolution_m = EXCLUDED.resolution_m, footprint = EXCLUDED.footprint,
               tiff = EXCLUDED.tiff, added_at = now()
           RETURNING id""",
        (
            commune_id,
            name,
            checked.crs,
            checked.width,
            checked.height,
            checked.resolution_m,
            shapely.to_wkb(checked.footprint),
            checked.tiff,
        ),
    )
    dem_id = (await cur.fetchone())[0]
    return Dem(
        dem_id, commune_id, name, checked.crs, checked.resolution_m, checked.footprint, checked.tiff
    )


async def for_commune(conn: AsyncConnection, commune_id: int) -> Dem | None:
    """The commune's finest DEM (smallest cell), or None when it has none."""
    cur = await conn.execute(
        "SELECT id, commune_id, name, crs, resolution_m, ST_AsBinary(footprint), tiff "
        "FROM dems WHERE commune_id = %s ORDER BY resolution_m, id LIMIT 1",
        (commune_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Dem(row[0], row[1], row[2], row[3], row[4], shapely.from_wkb(row[5]), bytes(row[6]))


async def listing(conn: AsyncConnection, commune_id: int | None = None) -> list[dict]:
    """Every DEM (of one commune, or all) without its bytes: id, commune, name, CRS, size,
    cell (m), when added, lon/lat bounds [west, south, east, north], size in bytes."""
    cur = await conn.execute(
        """SELECT json_build_object('id', d.id, 'commune', c.code, 'name', d.name,
                  'crs', d.crs, 'width', d.width, 'height', d.height,
                  'resolution_m', round(d.resolution_m::numeric, 3), 'added_at', d.added_at,
                  'bounds', json_build_array(ST_XMin(d.footprint), ST_YMin(d.footprint),
                                             ST_XMax(d.footprint), ST_YMax(d.footprint)),
                  'bytes', octet_length(d.tiff))
           FROM dems d JOIN communes c ON c.id = d.commune_id
           WHERE %(commune)s::integer IS NULL OR d.commune_id = %(commune)s
           ORDER BY c.code, d.resolution_m, d.id""",
        {"commune": commune_id},
    )
    return [row[0] for row in await cur.fetchall()]


@contextmanager
def opened(dem: Dem) -> Iterator[DatasetReader]:
    """The stored DEM, as a GeoTIFF only: a row stored before uploads were written again, that
    holds anything else, is refused (upload the DEM again), never handed to another driver."""
    if not dem.tiff.startswith(sniff.TIFF_MAGIC):
        raise InvalidFile(
            f"the stored DEM {dem.name!r} is not a GeoTIFF; an editor must upload it again"
        )
    with MemoryFile(dem.tiff) as mem, _open(mem, f"DEM {dem.name!r}") as src:
        yield src


def read_window(
    dem: Dem,
    bounds: tuple[float, float, float, float] | None = None,
    max_cells: int | None = None,
    dtype: type = np.float64,
) -> Grid:
    """The DEM (or its window around ``bounds``, in the DEM's CRS, plus a 2-cell halo) as a
    north-up grid of ``dtype`` (float64: analyses; float32 is plenty for a picture and half
    the memory) with NaN for nodata. A window of more than ``max_cells`` cells
    (default: the request's Limits) is read at coarser cells, each the average of the DEM cells
    it covers; ``Grid.coarsened`` says by how much. Raises rasterio's WindowError when
    ``bounds`` misses the DEM."""
    max_cells = max_cells or work.limits().max_raster_window_cells
    with opened(dem) as src:
        t = src.transform
        window = rasterio.windows.Window(0, 0, src.width, src.height)
        if bounds is not None:
            exact = rasterio.windows.from_bounds(*bounds, transform=t)
            col, row = math.floor(exact.col_off) - 2, math.floor(exact.row_off) - 2
            window = rasterio.windows.Window(
                col,
                row,
                math.ceil(exact.col_off + exact.width) + 2 - col,
                math.ceil(exact.row_off + exact.height) + 2 - row,
            )
            window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        width, height = int(window.width), int(window.height)
        factor = max(1.0, math.sqrt(width * height / max_cells))
        shape = (max(1, math.floor(height / factor)), max(1, math.floor(width / factor)))
        z = (
            src.read(1, window=window, out_shape=shape, masked=True, resampling=Resampling.average)
            .astype(dtype)
            .filled(np.nan)
        )
        transform = src.window_transform(window) @ Affine.scale(width / shape[1], height / shape[0])
        crs = src.crs
    if transform.e > 0:  # south-up: flip to north-up
        z = np.ascontiguousarray(z[::-1])
        transform = transform @ Affine.translation(0, z.shape[0]) @ Affine.scale(1, -1)
    return Grid(z, transform, crs, coarsened=width / shape[1])


def coarsened_warning(dem: Dem, grid: Grid) -> list[str]:
    """What a result says when its DEM window was read at coarser cells."""
    if grid.coarsened <= 1:
        return []
    return [
        f"the DEM {dem.name!r} was read at cells {grid.coarsened:.1f} times coarser (averaged) "
        "to stay within the cells one request may read (GEO_COMUNA_MAX_RASTER_WINDOW_CELLS)"
    ]


def elevations(
    dem: Dem, *points: tuple[np.ndarray, np.ndarray]
) -> tuple[list[np.ndarray], Grid | None]:
    """Elevation (m) at each set of lon/lat points, bilinear between cell centres; NaN outside
    the DEM or on nodata. One window is read, around all the points (clipped to the DEM);
    the grid read is returned too (None when no point is on the DEM)."""
    with opened(dem) as src:
        to_dem = pyproj.Transformer.from_crs(4326, src.crs.to_wkt(), always_xy=True)
    xys = [
        tuple(np.asarray(v, float) for v in to_dem.transform(np.asarray(lon, float), lat))
        for lon, lat in points
    ]
    outs = [np.full(len(x), np.nan) for x, _ in xys]
    xs = np.concatenate([x for x, _ in xys]) if xys else np.empty(0)
    ys = np.concatenate([y for _, y in xys]) if xys else np.empty(0)
    finite = np.isfinite(xs) & np.isfinite(ys)
    if not finite.any():
        return outs, None
    try:
        grid = read_window(
            dem, (xs[finite].min(), ys[finite].min(), xs[finite].max(), ys[finite].max())
        )
    except rasterio.errors.WindowError:  # no point on the DEM
        return outs, None
    for (x, y), out in zip(xys, outs, strict=True):
        out[:] = _bilinear(grid, x, y)
    return outs, grid


def _bilinear(grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    col, row = ~grid.transform * (x, y)
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5  # cell centres at .5
    inside = np.isfinite(col) & np.isfinite(row)
    c0 = np.floor(np.where(inside, col, -2)).astype(int)
    r0 = np.floor(np.where(inside, row, -2)).astype(int)
    fc, fr = col - c0, row - r0
    h, w = grid.z.shape
    out = np.full(len(x), np.nan)
    ok = (c0 >= 0) & (r0 >= 0) & (c0 + 1 < w) & (r0 + 1 < h)
    c, r, a, b = c0[ok], r0[ok], fc[ok], fr[ok]
    z = grid.z
    out[ok] = (
        z[r, c] * (1 - a) * (1 - b)
        + z[r, c + 1] * a * (1 - b)
        + z[r + 1, c] * (1 - a) * b
        + z[r + 1, c + 1] * a * b
    )
    return out
