"""Bad files refused, through import_file, the CLI and HTTP: the error names the feature (by
its 1-based position) and the reason, and nothing is written."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna import accounts
from geo_comuna.api.app import create_app
from geo_comuna.api.deps import get_conn
from geo_comuna.cli import app as cli_app
from geo_comuna.errors import (
    GeoComunaError,
    InvalidAttribute,
    InvalidFile,
    InvalidGeometry,
    NotFound,
    UnknownCRS,
)
from geo_comuna.features import validate
from geo_comuna.io.importer import import_file
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import LAT, LON, MAIZAL

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
#: the installed console script, as a planner runs it
CLI = [str(Path(sys.executable).parent / "geo-comuna")]
TENURES = "abandoned, occupied, regularizing, regularized, disputed"
BOWTIE = shapely.Polygon(
    [(LON, LAT), (LON + 0.001, LAT + 0.001), (LON + 0.001, LAT), (LON, LAT + 0.001)]
)


def parcels(
    n: int = 3,
    *,
    bowtie_at: int | None = None,
    tenure_at: int | None = None,
    commune: bool = True,
    at: tuple[float, float] = (LON, LAT),
) -> gpd.GeoDataFrame:
    """``n`` valid parcels of EL-MAIZAL, ~200 m apart eastwards from ``at`` (lon, lat; the
    default lies outside its territory, which only admins may write: MAIZAL is inside);
    optionally one bow-tie polygon or one unknown tenure at a 1-based position."""
    lon, lat = at
    geoms = [
        shapely.box(lon + i * 0.002, lat, lon + i * 0.002 + 0.001, lat + 0.001) for i in range(n)
    ]
    tenure = ["occupied"] * n
    if bowtie_at:
        geoms[bowtie_at - 1] = BOWTIE
    if tenure_at:
        tenure[tenure_at - 1] = "stolen"
    data = {
        "tenure": tenure,
        "land_use": ["crops"] * n,
        "recovered_on": ["2021-03-04"] * n,
        "notes": [f"row {i + 1}" for i in range(n)],
    }
    if commune:
        data = {"commune": ["EL-MAIZAL"] * n, **data}
    return gpd.GeoDataFrame(data, geometry=geoms, crs=4326)


def geojson(frame: gpd.GeoDataFrame, path: Path) -> Path:
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")
    return path


def with_bowtie(tmp: Path) -> Path:
    return geojson(parcels(bowtie_at=2), tmp / "parcels.geojson")


def with_unknown_tenure(tmp: Path) -> Path:
    return geojson(parcels(tenure_at=3), tmp / "parcels.geojson")


def year_zero(tmp: Path) -> Path:
    """A date of year 0000 (GDAL reads it as a date Python cannot hold: it was a 500)."""
    frame = parcels()
    frame["recovered_on"] = ["2020-01-01", "0000-01-01", None]
    path = tmp / "parcels.geojson"
    path.write_text(frame.to_json())
    return path


def valid(tmp: Path) -> Path:
    return geojson(parcels(), tmp / "parcels.geojson")


def without_commune(tmp: Path) -> Path:
    return geojson(parcels(commune=False), tmp / "parcels.geojson")


def empty_file(tmp: Path) -> Path:
    (tmp / "parcels.geojson").write_bytes(b"")
    return tmp / "parcels.geojson"


def corrupt_geopackage(tmp: Path) -> Path:
    (tmp / "parcels.gpkg").write_bytes(random.Random(7).randbytes(8192))
    return tmp / "parcels.gpkg"


def not_a_zip(tmp: Path) -> Path:
    (tmp / "parcels.zip").write_bytes(random.Random(8).randbytes(8192))
    return tmp / "parcels.zip"


def no_features(tmp: Path) -> Path:
    (tmp / "parcels.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    return tmp / "parcels.geojson"


def shapefile_without_prj(tmp: Path) -> Path:
    """Parcels in REGVEN / UTM 19N, zipped without the .prj that would say so."""
    folder = tmp / "shp"
    folder.mkdir()
    pyogrio.write_dataframe(parcels().to_crs(2202), folder / "parcels.shp", encoding="UTF-8")
    with zipfile.ZipFile(tmp / "parcels.zip", "w") as zf:
        for part in folder.iterdir():
            if part.suffix != ".prj":
                zf.write(part, part.name)
    return tmp / "parcels.zip"


def projected_csv(tmp: Path) -> Path:
    """Geometry as WKT in metres (EPSG:2202); a CSV cannot say so."""
    pyogrio.write_dataframe(
        parcels().to_crs(2202),
        tmp / "parcels.csv",
        driver="CSV",
        layer_options={"GEOMETRY": "AS_WKT"},
    )
    return tmp / "parcels.csv"


def degrees_said_metres(tmp: Path) -> Path:
    """A GeoPackage saying EPSG:2202 (metres): its first parcel is in metres, the second
    still in lon/lat degrees, as a careless conversion leaves it."""
    frame = parcels(2).to_crs(2202)
    frame.loc[1, "geometry"] = parcels(2).geometry[1]
    pyogrio.write_dataframe(frame, tmp / "parcels.gpkg")
    return tmp / "parcels.gpkg"


def swapped_csv(tmp: Path) -> Path:
    """Points given as lat/lon in the lon/lat columns (dwellings)."""
    frame = pd.DataFrame(
        {
            "lon": [LAT, LAT + 0.001],
            "lat": [LON, LON + 0.001],
            "residents": [4, 5],
            "water": ["piped", "truck"],
            "electricity": ["formal", "none"],
            "commune": ["EL-MAIZAL"] * 2,
        }
    )
    frame.to_csv(tmp / "dwellings.csv", index=False)
    return tmp / "dwellings.csv"


def words_beside_numbers(tmp: Path) -> Path:
    """Homes whose residents are a number, then words, then digits as text: GDAL reads
    the property as JSON text, the words unquoted (found from outside: a 500)."""
    homes = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [LON + i / 1000, LAT]},
            "properties": {
                "residents": residents,
                "water": "piped",
                "electricity": "formal",
                "commune": "EL-MAIZAL",
            },
        }
        for i, residents in enumerate([3, "muchos", "4"])
    ]
    path = tmp / "dwellings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": homes}))
    return path


def wkt_csv(tmp: Path, second: str) -> Path:
    """Three parcels as a CSV with a WKT column, the second's written as ``second``."""
    frame = pd.DataFrame(parcels().drop(columns="geometry"))
    frame["wkt"] = [g.wkt for g in parcels().geometry]
    frame.loc[1, "wkt"] = second
    frame.to_csv(tmp / "parcels.csv", index=False)
    return tmp / "parcels.csv"


