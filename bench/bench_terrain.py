"""Zonal terrain statistics for 20,000 parcels on a 4,000 x 4,000 DEM: geo_comuna's numpy
kernel (analysis/toolkit/zonal.py) side by side with exactextract and rasterstats on the same
inputs.

    .venv/bin/python bench/bench_terrain.py [--runs 3] [--parcels 20000] [--size 4000]

Inputs, written once to bench/out/ (deterministic, fixed seed): a synthetic DEM in UTM 19N
(EPSG:32619, 5 m cells, float32, DEFLATE: a tilt, two wave trains giving slopes of
0-50 %, and 0.5 m of noise) and the
parcels, Voronoi cells of a jittered 160 x 125 grid over it (about 800 cells each). Every tool
computes the same figures per parcel: mean, min and max elevation, mean slope in % and in
degrees, and the share of the area steeper than 30 %, from the same elevation and slope arrays
(slope: Horn's method, slope.gradient, timed once as "read DEM + slope"). exactextract gets
its own rasters for degrees and the steep mask (built with numpy, timed with it) and GeoJSON
features built beforehand (its preferred input, not timed); rasterstats gets one pass over
elevation and one over slope (degrees and the steep share as add_stats). Timings are medians
of --runs runs; agreement is the largest difference from exactextract over all parcels.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import rasterio
import shapely
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from geo_comuna.analysis.toolkit import slope, zonal  # noqa: E402
from geo_comuna.analysis.toolkit.slope import terrain_of  # noqa: E402
from geo_comuna.io.dems import Dem  # noqa: E402

CELL_M = 5.0
WEST, NORTH = 600_000.0, 1_020_000.0  # UTM 19N, about -68.09, 9.22
THRESHOLD_PCT = 30.0
STATS = tuple(s for s in zonal.STATS if s != "uncovered_pct")  # exactextract has these


def make_dem(path: Path, size: int) -> None:
    rng = np.random.default_rng(20_240_401)
    x = CELL_M * (np.arange(size) + 0.5)
    y = CELL_M * (np.arange(size) + 0.5)[:, None]
    z = (
        300
        + 0.02 * x
        + 120 * np.sin(x / 500) * np.cos(y / 650)
        + 25 * np.sin((x + y) / 200)
        + rng.uniform(-0.5, 0.5, (size, size))
    )
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:32619",
        nodata=-9999,
        compress="deflate",
        tiled=True,
        transform=Affine(CELL_M, 0, WEST, 0, -CELL_M, NORTH),
    ) as out:
        out.write(z.astype("float32"), 1)


def make_parcels(path: Path, size: int, count: int) -> None:
    rng = np.random.default_rng(20_240_402)
    side = size * CELL_M
    cols = int(round(np.sqrt(count * 1.28)))  # 160 x 125 for 20,000
    rows = int(np.ceil(count / cols))
    dx, dy = side / cols, side / rows
    i, j = np.divmod(np.arange(rows * cols), cols)
    centres = np.column_stack(
        [
            WEST + (j + 0.5 + rng.uniform(-0.3, 0.3, rows * cols)) * dx,
            NORTH - side + (i + 0.5 + rng.uniform(-0.3, 0.3, rows * cols)) * dy,
        ]
    )
    extent = shapely.box(WEST, NORTH - side, WEST + side, NORTH)
    cells = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=extent, ordered=True)
    parcels = shapely.intersection(shapely.get_parts(cells), extent)[:count]
    gpd.GeoDataFrame({"id": np.arange(len(parcels))}, geometry=parcels, crs="EPSG:32619").to_file(
        path, layer="parcels"
    )


def read_and_slope(dem_path: Path) -> tuple[zonal.Grid, np.ndarray]:
    with rasterio.open(dem_path) as src:
        z = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        grid = zonal.Grid(z, src.transform, src.crs)
    return grid, slope.slope_pct(*slope.gradient(grid))


def with_exactextract(
    grid: zonal.Grid, slope: np.ndarray, features: list[dict], strategy: str
) -> dict[str, np.ndarray]:
    from exactextract import exact_extract
    from exactextract.operation import Operation
    from exactextract.raster import NumPyRasterSource

    height, width = grid.z.shape
    left, top = grid.transform.c, grid.transform.f
    extent = (left, top - height * CELL_M, left + width * CELL_M, top)

    def source(values: np.ndarray, name: str) -> NumPyRasterSource:
        return NumPyRasterSource(values, *extent, nodata=np.nan, name=name)

    elevation, slopes = source(grid.z, "z"), source(slope, "s")
    degrees = source(np.degrees(np.arctan(slope / 100)), "d")
    steep = source(np.where(np.isnan(slope), np.nan, 100.0 * (slope > THRESHOLD_PCT)), "t")
    ops = [
        Operation("mean", "mean_elevation_m", elevation),
        Operation("min", "min_elevation_m", elevation),
        Operation("max", "max_elevation_m", elevation),
        Operation("mean", "mean_slope_pct", slopes),
        Operation("mean", "mean_slope_deg", degrees),
        Operation("mean", "steep_share_pct", steep),
    ]
    frame = exact_extract(elevation, features, ops, output="pandas", strategy=strategy)
    return {name: frame[name].to_numpy() for name in STATS}


def with_rasterstats(
    grid: zonal.Grid, slope: np.ndarray, parcels: np.ndarray
) -> dict[str, np.ndarray]:
    from rasterstats import zonal_stats

    shapes = list(parcels)
    heights = zonal_stats(
        shapes,
        np.nan_to_num(grid.z, nan=-9999),
        affine=grid.transform,
        nodata=-9999,
        stats="mean min max",
    )
    extra = {
        "deg": lambda a: float(np.degrees(np.arctan(a / 100)).mean()),
        "steep": lambda a: float(100 * (a > THRESHOLD_PCT).mean()),
    }
    slopes = zonal_stats(
        shapes,
        np.nan_to_num(slope, nan=-9999),
        affine=grid.transform,
        nodata=-9999,
        stats="mean",
        add_stats=extra,
    )
    pick = {
        "mean_elevation_m": (heights, "mean"),
        "min_elevation_m": (heights, "min"),
        "max_elevation_m": (heights, "max"),
        "mean_slope_pct": (slopes, "mean"),
        "mean_slope_deg": (slopes, "deg"),
        "steep_share_pct": (slopes, "steep"),
    }
    return {
        name: np.array([r[key] if r[key] is not None else np.nan for r in rows], float)
        for name, (rows, key) in pick.items()
    }


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def one_run(
    dem_path: Path, parcels: np.ndarray, features: list[dict], dem: Dem, lonlat: np.ndarray
) -> dict[str, tuple[float, Any]]:
    """Every step once: (seconds, per-parcel figures) by step."""
    seconds, (grid, slope) = timed(lambda: read_and_slope(dem_path))
    steps: dict[str, Callable[[], Any]] = {
        "ours": lambda: zonal.zonal(grid, slope, parcels, THRESHOLD_PCT),
        "ee_feature": lambda: with_exactextract(grid, slope, features, "feature-sequential"),
        "ee_raster": lambda: with_exactextract(grid, slope, features, "raster-sequential"),
        "rasterstats": lambda: with_rasterstats(grid, slope, parcels),
        "e2e": lambda: terrain_of(dem, lonlat, THRESHOLD_PCT, []),
    }
    return {"slope": (seconds, None), **{key: timed(work) for key, work in steps.items()}}


def largest_gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *names: str) -> float:
    return max(float(np.nanmax(np.abs(a[name] - b[name]))) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parcels", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=4_000, help="DEM side in cells")
    args = parser.parse_args()
    common.OUT.mkdir(parents=True, exist_ok=True)
    dem_path = common.OUT / f"terrain_dem_{args.size}.tif"
    parcels_path = common.OUT / f"terrain_parcels_{args.parcels}_{args.size}.gpkg"
    if not dem_path.exists():
        print(f"  … writing {dem_path}", file=sys.stderr)
        make_dem(dem_path, args.size)
    if not parcels_path.exists():
        print(f"  … writing {parcels_path}", file=sys.stderr)
        make_parcels(parcels_path, args.size, args.parcels)
    parcels = gpd.read_file(parcels_path).geometry.to_numpy()
    features = [
        {"type": "Feature", "properties": {}, "geometry": g.__geo_interface__} for g in parcels
    ]
    to_lonlat = pyproj.Transformer.from_crs(32619, 4326, always_xy=True)
    lonlat = shapely.transform(
        parcels, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))
    )
    tiff = dem_path.read_bytes()
    dem = Dem(0, 0, "bench", "EPSG:32619", CELL_M, shapely.box(-180, -90, 180, 90), tiff)

    import exactextract
    import rasterstats

    names = {
        "slope": "read DEM + Horn slope (shared by all)",
        "ours": "geo_comuna zonal.zonal (numpy, exact coverage)",
        "ee_feature": f"exactextract {exactextract.__version__} (feature-sequential)",
        "ee_raster": f"exactextract {exactextract.__version__} (raster-sequential)",
        "rasterstats": f"rasterstats {rasterstats.__version__} (cell centres, no weights)",
        "e2e": "geo_comuna terrain_of: GeoTIFF bytes + lon/lat parcels -> stats",
    }
    times: dict[str, list[float]] = {k: [] for k in names}
    results: dict[str, dict[str, np.ndarray]] = {}
    for run in range(1, args.runs + 1):
        print(f"  … run {run} of {args.runs}", file=sys.stderr)
        for key, (seconds, result) in one_run(dem_path, parcels, features, dem, lonlat).items():
            times[key].append(seconds)
            results[key] = result

    reference = results["ee_feature"]
    rows = []
    for key, label in names.items():
        median = statistics.median(times[key])
        if key == "slope":
            rows.append([label, median, min(times[key]), max(times[key]), "-", "-", "-", "-"])
            continue
        got = results[key]
        rows.append(
            [
                label,
                median,
                min(times[key]),
                max(times[key]),
                f"{largest_gap(got, reference, 'mean_elevation_m'):.1e}",
                f"{largest_gap(got, reference, 'min_elevation_m', 'max_elevation_m'):.1e}",
                f"{largest_gap(got, reference, 'mean_slope_pct'):.1e}",
                f"{largest_gap(got, reference, 'steep_share_pct'):.1e}",
            ]
        )
    print(f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"- inputs: {len(parcels):,} parcels (mean {shapely.area(parcels).mean() / 25:,.0f} "
        f"cells each) on a {args.size:,} x {args.size:,} DEM ({CELL_M:g} m cells, "
        f"EPSG:32619); {args.runs} runs"
    )
    print(
        common.table(
            "Zonal terrain statistics (seconds; largest difference from exactextract "
            "over all parcels)",
            [
                "step",
                "median s",
                "min s",
                "max s",
                "mean elevation (m)",
                "min/max (m)",
                "mean slope (%)",
                "steep share (%)",
            ],
            rows,
        )
    )
    ours = statistics.median(times["ours"])
    best_ee = min(statistics.median(times["ee_feature"]), statistics.median(times["ee_raster"]))
    print(
        f"\ngeo_comuna's zonal kernel: {ours:.2f} s against exactextract's best "
        f"{best_ee:.2f} s ({best_ee / ours:.1f}x); target: no slower than exactextract."
    )


if __name__ == "__main__":
    main()
