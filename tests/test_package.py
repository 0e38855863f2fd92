"""The commune package (maps/package.py): GET /communes/{c}/package and `geo-comuna package`.

What is in the zip, and that it agrees with the API: every layer of the registry with as many
features as the API counts for the commune, each with the id and the row version its ETag
carries, what an export holds for the same reader, the map styles in ``layer_styles``.
QGIS opening the package: tests/test_package_qgis.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import httpx
import pyogrio
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna import accounts, work
from geo_comuna.accounts import EVERYWHERE
from geo_comuna.analysis.base import Once, Unfinished, answer
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.db.versions import VersionedCache
from geo_comuna.features.query import require_commune, resolve_commune
from geo_comuna.io import dems, exporter
from geo_comuna.io.exporter import export_layer
from geo_comuna.io.formats import FORMATS
from geo_comuna.layers import LAYERS
from geo_comuna.maps import basemap, data
from geo_comuna.maps.package import (
    GPKG,
    INFO_TABLE,
    MAPS,
    PROJECTS,
    README,
    REPORTS,
    STYLES_TABLE,
    build_package,
    clipped,
    readme,
    steady,
)
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.sync_base import BASE_TABLE
from geo_comuna.preconditions import row_version
from geo_comuna.settings import Settings
from tests.analysis_factories import timing_out
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
COMMUNE = "EL-MAIZAL"
FILES = {README, GPKG, *PROJECTS.values(), *MAPS.values(), *REPORTS.values()}
#: the module itself, from the working tree (the console script may be another checkout's)
CLI = [sys.executable, "-m", "geo_comuna.cli"]


async def _package(client: httpx.AsyncClient, tmp_path: Path, commune: str = COMMUNE) -> Path:
    r = await client.get(f"/communes/{commune}/package")
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"] == "application/zip"
    assert f'filename="comuna-{commune}.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert set(zf.namelist()) == FILES
        zf.extractall(tmp_path)
    return tmp_path / GPKG


async def _matched(client: httpx.AsyncClient, layer: str) -> int:
    r = await client.get(f"/collections/{layer}/items", params={"commune": COMMUNE, "limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


async def _export_columns(client: httpx.AsyncClient, layer: str, tmp_path: Path) -> list[str]:
    r = await client.get(f"/collections/{layer}/export", params={"commune": COMMUNE})
    assert r.status_code == 200, r.text
    path = tmp_path / f"export-{layer}.gpkg"
    path.write_bytes(r.content)
    return [c for c in pyogrio.read_info(path)["fields"]]


async def test_anonymous_package_matches_the_api(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    async with api_client(conn, settings) as client:
        gpkg = await _package(client, tmp_path)
        listed = {name for name, _ in pyogrio.list_layers(gpkg)}
        assert listed == {*LAYERS, STYLES_TABLE, INFO_TABLE, BASE_TABLE}
        features = 0
        for name in LAYERS:
            frame = pyogrio.read_dataframe(gpkg, layer=name)
            assert len(frame) == await _matched(client, name), name
            features += len(frame)
            assert frame.crs.to_epsg() == 4326
            assert frame["id"].notna().all() and frame["id"].is_unique, name
            assert frame["version"].notna().all(), name
            # an anonymous reader's package holds the columns its export holds, no more
            exported = await _export_columns(client, name, tmp_path)
            assert list(frame.columns) == ["id", "version", *exported, "geometry"], name
            if len(frame):  # the version is the row version of the feature's ETag
                first = frame.iloc[0]
                r = await client.get(f"/collections/{name}/items/{int(first['id'])}")
                assert r.status_code == 200, r.text
                tag = f"{int(first['id'])}.{int(first['version'])}"
                assert row_version(r.headers["etag"]) == tag, name
        assert features > 100
        parcels = pyogrio.read_dataframe(gpkg, layer="parcels")
        assert "notes" not in parcels.columns
        # each feature the sync brings back has its base (maps/sync_base.py), and a base
        # holds what the package shows, nothing more: no notes
        base = pyogrio.read_dataframe(gpkg, layer=BASE_TABLE)
        synced = [name for name, layer in LAYERS.items() if not clipped(layer)]
        for name in synced:
            ids = set(pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False)["id"])
            assert set(base[base["layer"] == name]["feature"]) == ids, name
        assert set(base["layer"]) <= set(synced)
        assert not any("notes" in json.loads(p) for p in base["properties"])
        # homes' positions are members-only: an anonymous package has the homes, not where
        homes = pyogrio.read_dataframe(gpkg, layer="dwellings")
        assert len(homes) > 0 and homes.geometry.isna().all()
        assert "residents" not in homes.columns
        readme = (tmp_path / README).read_text(encoding="utf-8")
        assert "sin las notas" in readme and "no parcel notes" in readme


async def test_states_are_clipped_to_the_commune(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    async with api_client(conn, settings) as client:
        gpkg = await _package(client, tmp_path)
    commune = pyogrio.read_dataframe(gpkg, layer="communes")
    assert list(commune["code"]) == [COMMUNE]
    outline = commune.geometry.iloc[0]
    context = [layer for layer in LAYERS.values() if clipped(layer)]
    assert context  # the states
    for layer in context:
        frame = pyogrio.read_dataframe(gpkg, layer=layer.name)
        assert len(frame) >= 1
        inside = shapely.union_all(frame.geometry.values)
        # cut to the commune: nothing outside it, and together they cover it
        assert inside.difference(outline).area < 1e-9 * outline.area + 1e-12, layer.name
        assert abs(inside.area - outline.area) < 1e-6 * outline.area, layer.name


async def test_member_package_holds_members_only_data(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    _, token = await accounts.add_user(conn, "maizal-viewer", "viewer", [COMMUNE])
    async with api_client(conn, settings, token) as client:
        gpkg = await _package(client, tmp_path)
        homes = pyogrio.read_dataframe(gpkg, layer="dwellings")
        assert len(homes) == await _matched(client, "dwellings") > 0
        assert homes.geometry.notna().all() and "residents" in homes.columns
        assert "notes" in pyogrio.read_dataframe(gpkg, layer="parcels").columns
    assert "sin las notas" not in (tmp_path / README).read_text(encoding="utf-8")


async def test_layer_styles_are_the_map_styles(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    async with api_client(conn, settings) as client:
        gpkg = await _package(client, tmp_path)
    rows = pyogrio.read_dataframe(gpkg, layer=STYLES_TABLE)
    assert {
        "f_table_catalog",
        "f_table_schema",
        "f_table_name",
        "f_geometry_column",
        "styleName",
        "styleQML",
        "styleSLD",
        "useAsDefault",
        "description",
        "owner",
        "ui",
        "update_time",
    } <= set(rows.columns)
    styles = Styles.load()
    geometry = pyogrio.read_info(gpkg, layer="parcels")["geometry_name"]
    for layer in LAYERS.values():
        mine = rows[rows["f_table_name"] == layer.name]
        themes = styles.themes(layer)
        assert len(mine) == 2 * len(themes), layer.name  # each theme in es and en
        assert mine["useAsDefault"].sum() == 1, layer.name
        assert set(mine["f_geometry_column"]) == {geometry}
        default = ET.fromstring(mine[mine["useAsDefault"]].iloc[0]["styleQML"].split("\n", 1)[1])
        renderer = default.find("renderer-v2")
        assert renderer.get("type") == "categorizedSymbol"
        assert renderer.get("attr") == themes[0].by
        labels = [c.get("label") for c in renderer.iter("category")]
        assert labels == [label for _, label in styles.legend_entries(themes[0], "es")]
        coded = {a.name for a in layer.attributes if a.domain is not None}
        widgets = {
            f.get("name"): f.find("editWidget").get("type")
            for f in default.find("fieldConfiguration").iter("field")
        }
        assert {n for n, kind in widgets.items() if kind == "ValueMap"} == coded & set(widgets)
        aliases = {a.get("field"): a.get("name") for a in default.iter("alias")}
        for attr in layer.attributes:
            if attr.name in aliases:
                assert aliases[attr.name].startswith(attr.title.es), attr.name


async def test_unknown_commune_is_404(conn: AsyncConnection, settings: Settings) -> None:
    async with api_client(conn, settings) as client:
        r = await client.get("/communes/NO-SUCH-COMMUNE/package")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "NO-SUCH-COMMUNE" in r.text


async def test_each_analysis_is_asked_for_once(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """The report's summaries and maps, in two languages, want every analysis four times:
    the package asks the app's cache (or computes, in the CLI) once for each answer."""
    cache = VersionedCache()
    commune_id = await require_commune(conn, COMMUNE)
    with work.scope(work.limits(), None, None, cache):
        done = await build_package(
            conn, commune_id, tmp_path / "p.zip", settings, accounts.EVERYWHERE
        )
    asked = [key for key, _ in cache._entries if key[0] == "analysis"]
    assert sorted(name for _, name, *_ in asked) == sorted(
        name
        for name in ("land-recovery", "water-hookups", "electricity-gaps", "stair-access")
        if name in all_analyses()
    )
    assert cache.hits == 0
    assert done.unfinished == {}