def unreadable_wkt_csv(tmp: Path) -> Path:
    return wkt_csv(tmp, "POLYGON ((-69.5 9.5, -69.4 9.5, -69.4 9.6")


def blank_wkt_csv(tmp: Path) -> Path:
    return wkt_csv(tmp, "")


def unreadable_lon_csv(tmp: Path) -> Path:
    """Dwellings whose second longitude is no number."""
    swapped_csv(tmp)
    text = (tmp / "dwellings.csv").read_text().splitlines()
    text[2] = "-69.4x," + text[2].split(",", 1)[1]
    (tmp / "dwellings.csv").write_text("\n".join(text) + "\n")
    return tmp / "dwellings.csv"


def damaged_geopackage(tmp: Path, blob: str) -> Path:
    """Three parcels whose second geometry blob SQLite sets to ``blob`` (SQL)."""
    path = tmp / "parcels.gpkg"
    pyogrio.write_dataframe(parcels(), path)
    with sqlite3.connect(path) as db:  # its R-tree triggers call functions only GDAL has
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{trigger}"')
        db.execute(f"UPDATE parcels SET geom = {blob} WHERE fid = 2")  # noqa: S608
    return path


def cut_geometry_geopackage(tmp: Path) -> Path:
    """GDAL reads a blob cut short as no geometry."""
    return damaged_geopackage(tmp, "substr(geom, 1, 30)")


def not_wkb_geopackage(tmp: Path) -> Path:
    """A GeoPackage header before bytes of no geometry: GDAL hands the bytes on as WKB."""
    return damaged_geopackage(tmp, "X'47500001E6100000DEADBEEFDEADBEEF'")


def garbage_geojson(tmp: Path) -> Path:
    (tmp / "parcels.geojson").write_text('{"type": "FeatureCollection", "features": [')
    return tmp / "parcels.geojson"


def windows_1252_csv(tmp: Path) -> Path:
    """What Excel saves as plain 'CSV' on a Spanish Windows."""
    text = (
        "lon,lat,tenure,land_use,notes,commune\n"
        f"{LON},{LAT},abandoned,idle,Terreno baldío,EL-MAIZAL\n"
    )
    (tmp / "parcels.csv").write_bytes(text.encode("cp1252"))
    return tmp / "parcels.csv"


def windows_1252_header(tmp: Path) -> Path:
    """The same with an accented column name: pyogrio decodes names, not values."""
    text = f"lon,lat,tenure,año\n{LON},{LAT},abandoned,2021\n"
    (tmp / "parcels.csv").write_bytes(text.encode("cp1252"))
    return tmp / "parcels.csv"


def repeated_column_csv(tmp: Path) -> Path:
    """Found from outside: a CSV naming a column twice (in another case here) was a 500."""
    path = wkt_csv(tmp, parcels().geometry[1].wkt)
    lines = path.read_text().splitlines()
    lines[0] += ",Notes"
    path.write_text("\n".join(f"{line},x" if i else line for i, line in enumerate(lines)) + "\n")
    return path


