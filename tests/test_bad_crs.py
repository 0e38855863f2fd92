"""A file that declares a CRS nobody knows is refused by name, in every format that declares
one, and nothing is written: never read as WGS 84, never "no CRS" in disguise.

GDAL turns an unreadable .prj or a GeoPackage SRS row marked ``undefined`` into no CRS at
all, so these are checked before GDAL opens the file (io/sniff.py)."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import httpx
import pyogrio
import pytest
from psycopg import AsyncConnection

from geo_comuna.errors import UnknownCRS
from geo_comuna.io import sniff
from tests.test_io_errors import parcels

pytestmark = pytest.mark.anyio

IMPORT = "/collections/parcels/import"
#: a WKT that reads like a CRS and is none
BOGUS_PRJ = 'PROJCS["REGVEN_UTM_19N_typo",GEOGCS["x",DATUM["no_such_datum"'


async def count(conn: AsyncConnection) -> int:
    return (await (await conn.execute("SELECT count(*) FROM parcels")).fetchone())[0]


def shapefile_zip(tmp: Path, prj: str | None) -> Path:
    folder = tmp / "shp"
    folder.mkdir()
    pyogrio.write_dataframe(parcels().to_crs(2202), folder / "p.shp")
    (folder / "p.prj").unlink()
    if prj is not None:
        (folder / "p.prj").write_text(prj)
    out = tmp / "p.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    return out


def geopackage(tmp: Path, srs_row: tuple | None, srs_id: int) -> Path:
    """Parcels in EPSG:2202 whose layer is then pointed at ``srs_id`` (with ``srs_row``
    inserted into gpkg_spatial_ref_sys when given), as a hand-edited or foreign file is."""
    path = tmp / "p.gpkg"
    pyogrio.write_dataframe(parcels().to_crs(2202), path, layer="parcels")
    with sqlite3.connect(path) as db:
        if srs_row is not None:
            db.execute("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", srs_row)
        db.execute("UPDATE gpkg_geometry_columns SET srs_id = ?", (srs_id,))
        db.execute("UPDATE gpkg_contents SET srs_id = ?", (srs_id,))
    return path


def geojson_named(tmp: Path, name: str) -> Path:
    body = json.loads(parcels().to_json())
    body["crs"] = {"type": "name", "properties": {"name": name}}
    path = tmp / "p.geojson"
    path.write_text(json.dumps(body))
    return path


CASES = {
    "geojson crs member": (lambda t: geojson_named(t, "EPSG:999999"), "EPSG:999999"),
    "shapefile .prj": (lambda t: shapefile_zip(t, BOGUS_PRJ), "REGVEN_UTM_19N_typo"),
    "geopackage undefined srs": (
        lambda t: geopackage(t, ("REGVEN typo", 99001, "NONE", 99001, "undefined", ""), 99001),
        "99001",
    ),
    "geopackage unreadable srs": (
        lambda t: geopackage(t, ("mine", 99002, "NONE", 99002, 'PROJCS["x"', ""), 99002),
        "99002",
    ),
    "geopackage srs missing": (lambda t: geopackage(t, None, 99003), "99003"),
    # found from outside: a local grid said PROJ's words alone, not the way out (--crs)
    "geopackage local grid": (
        lambda t: geopackage(t, ("local", 99004, "NONE", 99004, 'LOCAL_CS["site"]', ""), 99004),
        "LOCAL_CS",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_an_unknown_declared_crs_is_refused_by_name(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, case: str
) -> None:
    make, named = CASES[case]
    path = make(tmp_path)
    before = await count(conn)
    r = await client.post(IMPORT, files={"file": (path.name, path.read_bytes())})
    assert r.status_code == 422, (case, r.status_code, r.text)
    detail = r.json()["detail"]
    assert named in detail and "--crs" in detail, (case, detail)
    assert await count(conn) == before


async def test_the_way_out_the_message_names_works(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """Without the broken declaration and with ?crs=, the same file imports. With the broken
    declaration and ?crs= it is still refused: the file contradicts itself and the caller
    may not know it."""
    broken = shapefile_zip(tmp_path, BOGUS_PRJ)
    r = await client.post(
        IMPORT, params={"crs": "EPSG:2202"}, files={"file": (broken.name, broken.read_bytes())}
    )
    assert r.status_code == 422 and "REGVEN_UTM_19N_typo" in r.json()["detail"]
    (tmp_path / "shp").rename(tmp_path / "broken")
    broken.unlink()
    path = shapefile_zip(tmp_path, None)
    before = await count(conn)
    r = await client.post(
        IMPORT, params={"crs": "EPSG:2202"}, files={"file": (path.name, path.read_bytes())}
    )
    assert r.status_code == 201, r.text
    assert await count(conn) == before + 3


async def test_a_crs_given_over_the_files_own_is_said(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Found from outside: a GeoPackage of EPSG:2202 imported with ?crs=EPSG:2203 moved
    every parcel 6 degrees east, and the report named 2203 alone. The file's own is named."""
    path = tmp_path / "p.gpkg"
    pyogrio.write_dataframe(parcels().to_crs(2202), path)
    for given, overridden in (("EPSG:2203", "EPSG:2202"), ("EPSG:2202", None)):
        r = await client.post(
            IMPORT,
            params={"crs": given, "dry_run": "true"},
            files={"file": (path.name, path.read_bytes())},
        )
        assert r.status_code in (200, 201), r.text
        assert r.json()["source_crs"] == given
        assert r.json()["file_crs_overridden"] == overridden, r.json()


def test_a_loose_shapefile_prj_is_checked_too(tmp_path: Path) -> None:
    """The CLI reads a .shp beside its sidecars, not zipped: the same check."""
    folder = tmp_path / "loose"
    folder.mkdir()
    pyogrio.write_dataframe(parcels().to_crs(2202), folder / "p.shp")
    sniff.shapefile(folder / "p.shp")  # its own .prj: fine
    (folder / "p.prj").write_text("garbage, not WKT")
    with pytest.raises(UnknownCRS, match="garbage, not WKT"):
        sniff.shapefile(folder / "p.shp")


def test_kml_and_geojson_without_a_crs_are_wgs84(tmp_path: Path) -> None:
    """What the formats themselves say: KML is WGS 84 by definition, GeoJSON (RFC 7946) too
    when it names none; those are read as such, not refused."""
    path = tmp_path / "p.geojson"
    path.write_text(parcels().to_json())
    sniff.geojson(path)
