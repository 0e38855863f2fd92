"""Coded values by their labels, and files that name things their own way: the Spanish and
English labels the maps show are taken in any case or accents and stored as codes; an unknown
value's message lists the labels in the request's language; --rename and --map (?rename=,
?map=) import a survey's file, and a file that needs them is refused with the option to use."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import shapely
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna.cli import app as cli_app
from geo_comuna.errors import InvalidAttribute, InvalidFile, InvalidInput
from geo_comuna.io.importer import Mapping, import_file
from geo_comuna.layers import LAYERS
from geo_comuna.layers.model import fold
from geo_comuna.settings import Settings
from tests.factories import MAIZAL, feature

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]


def survey(path: Path, columns: dict[str, list], n: int) -> Path:
    """``n`` small parcels of EL-MAIZAL inside its territory, with the given columns."""
    lon, lat = MAIZAL
    geoms = [
        shapely.box(lon + i * 0.0005, lat, lon + i * 0.0005 + 0.0004, lat + 0.0004)
        for i in range(n)
    ]
    frame = gpd.GeoDataFrame(
        {"commune": ["EL-MAIZAL"] * n, **columns}, geometry=geoms, crs="EPSG:4326"
    )
    frame.to_file(path)
    return path


async def stored(conn: AsyncConnection, column: str, codes: list[str]) -> list:
    cur = await conn.execute(
        f"SELECT {column} FROM parcels WHERE code = ANY(%s) ORDER BY code", (codes,)
    )
    return [row[0] for row in await cur.fetchall()]


def test_no_two_codes_share_a_spelling() -> None:
    """A label names one value of its domain, however it is cased or accented."""
    for layer in LAYERS.values():
        for attr in layer.attributes:
            if attr.domain is None:
                continue
            for code, label in attr.domain.values.items():
                for spelling in (code, label.es, label.en):
                    assert attr.domain.code(spelling) == code, (layer.name, attr.name, spelling)


async def test_import_takes_labels_in_any_case_and_accents(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    tenures = [
        "Ocupada",
        "ocupada",
        "OCUPADA",
        "Occupied",
        "en regularizacion",
        "EN REGULARIZACIÓN",
    ]
    uses = ["cultivos", "Cultivos", "CROPS", "ociosa", "Pastos", "crops"]
    codes = [f"LBL-{i}" for i in range(len(tenures))]
    file = survey(
        tmp_path / "s.gpkg", {"code": codes, "tenure": tenures, "land_use": uses}, len(codes)
    )

    report = await import_file(conn, PARCELS, file, settings)

    assert report.inserted == len(codes)
    assert await stored(conn, "tenure", codes) == ["occupied"] * 4 + ["regularizing"] * 2
    assert await stored(conn, "land_use", codes) == ["crops"] * 3 + ["idle", "pasture", "crops"]


async def test_a_write_takes_labels(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    body = feature(
        PARCELS, "EL-MAIZAL", lon=MAIZAL[0], lat=MAIZAL[1], tenure="En Disputa", land_use="MIXTO"
    )
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == 201, r.text
    fid = r.json()["ids"][0]
    patched = await client.patch(
        f"/collections/parcels/items/{fid}", json={"properties": {"land_use": "Bósque"}}
    )
    assert patched.status_code == 200, patched.text
    cur = await conn.execute("SELECT tenure, land_use FROM parcels WHERE id = %s", (fid,))
    assert await cur.fetchone() == ("disputed", "forest")


@pytest.mark.parametrize(
    ("lang", "listed", "not_listed"),
    [("es", "Ocupada", "Occupied"), ("en", "Occupied", "Ocupada"), (None, "Ocupada", "Occupied")],
)
async def test_an_unknown_value_lists_the_labels_in_the_request_language(
    client: httpx.AsyncClient, lang: str | None, listed: str, not_listed: str
) -> None:
    body = feature(PARCELS, "EL-MAIZAL", lon=MAIZAL[0], lat=MAIZAL[1], tenure="robada")
    query = f"?lang={lang}" if lang else ""
    r = await client.post(f"/collections/parcels/items{query}", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    # the reason in the language asked for (?lang=es), else English; the labels follow it
    said = "no es ninguno de" if lang == "es" else "is not one of"
    assert f"'robada' {said} abandoned, occupied" in detail
    assert listed in detail and not_listed not in detail
    assert "--map" not in detail  # a write is not an import
    # a filter's unknown value too: GET ?lang=en listed the Spanish labels
    asked = {"tenure": "robada", **({"lang": lang} if lang else {})}
    got = await client.get("/collections/parcels/items", params=asked)
    assert got.status_code == 400, got.text
    detail = got.json()["detail"]
    assert f"'robada' {said} abandoned, occupied" in detail
    assert listed in detail and not_listed not in detail


async def test_an_import_message_lists_labels_and_suggests_a_map(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    file = survey(
        tmp_path / "s.gpkg",
        {"code": ["M-1", "M-2"], "tenure": ["Ocupada", "ocupada"], "land_use": ["crops", "maize"]},
        2,
    )
    for lang, label in (("es", "Cultivos"), ("en", "Crops")):
        with pytest.raises(InvalidAttribute) as refused:
            await import_file(conn, PARCELS, file, settings, lang=lang)
        reason = refused.value.reason
        assert refused.value.feature == 2 and label in reason
        assert "--map land_use:maize=" in reason and "map=land_use:maize=" in reason
        suggested = reason.split("--map land_use:maize=")[1].split("?")[0]
        assert suggested in PARCELS.attribute("land_use").domain.values


async def test_a_misnamed_column_is_refused_with_the_rename_to_use(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    file = survey(tmp_path / "s.gpkg", {"code": ["R-1"], "tenure_status": ["occupied"]}, 1)
    with pytest.raises(InvalidFile) as refused:
        await import_file(conn, PARCELS, file, settings)
    assert (
        "column tenure_status is not a property of parcels: --rename tenure_status=tenure?"
        in refused.value.reason
    )
    spanish = survey(
        tmp_path / "u.gpkg", {"code": ["R-2"], "tenure": ["occupied"], "uso": ["x"]}, 1
    )
    with pytest.raises(InvalidFile) as refused:
        await import_file(conn, PARCELS, spanish, settings)
    assert "--rename uso=land_use?" in refused.value.reason
    # a phone app's KML names each placemark: a parcel's name is its code (found from
    # outside: the names were left out unsaid, the parcels stored without codes)
    kml = tmp_path / "phone.kml"
    kml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        "<Document><Placemark><name>EM-N41</name><ExtendedData><Data name='tenure'>"
        "<value>Ocupada</value></Data></ExtendedData><Polygon><outerBoundaryIs><LinearRing>"
        "<coordinates>-69.151,9.691 -69.149,9.691 -69.149,9.689 -69.151,9.689 -69.151,9.691"
        "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"
    )
    with pytest.raises(InvalidFile) as refused:
        await import_file(conn, PARCELS, kml, settings, commune="EL-MAIZAL")
    assert "column Name is not a property of parcels: --rename Name=code?" in refused.value.reason
    # placemarks without names lose nothing: imported without codes, as before
    nameless = tmp_path / "nameless.kml"
    nameless.write_text(kml.read_text().replace("<name>EM-N41</name>", "<name> </name>"))
    assert (await import_file(conn, PARCELS, nameless, settings, commune="EL-MAIZAL")).inserted
    mapping = Mapping.parse(PARCELS, ["Name=code"], [])
    done = await import_file(conn, PARCELS, kml, settings, commune="EL-MAIZAL", mapping=mapping)
    assert done.inserted == 1
    cur = await conn.execute("SELECT count(*) FROM parcels WHERE code = 'EM-N41'")
    assert (await cur.fetchone())[0] == 1


async def test_rename_and_map_import_a_survey(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    codes = ["S-1", "S-2", "S-3"]
    file = survey(
        tmp_path / "s.gpkg",
        {"code": codes, "tenure_status": ["Ocupada"] * 3, "uso": ["maize", "MAÍZ", "idle"]},
        3,
    )
    mapping = Mapping.parse(
        PARCELS,
        ["tenure_status=tenure", "uso:land_use"],
        ["land_use:maize=crops", "land_use:maíz=Cultivos"],
    )
    report = await import_file(conn, PARCELS, file, settings, mapping=mapping)
    assert report.inserted == 3
    assert await stored(conn, "land_use", codes) == ["crops", "crops", "idle"]
    assert await stored(conn, "tenure", codes) == ["occupied"] * 3


@pytest.mark.parametrize(
    ("renames", "maps", "says"),
    [
        (["tenure_status"], [], "write it as column=property"),
        (["x=tenancy"], [], "has no property 'tenancy'"),
        ([], ["land_use=crops"], "write it as property:value=code"),
        ([], ["land_use:maize=corn"], "'corn' is not a value of land_use"),
        ([], ["recovered_on:x=y"], "has no text property 'recovered_on'"),
        # found from outside: a 500 (two columns of one name)
        (["a=tenure", "b:tenure"], [], "'a' is renamed to 'tenure' already"),
    ],
)
def test_bad_options_are_refused(renames: list[str], maps: list[str], says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Mapping.parse(PARCELS, renames, maps)
    assert says in refused.value.reason


@pytest.mark.parametrize(
    ("columns", "renames", "says"),
    [
        # found from outside: the file's own 'tenure' was dropped without a word
        ({"tenure_status": ["Ocupada"], "tenure": ["Abandonada"]}, ["tenure_status=tenure"],
         "'tenure_status' is renamed to 'tenure', and the file has a column 'tenure' too"),
        # a Shapefile's ten letters beside the whole name: the ten letters were taken
        ({"tenure": ["Ocupada"], "recovered_": ["2010-01-01"], "recovered_on": ["2011-01-01"]},
         [], "columns 'recovered_' and 'recovered_on' both give 'recovered_on'"),
    ],
)  # fmt: skip
async def test_two_columns_that_give_one_property_are_refused(
    conn: AsyncConnection,
    settings: Settings,
    tmp_path: Path,
    columns: dict,
    renames: list,
    says: str,
) -> None:
    file = survey(tmp_path / "s.gpkg", {"code": ["T-1"], **columns}, 1)
    before = await stored(conn, "tenure", ["T-1"])
    with pytest.raises(InvalidFile) as refused:
        await import_file(
            conn, PARCELS, file, settings, mapping=Mapping.parse(PARCELS, renames, [])
        )
    assert says in refused.value.reason
    assert await stored(conn, "tenure", ["T-1"]) == before


async def test_rename_and_map_over_http(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    codes = ["H-1", "H-2"]
    file = survey(
        tmp_path / "s.gpkg", {"code": codes, "tenure_status": ["x", "X"], "uso": ["maize"] * 2}, 2
    )

    def post(query: str) -> httpx.Response:
        files = {"file": ("s.gpkg", file.read_bytes())}
        return client.post(f"/collections/parcels/import{query}", files=files)

    unmapped = await post("")
    assert unmapped.status_code == 422
    assert "rename=tenure_status:tenure" in unmapped.json()["detail"]
    done = await post(
        "?rename=tenure_status:tenure&rename=uso:land_use&map=land_use:maize=crops"
        "&map=tenure:x=en%20disputa"
    )
    assert done.status_code == 201, done.text
    assert await stored(conn, "tenure", codes) == ["disputed"] * 2
    assert await stored(conn, "land_use", codes) == ["crops"] * 2
    bad = await post("?map=land_use")
    assert bad.status_code == 400 and "property:value=code" in bad.json()["detail"]


def test_cli_rename_map_and_lang(own_db: str, tmp_path: Path) -> None:
    env = {"GEO_COMUNA_DATABASE_URL": own_db}
    runner = CliRunner()
    file = survey(
        tmp_path / "s.gpkg", {"code": ["C-1"], "estatus": ["ocupada"], "uso": ["maíz"]}, 1
    )
    unmapped = runner.invoke(
        cli_app, ["import", "parcels", str(file), "--rename", "estatus=tenure"], env=env
    )
    assert unmapped.exit_code != 0 and "--rename uso=land_use?" in unmapped.stderr
    english = runner.invoke(
        cli_app,
        ["import", "parcels", str(file), "--rename", "estatus=tenure", "--rename", "uso=land_use"]
        + ["--lang", "en"],
        env=env,
    )
    assert english.exit_code != 0 and "Crops" in english.stderr and "Cultivos" not in english.stderr
    assert "--map land_use:maíz=" in english.stderr
    done = runner.invoke(
        cli_app,
        ["import", "parcels", str(file), "--rename", "estatus=tenure", "--rename", "uso=land_use"]
        + ["--map", "land_use:maiz=crops"],
        env=env,
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout[done.stdout.index("{") :])["inserted"] == 1


def test_fold_ignores_case_accents_and_blanks() -> None:
    assert fold("  En   Regularización ") == fold("en regularizacion") == "en regularizacion"
