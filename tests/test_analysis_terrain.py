"""Terrain per parcel, the hillshade and DEM uploads: hand-worked slopes and coverage-weighted
means on tiny synthetic DEMs, the 5 de Marzo sample DEM through the API, and the degenerate
cases (no DEM, a DEM elsewhere, parcels off the DEM, an empty commune, bad files).

Synthetic DEMs are in UTM 19N (EPSG:32619) with 10 m cells, their origin at X0, Y0 (about
-68.09, 9.05: far from every sample commune). In the unit tests x, y are metres from the grid's
west and south edges.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pyproj
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import Result
from psycopg import AsyncConnection
from rasterio.crs import CRS
from typer.testing import CliRunner

from geo_comuna import accounts
from geo_comuna.analysis.toolkit import zonal as zonal_module
from geo_comuna.analysis.toolkit.hillshade import Params as ShadeParams
from geo_comuna.analysis.toolkit.hillshade import hillshade, hillshade_png, illumination
from geo_comuna.analysis.toolkit.slope import gradient, slope_pct
from geo_comuna.analysis.toolkit.zonal import Grid, coverage, zonal
from geo_comuna.cli import app as cli_app
from geo_comuna.errors import InvalidFile, TooLarge
from geo_comuna.features.query import resolve_commune
from geo_comuna.io import dems
from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
UTM = CRS.from_epsg(32619)
X0, Y0 = 600_000.0, 1_000_000.0
TO_LONLAT = pyproj.Transformer.from_crs(32619, 4326, always_xy=True)


def grid_of(z: list[list[float]] | np.ndarray, cell: float = 10.0) -> Grid:
    """Rows north first; the grid's south-west corner at (X0, Y0)."""
    z = np.asarray(z, dtype=float)
    return Grid(z, Affine(cell, 0, X0, 0, -cell, Y0 + cell * z.shape[0]), UTM)


def local(geom: shapely.Geometry) -> shapely.Geometry:
    """Metres from (X0, Y0) -> UTM 19N."""
    return shapely.affinity.translate(geom, X0, Y0)


def plane(a: float, b: float, rows: int = 4, cols: int = 4, cell: float = 10.0) -> np.ndarray:
    """z = a * x + b * y at cell centres (x east, y north from the south-west corner)."""
    x = cell * (np.arange(cols) + 0.5)
    y = cell * (rows - np.arange(rows) - 0.5)
    return a * x[None, :] + b * y[:, None]


# --- slope and coverage, by hand ------------------------------------------------------------


def test_slope_of_a_plane_is_exact_up_to_the_edges() -> None:
    east, north = gradient(grid_of(plane(0.3, 0.4)))
    assert np.allclose(east, 0.3) and np.allclose(north, 0.4)
    assert np.allclose(slope_pct(east, north), 50.0)  # 100 * sqrt(0.3² + 0.4²)


def test_slope_on_a_geographic_grid_uses_metres_at_each_latitude() -> None:
    """1 m more per cell eastwards on 0.001° cells: the slope is 1 m over the cell's width in
    metres at the row's latitude (pyproj.Geod), i.e. wider cells near the equator."""
    z = np.tile(np.arange(5, dtype=float), (3, 1))
    grid = Grid(z, Affine(0.001, 0, -68.0, 0, -0.001, 10.0015), CRS.from_epsg(4326))
    east, north = gradient(grid)
    geod = pyproj.Geod(ellps="WGS84")
    for row, lat in enumerate((10.001, 10.0, 9.999)):
        width = geod.inv(-68.0, lat, -67.999, lat)[2]
        assert east[row] == pytest.approx(1 / width, rel=1e-9)
    assert np.allclose(north, 0.0)


def test_nodata_leaves_its_cell_empty_and_its_neighbours_extrapolated() -> None:
    z = plane(0.1, 0.0, rows=3, cols=5)
    z[1, 2] = np.nan
    east, _ = gradient(grid_of(z))
    assert np.isnan(east[1, 2])
    assert np.allclose(np.delete(east.ravel(), 7), 0.1)  # 2*centre - opposite: still a plane