def utf7_shapefile(tmp: Path) -> Path:
    """Found from outside: a .cpg naming UTF-7 made GDAL drop a code's ñ and ú without a
    word; the upsert then took it for another parcel."""
    folder = tmp / "shp7"
    folder.mkdir()
    frame = parcels()
    frame["code"] = ["ZZ-ñandú-1", "ZZ-2", "ZZ-3"]
    pyogrio.write_dataframe(frame, folder / "parcels.shp", encoding="UTF-8")
    (folder / "parcels.cpg").write_text("UTF-7")
    with zipfile.ZipFile(tmp / "parcels.zip", "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    return tmp / "parcels.zip"


def _nested(depth: int, inner: bytes = b"\x01\x01\x00\x00\x00" + bytes(16)) -> bytes:
    """WKB of ``inner`` (a point) inside ``depth`` GeometryCollections of one member each."""
    return b"\x01\x07\x00\x00\x00\x01\x00\x00\x00" * depth + inner


def deeply_nested_geopackage(tmp: Path) -> Path:
    """Found from outside: a GeoPackage whose second parcel is a point inside 30,000
    collections (270 KB). GDAL hands the blob on as it is, and GEOS, reading it recursively,
    overflowed the server worker's stack: a segfault."""
    blob = b"GP\x00\x01" + struct.pack("<i", 4326) + _nested(30_000)
    return damaged_geopackage(tmp, f"X'{blob.hex()}'")


def test_a_geometrys_nesting_is_walked_before_geos_reads_it() -> None:
    """The walk (headers and counts, no coordinates) refuses past 32 levels or a million
    parts, in WKB and EWKB, and leaves bytes it cannot walk to GEOS."""
    from geo_comuna.io.geometries import _TooDeep, _Unwalked, _walk

    _walk(_nested(32))  # GDAL's own limit: read
    for bomb in (
        # found from outside: a type GEOS reads as a collection ((code & 0xffff) % 1000 = 7)
        # that the walk took for none, over plain collections nested deep
        *(
            b"\x01" + struct.pack("<I", code) + b"\x01\x00\x00\x00" + _nested(40)
            for code in (0x00010007, 0x0FFF0007, 0x00100007)
        ),
        _nested(33),
        # a multipolygon whose second member is a collection nested deep (GEOS recursed
        # before it checked the member's type)
        b"\x01\x06\x00\x00\x00\x02\x00\x00\x00" + shapely.to_wkb(shapely.box(0, 0, 1, 1))
        + _nested(40),
        # a polygon of two million empty rings, 8 MB of counts
        b"\x01\x03\x00\x00\x00" + struct.pack("<I", 2_000_000) + bytes(4 * 2_000_000),
        # EWKB: a Z collection with its SRID, nested deep
        b"\x01" + struct.pack("<I", 0xA0000007) + struct.pack("<I", 4326) + b"\x01\x00\x00\x00"
        + _nested(40),
    ):  # fmt: skip
        with pytest.raises(_TooDeep):
            _walk(bomb)
    ordinary = shapely.to_wkb(
        shapely.MultiPolygon([shapely.box(i, 0, i + 1, 1).buffer(0.2) for i in range(50)]),
        include_srid=False,
    )
    _walk(ordinary)
    for unknown in (ordinary[:-100], b"\x05garbage", b"\x01\x63\x00\x00\x00"):
        with pytest.raises(_Unwalked):  # no WKB the walk knows: it does not go to GEOS
            _walk(unknown)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]
    error: type[GeoComunaError]
    says: tuple[str, ...]
    feature: int | None = None
    layer: str = "parcels"
    crs: str | None = None
    commune: str | None = None

    def options(self) -> list[str]:
        return ([f"--crs={self.crs}"] if self.crs else []) + (
            ["--commune", self.commune] if self.commune else []
        )


