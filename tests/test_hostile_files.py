"""Hostile files: uploads that claim one format and are another. GDAL VRT and GDALG documents
that point at a server file or an internal URL, under every suffix we accept and as a DEM; a
GeoJSON whose CRS is a link; KML with entities; zips with tricks; DEMs that are decompression
bombs; a VRT stored as a DEM before uploads were checked.

Each attack is first shown to work against GDAL as it comes (a plain pyogrio / rasterio in a
subprocess reads the secret file or calls the URL), then shown to get a 4xx from geo_comuna
with nothing read, nothing fetched and nothing written; a no_proxy environment variable that
names the listener is set throughout, so no proxy trick is what stops the fetch.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import sqlite3
import struct
import subprocess
import sys
import threading
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from psycopg import AsyncConnection

from geo_comuna import gdal, work
from geo_comuna.analysis.toolkit.dem import coarsened_warning, read_window
from geo_comuna.errors import InvalidFile
from geo_comuna.io import dems, sniff
from tests.factories import LAT, LON
from tests.test_analysis_terrain import X0, Y0, write_dem

pytestmark = pytest.mark.anyio
MARKER = f"geo-comuna-secret-{uuid.uuid4().hex[:8]}"
PROBLEM = "application/problem+json"


# ---------------------------------------------------------------- what the attacks point at


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file only root may read, with a marker to look for everywhere afterwards."""
    path = tmp_path / "secret.csv"
    path.write_text(f'id,notes,wkt\n1,{MARKER},"POINT ({LON} {LAT})"\n')
    path.chmod(0o600)
    return path


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """An internal HTTP service on loopback that records every request; no_proxy names it."""
    hits: list[str] = []
    body = f'id,notes,wkt\n1,{MARKER},"POINT ({LON} {LAT})"\n'.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()


def vector_vrt(source: str, layer: str) -> str:
    return (
        f'<OGRVRTDataSource><OGRVRTLayer name="upload"><SrcDataSource>{source}</SrcDataSource>'
        f'<SrcLayer>{layer}</SrcLayer><GeometryField encoding="WKT" field="wkt"/>'
        "</OGRVRTLayer></OGRVRTDataSource>"
    )


def gdalg(path: Path) -> str:
    return json.dumps(
        {
            "type": "gdal_streamed_alg",
            "command_line": f"gdal vector pipeline ! read {path} ! write --of stream streamed",
            "relative_paths_relative_to_this_file": False,
        }
    )


def raster_raw_vrt(path: Path) -> str:
    return (
        '<VRTDataset rasterXSize="16" rasterYSize="1"><VRTRasterBand dataType="Byte" band="1" '
        'subClass="VRTRawRasterBand"><SourceFilename relativetoVRT="0">'
        f"{path}</SourceFilename><ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>"
        "<LineOffset>16</LineOffset></VRTRasterBand></VRTDataset>"
    )