def test_coverage_is_the_exact_area_share() -> None:
    """A triangle halving one cell diagonally; a 2x2-cell square with a 1-cell hole."""
    t = Affine(10, 0, 0, 0, -10, 20)  # 2 x 2 cells of 10 m, y from 0 to 20
    triangle = shapely.Polygon([(0, 10), (10, 10), (10, 20)])
    ring = shapely.Polygon(
        [(0, 0), (20, 0), (20, 20), (0, 20)], [[(5, 5), (5, 15), (15, 15), (15, 5)]]
    )
    cov = coverage(np.array([triangle, ring]), t)
    first = cov.frac[cov.start[0] : cov.start[1]]
    assert first.sum() == pytest.approx(0.5) and first.max() == pytest.approx(0.5)
    second = cov.frac[cov.start[1] : cov.start[2]]
    assert sorted(second[second > 0]) == pytest.approx([0.75] * 4)  # each cell loses a quarter


def test_mean_on_a_plane_weights_cells_by_coverage() -> None:
    """z = 0.3 x + 0.4 y; a 20 x 10 m parcel in the second row from the north (y 20..30)
    covering half of column 0, all of column 1 and half of column 2: weights 0.5, 1, 0.5."""
    grid = grid_of(plane(0.3, 0.4))
    parcel = local(shapely.box(5, 20, 25, 30))
    got = zonal(grid, slope_pct(*gradient(grid)), np.array([parcel]), 30.0)
    z = [0.3 * x + 0.4 * 25 for x in (5, 15, 25)]  # cell centres 5, 15, 25 m east; y = 25 m
    assert got["mean_elevation_m"][0] == pytest.approx((0.5 * z[0] + z[1] + 0.5 * z[2]) / 2)
    assert got["min_elevation_m"][0] == pytest.approx(z[0])
    assert got["max_elevation_m"][0] == pytest.approx(z[2])
    assert got["mean_slope_pct"][0] == pytest.approx(50.0)
    assert got["mean_slope_deg"][0] == pytest.approx(math.degrees(math.atan(0.5)), abs=1e-4)
    assert got["steep_share_pct"][0] == pytest.approx(100.0)
    assert got["uncovered_pct"][0] == pytest.approx(0.0)


def test_steep_share_counts_the_area_above_the_threshold() -> None:
    """Columns at 0, 0, 0, 10, 20, 30 m: Horn's slopes are 0, 0, 50, 100, 100, 100 %. A parcel
    on half of column 2 and all of column 3 (one row): weights 0.5 and 1."""
    grid = grid_of([[0, 0, 0, 10, 20, 30]] * 2)
    slope = slope_pct(*gradient(grid))
    assert np.allclose(slope[0], [0, 0, 50, 100, 100, 100])
    parcel = np.array([local(shapely.box(25, 0, 40, 10))])
    got = zonal(grid, slope, parcel, 60.0)
    assert got["mean_slope_pct"][0] == pytest.approx((0.5 * 50 + 100) / 1.5)
    assert got["steep_share_pct"][0] == pytest.approx(100 * 1 / 1.5)
    assert got["mean_elevation_m"][0] == pytest.approx((0.5 * 0 + 10) / 1.5)
    assert zonal(grid, slope, parcel, 30.0)["steep_share_pct"][0] == pytest.approx(100.0)


def test_parcels_off_the_dem_or_on_nodata_get_no_statistics() -> None:
    z = plane(0.1, 0.1)
    z[0, 3] = np.nan  # the north-east cell
    grid = grid_of(z)
    parcels = np.array(
        [
            local(shapely.box(30, -10, 40, 10)),  # half south of the grid
            local(shapely.box(30, 30, 40, 40)),  # on the nodata cell
            local(shapely.box(0, 0, 10, 10)),
        ]
    )  # inside
    got = zonal(grid, slope_pct(*gradient(grid)), parcels, 30.0)
    assert got["uncovered_pct"].tolist() == pytest.approx([50.0, 100.0, 0.0])
    for name in ("mean_elevation_m", "min_elevation_m", "mean_slope_pct", "steep_share_pct"):
        assert np.isnan(got[name][:2]).all() and not np.isnan(got[name][2])