CASES = [
    Case(
        "self-intersection",
        with_bowtie,
        InvalidGeometry,
        ("Self-intersection", "--repair"),
        feature=2,
    ),
    Case("empty file", empty_file, InvalidFile, ("is empty",)),
    Case("a column twice", repeated_column_csv, InvalidFile, ("two columns named 'Notes'",)),
    Case("a cpg of UTF-7", utf7_shapefile, InvalidFile, ("names the encoding 'UTF-7'",)),
    Case(
        "geometry nested deep",
        deeply_nested_geopackage,
        InvalidGeometry,
        ("nests collections more than 32 deep",),
        feature=2,
    ),
    Case("corrupt geopackage", corrupt_geopackage, InvalidFile, ("not a GeoPackage",)),
    Case("zero features", no_features, InvalidFile, ("has no features",)),
    Case(
        "shapefile without prj",
        shapefile_without_prj,
        UnknownCRS,
        ("says nothing about its CRS", "--crs"),
    ),
    Case(
        "projected csv",
        projected_csv,
        InvalidGeometry,
        ("out of range", "projected CRS"),
        feature=1,
    ),
    Case(
        "degrees in a projected crs",
        degrees_said_metres,
        InvalidGeometry,
        ("look like degrees of longitude and latitude", "the file's CRS is EPSG:2202"),
        feature=2,
    ),
    Case(  # found from outside: the CRS given was called the file's
        "degrees given a projected crs",
        valid,
        InvalidGeometry,
        ("look like degrees of longitude and latitude", "but the CRS given is EPSG:2202"),
        feature=1,
        crs="EPSG:2202",
    ),
    Case(
        "swapped lat/lon",
        swapped_csv,
        InvalidGeometry,
        ("appear swapped",),
        feature=1,
        layer="dwellings",
    ),
    Case(
        "unknown tenure",
        with_unknown_tenure,
        InvalidAttribute,
        (f"'stolen' is not one of {TENURES}",),
        feature=3,
    ),
    Case(
        "year zero",
        year_zero,
        InvalidAttribute,
        ("property 'recovered_on': a date of the year 0 or before",),
        feature=2,
    ),
    Case(
        "words beside numbers",
        words_beside_numbers,
        InvalidAttribute,
        ("property 'residents': 'muchos' is not",),
        feature=2,
        layer="dwellings",
    ),
    Case(  # GDAL reads a WKT it cannot parse as no geometry
        "unreadable wkt",
        unreadable_wkt_csv,
        InvalidGeometry,
        ("its WKT could not be read: 'POLYGON ((-69.5 9.5, -69.4 9.5, -69.4 9.6'",),
        feature=2,
    ),
    Case("blank wkt", blank_wkt_csv, InvalidGeometry, ("missing geometry",), feature=2),
    Case(
        "unreadable longitude",
        unreadable_lon_csv,
        InvalidGeometry,
        ("its longitude and latitude are not both numbers: '-69.4x'",),
        feature=2,
        layer="dwellings",
    ),
    Case(
        "geometry blob cut short",
        cut_geometry_geopackage,
        InvalidGeometry,
        ("its geometry (30 bytes) is damaged",),
        feature=2,
    ),
    Case(
        "geometry blob of no wkb",
        not_wkb_geopackage,
        InvalidGeometry,
        ("its geometry could not be read: its bytes are not a geometry (WKB)",),
        feature=2,
    ),
    Case("unknown crs", valid, UnknownCRS, ("unknown CRS 'EPSG:nope'",), crs="EPSG:nope"),
    Case("not a zip", not_a_zip, InvalidFile, ("not a readable zip",)),
    Case("truncated geojson", garbage_geojson, InvalidFile, ("cannot read parcels.geojson",)),
    Case("windows-1252 csv", windows_1252_csv, InvalidFile, ("column 'notes' is not UTF-8",)),
    Case("windows-1252 header", windows_1252_header, InvalidFile, ("is not UTF-8 text",)),
    Case(
        "unknown commune",
        without_commune,
        NotFound,
        ("no commune with code 'NO-SUCH'",),
        commune="NO-SUCH",
    ),
]