def raster_url_vrt(url: str) -> str:
    return (
        '<VRTDataset rasterXSize="4" rasterYSize="4"><VRTRasterBand dataType="Byte" band="1">'
        f'<SimpleSource><SourceFilename relativeToVRT="0">/vsicurl/{url}/dem.tif'
        "</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )


def plain_gdal(code: str, path: Path) -> str:
    """What GDAL as it comes makes of ``path`` (a fresh interpreter, no geo_comuna loaded)."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


READ_VECTOR = "import sys, pyogrio; print(pyogrio.read_arrow(sys.argv[1])[1].to_pydict())"
READ_RASTER = (
    "import sys, rasterio\nwith rasterio.open(sys.argv[1]) as src: print(bytes(src.read(1)[0]))"
)


def shapefile_zip(path: Path, shp: bytes, names: tuple[str, ...] = ("a.shp",)) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(name, shp)
            zf.writestr(name[:-4] + ".shx", shp)
            zf.writestr(name[:-4] + ".dbf", b"\x03")
    return path


async def parcels(conn: AsyncConnection) -> int:
    return (await (await conn.execute("SELECT count(*) FROM parcels")).fetchone())[0]


def refused(response: httpx.Response, *statuses: int) -> None:
    """A 4xx problem that says nothing of the secret nor of where the server keeps files."""
    assert response.status_code in (statuses or (400, 413, 415, 422)), response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert MARKER not in response.text and "root:" not in response.text


# ---------------------------------------------------------------- the process' GDALs


def test_both_gdals_keep_only_our_drivers_and_no_network() -> None:
    """In a fresh interpreter, once the app is built, pyogrio's and rasterio's GDAL offer only
    the formats geo_comuna reads and writes, and the network settings are in place."""
    code = (
        "import json, pyogrio, rasterio, rasterio.env\n"
        "from geo_comuna.api.app import create_app\n"
        "create_app()\n"
        "with rasterio.Env() as env: raster = sorted(env.drivers())\n"
        "print(json.dumps({'vector': sorted(pyogrio.list_drivers()), 'raster': raster,\n"
        " 'raw': [pyogrio.get_gdal_config_option('GDAL_VRT_ENABLE_RAWRASTERBAND'),\n"
        "         rasterio.env.get_gdal_config('GDAL_VRT_ENABLE_RAWRASTERBAND')],\n"
        " 'curl': pyogrio.get_gdal_config_option('CPL_VSIL_CURL_ALLOWED_EXTENSIONS')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found["vector"]) == gdal.VECTOR and set(found["raster"]) == gdal.RASTER
    assert "OGR_VRT" not in found["vector"] and "GDALG" not in found["vector"]
    assert found["raw"][0] == "NO" and found["raw"][1] in ("NO", False)
    assert found["curl"] == gdal.CONFIG["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"]


# ---------------------------------------------------------------- vector uploads


ACCEPTED = (".geojson", ".json", ".kml", ".csv", ".gpkg", ".zip")


@pytest.mark.parametrize("suffix", ACCEPTED)
async def test_a_vrt_or_gdalg_under_every_suffix_reads_nothing_and_fetches_nothing(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    secret: Path,
    listener: tuple[str, list[str]],
    tmp_path: Path,
    suffix: str,
) -> None:
    url, hits = listener
    payloads = {
        "vrt-file": vector_vrt(f"CSV:{secret}", secret.stem),
        "vrt-url": vector_vrt(f"/vsicurl/{url}/internal.csv", "internal"),
        "gdalg": gdalg(secret),
    }
    # the attacks are real: GDAL as it comes reads the secret and calls the URL
    for name, text in payloads.items():
        probe = tmp_path / f"{name}.probe"
        probe.write_text(text)
        assert MARKER in plain_gdal(READ_VECTOR, probe), name
    assert hits, "GDAL as it comes did not call the internal URL"
    hits.clear()
    before = await parcels(conn)
    for name, text in payloads.items():
        body = text.encode()
        if suffix == ".zip":  # the document as a zipped Shapefile's .shp
            body = shapefile_zip(tmp_path / f"{name}.zip", body).read_bytes()
        r = await client.post(
            "/collections/parcels/import?commune=EL-MAIZAL",
            files={"file": (f"{name}{suffix}", body, "application/octet-stream")},
        )
        refused(r)
    assert hits == [] and await parcels(conn) == before
    cur = await conn.execute("SELECT count(*) FROM parcels WHERE notes LIKE %s", (f"%{MARKER}%",))
    assert (await cur.fetchone())[0] == 0


def feature_collection(crs: object) -> dict:
    return {
        "type": "FeatureCollection",
        "crs": crs,
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "X-1", "tenure": "occupied", "land_use": "crops"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[LON, LAT], [LON + 0.001, LAT], [LON, LAT + 0.001], [LON, LAT]]
                    ],
                },
            }
        ],
    }


async def test_a_geojson_crs_link_is_refused_before_gdal_fetches_it(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    listener: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, hits = listener
    link = {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}}
    plain = tmp_path / "link.geojson"
    plain.write_text(json.dumps(feature_collection(link)))
    plain_gdal(READ_VECTOR, plain)
    assert hits, "GDAL as it comes did not fetch the CRS link"
    hits.clear()
    text = json.dumps(feature_collection(link))
    variants = {
        "plain": text,
        "escaped key": text.replace('"crs"', '"\\u0063rs"'),
        "upper-case key": text.replace('"crs"', '"CRS"'),
        # a case-twin GDAL would read first while a JSON parser keeps the second
        "twin": text.replace(
            '"crs": {"type": "link"', '"crs": {"TYPE": "link", "type": "name"'
        ).replace('"type": "ogcwkt"', '"type": "ogcwkt", "name": "EPSG:4326"'),
        # found by a probe: GDAL ends a key at a NUL, so these are its "crs" too
        "nul key": text.replace('"crs"', '"crs\\u0000"'),
        "nul suffix": text.replace('"crs"', '"CRS\\u0000zzz"'),
        "nul twin": text.replace(
            '"crs": {',
            '"crs": {"type": "name", "properties": {"name": "EPSG:4326"}}, "crs\\u0000": {',
        ),
    }
    before = await parcels(conn)
    for name, body in variants.items():
        r = await client.post(
            "/collections/parcels/import?commune=EL-MAIZAL",
            files={"file": (f"{name}.geojson", body.encode(), "application/geo+json")},
        )
        refused(r, 422)
        detail = r.json()["detail"].lower()
        assert "crs" in detail or "nul" in detail, name
    assert hits == [] and await parcels(conn) == before
    unknown = feature_collection({"type": "name", "properties": {"name": "EPSG:99999999"}})
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": ("u.geojson", json.dumps(unknown).encode(), "application/geo+json")},
    )
    refused(r, 422)
    assert "EPSG:99999999" in r.json()["detail"]
    # found from outside: a name PROJ answers by opening a server's file (a grid, an init
    # file) was asked of PROJ as it came, and GDAL then opened the file again
    for name in (
        "+proj=longlat +ellps=WGS84 +nadgrids=/dev/zero +type=crs",
        "+init=/etc/passwd:root",
        'GEOGCRS["x",DATUM["d",ELLIPSOID["e",6378137,298.25]],CS[ellipsoidal,2],'
        'AXIS["lat",north],AXIS["lon",east],UNIT["degree",0.0174532925199433],'
        'REMARK["x"],EXTENSION["PROJ4_GRIDS","/dev/zero"]]',
    ):
        grid = feature_collection({"type": "name", "properties": {"name": name}})
        r = await client.post(
            "/collections/parcels/import?commune=EL-MAIZAL",
            files={"file": ("g.geojson", json.dumps(grid).encode(), "application/geo+json")},
        )
        refused(r, 422)
        assert "names a file" in r.json()["detail"], (name, r.text)
    named = feature_collection({"type": "name", "properties": {"name": "EPSG:4326"}})
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": ("ok.geojson", json.dumps(named).encode(), "application/geo+json")},
    )
    assert r.status_code == 201, r.text
    assert await parcels(conn) == before + 1


def _not_a_geopackage(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    return path.read_bytes()


async def test_files_that_are_not_what_their_name_says(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    doctype = '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY lol "lol">]>'
    cases = {
        "entities.kml": f"{doctype}<kml>{'&lol;' * 10}</kml>",
        "html.kml": "<html><body>not kml</body></html>",
        "json.csv": '{"type": "FeatureCollection", "features": []}',
        "binary.csv": "id,wkt\n\x00\x01",
        "xml.geojson": "<kml></kml>",
        "array.json": "[]",
        "sqlite.gpkg": _not_a_geopackage(tmp_path / "t.sqlite"),
        "two.zip": shapefile_zip(tmp_path / "two.zip", b"\x00\x00\x27\x0a", ("a.shp", "b.shp")),
        "traversal.zip": shapefile_zip(tmp_path / "t.zip", b"\x00\x00\x27\x0a", ("../a.shp",)),
        "notashp.zip": shapefile_zip(tmp_path / "n.zip", b"<OGRVRTDataSource/>"),
    }
    lonely = tmp_path / "lonely.zip"
    with zipfile.ZipFile(lonely, "w") as zf:
        zf.writestr("a.shp", b"\x00\x00\x27\x0a" + bytes(96))
    cases["lonely.zip"] = lonely.read_bytes()
    before = await parcels(conn)
    for name, content in cases.items():
        body = content.read_bytes() if isinstance(content, Path) else content
        body = body if isinstance(body, bytes) else body.encode()
        r = await client.post(
            "/collections/parcels/import?commune=EL-MAIZAL",
            files={"file": (name, body, "application/octet-stream")},
        )
        refused(r)
        assert "/tmp" not in r.text, (name, r.text)
    assert await parcels(conn) == before


@pytest.mark.parametrize("twin", ["p.shx", "p.SHX", "P.PRJ"])
async def test_a_zip_with_two_members_of_one_name_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, twin: str
) -> None:
    """Found from outside: zipfile reads the last member of a name and GDAL's /vsizip/ the
    first, so a good .shx was checked and a bad one read (1,000 copies of one record: 437 KB
    became 49 million vertices); a .SHX beside the .shx, and a .prj twice, did as much."""
    from tests.test_io_errors import parcels as three

    folder = tmp_path / "shp"
    folder.mkdir()
    pyogrio.write_dataframe(three(), folder / "p.shp")
    path = tmp_path / "twins.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate: the point here
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() == Path(twin).suffix.lower():
                zf.writestr(twin, f.read_bytes())  # the twin first: what GDAL would read
            zf.write(f, f.name)
    before = await parcels(conn)
    r = await client.post(
        "/collections/parcels/import",
        params={"commune": "EL-MAIZAL"},
        files={"file": (path.name, path.read_bytes(), "application/zip")},
    )
    refused(r)
    assert "holds two files named" in r.json()["detail"], r.text
    assert await parcels(conn) == before


# ---------------------------------------------------------------- DEMs


async def dem_rows(conn: AsyncConnection) -> list[tuple]:
    cur = await conn.execute("SELECT id, name, md5(tiff) FROM dems ORDER BY id")
    return await cur.fetchall()


async def test_a_dem_that_is_a_vrt_reads_nothing_and_fetches_nothing(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    secret: Path,
    listener: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, hits = listener
    raw = tmp_path / "raw.vrt"
    raw.write_text(raster_raw_vrt(secret))
    assert "id,notes" in plain_gdal(READ_RASTER, raw)  # GDAL as it comes reads the file
    remote = tmp_path / "remote.vrt"
    remote.write_text(raster_url_vrt(url))
    plain_gdal(READ_RASTER, remote)
    assert hits, "GDAL as it comes did not call the internal URL"
    hits.clear()
    before = await dem_rows(conn)
    for path in (raw, remote):
        for name in ("dem.tif", "dem.vrt"):
            r = await client.post(
                "/communes/5-DE-MARZO/dems",
                files={"file": (name, path.read_bytes(), "image/tiff")},
            )
            refused(r, 422, 415)
    # a TIFF header in front of the document does not make it one
    disguised = b"II*\x00" + raw.read_bytes()
    r = await client.post(
        "/communes/5-DE-MARZO/dems", files={"file": ("dem.tif", disguised, "image/tiff")}
    )
    refused(r, 422)
    assert hits == [] and await dem_rows(conn) == before


async def test_a_vrt_stored_as_a_dem_before_the_checks_is_never_opened(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    secret: Path,
    listener: tuple[str, list[str]],
) -> None:
    """A database from before uploads were checked may hold one: analyses and the hillshade
    refuse it instead of handing it to GDAL."""
    url, hits = listener
    for name, text in (("raw", raster_raw_vrt(secret)), ("url", raster_url_vrt(url))):
        await conn.execute(
            "INSERT INTO dems (commune_id, name, crs, width, height, resolution_m, footprint, "
            "tiff) SELECT id, %s, 'EPSG:4326', 16, 1, 0.01, ST_Envelope(geom), %s "
            "FROM communes WHERE code = '5-DE-MARZO'",
            (name, text.encode()),
        )
    for path in (
        "/communes/5-DE-MARZO/hillshade.png",
        "/communes/5-DE-MARZO/analyses/terrain",
        "/communes/5-DE-MARZO/analyses/water-hookups",
    ):
        r = await client.get(path)
        refused(r, 422)
        assert "not a GeoTIFF" in r.json()["detail"]
    assert hits == []


async def test_a_dem_is_stored_as_a_geotiff_of_our_own(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    z = np.arange(200 * 200, dtype="float32").reshape(200, 200) / 100
    cur = await conn.execute(  # over 5 de Marzo: a DEM must reach its commune
        "SELECT round(ST_X(p)) - 100, round(ST_Y(p)) + 100 FROM (SELECT ST_Transform("
        "ST_Centroid(geom), 32619) AS p FROM communes WHERE code = '5-DE-MARZO') c"
    )
    x0, y0 = (float(v) for v in await cur.fetchone())
    upload = write_dem(tmp_path, z, x0, y0, cell=1.0)
    with rasterio.open(upload, "r+") as dst:
        dst.update_tags(SECRET=MARKER)
    r = await client.post(
        "/communes/5-DE-MARZO/dems?name=own",
        files={"file": ("dem.tif", upload.read_bytes(), "image/tiff")},
    )
    assert r.status_code == 201, r.text
    cur = await conn.execute("SELECT tiff FROM dems WHERE name = 'own'")
    stored = bytes((await cur.fetchone())[0])
    assert stored != upload.read_bytes() and MARKER.encode() not in stored
    with rasterio.MemoryFile(stored) as mem, mem.open() as src:
        assert src.driver == "GTiff" and src.nodata == -9999 and src.crs.to_epsg() == 32619
        assert src.transform == Affine(1.0, 0, x0, 0, -1.0, y0)
        np.testing.assert_array_equal(src.read(1), z)
        assert MARKER not in json.dumps(src.tags())


def _masked_dem(folder: Path, x0: float, y0: float, dtype: str) -> tuple[Path, np.ndarray]:
    """A 100 x 100 grid of 1 m cells over 5 de Marzo without a nodata value whose west half
    holds -9999 hidden by an internal mask (gdal_translate -mask writes such files)."""
    z = (np.arange(100 * 100).reshape(100, 100) % 200 + 900).astype(dtype)
    z[:, :50] = -9999 if np.dtype(dtype).kind != "u" else 0
    shown = np.zeros(z.shape, dtype="uint8")
    shown[:, 50:] = 255
    path = folder / f"masked-{dtype}.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=100, height=100, count=1, dtype=dtype,
        crs="EPSG:32619", transform=Affine(1.0, 0, x0, 0, -1.0, y0),
    ) as dst:  # fmt: skip
        dst.write(z, 1)
        dst.write_mask(shown)
    return path, z


@pytest.mark.parametrize(
    ("dtype", "hidden"),
    [("float32", None), ("int16", -32768), ("uint16", 65535), ("uint8", "refused")],
)
async def test_cells_a_mask_hides_are_stored_as_nodata(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, dtype: str, hidden: object
) -> None:
    """Found from outside: a DEM hiding its west half by an internal mask, not a nodata value,
    was checked on its visible cells and stored whole, and the terrain analysis read -9999 m
    and slopes of 1,729 %. Hidden cells are stored as nodata: NaN in a float grid, the integer
    type's far end otherwise; 8-bit cells have no value to spare, and are refused."""
    cur = await conn.execute(
        "SELECT round(ST_X(p)) - 50, round(ST_Y(p)) + 50 FROM (SELECT ST_Transform("
        "ST_Centroid(geom), 32619) AS p FROM communes WHERE code = '5-DE-MARZO') c"
    )
    x0, y0 = (float(v) for v in await cur.fetchone())
    upload, z = _masked_dem(tmp_path, x0, y0, dtype)
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/5-DE-MARZO/dems?name=masked",
        files={"file": ("masked.tif", upload.read_bytes(), "image/tiff")},
    )
    if hidden == "refused":
        refused(r, 422)
        assert "masked.tif hides cells by a mask" in r.json()["detail"]
        assert await dem_rows(conn) == before
        return
    assert r.status_code == 201, r.text
    cur = await conn.execute("SELECT tiff FROM dems WHERE name = 'masked'")
    with rasterio.MemoryFile(bytes((await cur.fetchone())[0])) as mem, mem.open() as src:
        cells = src.read(1, masked=True)
        assert cells.mask[:, :50].all() and not cells.mask[:, 50:].any()
        np.testing.assert_array_equal(cells[:, 50:], z[:, 50:])
        if hidden is None:
            assert np.isnan(src.nodata) and np.isnan(src.read(1)[:, :50]).all()
        else:
            assert src.nodata == hidden and (src.read(1)[:, :50] == hidden).all()


