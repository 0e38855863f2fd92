"""Generate N parcel polygons (default 200,000) as a GeoPackage layer "parcels" (EPSG:4326).

    .venv/bin/python bench/make_parcels.py [--count 200000] [--seed 7]

writes bench/out/parcels_200k.gpkg (parcels_1k.gpkg, parcels_1m.gpkg... for other counts).

Deterministic (fixed seed). Parcels are irregular 5-8 vertex polygons of about 0.5-5 ha, one
per cell of a grid over the Lara / Portuguesa / Yaracuy / Cojedes farmland (lon -69.6..-68.6,
lat 9.4..10.2), so none overlap. Each polygon is star-shaped around its cell's centre, hence
simple and valid. Rows go out in grid order (north-west first), like a survey would.

Also writes bench/out/parcel_communes.gpkg: one commune per 0.05-degree tile (about 3,000 ha)
over the grid; every parcel names the commune of its tile, and some tiles cross state lines.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from common import (
    OUT,
    PARCEL_COMMUNE_PREFIX,
    PARCEL_COMMUNES_GPKG,
    fmt,
    header,
    parcels_gpkg,
    table,
)

WEST, SOUTH, EAST, NORTH = -69.6, 9.4, -68.6, 10.2
TILE_DEG = 0.05  # commune tiles
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
FIRST_RECOVERY, LAST_RECOVERY = date(2009, 3, 5), date(2023, 12, 31)
TENURE = {
    "abandoned": 0.15,
    "occupied": 0.25,
    "regularizing": 0.25,
    "regularized": 0.25,
    "disputed": 0.10,
}
LAND_USE = {
    "crops": 0.33,
    "pasture": 0.20,
    "forest": 0.08,
    "idle": 0.12,
    "housing": 0.08,
    "greenhouse": 0.02,
    "mixed": 0.12,
    None: 0.05,
}
NOTES = (
    "recuperada por la asamblea comunal",
    "lindero en disputa con el vecino",
    "acta de la asamblea pendiente",
    "riego por goteo instalado",
    "cerca de alambre",
    "carta agraria en trámite ante el INTi",
    "inspección de campo realizada",
    "acceso por camino de tierra",
)


def grid(count: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Cell centres (lon, lat) of a row-major grid of ``count`` cells, and the cell size (deg)."""
    width, height = EAST - WEST, NORTH - SOUTH
    step = np.sqrt(width * height / count)
    cols = int(np.ceil(width / step - 1e-9))  # 1.0 / 0.002 is 500.00000000000006
    rows = int(np.ceil(count / cols))
    dx, dy = width / cols, height / rows
    index = np.arange(count)
    lon = WEST + (index % cols + 0.5) * dx
    lat = NORTH - (index // cols + 0.5) * dy
    return lon, lat, dx, dy


def polygons(
    rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, dx: float, dy: float
) -> tuple[np.ndarray, np.ndarray]:
    """One star-shaped 5-8 vertex polygon inside each cell; returns (geometries, area in ha)."""
    n = len(lon)
    m_per_deg_lon = M_PER_DEG_LON_EQ * np.cos(np.radians(lat))
    half_x = dx * m_per_deg_lon / 2 - 2.0  # m, 2 m gap between neighbours
    half_y = np.full(n, dy * M_PER_DEG_LAT / 2 - 2.0)
    vertices = rng.integers(5, 9, n)
    k = np.arange(8)[None, :]
    slot = 2 * np.pi / vertices[:, None]
    angle = (
        rng.uniform(0, 2 * np.pi, n)[:, None] + slot * k + rng.uniform(-0.4, 0.4, (n, 8)) * slot
    )  # jitter < half a slot: stays ordered
    # distance from the centre to the cell's edge in that direction, then pulled inwards
    reach = 1 / np.maximum(
        np.abs(np.cos(angle)) / half_x[:, None], np.abs(np.sin(angle)) / half_y[:, None]
    )
    radius = reach * rng.uniform(0.7, 1.0, (n, 8))
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    used = k < vertices[:, None]
    x, y = np.where(used, x, np.nan), np.where(used, y, np.nan)
    # shoelace over the used vertices (wrap to the first)
    nxt = (k + 1) % vertices[:, None]
    x1 = np.take_along_axis(x, nxt, axis=1)
    y1 = np.take_along_axis(y, nxt, axis=1)
    area_m2 = 0.5 * np.abs(np.nansum(x * y1 - x1 * y, axis=1))
    target_m2 = np.exp(rng.uniform(np.log(0.5e4), np.log(5e4), n))
    scale = np.minimum(1.0, np.sqrt(target_m2 / area_m2))
    # a shrunken parcel may sit anywhere in what is left of its cell
    shift_x = rng.uniform(-1, 1, n) * (1 - scale) * half_x * 0.5
    shift_y = rng.uniform(-1, 1, n) * (1 - scale) * half_y * 0.5
    px = lon[:, None] + (x * scale[:, None] + shift_x[:, None]) / m_per_deg_lon[:, None]
    py = lat[:, None] + (y * scale[:, None] + shift_y[:, None]) / M_PER_DEG_LAT
    coords = np.column_stack([px[used], py[used]])
    rings = shapely.linearrings(coords, indices=np.repeat(np.arange(n), vertices))
    return shapely.polygons(rings), area_m2 * scale**2 / 1e4


def attributes(rng: np.random.Generator, n: int) -> pd.DataFrame:
    tenure = rng.choice(list(TENURE), n, p=list(TENURE.values()))
    land_use = rng.choice(np.array(list(LAND_USE), dtype=object), n, p=list(LAND_USE.values()))
    days = rng.integers(0, (LAST_RECOVERY - FIRST_RECOVERY).days + 1, n)
    no_date = (tenure == "abandoned") | (rng.random(n) < 0.10)
    recovered = [
        None if skip else FIRST_RECOVERY + timedelta(days=int(d))
        for d, skip in zip(days, no_date, strict=True)
    ]
    note_pick = rng.integers(0, len(NOTES), n)
    notes = [
        f"{NOTES[i]} ({j})" if keep else None
        for i, j, keep in zip(note_pick, rng.integers(1, 500, n), rng.random(n) < 0.25, strict=True)
    ]
    return pd.DataFrame(
        {
            "code": [f"LP-{i:06d}" for i in range(1, n + 1)],
            "tenure": tenure,
            "land_use": land_use,
            "recovered_on": recovered,
            "notes": notes,
        }
    )


def tile_codes(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    col = ((lon - WEST) / TILE_DEG).astype(int)
    row = ((NORTH - lat) / TILE_DEG).astype(int)
    return np.char.add(
        PARCEL_COMMUNE_PREFIX,
        np.char.add(
            np.char.zfill(row.astype(str), 2), np.char.add("-", np.char.zfill(col.astype(str), 2))
        ),
    )


def communes() -> gpd.GeoDataFrame:
    """Every tile commune of the grid's extent, whatever the count: files of every size then
    name communes of one set (a 1,000-parcel grid's cells miss some tiles)."""
    cols = round((EAST - WEST) / TILE_DEG)
    rows = round((NORTH - SOUTH) / TILE_DEG)
    centres_lon = WEST + (np.arange(cols * rows) % cols + 0.5) * TILE_DEG
    centres_lat = NORTH - (np.arange(cols * rows) // cols + 0.5) * TILE_DEG
    unique = sorted(set(tile_codes(centres_lon, centres_lat).tolist()))
    boxes = []
    for code in unique:
        row, col = (int(v) for v in code.removeprefix(PARCEL_COMMUNE_PREFIX).split("-"))
        boxes.append(
            shapely.box(
                WEST + col * TILE_DEG,
                NORTH - (row + 1) * TILE_DEG,
                WEST + (col + 1) * TILE_DEG,
                NORTH - row * TILE_DEG,
            )
        )
    return gpd.GeoDataFrame(
        {
            "code": unique,
            "name": [f"Comuna de prueba {c[len(PARCEL_COMMUNE_PREFIX) :]}" for c in unique],
            "kind": "rural",
            "status": "registered",
            "source": "bench/make_parcels.py",
        },
        geometry=boxes,
        crs="EPSG:4326",
    )


def write_atomically(frame: gpd.GeoDataFrame, path: Path, **options: object) -> None:
    """Write next to ``path``, then rename: other benches reading the file meanwhile see the
    old one or the new one, never half a file."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    partial.unlink(missing_ok=True)
    frame.to_file(partial, **options)
    os.replace(partial, path)


def make(count: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    lon, lat, dx, dy = grid(count)
    geoms, area_ha = polygons(rng, lon, lat, dx, dy)
    frame = attributes(rng, count)
    frame.insert(0, "commune", tile_codes(lon, lat))
    if not shapely.is_valid(geoms).all():
        raise SystemExit("generated an invalid polygon: a bug in the generator")
    parcels = gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")
    built = time.perf_counter() - started
    OUT.mkdir(parents=True, exist_ok=True)
    # Arrow keeps recovered_on a GeoPackage DATE (not DATETIME) column; GeoPackage 1.2 is
    # what Debian's GDAL 3.6 (the ogr2ogr compared against) reads without a warning.
    path = parcels_gpkg(count)
    write_atomically(
        parcels,
        path,
        layer="parcels",
        driver="GPKG",
        engine="pyogrio",
        use_arrow=True,
        VERSION="1.2",
    )
    tiles = communes()
    if not set(frame["commune"]) <= set(tiles["code"]):
        raise SystemExit("a parcel names a tile outside the grid: a bug in the generator")
    write_atomically(
        tiles,
        PARCEL_COMMUNES_GPKG,
        layer="communes",
        driver="GPKG",
        engine="pyogrio",
        VERSION="1.2",
    )
    return {
        "parcels": count,
        "communes": len(tiles),
        "area_min": float(area_ha.min()),
        "area_median": float(np.median(area_ha)),
        "area_max": float(area_ha.max()),
        "build_s": built,
        "total_s": time.perf_counter() - started,
        "size_mb": path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    header("make_parcels")
    made = make(args.count, args.seed)
    print(
        table(
            "Generated parcels",
            ["what", "value"],
            [
                ["parcels", made["parcels"]],
                ["tile communes", made["communes"]],
                [
                    "area min / median / max, ha",
                    f"{fmt(made['area_min'], 2)} / "
                    f"{fmt(made['area_median'], 2)} / "
                    f"{fmt(made['area_max'], 2)}",
                ],
                ["GeoPackage size, MB", made["size_mb"]],
                ["generate, s", made["build_s"]],
                ["generate + write, s", made["total_s"]],
            ],
        )
    )
    print(f"\nwrote {parcels_gpkg(args.count)} and {PARCEL_COMMUNES_GPKG}")


if __name__ == "__main__":
    main()
