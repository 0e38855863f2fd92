"""Hostile input: random and broken geometries, CRSs and values (hypothesis), an OpenAPI-driven
fuzzer over every endpoint (schemathesis), SQL injection, path traversal, zip bombs, deep or
huge JSON and script injection. Whatever comes in, the answer is 2xx or a 4xx
application/problem+json, never a 5xx, and a refused write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.transform
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from geo_comuna.api.app import create_app
from geo_comuna.api.deps import get_conn
from geo_comuna.errors import GeoComunaError
from geo_comuna.io.importer import import_frame
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.factories import LAT, LON, feature
from tests.live import add_user, serving

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
PROBLEM = "application/problem+json"
#: shared by every property test: bounded, no deadline (a database is involved), no example
#: database written into the repository
BOUNDED = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def rows(conn: AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (our own names)
    return (await cur.fetchone())[0]


def as_json(body: Any) -> bytes:
    """JSON as any client may send it: lone surrogates escaped (\\ud800), not refused."""
    return json.dumps(body).encode()


def assert_answer(r: httpx.Response) -> None:
    """2xx, or 4xx problem+json with a detail; a write error names the feature."""
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM), r.text
        problem = r.json()
        assert problem["status"] == r.status_code and problem["detail"]
        if problem["type"].endswith(("invalid-geometry", "invalid-attribute")):
            assert problem.get("feature") is not None, problem


# ---------------------------------------------------------------- strategies

#: NaN-free, but anything from subnormal to 1e308; and places inside the service area
any_number = st.floats(allow_nan=False, allow_infinity=False)
near = st.tuples(st.floats(LON - 0.01, LON + 0.01), st.floats(LAT - 0.01, LAT + 0.01))
position = st.one_of(near.map(list), st.lists(any_number, max_size=4))
points = st.lists(position, max_size=7)  # too few, unclosed, repeated, crossing...
closed = st.lists(near.map(list), min_size=3, max_size=7).map(lambda p: [*p, p[0]])
ring = st.one_of(points, closed)  # closed rings with random vertices often self-intersect
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), any_number, st.text(max_size=20))
json_any = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _geometry(kind: str, coordinates: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates}


geometries = st.one_of(
    st.builds(_geometry, st.just("Point"), position),
    st.builds(_geometry, st.just("LineString"), points),
    st.builds(_geometry, st.just("Polygon"), st.lists(ring, max_size=3)),
    st.builds(_geometry, st.just("MultiPolygon"), st.lists(st.lists(ring, max_size=3), max_size=3)),
    # wrong nesting, wrong or made-up types, coordinates of any shape
    st.builds(
        _geometry,
        st.sampled_from(
            ["Point", "Polygon", "MultiPolygon", "MultiPoint", "GeometryCollection", "Circle", ""]
        ),
        json_any,
    ),
    st.builds(
        lambda gs: {"type": "GeometryCollection", "geometries": gs},
        st.lists(
            st.builds(_geometry, st.just("Polygon"), st.lists(closed, max_size=2)), max_size=2
        ),
    ),
    json_any,
)


def attribute_values(layer_name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Each property of the layer (and some unknown ones) with a random value: allowed
    values, wrong types, NUL characters, lone surrogates, huge numbers, bad dates."""
    layer = LAYERS[layer_name]
    value = st.one_of(
        json_leaf,
        json_any,
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(alphabet=st.characters(codec=None), max_size=30),
        st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),
        st.just("\x00"),
        st.just("2020-02-30"),
        st.just("9999-12-31"),
        st.just("0001-01-01"),
        st.just("x" * 5000),
        *[st.sampled_from(list(a.domain.values)) for a in layer.attributes if a.domain],
    )
    names = st.sampled_from([*layer.property_names, "id", "area_ha", "nope"])
    return st.dictionaries(names, value, max_size=len(layer.property_names) + 1)


# ---------------------------------------------------------------- the write path (API)