@pytest.mark.parametrize(
    ("crs", "west", "north", "cell", "says"),
    [
        # found from outside: at 1e20 m its 30 m cells add nothing (a 500)
        ("EPSG:32619", 1e20, 1e20, 30.0, "are no place"),
        # a longitude of -200 was stored as it came
        ("EPSG:4326", -200.0, 9.72, 0.009, "beyond the globe's degrees"),
        ("EPSG:4326", -69.2, 95.0, 0.009, "beyond the globe's degrees"),
        # UTM far beyond its zone: no place in degrees
        ("EPSG:32619", 5e7, 9e7, 30.0, "lies beyond the globe"),
    ],
)
async def test_a_dem_that_is_no_place_on_earth_is_refused(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    tmp_path: Path,
    crs: str,
    west: float,
    north: float,
    cell: float,
    says: str,
) -> None:
    path = tmp_path / "far.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=100, height=100, count=1, dtype="float32", crs=crs,
        transform=Affine(cell, 0, west, 0, -cell, north),
    ) as dst:  # fmt: skip
        dst.write(np.full((1, 100, 100), 900, dtype="float32"))
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/EL-MAIZAL/dems", files={"file": ("far.tif", path.read_bytes(), "image/tiff")}
    )
    refused(r, 422)
    assert says in r.json()["detail"], r.text
    assert await dem_rows(conn) == before