async def count(conn: AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
    return (await cur.fetchone())[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_import_file_refuses(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, case: Case
) -> None:
    before = await count(conn, case.layer)
    with pytest.raises(case.error) as raised:
        await import_file(
            conn,
            LAYERS[case.layer],
            case.build(tmp_path),
            settings,
            crs=case.crs,
            commune=case.commune,
        )
    assert raised.value.feature == case.feature
    for fragment in case.says:
        assert fragment in raised.value.message
    assert await count(conn, case.layer) == before


async def test_a_csv_line_past_gdals_own_limit_is_read_whole(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """GDAL stops reading a CSV at a line over 10 MB: the one feature before it was imported as
    if it were the whole file. The line is read, and its note refused for its length."""
    path = wkt_csv(tmp_path, parcels().geometry[1].wkt)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("row 2", "x" * 10_500_000)
    path.write_text("\n".join(lines) + "\n")
    before = await count(conn, "parcels")
    with pytest.raises(InvalidAttribute) as raised:
        await import_file(conn, PARCELS, path, settings)
    assert raised.value.feature == 2 and "'notes' is longer than" in raised.value.message
    assert await count(conn, "parcels") == before
    lines[2] = lines[2].replace("x" * 10_500_000, "row 2") + "," + "y" * 10_500_000
    lines[0] += ",unknown"  # a column no layer has: ignored, its cells read past
    path.write_text("\n".join(lines) + "\n")
    report = await import_file(conn, PARCELS, path, settings)
    assert report.features == 3 and report.ignored_columns == ["unknown"]
    assert await count(conn, "parcels") == before + 3


async def test_import_file_repairs_and_takes_crs_and_commune(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    before = await count(conn, "parcels")
    repaired = await import_file(conn, PARCELS, with_bowtie(tmp_path), settings, repair=True)
    assert repaired.features == 3
    assert [r["feature"] for r in repaired.repairs] == [2]
    assert "Self-intersection" in repaired.repairs[0]["reason"]

    last = (await (await conn.execute("SELECT max(id) FROM parcels")).fetchone())[0]
    # the same parcels again, without codes: copies, but for allow_copies
    told = await import_file(
        conn,
        PARCELS,
        shapefile_without_prj(tmp_path),
        settings,
        crs="EPSG:2202",
        allow_copies=True,
    )
    assert told.features == 3 and told.source_crs == "EPSG:2202"
    # metres, in UTM 19N: the CRS given put the first parcel back where it was drawn
    cur = await conn.execute(
        "SELECT ST_HausdorffDistance(ST_Transform(geom, 32619), ST_Transform(ST_MakeEnvelope("
        "%s, %s, %s, %s, 4326), 32619)) FROM parcels WHERE id > %s AND notes = 'row 1'",
        (LON, LAT, LON + 0.001, LAT + 0.001, last),
    )
    assert (await cur.fetchone())[0] < 0.05

    cur = await conn.execute("SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    maizal = (await cur.fetchone())[0]
    by_id = await import_file(
        conn, PARCELS, without_commune(tmp_path), settings, commune=str(maizal), allow_copies=True
    )
    assert by_id.features == 3
    cur = await conn.execute(
        "SELECT count(*) FROM parcels WHERE commune_id IS DISTINCT FROM %s AND notes LIKE 'row _'",
        (maizal,),
    )
    assert (await cur.fetchone())[0] == 0
    assert await count(conn, "parcels") == before + 9


def _cli(conninfo: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": conninfo}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=180)


def _rows(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


#: `geo-comuna export LAYER FILE [options]` that must fail, and what stderr then says
EXPORT_CASES = [
    ("unknown layer", ["nothing", "out.gpkg"], "no collection named 'nothing'"),
    ("unknown suffix", ["parcels", "out.dxf"], "cannot tell the format from 'out.dxf'"),
    ("unknown format", ["parcels", "out.gpkg", "--format", "dxf"], "unknown format 'dxf'"),
    ("unknown crs", ["parcels", "out.gpkg", "--crs", "EPSG:nope"], "unknown CRS 'EPSG:nope'"),
    ("geojson in utm", ["parcels", "out.geojson", "--crs", "EPSG:2202"], "always EPSG:4326"),
    (
        "unknown commune",
        ["parcels", "out.gpkg", "--commune", "NO-SUCH"],
        "no commune with code 'NO-SUCH'",
    ),
]


def test_cli_refuses_bad_files(own_db: str, tmp_path: Path) -> None:
    """Every case through `geo-comuna import`, run side by side on one database: each exits
    non-zero naming the feature and the reason, and nothing is written."""
    before = {t: _rows(own_db, t) for t in ("parcels", "dwellings")}
    commands, expected = {}, {}
    for case in CASES:
        folder = tmp_path / case.id.replace(" ", "-").replace("/", "-")
        folder.mkdir()
        commands[case.id] = ["import", case.layer, str(case.build(folder)), *case.options()]
        expected[case.id] = [*case.says] + ([f"feature {case.feature}:"] if case.feature else [])
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(
            zip(
                commands, pool.map(lambda args: _cli(own_db, *args), commands.values()), strict=True
            )
        )
    wrong = []
    for key, run in done.items():
        missing = [w for w in expected[key] if w not in run.stderr]
        if run.returncode == 0 or missing:
            wrong.append(f"{key}: exit {run.returncode}, missing {missing} in {run.stderr!r}")
    assert not wrong, "\n".join(wrong)
    assert {t: _rows(own_db, t) for t in before} == before


def test_an_invalid_geometry_is_said_in_spanish(own_db: str, tmp_path: Path) -> None:
    """GEOS says why a geometry is invalid in English ('Self-intersection[-66.9 10.5]'),
    and a Spanish refusal quoted it as it was; it now says the fault in Spanish, and where."""
    done = CliRunner().invoke(
        cli_app,
        ["import", "parcels", str(with_bowtie(tmp_path)), "--lang", "es"],
        env={"GEO_COMUNA_DATABASE_URL": own_db},
    )
    assert done.exit_code != 0
    assert re.search(
        r"entidad 2: geometría no válida: el borde se cruza consigo mismo en lon -?\d+(,\d+)?, "
        r"lat -?\d+(,\d+)? \(envíe \?repair=true o --repair",
        done.stderr,
    ), done.stderr
    assert "Self-intersection" not in done.stderr


@pytest.mark.parametrize(
    ("wkt", "spanish"),
    [
        ("POLYGON((0 0,2 2,2 0,0 2,0 0))", "el borde se cruza consigo mismo en lon 1, lat 1"),
        ("POLYGON((0 0,4 0,4 4,0 4,0 0),(5 5,6 5,6 6,5 5))", "un hueco queda fuera del contorno"),
        ("POLYGON((0 0,4 0,4 4,0 4,0 0),(0 2,2 0,4 2,2 4,0 2))", "el interior queda partido"),
        (
            "POLYGON((0 0,2 0,1 1,2 2,0 2,1 1,0 0))",
            "un anillo se cruza consigo mismo en lon 1, lat 1",
        ),
        ("MULTIPOLYGON(((0 0,4 0,4 4,0 4,0 0)),((1 1,2 1,2 2,1 1)))", "un contorno dentro de otro"),
    ],
)
def test_geos_reasons_in_spanish(wkt: str, spanish: str) -> None:
    """What GEOS itself says of each fault (not a copy of its words) has its Spanish."""
    reason = validate.geos_reason(shapely.is_valid_reason(shapely.from_wkt(wkt)))
    assert reason.es.startswith(spanish), reason.es
    assert str(reason) == shapely.is_valid_reason(shapely.from_wkt(wkt))  # English as it was


@pytest.mark.parametrize(
    ("args", "says"), [c[1:] for c in EXPORT_CASES], ids=[c[0] for c in EXPORT_CASES]
)
def test_cli_export_refuses(own_db: str, tmp_path: Path, args: list[str], says: str) -> None:
    """In process (the command's code path is the same; a subprocess per case costs ~1.5 s)."""
    layer, file, *options = args
    done = CliRunner().invoke(
        cli_app,
        ["export", layer, str(tmp_path / file), *options],
        env={"GEO_COMUNA_DATABASE_URL": own_db},
    )
    assert done.exit_code != 0 and says in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_repair_and_crs_succeed(own_db: str, tmp_path: Path) -> None:
    before = _rows(own_db, "parcels")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    repaired = _cli(own_db, "import", "parcels", str(with_bowtie(tmp_path / "a")), "--repair")
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["features"] == 3 and report["repairs"][0]["feature"] == 2
    assert "Self-intersection" in report["repairs"][0]["reason"]

    told = _cli(
        own_db,
        "import",
        "parcels",
        str(shapefile_without_prj(tmp_path / "b")),
        "--crs",
        "EPSG:2202",
        "--allow-copies",  # the same parcels, without codes, as the first file
    )
    assert told.returncode == 0, told.stderr
    assert json.loads(told.stdout)["source_crs"] == "EPSG:2202"
    assert _rows(own_db, "parcels") == before + 6


#: runs CLI commands in one fresh interpreter, then prints which pandas modules it loaded
WHAT_LOADED = """
import json, sys
from geo_comuna.cli import app
for args in json.loads(sys.argv[1]):
    app(args, standalone_mode=False)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "geopandas"))))
"""


def test_cli_import_loads_no_pandas(own_db: str, tmp_path: Path) -> None:
    """`geo-comuna import` keeps a file's Arrow data from GDAL to COPY: pandas and geopandas
    (~0.2 s of start-up) are never loaded. The CSV takes the paths that used them: parcel
    codes GDAL reads as numbers, read again as written, and a blank commune cell that
    --commune fills."""
    first = shapely.box(LON, LAT, LON + 0.001, LAT + 0.001).wkt
    second = shapely.box(LON + 0.002, LAT, LON + 0.003, LAT + 0.001).wkt
    csv_file = tmp_path / "parcels.csv"
    csv_file.write_text(
        f'wkt,code,tenure,commune\n"{first}",101,occupied,\n"{second}",102,disputed,EL-MAIZAL\n'
    )
    gpkg = tmp_path / "parcels.gpkg"
    pyogrio.write_dataframe(parcels(), gpkg, layer="parcels")
    runs = [
        ["import", "parcels", str(csv_file), "--commune", "MONTE-SINAI"],
        # the first parcel's shape again, without a code: a copy but for --allow-copies
        ["import", "parcels", str(gpkg), "--allow-copies"],
    ]
    done = subprocess.run(
        [sys.executable, "-c", WHAT_LOADED, json.dumps(runs)],
        capture_output=True,
        text=True,
        env={**os.environ, "GEO_COMUNA_DATABASE_URL": own_db},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
    with psycopg.connect(own_db) as db:
        rows = db.execute(
            "SELECT p.code, p.tenure, c.code FROM parcels p JOIN communes c ON c.id = p.commune_id"
            " WHERE p.code IN ('101', '102') ORDER BY p.code"
        ).fetchall()
        assert rows == [("101", "occupied", "MONTE-SINAI"), ("102", "disputed", "EL-MAIZAL")]
        notes = db.execute("SELECT notes FROM parcels WHERE notes LIKE 'row _' ORDER BY notes")
        assert [n for (n,) in notes] == ["row 1", "row 2", "row 3"]


#: the console script's main() after an exit handler of the caller's
EXIT_HANDLERS_RUN = """
import atexit, sys
from geo_comuna.cli import main
atexit.register(print, "exit handlers ran")
sys.argv = ["geo-comuna", "--help"]
main()
"""


def test_the_console_script_leaves_through_python_teardown() -> None:
    """main() ends as Python ends, so exit handlers (a library's, a log's) still run: it used
    to leave with os._exit, which skipped them."""
    done = subprocess.run(
        [sys.executable, "-c", EXIT_HANDLERS_RUN], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and done.stdout.rstrip().endswith("exit handlers ran")


HTTP_CASES = [
    ("self-intersection", with_bowtie, 422, 2, "Self-intersection"),
    ("unknown tenure", with_unknown_tenure, 422, 3, "'stolen' is not one of"),
    ("empty file", empty_file, 422, None, "is empty"),
    ("a column twice", repeated_column_csv, 422, None, "two columns named 'Notes'"),
    ("geometry nested deep", deeply_nested_geopackage, 422, 2, "nests collections more than"),
    # asked of the file again, in a child process as it was read
    ("geometry blob cut short", cut_geometry_geopackage, 422, 2, "(30 bytes) is damaged"),
    ("unreadable wkt", unreadable_wkt_csv, 422, 2, "its WKT could not be read"),
]


@pytest.mark.parametrize(
    ("build", "status", "feature", "says"),
    [c[1:] for c in HTTP_CASES],
    ids=[c[0] for c in HTTP_CASES],
)
async def test_http_upload_of_a_bad_file(
    client: httpx.AsyncClient,
    conn: AsyncConnection,
    tmp_path: Path,
    build: Callable[[Path], Path],
    status: int,
    feature: int | None,
    says: str,
) -> None:
    before = await count(conn, "parcels")
    path = build(tmp_path)
    r = await client.post(
        "/collections/parcels/import", files={"file": (path.name, path.read_bytes())}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem.get("feature") == feature and says in problem["detail"]
    assert await count(conn, "parcels") == before


async def test_http_upload_refuses_unknown_type_and_commune(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = valid(tmp_path).read_bytes()
    r = await client.post(
        "/collections/parcels/import", files={"file": ("../../parcels.exe", body)}
    )
    assert r.status_code == 415 and "unsupported file type '.exe'" in r.json()["detail"]
    r = await client.post(
        "/collections/parcels/import?commune=NO-SUCH", files={"file": ("parcels.geojson", body)}
    )
    assert r.status_code == 404 and "NO-SUCH" in r.json()["detail"]
    r = await client.post("/collections/parcels/import", files={"upload": ("a.geojson", body)})
    assert r.status_code == 400 and "file" in r.json()["detail"]


async def test_http_upload_over_the_limit_is_413(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    before = await count(conn, "parcels")
    app = create_app(settings.model_copy(update={"max_upload_bytes": 2048}))

    async def same_conn():  # noqa: ANN202
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    body = geojson(parcels(20), tmp_path / "parcels.geojson").read_bytes()
    assert len(body) > 2048
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as small:
        r = await small.post(
            "/collections/parcels/import", files={"file": ("parcels.geojson", body)}
        )
    assert r.status_code == 413 and "over the limit of 2048 bytes" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count(conn, "parcels") == before


async def test_http_upload_needs_a_writer_confined_to_its_communes(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    before = await count(conn, "parcels")
    # three EL-MAIZAL parcels, inside its territory
    body = geojson(parcels(at=MAIZAL), tmp_path / "parcels.geojson").read_bytes()
    upload = {"file": ("parcels.geojson", body)}
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.post("/collections/parcels/import", files=upload)
        assert r.status_code == 401, r.text
    _, viewer = await accounts.add_user(conn, "vio", "viewer", [])
    async with api_client(conn, settings, viewer) as c:
        r = await c.post("/collections/parcels/import", files=upload)
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
    _, elsewhere = await accounts.add_user(conn, "eli", "editor", ["5-DE-MARZO"])
    async with api_client(conn, settings, elsewhere) as c:
        r = await c.post("/collections/parcels/import", files=upload)
        assert r.status_code == 403 and "outside the communes" in r.json()["detail"], r.text
    assert await count(conn, "parcels") == before
    _, editor = await accounts.add_user(conn, "edu", "editor", ["EL-MAIZAL"])
    async with api_client(conn, settings, editor) as c:
        r = await c.post("/collections/parcels/import", files=upload)
        assert r.status_code == 201, r.text
    assert await count(conn, "parcels") == before + 3


async def test_a_local_crs_keeps_its_small_coordinates(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A survey's own transverse Mercator, its origin on the site: coordinates of a few tens
    of metres, within +-180 and +-90 like degrees, are metres here. The check for degrees in a
    projected CRS (the case above) leaves them: this CRS names no area of use to leave."""
    lon0, lat0 = LON + 0.0005, LAT + 0.0005
    local = f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m"
    frame = parcels(1).to_crs(local)
    assert frame.total_bounds.max() < 100  # metres around the origin
    pyogrio.write_dataframe(frame, tmp_path / "survey.gpkg")
    done = await import_file(conn, PARCELS, tmp_path / "survey.gpkg", settings)
    assert done.inserted == 1
    cur = await conn.execute(
        "SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM parcels "
        "ORDER BY id DESC LIMIT 1"
    )
    assert await cur.fetchone() == pytest.approx((lon0, lat0), abs=1e-6)


def test_a_path_the_command_cannot_write_is_said_not_a_traceback(
    own_db: str, tmp_path: Path
) -> None:
    """A folder given for a file, a path under /proc: each command said so in a Python
    traceback. Now: exit 2 and the path with the reason, in the command's language."""
    folder = tmp_path / "out"
    folder.mkdir()
    for args, says in [
        (["map", "commune", "EL-MAIZAL", "--out", str(folder), "--lang", "en"], "it is a folder"),
        (["export", "parcels", "/proc/p.gpkg", "--commune", "EL-MAIZAL"], "/proc/"),
    ]:
        done = _cli(own_db, *args)
        assert done.returncode == 2, (args, done.stderr[-500:])
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr[-500:]
    assert list(folder.iterdir()) == []


def test_gdals_words_a_person_cannot_act_on_are_said_plainly() -> None:
    """Found from outside: an 89 MB GeoJSON of one huge line was refused with GDAL's advice to
    set OGR_GEOJSON_MAX_OBJ_SIZE, a server setting no uploader can change."""
    from pyogrio.errors import DataSourceError

    from geo_comuna.io.formats import gdal_reason

    said = gdal_reason(
        DataSourceError(
            "Failed to read GeoJSON data; At line 1, character 7159745: GeoJSON object too "
            "complex/large. You may define the OGR_GEOJSON_MAX_OBJ_SIZE configuration option"
        )
    )
    assert "OGR_GEOJSON_MAX_OBJ_SIZE" not in said + said.es
    assert "split it into smaller features" in said and "divídala" in said.es
    other = gdal_reason(DataSourceError("no such layer"))
    assert other == other.es == "no such layer"


async def test_new_features_outside_their_commune_are_said(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: homes of a CSV a digit off in latitude were stored as El Maizal's,
    87 km from it, and the report said nothing. Imported still (a commune's boundary may be
    drawn short of its people), but counted and the first named by position and a point."""
    cur = await conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM communes, ST_PointOnSurface(geom) p WHERE code = %s",
        ("EL-MAIZAL",),
    )
    lon, lat = await cur.fetchone()
    frame = pd.DataFrame(
        {
            "lon": [lon, lon, lon],
            "lat": [lat, lat + 1, lat - 2],
            "residents": [4, 5, 6],
            "water": ["piped"] * 3,
            "electricity": ["formal"] * 3,
            "commune": ["EL-MAIZAL"] * 3,
        }
    )
    frame.to_csv(tmp_path / "dwellings.csv", index=False)
    tried = await import_file(
        conn, LAYERS["dwellings"], tmp_path / "dwellings.csv", settings, dry_run=True
    )
    assert tried.outside_commune["count"] == 2 and tried.dry_run
    report = await import_file(conn, LAYERS["dwellings"], tmp_path / "dwellings.csv", settings)
    assert report.inserted == 3 and report.outside_commune["count"] == 2
    assert [f["feature"] for f in report.outside_commune["first"]] == [2, 3]
    first = report.outside_commune["first"][0]
    assert (first["lon"], first["lat"]) == (round(lon, 6), round(lat + 1, 6))
    frame.loc[:0, "residents"] = 9  # not a copy of the one stored
    frame.iloc[:1].to_csv(tmp_path / "one.csv", index=False)
    one = await import_file(conn, LAYERS["dwellings"], tmp_path / "one.csv", settings)
    assert one.outside_commune == {"count": 0, "first": []}


async def test_heights_left_out_are_said(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a survey's points with heights (Z) were stored in two dimensions
    without a word. The report counts them and names the first; the CLI says so."""
    homes = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [LON + i / 1000, LAT, *z]},
            "properties": {"residents": 3, "water": "piped", "electricity": "formal"},
        }
        for i, z in enumerate([[], [912.5], [913.0]])
    ]
    path = tmp_path / "casas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": homes}))
    report = await import_file(
        conn, LAYERS["dwellings"], path, settings, commune="EL-MAIZAL", dry_run=True
    )
    assert report.heights_dropped == {"count": 2, "first": 2}
    flat = tmp_path / "flat.geojson"
    flat.write_text(json.dumps({"type": "FeatureCollection", "features": homes[:1]}))
    report = await import_file(
        conn, LAYERS["dwellings"], flat, settings, commune="EL-MAIZAL", dry_run=True
    )
    assert report.heights_dropped == {"count": 0, "first": None}
    said = []
    await import_file(
        conn,
        LAYERS["dwellings"],
        path,
        settings,
        commune="EL-MAIZAL",
        dry_run=True,
        progress=lambda line: said.append(line),
    )
    line = next(s for s in said if "(Z, M)" in s)
    assert line.startswith("note: 2 features came with heights or measures (Z, M)")
    assert line.es.startswith("nota: 2 entidades venían con alturas o medidas (Z, M)")
    # a measure (M) goes the same way, and is said so (found from outside)
    measured = tmp_path / "medidas.csv"
    measured.write_text(
        "wkt,residents,water,electricity\n"
        f'"POINT ({LON} {LAT})",3,piped,formal\n"POINT M ({LON} {LAT} 5)",3,piped,formal\n'
    )
    report = await import_file(
        conn, LAYERS["dwellings"], measured, settings, commune="EL-MAIZAL", dry_run=True
    )
    assert report.heights_dropped == {"count": 1, "first": 2}
