"""Paths: traversal in upload and export names reads and writes nothing outside, and no
refusal of a broken upload, DEM or export shows a path of the server, only the client's
file name.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import rasterio.transform
from psycopg import AsyncConnection

from tests.factories import LAT, LON, feature
from tests.hostile import PARCELS, PROBLEM, assert_answer

pytestmark = pytest.mark.anyio


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_path_traversal_in_upload_and_export_names(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    passwd = _sha(Path("/etc/passwd"))
    body = json.dumps(
        {"type": "FeatureCollection", "features": [feature(PARCELS, "EL-MAIZAL", code="TRAVERSAL")]}
    ).encode()
    for name in [
        "../../etc/passwd.geojson",
        "..\\..\\windows\\win.ini.geojson",
        "/etc/passwd.geojson",
        "....//....//etc/passwd.geojson",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd.geojson",
        "a/../../../tmp/x.geojson\x00.exe",
    ]:
        r = await client.post("/collections/parcels/import", files={"file": (name, body)})
        assert_answer(r)
        if r.status_code == 201:
            assert "/" not in r.json()["file"] and "\\" not in r.json()["file"]
    assert _sha(Path("/etc/passwd")) == passwd
    assert not Path("/tmp/x.geojson").exists() and not Path("/etc/passwd.geojson").exists()
    for path in [
        "/collections/..%2F..%2Fetc%2Fpasswd/export",
        "/collections/parcels/export?format=../../etc/passwd",
        "/collections/parcels/export?crs=../../etc/passwd",
        "/static/leaflet/../../../../etc/passwd",
        "/static/geo_comuna/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/maps/communes/..%2F..%2Fetc%2Fpasswd",
    ]:
        r = await client.get(path)
        assert r.status_code in (400, 404, 415, 422), (path, r.status_code)
        assert b"root:" not in r.content, path
    r = await client.get("/collections/parcels/export", params={"format": "geojson"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith('filename="parcels.geojson"')


def _zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _two_band_tif() -> bytes:
    with rasterio.MemoryFile() as memory:
        with memory.open(
            driver="GTiff",
            width=4,
            height=4,
            count=2,
            dtype="float32",
            crs="EPSG:4326",
            transform=rasterio.transform.from_origin(LON, LAT, 0.001, 0.001),
        ) as dst:
            dst.write(np.zeros((2, 4, 4), dtype="float32"))
        return memory.read()


#: broken files whose every refusal names the file; GDAL and rasterio name the path they
#: were given, which on the server is a scratch file
BROKEN_UPLOADS = {
    "vacía.gpkg": b"",
    "rota.gpkg": b"SQLite format 3\0" + b"basura" * 100,
    "rota.geojson": b'{"type": "FeatureCollection", "features": [',
    "rota.kml": b"<kml><Document><Placemark><Point><coordinates>1,2",
    "latin1.csv": 'wkt,código\n"POINT(1 2)",ñ\n'.encode("latin-1"),
    "sin-shp.zip": _zipped({"léame.txt": b"x"}),
    "shp-roto.zip": _zipped({"a.shp": b"\0" * 200, "a.shx": b"\0" * 100, "a.dbf": b"\0" * 50}),
    "no-es-zip.zip": b"PK\x03\x04basura",
    "plano.dxf": b"0\nSECTION\n",
}
BROKEN_DEMS = {"dem-roto.tif": b"II*\0basura", "vacío.tif": b"", "foto.png": b"\x89PNG\r\n"}


async def test_no_server_path_in_any_refusal(client: httpx.AsyncClient) -> None:
    """Every refused upload, DEM or export names the client's file, never a path of ours."""
    ours = {tempfile.gettempdir(), "/tmp", "geo_comuna-scratch", "upload.", "/vsizip/"}
    answers = []
    for name, body in BROKEN_UPLOADS.items():
        r = await client.post("/collections/parcels/import", files={"file": (name, body)})
        answers.append((name, r))
    dems = {**BROKEN_DEMS, "dos-bandas.tif": _two_band_tif()}
    for name, body in dems.items():
        r = await client.post("/communes/EL-MAIZAL/dems", files={"file": (name, body)})
        answers.append((name, r))
    for query in ({"format": "shp", "crs": "EPSG:999999"}, {"format": "kml", "crs": "EPSG:2202"}):
        answers.append((None, await client.get("/collections/parcels/export", params=query)))
    for name, r in answers:
        assert 400 <= r.status_code < 500, (name, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert not [word for word in ours if word in r.text], (name, r.text)
        if name is not None:
            assert name in r.json()["detail"], (name, r.text)