def test_a_polygon_larger_than_a_batch_is_cut_into_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same figures whether a polygon is handled whole or as tiles of 3 x 3 cells."""
    z = plane(0.2, -0.1, rows=12, cols=12) + np.add.outer(np.arange(12.0) ** 2, np.arange(12.0))
    grid = grid_of(z)
    slope = slope_pct(*gradient(grid))
    polygon = np.array(
        [
            local(
                shapely.Point(60, 60)
                .buffer(47, quad_segs=5)
                .difference(shapely.box(40, 40, 55, 70))
            )
        ]
    )
    whole = zonal(grid, slope, polygon, 30.0)
    monkeypatch.setattr(zonal_module, "BATCH_CELLS", 50)
    monkeypatch.setattr(zonal_module, "TILE_CELLS", 3)
    tiled = zonal(grid, slope, polygon, 30.0)
    for name, values in whole.items():
        assert tiled[name] == pytest.approx(values, rel=1e-12), name


def test_a_grid_of_tiny_cells_under_big_parcels_costs_its_cells_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An editor stored a DEM of 0.7 mm cells that barely touched the commune: each parcel's
    window, counted in those cells, was cut into billions of tiles (numpy refused 50 GiB and
    every terrain and land-recovery request failed). A parcel is cut to the grid first, so
    no more cells are weighed than the grid has (plus each window's spare column); what lies
    beyond it is uncovered, worked out by hand: a 100 m square with the 1 cm grid at its
    north-east corner is covered for 1e-8 of its area."""
    weighed = []
    real = zonal_module.coverage

    def counted(geoms: np.ndarray, transform: Affine) -> zonal_module.Coverage:
        cov = real(geoms, transform)
        weighed.append(len(cov.frac))
        assert sum(weighed) <= 100, "cells far beyond the grid's 16 weighed"
        return cov

    monkeypatch.setattr(zonal_module, "coverage", counted)
    grid = grid_of(plane(0.1, 0.2, rows=4, cols=4, cell=0.0025), cell=0.0025)  # 1 cm square
    parcels = np.array(
        [
            local(shapely.box(0.01 - 100, 0.01 - 100, 0.01, 0.01)),  # its NE corner on the grid
            local(shapely.box(-500, -500, -400, -400)),  # nowhere near it
        ]
    )
    got = zonal(grid, slope_pct(*gradient(grid)), parcels, 30.0)
    assert got["uncovered_pct"].tolist() == pytest.approx([100 * (1 - 1e-8), 100.0])
    assert np.isnan(got["mean_elevation_m"]).all()


def test_illumination_of_flat_ground_is_the_sine_of_the_altitude() -> None:
    flat = illumination(np.zeros(1), np.zeros(1), 315, 45)
    assert flat[0] == pytest.approx(math.sin(math.radians(45)))
    # a slope facing the light (rising to the south-east, so facing north-west) at 45°
    # is lit head on; the opposite one is in its own shadow
    s = 1 / math.sqrt(2)
    assert illumination(np.array([s]), np.array([-s]), 315, 45)[0] == pytest.approx(1.0)
    assert illumination(np.array([-s]), np.array([s]), 315, 45)[0] == 0.0


# --- through the database and the API ------------------------------------------------------


def write_dem(
    folder: Path,
    z: np.ndarray,
    west: float,
    north: float,
    cell: float = 10.0,
    name: str = "dem.tif",
) -> Path:
    path = folder / name
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=z.shape[1],
        height=z.shape[0],
        count=1,
        dtype="float32",
        crs="EPSG:32619",
        nodata=-9999,
        transform=Affine(cell, 0, west, 0, -cell, north),
    ) as dst:
        dst.write(z.astype("float32"), 1)
    return path