async def test_a_dem_bomb_is_refused_from_its_header(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """A sparse 6000 x 6000 GeoTIFF is a few KB; it is refused before a cell is read."""
    bomb = tmp_path / "bomb.tif"
    with rasterio.open(
        bomb,
        "w",
        driver="GTiff",
        width=6000,
        height=6000,
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=Affine(1e-5, 0, LON - 0.03, 0, -1e-5, LAT + 0.03),
        tiled=True,
        sparse_ok=True,
        compress="deflate",
    ) as dst:
        dst.write(np.zeros((1, 256, 256)), window=((0, 256), (0, 256)))
    assert bomb.stat().st_size < 200_000
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/5-DE-MARZO/dems", files={"file": ("bomb.tif", bomb.read_bytes(), "image/tiff")}
    )
    refused(r, 413)
    detail = r.json()["detail"]
    assert "6000 x 6000" in detail and f"{work.default_limits().max_dem_cells:,}" in detail
    assert await dem_rows(conn) == before


@pytest.mark.parametrize(("width", "height", "dtype"), [(4_000_000, 1, "float32"),
                                                       (1, 4_000_000, "float32"),
                                                       (64, 64, "complex64"),
                                                       (64, 64, "int64")])  # fmt: skip
async def test_a_dem_too_thin_to_tile_or_not_of_numbers_is_refused_from_its_header(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, width: int, height: int,
    dtype: str,
) -> None:  # fmt: skip
    """Found from outside: a 98 KB DEM of 24,000,000 x 1 cells passed the size limits, and
    storing it in 256 x 256 tiles compressed 6 billion cells of padding, a CPU held minutes
    past its 503 (six uploads made every write and analysis a 503). A complex-valued grid
    was stored, and the terrain analysis then gave null means."""
    thin = tmp_path / "thin.tif"
    with rasterio.open(
        thin, "w", driver="GTiff", width=width, height=height, count=1, dtype=dtype,
        crs="EPSG:4326", transform=Affine(1e-7, 0, LON, 0, -1e-7, LAT), compress="deflate",
    ) as dst:  # fmt: skip
        dst.write(np.full((1, height, width), 100, dtype))
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/5-DE-MARZO/dems", files={"file": ("thin.tif", thin.read_bytes(), "image/tiff")}
    )
    if dtype == "float32":
        refused(r, 413)
        assert "tiles of 256 x 256" in r.json()["detail"], r.text
    else:
        refused(r, 422)
        assert f"{dtype} cells" in r.json()["detail"], r.text
    assert await dem_rows(conn) == before


@pytest.mark.parametrize(
    ("transform", "name"),
    [
        (Affine(1e-4, 0, LON, 0, 1e-4, LAT - 0.01), "south-up"),  # rows from south to north
        (Affine(-1e-4, 0, LON + 0.01, 0, -1e-4, LAT), "east-to-west"),
    ],
)
async def test_a_dem_not_north_up_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, transform: Affine, name: str
) -> None:
    """Found from outside: a south-up grid was stored with the right bounds, and the terrain
    analysis then said every parcel lay off it. Refused as a rotated one is."""
    path = tmp_path / f"{name}.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=100, height=100, count=1, dtype="float32",
        crs="EPSG:4326", transform=transform,
    ) as dst:  # fmt: skip
        dst.write(np.full((1, 100, 100), 100, "float32"))
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/5-DE-MARZO/dems", files={"file": (path.name, path.read_bytes(), "image/tiff")}
    )
    refused(r, 422)
    assert "warp it north-up first" in r.json()["detail"], r.text
    assert await dem_rows(conn) == before


