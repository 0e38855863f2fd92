"""Tiny hand-built communes for the network analyses, written with SQL inside the test's
rolled-back transaction. Coordinates are lon/lat near (LON0, LAT0), a spot ~50 km from every
sample commune; expected lengths come from pyproj.Geod, never from the code under test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from psycopg import AsyncConnection
from pyproj import Geod
from rasterio.transform import from_origin

from geo_comuna.io import dems

LON0, LAT0 = -67.0, 10.0
GEOD = Geod(ellps="WGS84")


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance (m) on the WGS 84 ellipsoid."""
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


async def commune(conn: AsyncConnection, code: str = "NET-TEST") -> int:
    """A 0.02° square commune around (LON0, LAT0)."""
    cur = await conn.execute(
        "INSERT INTO communes (code, name, kind, status, geom) VALUES (%s, %s, 'urban', "
        "'active', ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))) RETURNING id",
        (code, code.title(), LON0 - 0.01, LAT0 - 0.01, LON0 + 0.01, LAT0 + 0.01),
    )
    return (await cur.fetchone())[0]


def _line(coords: list[tuple[float, float]]) -> str:
    return json.dumps({"type": "LineString", "coordinates": coords})


def _point(lon: float, lat: float) -> str:
    return json.dumps({"type": "Point", "coordinates": [lon, lat]})


async def path(
    conn: AsyncConnection,
    cid: int,
    coords: list[tuple[float, float]],
    kind: str = "footpath",
    steps: int | None = None,
    vehicles: bool = False,
) -> int:
    cur = await conn.execute(
        "INSERT INTO paths (commune_id, kind, steps, vehicles, transit, geom) VALUES "
        "(%s, %s, %s, %s, false, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id",
        (cid, kind, steps, vehicles, _line(coords)),
    )
    return (await cur.fetchone())[0]


async def main(
    conn: AsyncConnection, cid: int, coords: list[tuple[float, float]], status: str = "working"
) -> int:
    cur = await conn.execute(
        "INSERT INTO water_mains (commune_id, kind, status, geom) VALUES "
        "(%s, 'main', %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id",
        (cid, status, _line(coords)),
    )
    return (await cur.fetchone())[0]


async def power_line(
    conn: AsyncConnection, cid: int, coords: list[tuple[float, float]], condition: str = "good"
) -> int:
    cur = await conn.execute(
        "INSERT INTO power_lines (commune_id, voltage, condition, geom) VALUES "
        "(%s, 'low', %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id",
        (cid, condition, _line(coords)),
    )
    return (await cur.fetchone())[0]


async def dwelling(
    conn: AsyncConnection,
    cid: int,
    lon: float,
    lat: float,
    residents: int = 4,
    water: str = "none",
    electricity: str = "formal",
    sector: str | None = None,
) -> int:
    cur = await conn.execute(
        "INSERT INTO dwellings (commune_id, residents, water, electricity, sector, geom) "
        "VALUES (%s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id",
        (cid, residents, water, electricity, sector, _point(lon, lat)),
    )
    return (await cur.fetchone())[0]


async def facility(
    conn: AsyncConnection, cid: int, lon: float, lat: float, kind: str = "transit_stop"
) -> int:
    cur = await conn.execute(
        "INSERT INTO facilities (commune_id, kind, geom) VALUES "
        "(%s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) RETURNING id",
        (cid, kind, _point(lon, lat)),
    )
    return (await cur.fetchone())[0]


def slope_dem(
    folder: Path,
    metres_per_degree_north: float,
    base: float = 900.0,
    west: float = LON0 - 0.003,
    north: float = LAT0 + 0.003,
    cells: int = 60,
) -> Path:
    """A GeoTIFF in EPSG:4326 with 0.0001° cells whose elevation is
    base + metres_per_degree_north * (lat - LAT0): linear, so bilinear reads are exact."""
    size = 0.0001
    lat_centres = north - size * (np.arange(cells) + 0.5)
    z = base + metres_per_degree_north * (lat_centres - LAT0)
    band = np.repeat(z[:, None], cells, axis=1).astype("float64")
    out = folder / "slope.tif"
    with rasterio.open(
        out,
        "w",
        driver="GTiff",
        width=cells,
        height=cells,
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=from_origin(west, north, size, size),
    ) as dst:
        dst.write(band, 1)
    return out


async def add_dem(conn: AsyncConnection, cid: int, tif: Path) -> None:
    await dems.register(conn, cid, tif)