def wkb(geom_utm: shapely.Geometry) -> bytes:
    return shapely.to_wkb(
        shapely.transform(
            geom_utm, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1]))
        )
    )


async def add_commune(conn: AsyncConnection, code: str, box_m: tuple[float, ...]) -> int:
    cur = await conn.execute(
        "INSERT INTO communes (code, name, kind, status, geom) VALUES (%s, %s, 'rural', "
        "'active', ST_Multi(ST_GeomFromWKB(%s, 4326))) RETURNING id",
        (code, code.title(), wkb(local(shapely.box(*box_m)))),
    )
    return (await cur.fetchone())[0]


async def add_parcel(
    conn: AsyncConnection, commune_id: int, box_m: tuple[float, ...], code: str
) -> int:
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, land_use, geom) VALUES "
        "(%s, %s, 'occupied', 'crops', ST_Multi(ST_GeomFromWKB(%s, 4326))) RETURNING id",
        (commune_id, code, wkb(local(shapely.box(*box_m)))),
    )
    return (await cur.fetchone())[0]


async def test_sample_5_de_marzo_through_the_api(client: httpx.AsyncClient) -> None:
    got = (await client.get("/communes/5-DE-MARZO/analyses/terrain")).json()
    assert got["summary"]["dem"]["crs"] == "EPSG:32619"
    assert got["summary"]["parcels"] == got["summary"]["parcels_with_statistics"] == 16
    assert got["summary"]["commune"]["uncovered_pct"] == 0.0
    for f in got["features"]:
        p = f["properties"]
        # the hill: 897-903 m at the foot, 1,020 m on top
        assert 896 <= p["min_elevation_m"] <= p["mean_elevation_m"] <= p["max_elevation_m"] <= 1021
        assert 0 <= p["steep_share_pct"] <= 100 and p["mean_slope_pct"] > 0
        assert p["note"] is None
    geojson = json.loads(
        (
            await client.get(
                "/communes/5-DE-MARZO/analyses/terrain?f=geojson&slope_threshold_pct=1000"
            )
        ).text
    )
    assert all(f["properties"]["steep_share_pct"] == 0 for f in geojson["features"])
    rows = list(
        csv.DictReader(
            io.StringIO((await client.get("/communes/5-DE-MARZO/analyses/terrain?f=csv")).text)
        )
    )
    assert len(rows) == 16 and float(rows[0]["mean_elevation_m"]) > 896