async def test_a_request_reads_at_most_its_window_of_cells(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    """A DEM bigger than a request's window is read at coarser, averaged cells: the grid holds
    no more cells than the limit, and a plane stays the same plane."""
    rows, cols = 400, 300
    x = np.arange(cols)[None, :] * 0.5
    y = np.arange(rows)[:, None] * 0.25
    z = (100 + x + y).astype("float64")
    path = write_dem(tmp_path, z, X0, Y0, name="big.tif")
    checked = dems.check(path, work.default_limits())
    dem = dems.Dem(0, 0, "big", checked.crs, 1.0, checked.footprint, checked.tiff)
    full = read_window(dem, None, rows * cols)
    assert full.coarsened == 1 and full.z.shape == (rows, cols)
    small = read_window(dem, None, 10_000)
    assert small.z.size <= 10_000 and small.coarsened > 1
    assert small.z.mean() == pytest.approx(z.mean(), rel=1e-3)
    assert coarsened_warning(dem, small) and not coarsened_warning(dem, full)


def declared_tiles(path: Path, side: int) -> bytes:
    """The GeoTIFF at ``path`` with its TileWidth and TileLength tags (322, 323) rewritten to
    ``side``: a few hundred bytes that make a reader allocate side x side cells per tile."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (322, 323):
            if kind == 3:  # SHORT
                struct.pack_into("<H", data, entry + 8, side)
            else:  # LONG
                struct.pack_into("<I", data, entry + 8, side)
    return bytes(data)


async def test_a_dem_declaring_huge_tiles_is_refused_from_its_header(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """Found by a probe: a 16 x 16 DEM declaring one 65520 x 65520 tile made the server
    allocate 4.2 GB before refusing it; the block size is now checked with the cell count."""
    small = tmp_path / "small.tif"
    with rasterio.open(
        small,
        "w",
        driver="GTiff",
        width=16,
        height=16,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=Affine(1e-4, 0, LON, 0, -1e-4, LAT),
        tiled=True,
        blockxsize=16,
        blockysize=16,
    ) as dst:
        dst.write(np.zeros((1, 16, 16), "uint8"))
    before = await dem_rows(conn)
    r = await client.post(
        "/communes/5-DE-MARZO/dems",
        files={"file": ("tiles.tif", declared_tiles(small, 65520), "image/tiff")},
    )
    refused(r, 413)
    assert "65520 x 65520" in r.json()["detail"]
    assert await dem_rows(conn) == before


# ---------------------------------------------------------------- GeoPackages that run SQL


def plain_geopackage(path: Path) -> Path:
    """One parcel of El Maizal, as GDAL writes a GeoPackage."""
    import geopandas as gpd
    from shapely.geometry import box

    frame = gpd.GeoDataFrame(
        {"code": ["GPKG-1"], "tenure": ["occupied"]},
        geometry=[box(LON, LAT, LON + 0.001, LAT + 0.001)],
        crs="EPSG:4326",
    )
    frame.to_file(path, layer="parcels", driver="GPKG")
    return path


RUNS_SQL = {
    # the probe's 98 KB upload: the layer is a view over a recursive query that never ends
    "endless_view": (
        "ALTER TABLE parcels RENAME TO p0;"
        "CREATE VIEW parcels AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) "
        "SELECT i AS fid, (SELECT geom FROM p0) AS geom, 'C' || i AS code, "
        "'occupied' AS tenure FROM r;"
        "UPDATE gpkg_contents SET table_name = 'parcels' WHERE table_name = 'p0';"
        "UPDATE gpkg_geometry_columns SET table_name = 'parcels' WHERE table_name = 'p0';"
    ),
    # a plain-looking table whose column is worked out, a gigabyte a row, whenever it is read
    "generated_column": (
        "ALTER TABLE parcels ADD COLUMN notes BLOB GENERATED ALWAYS AS (zeroblob(1000000000))"
    ),
    "virtual_table": "CREATE VIRTUAL TABLE notes USING fts5(text)",
    # SQLite builds its schema from each entry's SQL: a view typed 'View' was one our check
    # did not see, and our own read of the layer list then ran it, for good
    "view_typed_View": (
        "ALTER TABLE gpkg_geometry_columns RENAME TO ggc0;"
        "CREATE VIEW gpkg_geometry_columns AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL "
        "SELECT i + 1 FROM r) SELECT g.* FROM ggc0 g, r WHERE r.i = 0;"
        "PRAGMA writable_schema = ON;"
        "UPDATE sqlite_master SET type = 'View' WHERE name = 'gpkg_geometry_columns';"
    ),
    "module_in_a_comment": "CREATE VIRTUAL TABLE notes USING fts5(text /* USING rtree( */)",
    # GeoPackage's spatial index is an R*Tree of five columns: one with more was a layer
    "rtree_with_columns": (
        "CREATE VIRTUAL TABLE notes USING rtree(id, minx, maxx, miny, maxy, +code TEXT)"
    ),
}


@pytest.mark.parametrize("attack", RUNS_SQL)
async def test_a_geopackage_that_runs_sql_when_read_is_refused_before_gdal_opens_it(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, attack: str
) -> None:
    """GDAL reads a view by running it and a generated column by working it out: the endless
    view froze the server (GDAL's read held Python's lock) and a view repeating a package's
    parcels took a worker past 10 GB. Such a GeoPackage is refused from its schema alone,
    for an import and for a field package's sync alike, at once and with nothing written."""
    path = plain_geopackage(tmp_path / f"{attack}.gpkg")
    db = sqlite3.connect(path)
    db.executescript(RUNS_SQL[attack])
    db.close()
    before = await parcels(conn)
    for url in ("/collections/parcels/import?commune=EL-MAIZAL", "/communes/EL-MAIZAL/sync"):
        r = await client.post(url, files={"file": (path.name, path.read_bytes())}, timeout=30)
        refused(r, 422)
        assert "runs SQL when it is read" in r.json()["detail"], r.text
    assert await parcels(conn) == before
    ok = plain_geopackage(tmp_path / "plain.gpkg")
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": (ok.name, ok.read_bytes())},
    )
    assert r.status_code == 201 and r.json()["inserted"] == 1, r.text


def test_many_layers_naming_one_crs_ask_proj_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 layer rows naming one unreadable CRS definition (EPSG 2202 by code) asked PROJ
    300 times, ~0.3 s each: a 120 KB upload took 49 s, four at once held the heavy slots for
    two minutes. Each CRS the layers name is asked about once."""
    from geo_comuna.io import sniff

    path = plain_geopackage(tmp_path / "crs.gpkg")
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
        "organization_coordsys_id, definition) VALUES ('x', 99999, 'EPSG', 2202, 'garbage')"
    )
    db.executemany(
        "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'POLYGON', 99999, 0, 0)",
        [(f"ghost{i}",) for i in range(300)],
    )
    db.commit()
    db.close()
    asked = []

    def known(definition: str) -> bool:
        asked.append(definition)
        return definition.startswith("EPSG:")

    monkeypatch.setattr(sniff, "_known", known)
    sniff.gpkg(path)
    assert len(asked) <= 3, asked


async def test_a_geopackage_that_understates_its_features_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """The feature limit was checked against the count the file gives: a GeoPackage's
    gpkg_ogr_contents said 1 for 2.5 M rows. Holding more than it says refuses it."""
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "understated.gpkg"
    gpd.GeoDataFrame(
        {"code": ["U-1", "U-2", "U-3"], "tenure": ["occupied"] * 3},
        geometry=[box(LON + i / 1000, LAT, LON + (i + 1) / 1000, LAT + 0.001) for i in range(3)],
        crs="EPSG:4326",
    ).to_file(path, layer="parcels", driver="GPKG")
    db = sqlite3.connect(path)
    db.execute("UPDATE gpkg_ogr_contents SET feature_count = 1")
    db.commit()
    db.close()
    before = await parcels(conn)
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": (path.name, path.read_bytes())},
    )
    refused(r, 422)
    assert "says it holds 1 features but holds more" in r.json()["detail"], r.text
    assert await parcels(conn) == before


def _point_twice(path: Path, table: str) -> None:
    """Make ``table``'s root page (an interior page of its b-tree) name its first child page
    twice, as its right-most child too: the shape of a page tree that has a reader visit one
    page thousands of times, which SQLite does not notice while reading."""
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    data = bytearray(path.read_bytes())
    page = (root - 1) * size
    assert data[page] == 0x05, "an interior table page"  # the table spans several pages
    first_cell = struct.unpack(">H", data[page + 12 : page + 14])[0]
    first_child = data[page + first_cell : page + first_cell + 4]
    data[page + 8 : page + 12] = first_child  # the right-most child: the first one again
    path.write_bytes(bytes(data))


async def test_a_geopackage_whose_pages_repeat_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """A 2 MB GeoPackage whose parcels' page tree named one page 9,000 times a level kept a
    CPU busy for good (GDAL counting its rows); an 11 MB one had GDAL read one 9.6 MB polygon
    thousands of times and crash a worker. SQLite's quick_check finds a page named twice."""
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "pages.gpkg"
    gpd.GeoDataFrame(
        {"code": [f"P-{i}" for i in range(400)], "tenure": ["occupied"] * 400},
        geometry=[box(LON + i / 1e4, LAT, LON + (i + 1) / 1e4, LAT + 0.001) for i in range(400)],
        crs="EPSG:4326",
    ).to_file(path, layer="parcels", driver="GPKG")
    _point_twice(path, "parcels")
    before = await parcels(conn)
    for url in ("/collections/parcels/import?commune=EL-MAIZAL", "/communes/EL-MAIZAL/sync"):
        r = await client.post(url, files={"file": (path.name, path.read_bytes())})
        refused(r, 422)
        assert "is a damaged SQLite database" in r.json()["detail"], r.text
    assert await parcels(conn) == before