async def test_a_commune_with_a_dem_has_its_hillshade_drawn_once(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found from outside: with a DEM of 25 million cells the package of 5 de Marzo was a
    503 for good; its map and report pages, and the report's analysis maps, in two
    languages, each drew the hillshade again. It is drawn once, and the same in every page."""
    drawn: list[int] = []
    real = basemap.commune_hillshade

    async def counted(*args: object, **kwargs: object) -> tuple:
        drawn.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(basemap, "commune_hillshade", counted)
    commune_id = await require_commune(conn, "5-DE-MARZO")
    assert await dems.for_commune(conn, commune_id) is not None  # the sample's DEM
    with work.scope(work.limits(), None, None, VersionedCache()):
        await build_package(conn, commune_id, tmp_path / "p.zip", settings, accounts.EVERYWHERE)
    assert len(drawn) == 1
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        pages = [zf.read(name).decode() for name in zf.namelist() if name.endswith(".html")]
    inline = {re.search(r"data:image/png;base64,[A-Za-z0-9+/=]{100}", p)[0] for p in pages}
    assert len(pages) == 4 and len(inline) == 1


async def test_an_analysis_that_cannot_finish_is_said_once(conn: AsyncConnection) -> None:
    """An analysis the statement timeout cancels is tried once however many pages want it,
    raised to each as Unfinished with the reason in Spanish and English, and README.txt
    names it in both."""
    runs: list[int] = []
    real = all_analyses()["land-recovery"]
    analysis = timing_out(real, runs)
    commune_id = await require_commune(conn, COMMUNE)
    answers = Once()
    with work.caching(answers):
        for _ in range(4):
            with pytest.raises(Unfinished) as caught:
                await answer(analysis, conn, commune_id, real.params())
    assert runs == [commune_id]
    assert answers.failed == {"land-recovery": caught.value}
    assert "GEO_COMUNA_STATEMENT_TIMEOUT_MS" in caught.value.told("en")
    info = await data.commune_info(conn, commune_id)
    text = readme(info, {"parcels": 1}, True, list(answers.failed.values()))
    assert f"{real.title_es}: {caught.value.es}" in text
    assert f"{real.title_en}: {caught.value.en}" in text
    assert "no terminó" in text and "did not finish" in text
    assert "Recuperación" not in readme(info, {"parcels": 1}, True)


async def test_the_readme_keeps_each_language_to_its_half(conn: AsyncConnection) -> None:
    """Its Spanish half listed the layers in both languages ("Unidades de producción /
    Production units (19)"), held the English privacy note (missing from the English half),
    wrote 1360 ungrouped, and its underlines fell short of long commune names."""
    commune_id = await require_commune(conn, COMMUNE)
    info = await data.commune_info(conn, commune_id)
    text = readme(info, {"parcels": 1360, "production_units": 19}, False)
    spanish, english = text.split("\nCOMMUNE PACKAGE ")
    units = LAYERS["production_units"].title
    assert f"production_units: {units.es} (19)" in spanish and units.en not in spanish
    assert f"production_units: {units.en} (19)" in english and units.es not in english
    assert "parcels: " in spanish and "(1.360)" in spanish and "(1,360)" in english
    assert "sin las notas" in spanish and "no parcel notes" not in spanish
    assert "no parcel notes" in english and "sin las notas" not in english
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if len(line) > 3 and set(line) in ({"="}, {"-"}):
            assert len(line) == len(lines[i - 1]), (lines[i - 1], line)


def test_cli_package(own_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": own_db}
    out = tmp_path / "maizal.zip"
    done = subprocess.run(
        [*CLI, "package", COMMUNE, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    titles = LAYERS["parcels"].title
    assert titles.es in done.stderr or titles.en in done.stderr  # progress, layer by layer
    # in the command's language (the locale's): it said "map and report (es)" in Spanish
    spanish = "mapa e informe (es)" in done.stderr and "map and report" not in done.stderr
    english = "map and report (es)" in done.stderr and "mapa e informe" not in done.stderr
    assert spanish or english, done.stderr
    assert f"paquete escrito: {out} (8 archivos" in done.stderr or (
        f"package written: {out} (8 files" in done.stderr
    )
    with zipfile.ZipFile(out) as zf:
        assert set(zf.namelist()) == FILES
        zf.extract(GPKG, tmp_path)
    # the CLI holds the database: members-only data goes in
    homes = pyogrio.read_dataframe(tmp_path / GPKG, layer="dwellings")
    assert len(homes) > 0 and homes.geometry.notna().all()
    assert not list(tmp_path.glob(".package-*"))  # no scratch left behind

    public = subprocess.run(
        [*CLI, "package", COMMUNE, "--out", str(out), "--public"],
        capture_output=True,
        text=True,
        env={**env, "LC_ALL": "es_VE.UTF-8"},
        timeout=600,
    )
    assert public.returncode == 0, public.stderr[-3000:]
    assert "mapa e informe (es)" in public.stderr and "comprimiendo" in public.stderr
    assert "map and report" not in public.stderr and "zipping" not in public.stderr
    with zipfile.ZipFile(out) as zf:
        zf.extract(GPKG, tmp_path / "public")
    homes = pyogrio.read_dataframe(tmp_path / "public" / GPKG, layer="dwellings")
    assert len(homes) > 0 and homes.geometry.isna().all() and "residents" not in homes

    missing = subprocess.run(
        [*CLI, "package", "NO-SUCH-COMMUNE", "--out", str(tmp_path / "x.zip")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "NO-SUCH-COMMUNE" in missing.stderr
    assert not (tmp_path / "x.zip").exists()


async def test_the_same_data_gives_the_same_package(
    conn: AsyncConnection, settings: Settings
) -> None:
    """Byte for byte (within a day), the zip itself too (its entries dated the day, not the
    moment): its ETag stands for its bytes, so a download resumed against a package built
    again (another server, another worker, the kept one removed) joins the same bytes. And a
    HEAD answers the length its GET has. Two builds: two apps, each its own kept packages."""
    answers = []
    for _ in range(2):
        async with api_client(conn, settings) as client:
            answers.append(await client.get(f"/communes/{COMMUNE}/package"))
            head = await client.head(f"/communes/{COMMUNE}/package")
    first, second = answers
    assert first.status_code == second.status_code == head.status_code == 200
    assert first.headers["etag"] == second.headers["etag"]
    assert first.content == second.content
    assert head.headers["content-length"] == first.headers["content-length"]


async def test_a_layer_read_in_pieces_is_the_layer_read_whole(
    conn: AsyncConnection, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package reads each layer PIECE rows at a time (io/exporter.arrow_batches): with
    pieces of 7 rows (El Maizal's parcels in dozens, a last one part full) the GeoPackage is
    the same bytes as with every layer read in one piece."""
    monkeypatch.setattr(exporter, "PIECE", 1_000_000)
    async with api_client(conn, settings) as client:  # each app keeps its own packages
        whole = await client.get(f"/communes/{COMMUNE}/package")
    monkeypatch.setattr(exporter, "PIECE", 7)
    async with api_client(conn, settings) as client:
        pieces = await client.get(f"/communes/{COMMUNE}/package")
    assert whole.status_code == pieces.status_code == 200
    with (
        zipfile.ZipFile(io.BytesIO(whole.content)) as one,
        zipfile.ZipFile(io.BytesIO(pieces.content)) as two,
    ):
        assert one.read(GPKG) == two.read(GPKG)
    cur = await conn.execute(
        "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id WHERE c.code = %s",
        (COMMUNE,),
    )
    assert (await cur.fetchone())[0] % 7, "a last piece part full is the case to see"


def test_steady_leaves_no_count_of_commits(tmp_path: Path) -> None:
    """Two GeoPackages of the same data that differ as two packages once did: in SQLite's
    count of commits only (the file change counter and the version-valid-for number, one
    apart, when GDAL had committed once more). Once steady they are the same bytes, and
    still a GeoPackage that SQLite and GDAL read."""

    import pyarrow as pa

    one, two = tmp_path / "one.gpkg", tmp_path / "two.gpkg"
    table = pa.table(
        {"code": ["A", "B"], "geometry": shapely.to_wkb(shapely.points([0, 1], [0, 1]))}
    )
    pyogrio.write_arrow(
        table,
        one,
        layer="points",
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4326",
    )
    raw = bytearray(one.read_bytes())
    for offset in (24, 92):
        raw[offset : offset + 4] = (int.from_bytes(raw[offset : offset + 4], "big") + 1).to_bytes(
            4, "big"
        )
    two.write_bytes(raw)
    assert one.read_bytes() != two.read_bytes()
    steady(one)
    steady(two)
    assert one.read_bytes() == two.read_bytes()
    with sqlite3.connect(one) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert pyogrio.read_info(one, layer="points")["features"] == 2


def _debian_gdal_reads_cleanly(path: Path) -> None:
    """GeoPackage 1.2 (PRAGMA user_version 10200), which GDAL 3.6 (Debian 12's, under QGIS
    3.22) opens without a word: of the 1.4 that newer GDAL writes, it warned on every open
    that it "may only be partially supported"."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    db.close()
    seen = subprocess.run(
        ["/usr/bin/ogrinfo", "-ro", "-so", "-al", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seen.returncode == 0, seen.stderr
    assert "Warning" not in seen.stderr and "ERROR" not in seen.stderr, seen.stderr
    assert "Layer name: parcels" in seen.stdout


async def test_geopackages_open_in_debians_gdal_without_warnings(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    async with api_client(conn, settings) as client:
        _debian_gdal_reads_cleanly(await _package(client, tmp_path))
        r = await client.get("/collections/parcels/export", params={"commune": COMMUNE})
        assert r.status_code == 200, r.text
    export = tmp_path / "parcels.gpkg"
    export.write_bytes(r.content)
    _debian_gdal_reads_cleanly(export)
    # a layer added to an export keeps the file as it was made
    maizal = await resolve_commune(conn, COMMUNE)
    await export_layer(
        conn,
        LAYERS["dwellings"],
        export,
        FORMATS["gpkg"],
        commune_id=maizal,
        access=EVERYWHERE,
    )
    _debian_gdal_reads_cleanly(export)


async def test_the_package_gives_memory_back_between_its_steps(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its analyses and after each of its four pages, each page then built on what the
    one before freed (BENCH-B-0001's package: peak 826-827 MB, now 651-698 MB; bench/README.md)."""
    released: list[int] = []
    monkeypatch.setattr(work, "release_memory", lambda: released.append(1))
    commune_id = await require_commune(conn, COMMUNE)
    await build_package(conn, commune_id, tmp_path / "p.zip", settings, accounts.EVERYWHERE)
    assert len(released) == 1 + len(MAPS) + len(REPORTS)