async def test_parcels_partly_off_the_dem_through_the_api(
    conn: AsyncConnection, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The DEM covers x 0..200 m of a commune 400 m wide: inside, half off, wholly off."""
    cid = await add_commune(conn, "TERRAIN-HALF", (0, 0, 400, 100))
    await dems.register(conn, cid, write_dem(tmp_path, plane(0.1, 0, 10, 20), X0, Y0 + 100))
    inside = await add_parcel(conn, cid, (20, 20, 80, 80), "IN")
    half = await add_parcel(conn, cid, (150, 20, 250, 80), "HALF")
    off = await add_parcel(conn, cid, (300, 20, 380, 80), "OFF")
    got = (await client.get("/communes/TERRAIN-HALF/analyses/terrain")).json()
    props = {f["id"]: f["properties"] for f in got["features"]}
    # z = 0.1 x on a plane: the mean is z at the parcel's centroid, x = 50 m
    assert props[inside]["mean_elevation_m"] == pytest.approx(5.0)
    assert props[inside]["mean_slope_pct"] == pytest.approx(10.0)
    assert props[half]["mean_elevation_m"] is None and "50.0 %" in props[half]["note"]
    assert props[off]["mean_slope_pct"] is None and "100.0 %" in props[off]["note"]
    assert any("covers only 50.0 %" in w for w in got["warnings"])


async def test_no_dem_a_dem_elsewhere_and_no_parcels(
    conn: AsyncConnection, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    cid = await add_commune(conn, "TERRAIN-EMPTY", (0, 0, 100, 100))
    missing = await client.get("/communes/TERRAIN-EMPTY/analyses/terrain")
    assert missing.status_code == 404 and "has no DEM" in missing.json()["detail"]
    assert "dem add TERRAIN-EMPTY" in missing.json()["detail"]
    # a DEM that misses its commune (its file's CRS misstated) is refused, nothing stored
    far = await add_commune(conn, "TERRAIN-FAR", (5000, 5000, 5100, 5100))
    with pytest.raises(InvalidFile, match="misses commune TERRAIN-FAR"):
        await dems.register(conn, far, write_dem(tmp_path, plane(0, 0), X0, Y0 + 40))
    cur = await conn.execute("SELECT count(*) FROM dems WHERE commune_id = %s", (far,))
    assert (await cur.fetchone())[0] == 0
    # one that covered its commune until the commune's outline moved away
    moved = await add_commune(conn, "TERRAIN-MOVED", (0, 0, 100, 100))
    await dems.register(conn, moved, write_dem(tmp_path, plane(0, 0, 12, 12), X0 - 10, Y0 + 110))
    await conn.execute(
        "UPDATE communes SET geom = (SELECT geom FROM communes WHERE id = %s) WHERE id = %s",
        (far, moved),
    )
    elsewhere = await client.get("/communes/TERRAIN-MOVED/analyses/terrain")
    assert elsewhere.status_code == 400 and "does not cover" in elsewhere.json()["detail"]
    await dems.register(conn, cid, write_dem(tmp_path, plane(0, 0, 12, 12), X0 - 10, Y0 + 110))
    empty = await client.get("/communes/TERRAIN-EMPTY/analyses/terrain")
    assert empty.status_code == 200 and empty.json()["features"] == []
    assert "the commune has no parcels" in empty.json()["warnings"]


# --- hillshade -----------------------------------------------------------------------------


async def test_hillshade_png_for_leaflet(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    response = await client.get("/communes/5-DE-MARZO/hillshade.png?azimuth=315&altitude=45")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    west, south, east, north = map(float, response.headers["x-bounds"].split(","))
    cur = await conn.execute("SELECT id FROM communes WHERE code = '5-DE-MARZO'")
    dem = await dems.for_commune(conn, (await cur.fetchone())[0])
    fw, fs, fe, fn = dem.footprint.bounds
    assert fw - 1e-4 < west < east < fe + 1e-4 and fs - 1e-4 < south < north < fn + 1e-4
    with rasterio.MemoryFile(response.content) as mem, mem.open() as png:
        gray, alpha = png.read()
    assert png.count == 2 and gray[alpha > 0].min() >= 1
    # clipped to the commune: clear in the DEM's corners, a soft (partly opaque) edge
    assert alpha[0, 0] == alpha[-1, -1] == 0 and alpha.max() == 255
    assert ((alpha > 0) & (alpha < 255)).sum() > 0
    whole = await client.get("/communes/5-DE-MARZO/hillshade.png?clip=false")
    with rasterio.MemoryFile(whole.content) as mem, mem.open() as png:
        _, whole_alpha = png.read()
    assert whole_alpha.shape == alpha.shape and (whole_alpha > 0).sum() > (alpha > 0).sum()
    shade, bounds = hillshade(dem)
    assert shade.dtype == np.uint8 and bounds == pytest.approx(dem.footprint.bounds)
    small, _ = hillshade_png(dem, ShadeParams(crs="EPSG:4326", max_size=64))
    with rasterio.MemoryFile(small) as mem, mem.open() as png:
        assert max(png.width, png.height) == 64
    bad = await client.get("/communes/5-DE-MARZO/hillshade.png?altitude=0")
    assert bad.status_code == 400
    nodem = await client.get("/communes/EL-MAIZAL/hillshade.png")
    assert nodem.status_code == 404 and "has no DEM" in nodem.json()["detail"]
    # a Spanish map page says why in Spanish (it said "Análisis no disponible: commune ...
    # has no DEM")
    page = (await client.get("/maps/communes/EL-MAIZAL/terrain")).text
    assert "no hay modelo de elevación (MDE) de esta comuna" in page and "has no DEM" not in page
    english = (await client.get("/maps/communes/EL-MAIZAL/terrain?lang=en")).text
    assert "no elevation model (DEM) of this commune yet" in english
    # found from outside: the public page told everyone the commands an editor would run
    assert "geo-comuna dem add" not in page + english and "POST /communes" not in page + english


# --- DEM uploads: HTTP and CLI -------------------------------------------------------------


async def test_upload_a_dem_over_http(
    conn: AsyncConnection, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await add_commune(conn, "TERRAIN-UP", (0, 0, 100, 100))
    tif = write_dem(tmp_path, plane(0.1, 0.2, 12, 12), X0 - 10, Y0 + 110).read_bytes()
    sneaky = "../../../../tmp/..\\evil name.tif"
    added = await client.post(
        "/communes/TERRAIN-UP/dems", files={"file": (sneaky, tif, "image/tiff")}
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["name"] == "evil-name" and body["crs"] == "EPSG:32619"
    assert body["resolution_m"] == 10.0 and body["commune"] == "TERRAIN-UP"
    listed = (await client.get("/communes/TERRAIN-UP/dems")).json()["dems"]
    assert [d["name"] for d in listed] == ["evil-name"]
    named = await client.post(
        "/communes/TERRAIN-UP/dems?name=lidar-2024", files={"file": ("x.tif", tif, "image/tiff")}
    )
    assert named.status_code == 201 and named.json()["name"] == "lidar-2024"
    # DEM writes are in the audit trail too: who, which raster, its footprint
    trail = (await client.get("/audit?layer=dems")).json()["entries"]
    mine = [e for e in trail if e["after"] and e["after"]["properties"]["name"] == "lidar-2024"]
    assert len(mine) == 1 and mine[0]["action"] == "insert" and mine[0]["user"] == "test-admin"
    assert mine[0]["after"]["geometry"]["type"] == "Polygon"
    bad = await client.post(
        "/communes/TERRAIN-UP/dems", files={"file": ("notes.tif", b"not a tiff", "image/tiff")}
    )
    assert bad.status_code == 422 and "notes.tif" in bad.json()["detail"]
    site = tmp_path / "site.tif"  # a local engineering CRS: not placeable on the globe
    with rasterio.open(
        site,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        crs=CRS.from_wkt('LOCAL_CS["site",UNIT["metre",1]]'),
        transform=Affine(1, 0, 0, 0, -1, 4),
    ) as dst:
        dst.write(np.zeros((1, 4, 4), "float32"))
    local_crs = await client.post(
        "/communes/TERRAIN-UP/dems", files={"file": ("site.tif", site.read_bytes(), "image/tiff")}
    )
    assert local_crs.status_code == 422 and "cannot be transformed" in local_crs.json()["detail"]
    badname = await client.post(
        "/communes/TERRAIN-UP/dems?name=../x", files={"file": ("x.tif", tif, "image/tiff")}
    )
    assert badname.status_code == 400
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with anonymous:
        refused = await anonymous.post(
            "/communes/TERRAIN-UP/dems", files={"file": ("x.tif", tif, "image/tiff")}
        )
    assert refused.status_code == 401


async def test_a_dem_that_holds_no_ground_is_refused(
    conn: AsyncConnection, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Probes from outside stored an all-NaN grid, elevations of 3e38 and a 2 x 2 grid of
    the whole world (20,000 km cells, which would cover every commune)."""
    await add_commune(conn, "TERRAIN-NO", (0, 0, 100, 100))
    empty = write_dem(tmp_path, np.full((4, 4), -9999.0), X0, Y0 + 40, name="empty.tif")
    huge = write_dem(tmp_path, np.full((4, 4), 3e38), X0, Y0 + 40, name="huge.tif")
    one_inf = plane(0.1, 0.2)
    one_inf[1, 2] = np.inf
    infinite = write_dem(tmp_path, one_inf, X0, Y0 + 40, name="infinite.tif")
    world = tmp_path / "world.tif"
    with rasterio.open(
        world, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32",
        crs="EPSG:4326", transform=Affine(180, 0, -180, 0, -90, 90),
    ) as dst:  # fmt: skip
        dst.write(np.full((1, 2, 2), 100, "float32"))
    for path, said in (
        (empty, "holds no elevation"),
        (huge, "which are not metres above the sea"),
        (infinite, "holds infinite elevations"),
        (world, "a DEM for parcels has cells of at most 1,000 m"),
    ):
        r = await client.post(
            "/communes/TERRAIN-NO/dems", files={"file": (path.name, path.read_bytes())}
        )
        assert r.status_code == 422 and said in r.json()["detail"], r.text
    assert (await client.get("/communes/TERRAIN-NO/dems")).json()["dems"] == []


async def test_analyses_use_the_dem_that_covers_the_commune_and_a_dem_can_be_removed(
    conn: AsyncConnection, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    """A 1 cm² patch of 2.5 mm cells touching the commune was the finest, so it took the
    place of the DEM that covered the commune; and a wrong DEM could not be removed."""
    await add_commune(conn, "TERRAIN-PICK", (0, 0, 100, 100))
    cover = write_dem(tmp_path, plane(0.1, 0.2, 12, 12), X0 - 10, Y0 + 110, name="cover.tif")
    patch = write_dem(tmp_path, plane(0.1, 0.2), X0 - 0.005, Y0 + 0.005, 0.0025, "patch.tif")
    finer = write_dem(tmp_path, plane(0.1, 0.2, 24, 24), X0 - 10, Y0 + 110, 5.0, "finer.tif")
    ids = {}
    for path in (cover, patch):
        r = await client.post(
            "/communes/TERRAIN-PICK/dems", files={"file": (path.name, path.read_bytes())}
        )
        assert r.status_code == 201, r.text
        ids[path.stem] = r.json()["id"]

    async def chosen() -> list[str]:
        return [d["name"] for d in (await client.get("/communes/TERRAIN-PICK/dems")).json()["dems"]]

    assert await chosen() == ["cover", "patch"]
    commune = await resolve_commune(conn, "TERRAIN-PICK")
    assert (await dems.for_commune(conn, commune)).name == "cover"
    r = await client.post(
        "/communes/TERRAIN-PICK/dems", files={"file": (finer.name, finer.read_bytes())}
    )
    ids["finer"] = r.json()["id"]
    assert await chosen() == ["finer", "cover", "patch"]  # as much covered, finer

    _, token = await accounts.add_user(conn, "other-editor", "editor", ["EL-MAIZAL"])
    async with api_client(conn, settings, token) as other:
        r = await other.delete(f"/communes/TERRAIN-PICK/dems/{ids['finer']}")
        assert r.status_code == 403, r.text
    assert (await client.delete(f"/communes/TERRAIN-PICK/dems/{ids['finer']}")).status_code == 204
    assert await chosen() == ["cover", "patch"]
    r = await client.delete(f"/communes/TERRAIN-PICK/dems/{ids['finer']}")
    assert r.status_code == 404 and "no DEM" in r.json()["detail"]
    r = await client.delete(f"/communes/EL-MAIZAL/dems/{ids['cover']}")  # not El Maizal's
    assert r.status_code == 404


def _cli(dsn: str, *args: str) -> Result:
    """In process: the command's code path is the same, without a new interpreter each."""
    return CliRunner().invoke(cli_app, list(args), env={"GEO_COMUNA_DATABASE_URL": dsn})


def test_cli_dem_add_and_list(own_db: str, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 truncated")
    refused = _cli(own_db, "dem", "add", "EL-MAIZAL", str(bad))
    assert refused.exit_code != 0 and "cannot read broken.tif" in refused.stderr
    missing = _cli(own_db, "dem", "add", "EL-MAIZAL", str(tmp_path / "nothing.tif"))
    assert missing.exit_code != 0 and "no such file" in missing.stderr
    with psycopg.connect(own_db) as db:
        centre = db.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c "
            "FROM communes WHERE code = 'EL-MAIZAL') s"
        ).fetchone()
    to_utm = pyproj.Transformer.from_crs(4326, 32619, always_xy=True)
    cx, cy = to_utm.transform(*centre)
    good = write_dem(
        tmp_path, plane(0, 0.01, 50, 50, 100.0), cx - 2500, cy + 2500, 100.0, "maizal.tif"
    )
    added = _cli(own_db, "dem", "add", "EL-MAIZAL", str(good), "--name", "srtm")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "srtm"
    listed = _cli(own_db, "dem", "list", "EL-MAIZAL")
    assert listed.exit_code == 0 and [d["name"] for d in json.loads(listed.stdout)] == ["srtm"]
    everything = json.loads(_cli(own_db, "dem", "list").stdout)
    assert {d["commune"] for d in everything} == {"EL-MAIZAL", "5-DE-MARZO"}
    gone = _cli(own_db, "dem", "remove", "EL-MAIZAL", str(json.loads(added.stdout)["id"]))
    assert gone.exit_code == 0, gone.stderr
    again = _cli(own_db, "dem", "remove", "EL-MAIZAL", str(json.loads(added.stdout)["id"]))
    assert again.exit_code == 1 and "has no DEM" in again.stderr
    assert json.loads(_cli(own_db, "dem", "list", "EL-MAIZAL").stdout) == []


async def test_a_commune_holds_a_bounded_number_of_dems(
    conn: AsyncConnection,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found from outside: an editor's DEM uploads under new names grew the data directory
    without end. One more than the most is refused before it is read; one replaced by its
    name is not one more."""
    monkeypatch.setattr(dems, "MAX_DEMS_PER_COMMUNE", 1)
    await add_commune(conn, "TERRAIN-MAX", (0, 0, 100, 100))
    tif = write_dem(tmp_path, plane(0.1, 0.2, 12, 12), X0 - 10, Y0 + 110).read_bytes()
    path = "/communes/TERRAIN-MAX/dems"
    first = await client.post(f"{path}?name=a", files={"file": ("a.tif", tif, "image/tiff")})
    assert first.status_code == 201, first.text
    more = await client.post(f"{path}?name=b&lang=es", files={"file": ("b.tif", tif, "image/tiff")})
    assert more.status_code == 413 and "la comuna tiene 1 MDE" in more.json()["detail"]
    again = await client.post(f"{path}?name=a", files={"file": ("a.tif", tif, "image/tiff")})
    assert again.status_code == 201, again.text
    listed = (await client.get(path)).json()["dems"]
    assert [d["name"] for d in listed] == ["a"]


async def test_dems_stored_side_by_side_stay_within_the_most(
    own_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found from outside: 12 uploads at once each found room and the commune held 13 DEMs.
    The second waits for the first to commit, counts again, and is refused."""
    monkeypatch.setattr(dems, "MAX_DEMS_PER_COMMUNE", 1)
    first = await AsyncConnection.connect(own_db, autocommit=True)
    second = await AsyncConnection.connect(own_db, autocommit=True)
    try:
        commune = await add_commune(first, "TERRAIN-RACE", (0, 0, 100, 100))
        tif = write_dem(tmp_path, plane(0.1, 0.2, 12, 12), X0 - 10, Y0 + 110)
        async with first.transaction():
            await dems.register(first, commune, tif, "a")
            other = asyncio.create_task(dems.register(second, commune, tif, "b"))
            await asyncio.sleep(1)
            assert not other.done()  # it waits for the first to commit
        with pytest.raises(TooLarge):
            await asyncio.wait_for(other, 60)
        cur = await first.execute("SELECT count(*) FROM dems WHERE commune_id = %s", (commune,))
        assert (await cur.fetchone())[0] == 1
    finally:
        for connection in (first, second):
            await connection.close()