async def test_a_crs_naming_a_server_file_is_no_crs(tmp_path: Path) -> None:
    """PROJ opened /etc/passwd to answer whether '+init=/etc/passwd:root' is a CRS."""
    from geo_comuna.errors import UnknownCRS
    from geo_comuna.io import sniff

    path = plain_geopackage(tmp_path / "init.gpkg")
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
        "organization_coordsys_id, definition) VALUES ('x', 999, 'NONE', 999, "
        "'+init=/etc/passwd:root')"
    )
    db.execute("UPDATE gpkg_geometry_columns SET srs_id = 999")
    db.commit()
    db.close()
    with pytest.raises(UnknownCRS):
        sniff.gpkg(path)


def test_the_geopackage_check_stops_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read of the check (the schema, quick_check over every page, the layers' CRSs)
    stops at a deadline set by the file's size, whatever the file makes SQLite do: here the
    deadline is made zero, and a plain GeoPackage is refused rather than read past it."""
    from geo_comuna.errors import InvalidFile
    from geo_comuna.io import sniff

    path = plain_geopackage(tmp_path / "plain.gpkg")
    sniff.gpkg(path)  # within the deadline a file of its size gets
    monkeypatch.setattr(sniff, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(sniff, "CHECK_BYTES_PER_SECOND", 2**40)
    with pytest.raises(InvalidFile, match="within its bounds|takes longer to check"):
        sniff.gpkg(path)


def repeated_record_shapefile(path: Path, vertices: int, records: int) -> Path:
    """A zipped Shapefile of one polyline whose index names that one record ``records``
    times, with as many rows in its table: what GDAL reads is the polyline each time."""
    xs = -69.150 + np.linspace(0, 0.008, vertices)
    ys = 9.690 + np.where(np.arange(vertices) % 2 == 0, 0, 0.008)
    box = struct.pack("<4d", xs.min(), ys.min(), xs.max(), ys.max())
    content = (
        struct.pack("<i", 3) + box + struct.pack("<iii", 1, vertices, 0)
        + np.column_stack([xs, ys]).astype("<f8").tobytes()
    )  # fmt: skip
    record = struct.pack(">ii", 1, len(content) // 2) + content

    def header(words: int) -> bytes:
        return (
            struct.pack(">i", 9994) + b"\0" * 20 + struct.pack(">i", words)
            + struct.pack("<ii", 1000, 3) + box + b"\0" * 32
        )  # fmt: skip

    fields = [(b"KIND", 10), (b"STATUS", 10), (b"COMMUNE", 12)]
    length = 1 + sum(n for _, n in fields)
    dbf = (
        struct.pack("<BBBBIHH20x", 3, 126, 1, 1, records, 32 + 32 * len(fields) + 1, length)
        + b"".join(
            name.ljust(11, b"\0") + b"C" + b"\0" * 4 + bytes([size, 0]) + b"\0" * 14
            for name, size in fields
        )
        + b"\r"
        + (b" " + b"main".ljust(10) + b"working".ljust(10) + b"EL-MAIZAL".ljust(12)) * records
        + b"\x1a"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.shp", header((100 + len(record)) // 2) + record)
        index = struct.pack(">ii", 50, len(content) // 2) * records
        zf.writestr("a.shx", header((100 + 8 * records) // 2) + index)
        zf.writestr("a.dbf", dbf)
        zf.writestr(
            "a.prj",
            'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
            '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]',
        )
    return path


async def test_a_shapefile_whose_index_repeats_a_record_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """Found from outside: a 250 KB zip whose .shx named one 49,000-vertex polyline 2,500
    times made GDAL read 122 million vertices (4 GB in a worker, 67 s). A Shapefile's
    records follow one another in its .shp: an index saying otherwise is refused before
    GDAL reads a record. The same polyline once is a fine water main."""
    count = "SELECT count(*) FROM water_mains"
    before = (await (await conn.execute(count)).fetchone())[0]
    bomb = repeated_record_shapefile(tmp_path / "bomb.zip", 200, 50)
    r = await client.post(
        "/collections/water_mains/import",
        files={"file": ("bomb.zip", bomb.read_bytes(), "application/zip")},
    )
    refused(r, 422)
    assert "over one another" in r.json()["detail"], r.text
    once = repeated_record_shapefile(tmp_path / "once.zip", 200, 1)
    r = await client.post(
        "/collections/water_mains/import",
        files={"file": ("once.zip", once.read_bytes(), "application/zip")},
    )
    assert r.status_code == 201, r.text
    assert (await (await conn.execute(count)).fetchone())[0] == before + 1


@pytest.mark.parametrize("members", [1_001, 70_000])  # 70,000: past ZIP64's 65,535
async def test_a_zip_listing_too_many_files_is_refused_before_it_is_listed(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, members: int
) -> None:
    """Found from outside: a 153 MB zip listing 3,000,000 five-letter names took a worker
    past 2 GB (Python's zipfile makes an object of each) as an import and as a sync; the
    count is read from the zip's end records first."""
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        zf.writestr("a.shp", b"\x00\x00\x27\x0a" + bytes(96))
        for i in range(members - 1):
            zf.writestr(f"{i}", b"")
    before = await parcels(conn)
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": ("many.zip", many.read_bytes(), "application/zip")},
        params={"lang": "es"},
    )
    assert r.status_code == 422, r.text
    assert f"many.zip lista {members:,} archivos" in r.json()["detail"]
    r = await client.post(
        "/communes/EL-MAIZAL/sync", files={"file": ("campo.zip", many.read_bytes())}
    )
    assert r.status_code == 422 and f"lists {members:,} files" in r.json()["detail"], r.text
    assert await parcels(conn) == before


def _lying_zips(tmp_path: Path, members: int) -> dict[str, bytes]:
    """Zips of ``members`` entries whose end records were made to hide them (found from
    outside, both passed a hand-made reading of the end records while Python's zipfile,
    which reads them its own way, listed every entry)."""
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("a.shp", b"\x00\x00\x27\x0a" + bytes(96))
        for i in range(members - 1):
            zf.writestr(f"{i}", b"")
    data = plain.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack("<II", data[end + 12 : end + 20])
    body = data[:end]
    # a ZIP64 end record just before its locator, the locator pointing far away, and a plain
    # end record saying one entry of 46 bytes
    record = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, members, members, size, offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, 2**40, 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, 46, 0xFFFFFFFF, 0)
    zip64 = body + record + locator + eocd
    # the end record's disk numbers written as a second end signature
    repeated = body + struct.pack(
        "<4s4sHHIIH", b"PK\x05\x06", b"PK\x05\x06", members, members, size, offset, 0
    )
    return {"zip64": zip64, "repeated": repeated}