@BOUNDED
@given(geometry=geometries, layer=st.sampled_from(["parcels", "dwellings", "water_mains"]))
async def test_random_geometries_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, geometry: Any, layer: str
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, layer)
        body = {
            "type": "Feature",
            "geometry": geometry,
            "properties": feature(LAYERS[layer], "EL-MAIZAL")["properties"],
        }
        r = await client.post(f"/collections/{layer}/items", content=as_json(body))
        assert_answer(r)
        assert await rows(conn, layer) == before + (1 if r.status_code == 201 else 0)


@BOUNDED
@given(props=attribute_values("parcels"), repair=st.booleans())
async def test_random_parcel_properties_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, props: dict[str, Any], repair: bool
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        body = feature(PARCELS, "EL-MAIZAL")
        body["properties"] = props
        r = await client.post(
            "/collections/parcels/items",
            content=as_json(body),
            params={"repair": str(repair).lower()},
        )
        assert_answer(r)
        assert await rows(conn, "parcels") == before + (1 if r.status_code == 201 else 0)


@BOUNDED
@given(props=attribute_values("dwellings"))
async def test_random_patch_never_5xx(
    client: httpx.AsyncClient, conn: AsyncConnection, props: dict[str, Any]
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        cur = await conn.execute("SELECT min(id) FROM dwellings")
        dwelling = (await cur.fetchone())[0]
        stored = (await client.get(f"/collections/dwellings/items/{dwelling}")).json()
        r = await client.patch(
            f"/collections/dwellings/items/{dwelling}", content=as_json({"properties": props})
        )
        assert_answer(r)
        if r.status_code >= 400:
            again = (await client.get(f"/collections/dwellings/items/{dwelling}")).json()
            assert again["properties"] == stored["properties"]


# ---------------------------------------------------------------- the import path


@BOUNDED
@given(
    values=st.lists(
        st.one_of(
            json_leaf,
            st.just("\x00"),
            st.sampled_from(["abandoned", "occupied", "9999-99-99", "2020-01-01", 2**64]),
        ),
        min_size=1,
        max_size=4,
    ),
    column=st.sampled_from(
        ["code", "tenure", "land_use", "recovered_on", "notes", "commune", "other"]
    ),
    geometry=geometries,
)
async def test_random_frames_to_import_frame(
    conn: AsyncConnection, settings: Settings, values: list, column: str, geometry: Any
) -> None:
    """The service below every import: a bad value or geometry is a typed 4xx error naming
    the feature (1-based position) and nothing is written."""
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        good = feature(PARCELS, "EL-MAIZAL")["properties"]
        frame = pd.DataFrame([{**good, column: v} for v in values])
        geoms = np.array(
            [shapely.from_geojson(json.dumps(feature(PARCELS)["geometry"]))] * len(values),
            dtype=object,
        )
        try:
            geoms[-1] = shapely.from_geojson(json.dumps(geometry), on_invalid="ignore")
        except (shapely.errors.GEOSException, ValueError, TypeError):
            geoms[-1] = None
        try:
            count, _ = await import_frame(conn, PARCELS, frame, geoms, settings)
        except GeoComunaError as exc:
            assert 400 <= exc.status < 500, exc.message
            if exc.code in ("invalid-geometry", "invalid-attribute"):
                assert exc.feature in range(1, len(values) + 1), exc.message
            assert await rows(conn, "parcels") == before
        else:
            assert await rows(conn, "parcels") == before + count == before + len(values)


crs_strings = st.one_of(
    st.text(max_size=40),
    st.builds("EPSG:{}".format, st.integers(min_value=-10, max_value=10**7)),
    st.sampled_from(
        [
            "EPSG:2202",
            "EPSG:3857",
            "EPSG:4326",
            "EPSG:32619",
            "ESRI:102100",
            "+proj=utm +zone=19 +datum=WGS84",
            "+proj=longlat +a=1 +b=1",
            "+proj=ortho +lat_0=90",
            "urn:ogc:def:crs:EPSG::4326",
            'PROJCS["broken"',
            'GEOGCS["x",DATUM["y",SPHEROID["z",0,0]]]',
            "+proj=pipeline +step +proj=axisswap +order=2,1",
            "IAU_2015:30100",
            "+proj=geos +h=1 +lon_0=0",
            "EPSG:0",
            "EPSG:99999999999999999999",
        ]
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(crs=crs_strings)
async def test_random_crs_on_upload(
    client: httpx.AsyncClient, conn: AsyncConnection, crs: str
) -> None:
    async with conn.transaction(force_rollback=True):  # each example starts afresh
        before = await rows(conn, "parcels")
        collection = {
            "type": "FeatureCollection",
            "features": [feature(PARCELS, "EL-MAIZAL", code=f"CRS-{i}") for i in range(2)],
        }
        r = await client.post(
            "/collections/parcels/import",
            params={"crs": crs},
            files={"file": ("p.geojson", json.dumps(collection).encode())},
        )
        assert_answer(r)
        assert await rows(conn, "parcels") == before + (2 if r.status_code == 201 else 0)


# ---------------------------------------------------------------- what the fuzzers found

RING = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.001, LAT + 0.001], [LON, LAT]]
FOUND = [  # each was a 500 before its fix
    (
        "empty interior ring",
        {"geometry": {"type": "Polygon", "coordinates": [RING, []]}},
        422,
        "an empty part or ring",
    ),
    (
        "empty polygon part",
        {"geometry": {"type": "MultiPolygon", "coordinates": [[RING], []]}},
        422,
        "an empty part",
    ),
    ("NUL in a text", {"properties": {"tenure": "occupied", "notes": "a\x00b"}}, 422, "NUL"),
    (
        "lone surrogate in a text",
        {"properties": {"tenure": "occupied", "notes": "\ud800"}},
        422,
        "lone surrogate",
    ),
    (
        "lone surrogate as a commune code",
        {"properties": {"tenure": "occupied", "commune": "\udfff"}},
        422,
        "no communes with code",
    ),
    (
        "a list as a commune",
        {"properties": {"tenure": "occupied", "commune": [4]}},
        422,
        "neither a code nor an id",
    ),
    (
        "a fraction as a commune",
        {"properties": {"tenure": "occupied", "commune": 4.5}},
        422,
        "neither a code nor an id",
    ),
]


@pytest.mark.parametrize(
    ("change", "status", "says"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND]
)
async def test_what_the_fuzzers_found(
    client: httpx.AsyncClient, conn: AsyncConnection, change: dict, status: int, says: str
) -> None:
    before = await rows(conn, "parcels")
    body = {**feature(PARCELS, "EL-MAIZAL"), **change}
    r = await client.post("/collections/parcels/items", content=as_json(body))
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert r.json()["feature"] == 1
    assert await rows(conn, "parcels") == before


async def test_a_crs_of_another_planet(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """IAU_2015:30100 (the Moon) parses, but PROJ cannot transform it to or from WGS 84."""
    before = await rows(conn, "parcels")
    body = json.dumps(
        {"type": "FeatureCollection", "features": [feature(PARCELS, "EL-MAIZAL")]}
    ).encode()
    r = await client.post(
        "/collections/parcels/import",
        params={"crs": "IAU_2015:30100"},
        files={"file": ("p.geojson", body)},
    )
    assert r.status_code == 422 and "cannot transform" in r.json()["detail"], r.text
    r = await client.get(
        "/collections/parcels/export", params={"format": "gpkg", "crs": "IAU_2015:30100"}
    )
    assert r.status_code == 422 and "cannot transform" in r.json()["detail"], r.text
    assert await rows(conn, "parcels") == before


# ---------------------------------------------------------------- every endpoint: schemathesis

FUZZ_CONFIG = """
[dictionaries.layers]
values = {layers}
[dictionaries.communes]
values = ["5-DE-MARZO", "EL-MAIZAL", "MONTE-SINAI", "1", "4"]
[dictionaries.features]
values = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
[dictionaries.analyses]
values = {analyses}

[parameters]
"path.collection_id" = {{ dictionary = "layers", probability = 0.9 }}
"path.layer" = {{ dictionary = "layers", probability = 0.9 }}
"path.commune" = {{ dictionary = "communes", probability = 0.9 }}
"path.feature_id" = {{ dictionary = "features", probability = 0.9 }}
"path.name" = {{ dictionary = "analyses", probability = 0.9 }}
"path.analysis" = {{ dictionary = "analyses", probability = 0.9 }}
"""


def _fuzz(base: str, token: str, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """One schemathesis run over every operation of the server's /openapi.json (~90: each
    layer and each analysis has its own paths). One worker: CPython 3.11's ast.parse is not
    safe in two threads at once (gh-106905), and Hypothesis parses lambdas while generating
    cases, so two workers end, often, in the fuzzer's own SystemError ("AST constructor
    recursion depth mismatch"); one thread costs little, the GIL held most of the time."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{base}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "6",
            "--phases",
            "coverage,fuzzing",
            "--workers",
            "1",
            "--request-timeout",
            "40",
            "--generation-database",
            "none",
            "--seed",
            "20261127",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=480,
    )


def test_schemathesis_finds_no_server_error(own_db: str, tmp_path: Path) -> None:
    """Every operation of /openapi.json, as an admin (so writes get past authentication),
    against a real server on its own database: schemathesis' boundary values ("coverage")
    and at most 6 random cases per operation, path parameters mostly taken from real ones.
    On failure the output shows a curl command reproducing each 5xx."""
    from geo_comuna.analysis.registry import all_analyses

    token = add_user(own_db, "fuzzer", "admin")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        FUZZ_CONFIG.format(
            layers=json.dumps(list(LAYERS)), analyses=json.dumps(list(all_analyses()))
        )
    )
    with serving(own_db, tmp_path / "serve.log") as (_, base):
        run = _fuzz(base, token, config, tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-3000:]
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) > 20, run.stdout[-3000:]


# ---------------------------------------------------------------- SQL injection

INJECTIONS = [
    "' OR 1=1 --",
    "'; DROP TABLE parcels; --",
    "1); DELETE FROM parcels; --",
    "abandoned' UNION SELECT token_hash FROM users --",
    "\\'; SELECT pg_sleep(10)--",
]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_sql_injection_in_filter_values(
    client: httpx.AsyncClient, conn: AsyncConnection, value: str
) -> None:
    before = await rows(conn, "parcels")
    for params in (
        {"tenure": value},
        {"code": value},
        {"notes": value},
        {"recovered_on": value},
        {"commune": value},
        {"tenure": f"abandoned,{value}"},
    ):
        r = await client.get("/collections/parcels/items", params=params)
        assert_answer(r)
        if r.status_code == 200:  # a text filter: matched literally, so nothing
            assert r.json()["numberMatched"] == 0, params
    assert await rows(conn, "parcels") == before


@pytest.mark.parametrize(
    "name",
    [
        '"; DROP TABLE parcels;--',
        "tenure = 'x' OR 1=1 --",
        "id) OR (1=1",
        "geom",
        "token_hash",
        "sortby",
    ],
)
async def test_sql_injection_in_property_names_and_sort_keys(
    client: httpx.AsyncClient, conn: AsyncConnection, name: str
) -> None:
    before = await rows(conn, "parcels")
    for params in ({name: "1"}, {"sortby": name}, {"sortby": f"-{name}"}, {"properties": name}):
        r = await client.get("/collections/parcels/items", params=params)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        shaping = {"sortby", "properties"} & set(params)
        unknown = "unknown property" if shaping else "unknown query parameter"
        assert unknown in r.json()["detail"]
    assert await rows(conn, "parcels") == before


@pytest.mark.parametrize(
    "bbox",
    [
        "1,2,3,4);DROP TABLE parcels;--",
        "-69.2,9.7,-69.1,9.8 OR 1=1",
        "0x1,2,3,4",
        "1,2,3",
        "nan,1,2,3",
        "inf,1,2,3",
        "1e999,1,2,3",
        ",,,",
        "1;2;3;4",
    ],
)
async def test_sql_injection_and_nonsense_in_bbox(
    client: httpx.AsyncClient, conn: AsyncConnection, bbox: str
) -> None:
    before = await rows(conn, "parcels")
    r = await client.get("/collections/parcels/items", params={"bbox": bbox})
    assert r.status_code == 400, r.text
    assert "bbox" in r.json()["detail"]
    assert await rows(conn, "parcels") == before


async def test_sql_injection_in_paths_and_audit(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    before = await rows(conn, "parcels")
    for path in [
        "/collections/parcels;DROP TABLE parcels/items",
        "/collections/parcels/items/1 OR 1=1",
        "/communes/' OR 1=1 --/states",
        "/maps/communes/' OR '1'='1",
        "/communes/1;DROP TABLE communes/report",
        "/audit?layer=parcels' OR 1=1 --",
        "/audit?id=99999999999999999999",
        "/audit?id=-1",
        "/communes/%00/states",
        "/collections/parcels/items?code=%00",
        "/collections/parcels/items?commune=%00",
        "/tiles/parcels;--/1/1/1.pbf",
    ]:
        r = await client.get(path)
        assert_answer(r)
        assert r.status_code != 200 or r.json() == {"entries": []}, path
    assert await rows(conn, "parcels") == before


# ---------------------------------------------------------------- paths, archives, sizes


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


def _declared_bomb(path: Path) -> Path:
    """A zipped Shapefile whose directory declares a 9 GiB .shp (GDAL would try to read it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in ("bomb.shx", "bomb.dbf"):
            zf.writestr(part, b"\0" * 100)
        with zf.open("bomb.shp", "w", force_zip64=True) as fh:
            fh.write(b"\0" * 1024)
        zf.infolist()[-1].file_size = 9 * 1024**3  # what the central directory will say
    return path


def _compressible_bomb(path: Path) -> Path:
    """100 MB of zeros as the .shp, deflated to about 100 kB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.prj", 'GEOGCS["WGS 84"]')
        with zf.open("bomb.shp", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(100):
                fh.write(chunk)
    return path


@pytest.mark.parametrize("build", [_declared_bomb, _compressible_bomb])
async def test_zip_bombs(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, build: Any
) -> None:
    bomb = build(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 1_000_000
    before = await rows(conn, "parcels")
    r = await client.post(
        "/collections/parcels/import", files={"file": ("bomb.zip", bomb.read_bytes())}
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert await rows(conn, "parcels") == before


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


async def test_deeply_nested_json(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    before = await rows(conn, "parcels")
    deep = "[" * 10_000 + "]" * 10_000
    body = (
        '{"type": "Feature", "properties": {"tenure": "occupied"}, "geometry": '
        f'{{"type": "MultiPolygon", "coordinates": {deep}}}}}'
    )
    r = await client.post(
        "/collections/parcels/items", content=body, headers={"content-type": "application/geo+json"}
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    deep_props = '{"type": "Feature", "properties": {"notes": ' + deep + "}}"
    r = await client.patch("/collections/parcels/items/1", content=deep_props)
    assert r.status_code in (400, 422), r.text
    assert await rows(conn, "parcels") == before


async def test_huge_bodies_are_413(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    """Declared (Content-Length) or streamed (chunked): refused before it is parsed."""
    app = create_app(settings.model_copy(update={"max_body_bytes": 64 * 1024}))

    async def same_conn():  # noqa: ANN202
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    collection = {
        "type": "FeatureCollection",
        "features": [feature(PARCELS, "EL-MAIZAL", code=f"BIG-{i}") for i in range(400)],
    }
    body = json.dumps(collection).encode()
    assert len(body) > 64 * 1024

    async def chunks():  # noqa: ANN202
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = await rows(conn, "parcels")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as c:
        for content in (body, chunks()):
            r = await c.post("/collections/parcels/items", content=content)
            assert r.status_code == 413, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
            assert "over the limit" in r.json()["detail"]
    assert await rows(conn, "parcels") == before


async def test_nan_and_infinity_are_refused(client: httpx.AsyncClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = (
            '{"type": "Feature", "properties": {"tenure": "occupied"}, "geometry": '
            f'{{"type": "Point", "coordinates": [{literal}, 9.78]}}}}'
        )
        r = await client.post("/collections/dwellings/items", content=body)
        assert r.status_code in (400, 422), (literal, r.text)
        assert not math.isnan(r.json()["status"])


# ---------------------------------------------------------------- script injection

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


async def test_script_injection_is_escaped_in_maps_and_reports(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """A commune name and parcel notes carrying HTML: every page shows them as text (escaped
    in HTML, \\u003c inside the page's JSON), never as markup."""
    commune = "EL-MAIZAL"
    cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (commune,))
    commune_id = (await cur.fetchone())[0]
    r = await client.patch(
        f"/collections/communes/items/{commune_id}",
        json={"properties": {"name": f"El Maizal {SCRIPT}", "source": IMG}},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/collections/parcels/items",
        json=feature(PARCELS, commune, notes=f"{IMG} {SCRIPT}", code=f"X{SCRIPT}"),
    )
    assert r.status_code == 201, r.text
    pages = [
        f"/maps/communes/{commune}",
        f"/maps/communes/{commune}?standalone=true",
        f"/maps/communes/{commune}?embed=true",
        f"/maps/communes/{commune}/water-hookups",
        f"/communes/{commune}/report",
        f"/communes/{commune}/report?download=true",
        "/maps/national",
        f"/maps/communes/{commune}/embed-snippet",
    ]
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert SCRIPT not in r.text and IMG not in r.text, path
        assert "alert(1)" in r.text or "embed-snippet" in path or "national" in path, path
    snippet = (await client.get(f"/maps/communes/{commune}/embed-snippet")).json()
    assert "<script" not in snippet["html"] and "&lt;script&gt;" in snippet["html"]


@pytest.mark.parametrize("commune", [2**64, -(2**63) - 1, 2**31, 1e300])
async def test_a_reference_beyond_every_integer_is_refused_not_a_500(
    conn: AsyncConnection, settings: Settings, commune: Any
) -> None:
    """Found by the random frames: a commune of 2**64 overflowed Arrow's int64 (a 500)."""
    frame = pd.DataFrame(
        [{"code": "BIG-1", "tenure": "occupied", "land_use": "crops", "commune": commune}],
        dtype=object,
    )
    square = shapely.box(LON, LAT, LON + 0.001, LAT + 0.001)
    with pytest.raises(GeoComunaError) as refused:
        await import_frame(conn, PARCELS, frame, [square], settings)
    assert refused.value.status == 422 and refused.value.feature == 1


async def test_what_a_probe_found_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    """Parameters and bodies that overflowed: a budget buying an infinite pipe, a sliver width
    below any double PostgreSQL keeps, an integer of 5,000 digits in a PATCH."""
    for url in (
        "/communes/5-DE-MARZO/analyses/water-hookups?budget_money=1e12&cost_per_m=1e-300",
        "/communes/5-DE-MARZO/analyses/water-hookups?budget_money=1e12&cost_per_m=0.01",
        "/communes/EL-MAIZAL/analyses/land-recovery?sliver_width_m=5e-324",
    ):
        r = await client.get(url)
        assert r.status_code == 400, (url, r.text)
        assert_answer(r)
    digits = b'{"properties": {"workers": ' + b"9" * 5000 + b"}}"
    r = await client.patch(
        "/collections/production_units/items/1",
        content=digits,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "too long to be read" in r.json()["detail"]
