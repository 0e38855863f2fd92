"""A commune package opened in QGIS 3.22 (Debian's python3-qgis, headless, run by Debian's
Python in a subprocess: tests/qgis_package.py), as a field worker opens it: the project loads
every layer valid, drawn by the style of maps/styles.json, with Spanish aliases and
drop-downs (ValueMap) on every coded attribute; the GeoPackage opened alone takes its styles
from its ``layer_styles`` table, as QField does with a bare GeoPackage.

The package is built once by `geo-comuna package` on a database of the module's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyogrio
import pytest
import shapely
from psycopg.conninfo import make_conninfo

from geo_comuna.db.pool import with_options
from geo_comuna.layers import LAYERS
from geo_comuna.maps.package import GPKG, PROJECTS
from geo_comuna.maps.qgis import VALUE_MAP_NULL, layer_id
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings
from tests.conftest import _drop, _recreate

SCRIPT = Path(__file__).with_name("qgis_package.py")
QGIS_PYTHON = "/usr/bin/python3"  # python3-qgis is built for Debian's Python
CLI = [sys.executable, "-m", "geo_comuna.cli"]
COMMUNE = "EL-MAIZAL"


@pytest.fixture(scope="module")
def package(
    admin_conninfo: str,
    template_db: str,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """The folder of COMMUNE's unzipped package."""
    name = f"geo_comuna_t_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name, template_db)
    dsn = with_options(make_conninfo(admin_conninfo, dbname=name), settings)
    try:
        folder = tmp_path_factory.mktemp("package")
        out = folder / "package.zip"
        done = subprocess.run(
            [*CLI, "package", COMMUNE, "--out", str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "GEO_COMUNA_DATABASE_URL": dsn},
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        with zipfile.ZipFile(out) as zf:
            zf.extractall(folder)
        yield folder
    finally:
        _drop(admin_conninfo, name)


def qgis(folder: Path, project: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(folder))
    run = subprocess.run(
        [QGIS_PYTHON, str(SCRIPT), str(folder / project), str(folder / GPKG)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd="/",  # the project must find its GeoPackage from where it lies, not from here
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def counts(folder: Path) -> dict[str, int]:
    """Features per layer of the package's GeoPackage, as GDAL reads them (test_package.py
    checks these against the API's counts)."""
    return {name: pyogrio.read_info(folder / GPKG, layer=name)["features"] for name in LAYERS}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_qgis_opens_the_project(package: Path, lang: str) -> None:
    folder = package
    seen = qgis(folder, PROJECTS[lang])
    assert seen["read"], seen
    # in lon/lat, so that QGIS measures in metres; with no project CRS it shows "No CRS"
    assert seen["crs"] == "EPSG:4326"
    # it opens on the commune, not on the world
    commune = pyogrio.read_dataframe(folder / GPKG, layer="communes").total_bounds
    assert seen["extent"] == pytest.approx(list(commune), abs=1e-6)
    assert set(seen["layers"]) == {layer_id(layer) for layer in LAYERS.values()}
    expected = counts(folder)
    styles = Styles.load()
    for layer in LAYERS.values():
        got = seen["layers"][layer_id(layer)]
        assert got["valid"], (layer.name, got)
        assert got["name"] == layer.title.get(lang)
        assert got["count"] == expected[layer.name], layer.name
        assert got["crs"] == "EPSG:4326"
        theme = styles.themes(layer)[0]
        assert got["renderer"] == "categorizedSymbol", layer.name
        assert got["attr"] == theme.by
        assert [label for _, label in got["categories"]] == [
            label for _, label in styles.legend_entries(theme, lang)
        ]
        for attr in layer.attributes:
            if attr.name not in got["widgets"]:
                continue  # a members-only column the package's reader may not read
            assert got["aliases"][attr.name].startswith(attr.title.get(lang)), attr.name
            if attr.type == "date":  # a calendar: typed as text, 15/03/2024 became 0000-00-00
                assert got["widgets"][attr.name] == "DateTime", (layer.name, attr.name)
                assert got["dates"][attr.name]["calendar"], attr.name
                assert got["dates"][attr.name]["stored"] == "yyyy-MM-dd", attr.name
            if attr.type == "boolean":  # a box to tick (it was a text box: found from outside)
                assert got["widgets"][attr.name] == "CheckBox", (layer.name, attr.name)
            if attr.domain is None:
                assert got["widgets"][attr.name] != "ValueMap", attr.name
                continue
            assert got["widgets"][attr.name] == "ValueMap", (layer.name, attr.name)
            labels = {styles.value_label(attr.domain, v, lang): v for v in attr.domain.values}
            value_map = got["value_maps"][attr.name]
            if not attr.required:
                assert VALUE_MAP_NULL in value_map.values()
            assert {k: v for k, v in value_map.items() if v != VALUE_MAP_NULL} == labels
        # found from outside: a home without its residents was refused only at the sync
        required = {a.name for a in layer.attributes if a.required}
        required |= {r.name for r in layer.references if r.required}
        # (the GeoPackage's fid is the provider's own)
        assert set(got["not_null"]) - {"fid"} == required & set(got["widgets"]), layer.name
        assert {"id", "version"} <= set(got["read_only"])
        assert not set(got["read_only"]) & set(layer.property_names)
        if layer.reference("commune") is not None and "commune" in got["widgets"]:
            # found from outside: a new feature's commune was empty in the form
            assert got["new"].get("commune") == COMMUNE, (layer.name, got["new"])
    # found from outside: a production unit's parcel was a box for a number (its id); it is a
    # drop-down of the package's parcels by code that stores the id
    units = seen["layers"][layer_id(LAYERS["production_units"])]
    assert units["widgets"]["parcel"] == "ValueRelation"
    relation = units["relations"]["parcel"]
    assert (relation["layer"], relation["key"], relation["value"]) == ("parcels", "id", "code")
    parcels = pyogrio.read_dataframe(folder / GPKG, layer="parcels", read_geometry=False)
    codes = dict(zip(parcels["id"].astype(str), parcels["code"], strict=True))
    assert relation["shown"] and all(codes[i] == c for i, c in relation["shown"].items())


def test_qgis_styles_a_bare_geopackage(package: Path) -> None:
    folder = package
    seen = qgis(folder, PROJECTS["es"])["gpkg"]
    assert set(LAYERS) <= set(seen)
    styles = Styles.load()
    expected = counts(folder)
    for layer in LAYERS.values():
        got = seen[layer.name]
        assert got["valid"] and got["count"] == expected[layer.name], layer.name
        # the default row of layer_styles: the first theme, in Spanish
        assert got["renderer"] == "categorizedSymbol", layer.name
        assert got["attr"] == styles.themes(layer)[0].by
        coded = [a.name for a in layer.attributes if a.domain is not None]
        assert all(got["widgets"][name] == "ValueMap" for name in coded), layer.name


EDIT_SCRIPT = Path(__file__).with_name("qgis_edit.py")


def test_a_package_edited_in_qgis_syncs_back_three_ways(own_db: str, tmp_path: Path) -> None:
    """The round trip through the client field teams use: QGIS edits the project's parcels
    (one tenure changed, one parcel moved) and saves; meanwhile the server changes the land use
    of the first and of a third. The sync writes exactly QGIS' two edits, keeps the server's,
    and finds no conflict: every parcel QGIS did not touch digests as its base did."""
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": own_db}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=600)

    done = cli("package", COMMUNE, "--out", str(tmp_path / "package.zip"))
    assert done.returncode == 0, done.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "package.zip") as zf:
        zf.extractall(tmp_path)
    with psycopg.connect(own_db, autocommit=True) as db:
        rows = db.execute(
            "SELECT p.id, p.tenure, p.land_use, ST_AsBinary(p.geom) FROM parcels p JOIN "
            "communes c ON c.id = p.commune_id WHERE c.code = %s ORDER BY p.id LIMIT 3",
            (COMMUNE,),
        ).fetchall()
        (a, tenure_a, use_a, _), (b, _, _, shape_b), (c, _, use_c, _) = rows
        tenure = "disputed" if tenure_a != "disputed" else "occupied"
        server_use = {a: "forest" if use_a != "forest" else "pasture"}
        server_use[c] = "idle" if use_c != "idle" else "mixed"
        for parcel, use in server_use.items():
            db.execute("UPDATE parcels SET land_use = %s WHERE id = %s", (use, parcel))

    qgis_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    qgis_env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    edited = subprocess.run(
        [QGIS_PYTHON, str(EDIT_SCRIPT), str(tmp_path / PROJECTS["es"]), str(a), tenure, str(b)],
        capture_output=True,
        text=True,
        env=qgis_env,
        timeout=300,
        cwd="/",
    )
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert json.loads(edited.stdout.strip().splitlines()[-1])["committed"], edited.stdout

    synced = cli("sync", COMMUNE, str(tmp_path / GPKG), "--json")
    assert synced.returncode == 0, synced.stderr[-3000:]
    report = json.loads(synced.stdout)
    parcels = report["layers"]["parcels"]
    assert {ch["id"]: set(ch["fields"]) for ch in parcels["changed"]} == {
        a: {"tenure"},
        b: {"geometry"},
    }
    assert parcels["conflicts"] == [] and report["written"] == 2
    assert all(
        not d["changed"] and not d["conflicts"]
        for n, d in report["layers"].items()
        if n != "parcels"
    )
    with psycopg.connect(own_db) as db:
        now = dict(
            (r[0], r[1:])
            for r in db.execute(
                "SELECT id, tenure, land_use, ST_AsBinary(geom) FROM parcels WHERE id = ANY(%s)",
                ([a, b, c],),
            )
        )
    assert now[a][:2] == (tenure, server_use[a])  # QGIS' tenure, the server's land use
    assert now[c][1] == server_use[c]  # the server's edit stands
    moved = shapely.from_wkb(now[b][2]).centroid.x - shapely.from_wkb(shape_b).centroid.x
    assert moved == pytest.approx(0.0001, abs=1e-7)  # QGIS' move, ~10 m east