@pytest.mark.parametrize("trick", ["zip64", "repeated"])
def test_end_records_made_to_hide_members_are_read_as_zipfile_reads_them(
    tmp_path: Path, trick: str
) -> None:
    lying = tmp_path / f"{trick}.zip"
    lying.write_bytes(_lying_zips(tmp_path, 1_500)[trick])
    assert len(zipfile.ZipFile(lying).infolist()) == 1_500  # what zipfile would list
    with pytest.raises(InvalidFile) as refused:
        sniff.readable_zip(lying)
    assert f"{trick}.zip lists 1,500 files" in str(refused.value)


# ------------------------------------------- GeoPackage values their columns do not hold


def typed_geopackage(path: Path) -> Path:
    """Two production units of El Maizal as GDAL writes them: ``workers`` a MEDIUMINT (32
    bits), ``share`` a REAL, ``since`` a DATE, ``seen`` a DATETIME, ``big`` an INTEGER."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    gpd.GeoDataFrame(
        {
            "name": ["Conuco 1", "Conuco 2"],
            "product": ["maize", "coffee"],
            "workers": pd.array([3, None], dtype="Int32"),
            "share": [0.5, None],
            "since": [dt.date(2020, 2, 29), None],
            "seen": pd.to_datetime(["2024-05-01T10:00:00Z", None]),
            "big": [2**40, 1],
        },
        geometry=[Point(LON, LAT), Point(LON + 0.001, LAT)],
        crs="EPSG:4326",
    ).to_file(path, layer="production_units", driver="GPKG", engine="pyogrio", use_arrow=True)
    return path


#: (column, value written by SQLite's own hand, declared type named): each read by GDAL as
#: another value without a word, and stored so (found from outside, through an import and a
#: field package's sync alike)
NOT_HELD = {
    "overflow": ("workers", 99999999999, "MEDIUMINT"),  # read as 1215752191
    "words": ("workers", "muchos", "MEDIUMINT"),  # read as 0
    "words_then_digits": ("workers", "12 trabajadores", "MEDIUMINT"),  # read as 12
    "fraction": ("workers", 7.9, "MEDIUMINT"),  # read as 7
    "words_as_number": ("share", "la mitad", "REAL"),  # read as 0.0
    "day_first": ("since", "31/02/2020", "DATE"),  # read as 1970-01-01
    "no_such_day": ("since", "2020-02-31", "DATE"),  # read as 2020-03-02
    "no_such_hour": ("seen", "2024-05-01T25:00:00Z", "DATETIME"),
    "integer_words": ("big", "30abc", "INTEGER"),  # read as 30
    # types GDAL reads as others than spelt (found from outside): any INT... is INTEGER, and
    # NUMERIC a REAL
    "int8_words": ("workers INT8", "30abc", "INT8"),  # read as 30
    "numeric_words": ("share NUMERIC", "la mitad", "NUMERIC"),  # read as 0.0
}
#: declared types GDAL leaves out, and the import stored nothing of the column, said nowhere
LEFT_OUT = ["BIGINT", "BOOL", "DOUBLE PRECISION", "FLOAT8", "MEDIUMINT(10)"]


@pytest.mark.parametrize("case", NOT_HELD)
async def test_a_geopackage_value_its_column_does_not_hold_is_refused_naming_it(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, case: str
) -> None:
    column, value, declared = NOT_HELD[case]
    column, _, retyped = column.partition(" ")
    path = typed_geopackage(tmp_path / f"{case}.gpkg")
    if retyped:
        _declare(path, column, retyped)
    db = sqlite3.connect(path)
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        db.create_function(name, 1, lambda _: 0)  # GDAL's spatial index triggers
    db.execute(f'UPDATE production_units SET "{column}" = ? WHERE fid = 2', (value,))
    db.commit()
    db.close()
    cur = await conn.execute("SELECT count(*) FROM production_units")
    (before,) = await cur.fetchone()
    urls = ["/collections/production_units/import?commune=EL-MAIZAL&allow_copies=true"]
    if declared not in ("DATE", "DATETIME"):  # a sync reads dates as text, names each one
        urls.append("/communes/EL-MAIZAL/sync")  # (test_sync.py)
    for url in urls:
        r = await client.post(url, files={"file": (path.name, path.read_bytes())})
        refused(r, 422)
        problem = r.json()
        assert problem["feature"] == 2, r.text
        assert f"its column '{column}', declared {declared}" in problem["detail"]
        assert repr(value) in problem["detail"]
        spanish = await client.post(
            url + ("&" if "?" in url else "?") + "lang=es",
            files={"file": (path.name, path.read_bytes())},
        )
        assert f"su columna '{column}', declarada {declared}" in spanish.json()["detail"]
    cur = await conn.execute("SELECT count(*) FROM production_units")
    assert (await cur.fetchone())[0] == before
    # the same file as GDAL wrote it, every kind held as declared (and nulls), is imported
    ok = typed_geopackage(tmp_path / "ok.gpkg")
    r = await client.post(
        "/collections/production_units/import?commune=EL-MAIZAL&allow_copies=true&dry_run=true",
        files={"file": (ok.name, ok.read_bytes())},
    )
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text


def _declare(path: Path, column: str, declared: str) -> None:
    """Declare ``column`` of production_units as ``declared``, as a hand or another program
    may write it."""
    db = sqlite3.connect(path)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'production_units'").fetchone()
    typed = re.sub(rf'"{column}" \w+', f'"{column}" {declared}', sql, count=1)
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'production_units'", (typed,))
    db.commit()
    db.close()


@pytest.mark.parametrize("declared", LEFT_OUT)
async def test_a_geopackage_column_gdal_leaves_out_is_refused_naming_it(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, declared: str
) -> None:
    """GDAL leaves a column of a type GeoPackage does not have out of the layer (a warning on
    its console), and the import stored NULL for it without a word: workers BIGINT = 12."""
    path = typed_geopackage(tmp_path / "left.gpkg")
    _declare(path, "workers", declared)
    r = await client.post(
        "/collections/production_units/import?commune=EL-MAIZAL&allow_copies=true",
        files={"file": (path.name, path.read_bytes())},
    )
    refused(r, 422)
    assert f"its column 'workers' is declared {declared}, a type" in r.json()["detail"]


async def test_a_geopackage_table_without_rowid_is_refused(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Its values could not be checked in GDAL's order; no GeoPackage layer is one."""
    path = typed_geopackage(tmp_path / "norowid.gpkg")
    db = sqlite3.connect(path)
    for (trigger,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'production_units'"
    ).fetchall():
        db.execute(f'DROP TRIGGER "{trigger}"')
    db.executescript(
        'CREATE TABLE pu ("fid" INTEGER PRIMARY KEY NOT NULL, "geom" POINT, "name" TEXT, '
        '"product" TEXT, "workers" MEDIUMINT, "share" REAL, "since" DATE, "seen" DATETIME, '
        '"big" INTEGER) WITHOUT ROWID;'
        "INSERT INTO pu SELECT * FROM production_units; DROP TABLE production_units;"
        "ALTER TABLE pu RENAME TO production_units;"
    )
    db.commit()
    db.close()
    r = await client.post(
        "/collections/production_units/import?commune=EL-MAIZAL&allow_copies=true",
        files={"file": (path.name, path.read_bytes())},
    )
    refused(r, 422)
    assert "is a table WITHOUT ROWID" in r.json()["detail"], r.text


