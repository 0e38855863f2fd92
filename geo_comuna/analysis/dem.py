"""DEMs per commune: registered from any single-band GeoTIFF in any CRS, kept in PostGIS as
bytes (table ``dems``, migration 0002), read back with rasterio. Elevations are metres above
the DEM's own vertical datum."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import rasterio
import rasterio.errors
import rasterio.warp
import shapely
from psycopg import AsyncConnection
from rasterio.io import DatasetReader, MemoryFile

from geo_comuna.errors import InvalidFile, UnknownCRS

MAX_DEM_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Dem:
    id: int
    commune_id: int
    name: str
    crs: str
    resolution_m: float
    footprint: shapely.Geometry  # lon/lat
    tiff: bytes


def _describe(path: Path) -> tuple[str, int, int, float, shapely.Geometry]:
    try:
        with rasterio.open(path) as src:
            if src.count != 1:
                raise InvalidFile(f"{path.name} has {src.count} bands; a DEM has one")
            if src.crs is None:
                raise UnknownCRS(
                    f"{path.name} has no CRS; write one into the GeoTIFF "
                    "(gdal_edit.py -a_srs EPSG:xxxx)"
                )
            crs = src.crs.to_string()
            try:  # a local (engineering) CRS cannot be placed on the globe
                pyproj.Transformer.from_crs(src.crs.to_wkt(), 4326)
            except pyproj.exceptions.ProjError:
                raise UnknownCRS(
                    f"{path.name}: its CRS {crs!r} cannot be transformed to "
                    "lon/lat; write a geographic or projected CRS into it "
                    "(gdal_edit.py -a_srs EPSG:xxxx)"
                ) from None
            outline = shapely.box(*src.bounds).segmentize(
                max(src.bounds.right - src.bounds.left, src.bounds.top - src.bounds.bottom) / 16
            )
            footprint = shapely.geometry.shape(
                rasterio.warp.transform_geom(
                    src.crs, "EPSG:4326", shapely.geometry.mapping(outline)
                )
            )
            res = abs(src.res[0])
            if src.crs.is_geographic:  # degrees -> metres at the raster's centre
                lon, lat = footprint.centroid.x, footprint.centroid.y
                res = pyproj.Geod(ellps="WGS84").inv(lon, lat, lon + res, lat)[2]
            return crs, src.width, src.height, res, footprint
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidFile(f"cannot read {path.name} as a GeoTIFF: {exc}") from None


async def register(
    conn: AsyncConnection, commune_id: int, path: Path, name: str | None = None
) -> Dem:
    """Store (or replace, by name) a commune's DEM."""
    if path.stat().st_size > MAX_DEM_BYTES:
        raise InvalidFile(
            f"{path.name} is over {MAX_DEM_BYTES // 2**20} MB; clip it to the commune first"
        )
    crs, width, height, res, footprint = _describe(path)
    tiff = path.read_bytes()
    name = name or path.stem
    cur = await conn.execute(
        """INSERT INTO dems (commune_id, name, crs, width, height, resolution_m, footprint, tiff)
           VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326), %s)
           ON CONFLICT (commune_id, name) DO UPDATE SET crs = EXCLUDED.crs,
               width = EXCLUDED.width, height = EXCLUDED.height,
               resolution_m = EXCLUDED.resolution_m, footprint = EXCLUDED.footprint,
               tiff = EXCLUDED.tiff, added_at = now()
           RETURNING id""",
        (commune_id, name, crs, width, height, res, shapely.to_wkb(footprint), tiff),
    )
    dem_id = (await cur.fetchone())[0]
    return Dem(dem_id, commune_id, name, crs, res, footprint, tiff)


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
    with MemoryFile(dem.tiff) as mem, mem.open() as src:
        yield src


def elevations(dem: Dem, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Elevation (m) at lon/lat points, bilinear between cell centres; NaN outside the DEM or
    on nodata."""
    with opened(dem) as src:
        band = src.read(1, masked=True).astype(float).filled(np.nan)
        to_dem = pyproj.Transformer.from_crs(4326, src.crs, always_xy=True)
        x, y = to_dem.transform(np.asarray(lon, float), np.asarray(lat, float))
        col, row = ~src.transform * (np.asarray(x), np.asarray(y))
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5  # cell centres at .5
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = col - c0, row - r0
    h, w = band.shape
    out = np.full(len(col), np.nan)
    ok = (c0 >= 0) & (r0 >= 0) & (c0 + 1 < w) & (r0 + 1 < h)
    c, r, a, b = c0[ok], r0[ok], fc[ok], fr[ok]
    out[ok] = (
        band[r, c] * (1 - a) * (1 - b)
        + band[r, c + 1] * a * (1 - b)
        + band[r + 1, c] * (1 - a) * b
        + band[r + 1, c + 1] * a * b
    )
    return out