def _placemark(code: str, west: float) -> str:
    data = "".join(
        f'<Data name="{k}"><value>{v}</value></Data>'
        for k, v in (("code", code), ("tenure", "occupied"), ("land_use", "crops"))
    )
    ring = f"{west},9.7 {west + 0.001},9.7 {west + 0.001},9.701 {west},9.7"
    return (
        f"<Placemark><ExtendedData>{data}</ExtendedData><Polygon><outerBoundaryIs><LinearRing>"
        f"<coordinates>{ring}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
    )


def _kml(*folders: tuple[str, list[str]]) -> bytes:
    body = "".join(f"<Folder><name>{n}</name>{''.join(p)}</Folder>" for n, p in folders)
    return (
        '<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"{body}</Document></kml>"
    ).encode()


async def test_files_of_more_than_one_geometry_or_layer_are_refused(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: a KML's second and third folders were left out unsaid (GDAL reads
    a KML's first folder as its layer), and a CSV with two WKT columns was a 500. Both are
    refused, naming what the file holds; a KML with one folder of features is read, whatever
    other (empty) folders it has."""
    polygon = "POLYGON ((-69.15 9.7,-69.149 9.7,-69.149 9.701,-69.15 9.7))"
    cases = {
        "folders.kml": (
            _kml(("f1", [_placemark("K-1", -69.15)]), ("f2", [_placemark("K-2", -69.16)])),
            ["folders of features ('f1': 1, 'f2': 1)"],
        ),
        # found from outside too: a folder named as the layer was read and another beside
        # it left out, and so was a second folder of that name (GDAL's 'parcels (#2)')
        "named.kml": (
            _kml(("parcels", [_placemark("K-1", -69.15)]), ("más", [_placemark("K-2", -69.16)])),
            ["('parcels': 1, 'más': 1)"],
        ),
        "twice.kml": (
            _kml(
                ("parcels", [_placemark("K-1", -69.15)]), ("parcels", [_placemark("K-2", -69.16)])
            ),
            ["('parcels': 1, 'parcels (#2)': 1)"],
        ),
        # placemarks outside any folder: GDAL's layer named after the file as saved
        # found from outside: "the KML holds folders 26", and long names sent back whole
        "many.kml": (
            _kml(*((f"f{i}", []) for i in range(25)), ("real", [_placemark("K-4", -69.15)])),
            ["the KML holds 26 folders, and at most 20 are read"],
        ),
        "long.kml": (
            _kml(("a" * 5000, [_placemark("K-1", -69.15)]), ("b", [_placemark("K-2", -69.16)])),
            [f"'{'a' * 80}': 1, 'b': 1"],
        ),
        "loose.kml": (
            _kml(("a", [_placemark("K-1", -69.15)])).replace(
                b"<Document>", f"<Document>{_placemark('K-2', -69.16)}".encode()
            ),
            ["(placemarks outside any folder: 1, 'a': 1)"],
        ),
        "wkt.csv": (
            f'WKT,code,WKT,tenure,land_use\n"{polygon}",C-9,"POINT (0 0)",occupied,crops\n',
            ["the WKT of its features in 2 columns (WKT, WKT)"],
        ),
        # found from outside: GDAL crashed (a segfault) on x and lon; the_geom beside an
        # empty geometry was taken for a second geometry, its bytes printed as its WKT
        "x_lon.csv": (
            "code,tenure,land_use,x,lon,lat,y\nC-9,occupied,crops,10,-69.15,9.7,10\n",
            ["the longitude (x) of its features in 2 columns (x, lon)"],
        ),
        "two.csv": (
            f'code;tenure;land_use;geometry;the_geom\nC-9;occupied;crops;;"{polygon}"\n',
            ["the WKT of its features in 2 columns (geometry, the_geom)"],
        ),
        # found from outside: the header read otherwise than GDAL reads it, GDAL crashed
        "space.csv": (
            "code tenure land_use x lon lat y\nC-9 occupied crops 10 -69.15 9.7 10\n",
            ["in 2 columns (x, lon)"],
        ),
        "quoted.csv": ('"a;b;c;d;e;f;g",x,lon,lat,y\n"q",10,-69.15,9.7,10\n', ["(x, lon)"]),
        "split.csv": ('"co\nde",x,lon,lat,y\nC-9,10,-69.15,9.7,10\n', ["(x, lon)"]),
        "long.csv": ("c" * 70_000 + ",x,lon,lat,y\nC-9,10,-69.15,9.7,10\n", ["(x, lon)"]),
        "longer.csv": ("c" * 140_000 + ",x\nC-9,10\n", ["over 128 KB"]),
    }
    before = await parcels(conn)
    for name, (body, said) in cases.items():
        r = await client.post(
            "/collections/parcels/import?commune=EL-MAIZAL",
            files={"file": (name, body, "application/octet-stream")},
        )
        refused(r, 422)
        assert all(s in r.json()["detail"] for s in said), (name, r.text)
        assert len(r.text) < 2000, name  # what the file names is cut short
    assert await parcels(conn) == before
    named = _kml(("notes", []), ("parcels", [_placemark("K-3", -69.17)]))
    r = await client.post(
        "/collections/parcels/import?commune=EL-MAIZAL",
        files={"file": ("named.kml", named, "application/vnd.google-earth.kml+xml")},
    )
    assert r.status_code == 201 and r.json()["features"] == 1, r.text
    assert await parcels(conn) == before + 1
