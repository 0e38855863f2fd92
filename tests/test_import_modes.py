"""Import modes: a feature whose natural key (a parcel's code within its commune) is stored is
refused by a plain import, naming both, and updated by an upsert, which leaves unchanged
features as they are. An export imported back is then a clear refusal or a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psycopg
import pyogrio
import pytest
import shapely
import shapely.affinity
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna.accounts import EVERYWHERE
from geo_comuna.cli import app as cli_app
from geo_comuna.db import migrate
from geo_comuna.errors import Conflict, InvalidFile, InvalidInput
from geo_comuna.features.query import require_commune
from geo_comuna.io.exporter import export_layer
from geo_comuna.io.formats import FORMATS
from geo_comuna.io.importer import import_file
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.factories import MAIZAL, feature

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]


async def versions(conn: AsyncConnection, commune_id: int) -> dict[int, tuple]:
    """Each of the commune's parcels: its row version (xmin) and what it holds."""
    cur = await conn.execute(
        "SELECT id, xmin::text, code, tenure, ST_AsBinary(geom) FROM parcels "
        "WHERE commune_id = %s ORDER BY id",
        (commune_id,),
    )
    return {row[0]: row[1:] for row in await cur.fetchall()}


async def exported(
    conn: AsyncConnection, tmp_path: Path, commune_id: int, **options: object
) -> Path:
    report = await export_layer(
        conn, PARCELS, tmp_path / "p.gpkg", FORMATS["gpkg"], commune_id=commune_id,
        access=EVERYWHERE, **options,
    )  # fmt: skip
    return Path(report.file)


@pytest.fixture
async def maizal(conn: AsyncConnection) -> int:
    return await require_commune(conn, "EL-MAIZAL")


async def test_export_imported_back_is_refused_naming_both(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    assert len(before) > 2 and all(v[1] for v in before.values()), "the sample's parcels"
    file = await exported(conn, tmp_path, maizal)
    first = pyogrio.read_dataframe(file).iloc[0]
    stored_id = next(i for i, v in before.items() if v[1] == first["code"])

    with pytest.raises(Conflict) as refused:
        await import_file(conn, PARCELS, file, settings)

    assert refused.value.feature == 1
    assert f"code {first['code']!r}" in refused.value.reason
    assert f"already stored as parcels feature {stored_id}" in refused.value.reason
    assert "--upsert" in refused.value.reason
    assert await versions(conn, maizal) == before  # nothing written


async def test_upsert_of_an_unchanged_export_changes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)

    report = await import_file(conn, PARCELS, file, settings, mode="upsert")

    assert (report.inserted, report.updated, report.unchanged) == (0, 0, len(before))
    assert await versions(conn, maizal) == before  # the same rows, the same versions


@pytest.mark.parametrize("epsg", [4248, 24819, 2202])
async def test_upsert_of_an_export_in_another_crs_changes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int, epsg: int
) -> None:
    """Found from outside: through PSAD56 (EPSG:4248, 24817-24821) a vertex comes back up to
    5e-9 degrees off, and at a tolerance of 1e-9 every parcel was updated at every round
    trip (new versions, audit entries, field packages out of date)."""
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal, crs=f"EPSG:{epsg}")
    report = await import_file(conn, PARCELS, file, settings, mode="upsert")
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, len(before))
    assert await versions(conn, maizal) == before


async def test_upsert_of_an_export_keeps_parcels_without_a_code_once(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    """Found from outside: a parcel without a code has no key to be found by, and every
    upsert of an export added it again. The same in every column and shape, it is
    unchanged; moved, it is another parcel and new."""
    await conn.execute(
        "INSERT INTO parcels (commune_id, tenure, geom) SELECT commune_id, 'occupied', "
        "ST_Multi(ST_Translate(geom, 0.02, 0)) FROM parcels WHERE commune_id = %s "
        "ORDER BY id LIMIT 1",
        (maizal,),
    )
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    for _ in range(2):
        report = await import_file(conn, PARCELS, file, settings, mode="upsert")
        assert (report.inserted, report.updated, report.unchanged) == (0, 0, len(before))
        assert await versions(conn, maizal) == before
    frame = pyogrio.read_dataframe(file)
    codeless = frame[frame["code"].isna()].copy()
    assert len(codeless) == 1
    codeless["geometry"] = codeless.geometry.translate(0.001, 0)
    moved = tmp_path / "moved.gpkg"
    pyogrio.write_dataframe(codeless, moved)
    report = await import_file(conn, PARCELS, moved, settings, mode="upsert")
    assert (report.inserted, report.updated, report.unchanged) == (1, 0, 0)


async def test_upsert_updates_the_changed_feature_only(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file)
    row = 2
    new_tenure = next(t for t in ("disputed", "abandoned") if t != frame.loc[row, "tenure"])
    frame.loc[row, "tenure"] = new_tenure
    frame.loc[row, "geometry"] = frame.loc[row, "geometry"].buffer(0.00001)  # a moved edge
    changed = tmp_path / "changed.gpkg"
    pyogrio.write_dataframe(frame, changed)
    target = next(i for i, v in before.items() if v[1] == frame.loc[row, "code"])

    report = await import_file(conn, PARCELS, changed, settings, mode="upsert")

    assert (report.inserted, report.updated) == (0, 1)
    after = await versions(conn, maizal)
    assert after.keys() == before.keys()
    assert [i for i in before if after[i] != before[i]] == [target]
    assert after[target][2] == new_tenure and after[target][3] != before[target][3]


async def test_a_dry_run_says_what_an_import_would_write_and_writes_nothing(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, maizal: int
) -> None:
    """Found from outside: an upsert of an older export silently undid later edits, and an
    import, unlike a sync, had no dry run to see first what it would change. A dry run makes
    the whole import, with every check and refusal, then undoes it."""
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file)
    frame.loc[1, "tenure"] = next(
        t for t in ("disputed", "abandoned") if t != frame.loc[1, "tenure"]
    )
    changed = tmp_path / "changed.gpkg"
    pyogrio.write_dataframe(frame, changed)

    def post(query: str, path: Path) -> httpx.Response:
        return client.post(
            f"/collections/parcels/import{query}", files={"file": (path.name, path.read_bytes())}
        )

    tried = await post("?mode=upsert&dry_run=true", changed)
    assert tried.status_code == 200, tried.text  # nothing was made
    got = tried.json()
    assert got["dry_run"] is True and (got["inserted"], got["updated"]) == (0, 1)
    assert got["unchanged"] == len(before) - 1
    # which feature, and what it holds against what the file makes it: found from outside, a
    # GDAL Shapefile cut a note and changed its dash, and the counts said only "updated: 1"
    stored_id = next(i for i, v in before.items() if v[1] == frame.loc[1, "code"])
    assert got["changes"] == [
        {
            "id": stored_id,
            "feature": 2,
            "fields": {"tenure": [before[stored_id][2], frame.loc[1, "tenure"]]},
        }
    ]
    refused = await post("?dry_run=true", file)  # a plain import of it: refused, as it would be
    assert refused.status_code == 409, refused.text
    assert await versions(conn, maizal) == before  # nothing written, no version moved
    done = await post("?mode=upsert", changed)
    assert done.status_code == 201 and done.json()["dry_run"] is False
    assert done.json()["updated"] == 1
    again = await post("?mode=upsert", changed)  # nothing left to change: 200, as a sync
    assert again.status_code == 200 and again.json()["unchanged"] == len(before)


async def notes_and_uses(conn: AsyncConnection, commune_id: int) -> dict[str, tuple]:
    cur = await conn.execute(
        "SELECT code, tenure, land_use, notes FROM parcels WHERE commune_id = %s", (commune_id,)
    )
    return {row[0]: row[1:] for row in await cur.fetchall()}


@pytest.mark.parametrize("suffix", [".gpkg", ".csv"])  # read in pieces, and read whole
async def test_upsert_keeps_what_the_file_has_no_column_for(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int, suffix: str
) -> None:
    """A GDAL or public download leaves the members-only notes out; edited and imported back
    with --upsert, it emptied the notes (and any other column it lacked) of every parcel it
    updated. The stored values of what the file lacks are kept, and the report says which."""
    before = await notes_and_uses(conn, maizal)
    assert sum(1 for v in before.values() if v[2]) >= 2, "the sample's parcels with notes"
    frame = pyogrio.read_dataframe(await exported(conn, tmp_path, maizal))
    frame = frame.drop(columns=["notes", "land_use"])
    edited = [i for i in frame.index if before[frame.loc[i, "code"]][2]][:2]
    for i in edited:  # parcels with notes: their tenure changed in the file
        old = frame.loc[i, "tenure"]
        frame.loc[i, "tenure"] = next(t for t in ("disputed", "abandoned") if t != old)
    file = tmp_path / f"without{suffix}"
    pyogrio.write_dataframe(frame, file, **({"GEOMETRY": "AS_WKT"} if suffix == ".csv" else {}))

    report = await import_file(conn, PARCELS, file, settings, mode="upsert")

    assert (report.inserted, report.updated) == (0, 2)
    assert report.kept_columns == ["land_use", "notes"]
    after = await notes_and_uses(conn, maizal)
    changed = {frame.loc[i, "code"]: frame.loc[i, "tenure"] for i in edited}
    assert after == {
        code: (changed.get(code, tenure), use, notes)
        for code, (tenure, use, notes) in before.items()
    }


async def test_upsert_inserts_new_keys_and_features_without_one(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file).iloc[:3].copy()
    frame.loc[frame.index[1], "code"] = "UPSERT-NEW"
    frame.loc[frame.index[2], "code"] = None  # a new parcel, drawn elsewhere
    frame.loc[frame.index[2], "geometry"] = frame.geometry.iloc[2].buffer(-0.0001)
    mixed = tmp_path / "mixed.gpkg"
    pyogrio.write_dataframe(frame, mixed)

    report = await import_file(conn, PARCELS, mixed, settings, mode="upsert")

    assert (report.inserted, report.updated, report.unchanged) == (2, 0, 1)
    after = await versions(conn, maizal)
    assert len(after) == len(before) + 2
    assert sorted(v[1] or "" for i, v in after.items() if i not in before) == ["", "UPSERT-NEW"]


async def test_a_feature_without_its_code_in_a_stored_ones_shape_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    """Found from outside: an export whose parcel lost its code (a spreadsheet, a form),
    upserted back, added a second parcel on the same land. Imported or upserted, it is
    refused naming the file's feature and the stored parcel, nothing written; with
    --allow-copies it is added."""
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file).iloc[:3].copy()
    lost = frame.loc[frame.index[1], "code"]
    frame.loc[frame.index[1], "code"] = None
    frame.loc[frame.index[1], "notes"] = "código perdido en la hoja de cálculo"
    frame.loc[frame.index[0], "tenure"] = "disputed"  # a real change beside it
    codeless = tmp_path / "codeless.gpkg"
    pyogrio.write_dataframe(frame, codeless)
    insert_only = tmp_path / "insert.gpkg"
    pyogrio.write_dataframe(frame.iloc[1:2], insert_only)
    cur = await conn.execute(
        "SELECT id FROM parcels WHERE commune_id = %s AND code = %s", (maizal, lost)
    )
    (stored,) = await cur.fetchone()

    for path, mode, row in ((codeless, "upsert", 2), (insert_only, "insert", 1)):
        with pytest.raises(Conflict) as refused:
            await import_file(conn, PARCELS, path, settings, mode=mode)
        assert refused.value.feature == row, mode
        assert f"parcels feature {stored} (code {lost!r})" in refused.value.reason
        assert "--allow-copies" in refused.value.reason
        assert "ocupa el terreno de la entidad" in refused.value.said("es")
        assert await versions(conn, maizal) == before
    # found from outside: the same ground a vertex added, or a metre off, passed as another
    shape = frame.geometry.iloc[1]
    ring = list(shape.geoms[0].exterior.coords)
    midpoint = ((ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[1][1]) / 2)
    variants = {
        "vertex added": shapely.MultiPolygon([shapely.Polygon([ring[0], midpoint, *ring[1:]])]),
        "a metre off": shapely.affinity.translate(shape, xoff=1e-5),
    }
    for name, variant in variants.items():
        moved = frame.iloc[1:2].copy()
        moved["geometry"] = [variant]
        path = tmp_path / f"{name}.gpkg"
        pyogrio.write_dataframe(moved, path)
        with pytest.raises(Conflict) as refused:
            await import_file(conn, PARCELS, path, settings, mode="upsert")
        assert f"parcels feature {stored} (code {lost!r})" in refused.value.reason, name
    # a piece of it, the parcel being divided, is new ground of its own
    piece = frame.iloc[1:2].copy()
    minx, miny, maxx, maxy = shape.bounds
    piece["geometry"] = [shape.intersection(shapely.box(minx, miny, (minx + maxx) / 2, maxy))]
    divided = tmp_path / "divided.gpkg"
    pyogrio.write_dataframe(piece, divided)
    report = await import_file(conn, PARCELS, divided, settings, mode="upsert", dry_run=True)
    assert report.inserted == 1
    report = await import_file(conn, PARCELS, codeless, settings, mode="upsert", allow_copies=True)
    assert (report.inserted, report.updated, report.unchanged) == (1, 1, 1)


async def test_a_key_twice_in_the_file_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file).iloc[:4].copy()
    frame["code"] = ["TWICE-1", "TWICE-2", "TWICE-3", "TWICE-2"]
    twice = tmp_path / "twice.gpkg"
    pyogrio.write_dataframe(frame, twice)

    for mode in ("insert", "upsert"):
        with pytest.raises(Conflict) as refused:
            await import_file(conn, PARCELS, twice, settings, mode=mode)
        assert refused.value.feature == 4
        assert "code 'TWICE-2'" in refused.value.reason
        assert "feature 2 of the file" in refused.value.reason
    assert await versions(conn, maizal) == before


async def test_the_same_code_in_another_commune_is_another_parcel(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int
) -> None:
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file).iloc[:2].copy()
    frame["commune"] = "5-DE-MARZO"
    elsewhere = tmp_path / "elsewhere.gpkg"
    pyogrio.write_dataframe(frame, elsewhere)

    report = await import_file(conn, PARCELS, elsewhere, settings)

    assert report.inserted == 2


async def test_the_store_refuses_a_repeated_code_however_it_comes(
    client: httpx.AsyncClient, conn: AsyncConnection, maizal: int
) -> None:
    """The unique index (migration 0020) holds for single-feature writes too."""
    cur = await conn.execute("SELECT code FROM parcels WHERE commune_id = %s LIMIT 1", (maizal,))
    (code,) = await cur.fetchone()
    body = feature(PARCELS, "EL-MAIZAL", lon=MAIZAL[0], lat=MAIZAL[1], code=code)
    r = await client.post("/collections/parcels/items", json=body)
    assert r.status_code == 409, r.text
    assert "same commune and code" in r.json()["detail"]


async def test_http_import_takes_the_mode(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, maizal: int
) -> None:
    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)

    def post(query: str) -> httpx.Response:
        files = {"file": ("p.gpkg", file.read_bytes())}
        return client.post(f"/collections/parcels/import{query}", files=files)

    refused = await post("")
    assert refused.status_code == 409, refused.text
    assert "already stored" in refused.json()["detail"]
    assert (await post("?mode=bogus")).status_code in (400, 422)
    done = await post("?mode=upsert")
    assert done.status_code == 200, done.text  # nothing changed: nothing created
    assert done.json()["mode"] == "upsert" and done.json()["unchanged"] == len(before)
    assert done.json()["kept_columns"] == []  # an export has every column
    assert await versions(conn, maizal) == before


def test_cli_upsert(own_db: str, tmp_path: Path) -> None:
    """The command refuses a re-import, names both features, and --upsert changes nothing."""
    env = {"GEO_COMUNA_DATABASE_URL": own_db}
    runner = CliRunner()
    out = tmp_path / "p.gpkg"
    done = runner.invoke(
        cli_app, ["export", "parcels", str(out), "--commune", "EL-MAIZAL"], env=env
    )
    assert done.exit_code == 0, done.stderr
    again = runner.invoke(cli_app, ["import", "parcels", str(out)], env=env)
    assert again.exit_code != 0 and "already stored as parcels feature" in again.stderr
    assert "feature 1" in again.stderr
    tried = runner.invoke(
        cli_app, ["import", "parcels", str(out), "--upsert", "--dry-run"], env=env
    )
    assert tried.exit_code == 0 and json.loads(tried.stdout[tried.stdout.index("{") :])["dry_run"]
    frame = pyogrio.read_dataframe(out)
    was = frame.loc[0, "tenure"]
    frame.loc[0, "tenure"] = "disputed" if was != "disputed" else "abandoned"
    changed = tmp_path / "changed.gpkg"
    pyogrio.write_dataframe(frame, changed)
    for lang, says in (
        ("en", ("would update 1 feature:", "feature 1 (id ")),
        ("es", ("actualizaría 1 entidad:", "entidad 1 (id ")),
    ):
        tried = runner.invoke(
            cli_app,
            ["import", "parcels", str(changed), "--upsert", "--dry-run", "--lang", lang],
            env=env,
        )
        assert tried.exit_code == 0, tried.stderr
        assert all(said in tried.stderr for said in says), tried.stderr
        title = "Tenure" if lang == "en" else "Tenencia"
        assert f"{title}: '{was}' -> '{frame.loc[0, 'tenure']}'" in tried.stderr
        # found from outside: the command ended on its JSON report alone; a person reads
        # what it did in one line, in the command's language
        n = len(frame)
        done_said = (
            f"would import {n} features of changed.gpkg into parcels: 0 new, 1 updated, "
            f"{n - 1} unchanged, in "
            if lang == "en"
            else f"importaría {n} entidades de changed.gpkg en parcels: 0 nuevas, 1 "
            f"actualizada, {n - 1} sin cambios, en "
        )
        assert done_said in tried.stderr, tried.stderr
    upserted = runner.invoke(cli_app, ["import", "parcels", str(out), "--upsert"], env=env)
    assert upserted.exit_code == 0, upserted.stderr
    report = json.loads(upserted.stdout[upserted.stdout.index("{") :])
    assert report["inserted"] == report["updated"] == 0 and report["unchanged"] > 0


async def test_the_migration_refuses_a_store_with_repeated_codes(
    conn: AsyncConnection, maizal: int
) -> None:
    """A store whose parcels already repeat a code is told which, not renamed behind its
    back."""
    (migration,) = [m for m in migrate.available() if m.name == "parcel_natural_key"]
    await conn.execute("DROP INDEX parcels_natural_key")
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, geom) SELECT commune_id, code, tenure, "
        "geom FROM parcels WHERE commune_id = %s ORDER BY id LIMIT 1 RETURNING code",
        (maizal,),
    )
    (code,) = await cur.fetchone()
    with pytest.raises(psycopg.errors.RaiseException) as refused:
        async with conn.transaction():
            await conn.execute(migration.sql)
    assert f"{code} in commune {maizal}" in str(refused.value)


async def test_every_natural_key_is_a_unique_index(conn: AsyncConnection) -> None:
    """The registry's natural keys are the database's: each has a unique index over exactly
    its columns, which the import's look-up uses and every write is held to."""
    keyed = [layer for layer in LAYERS.values() if layer.natural_key]
    assert {layer.name for layer in keyed} >= {"parcels", "communes", "states"}
    for layer in keyed:
        wanted = {
            layer.reference(name).column if layer.reference(name) else name
            for name in layer.natural_key
        }
        assert all(layer.reference(n) or layer.attribute(n) for n in layer.natural_key)
        cur = await conn.execute(
            "SELECT array_agg(a.attname::text) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indpred IS NULL "
            "GROUP BY i.indexrelid",
            (layer.table,),
        )
        unique = [set(row[0]) for row in await cur.fetchall()]
        assert wanted in unique, (layer.name, unique)


@pytest.mark.parametrize(
    ("fmt", "crs"),
    [("geojson", "EPSG:4326"), ("shp", "EPSG:4326"), ("gpkg", "EPSG:2202"), ("csv", "EPSG:2202")],
)
async def test_an_export_in_any_format_and_crs_upserted_back_changes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, maizal: int, fmt: str, crs: str
) -> None:
    """A GeoJSON export turns every ring counter-clockwise, a Shapefile clockwise, and a
    round trip through UTM moves vertices by ~1e-12 degrees: the same shapes, which an upsert
    leaves as they are (it updated all of them, each a new version and an audit entry). One
    parcel is surveyed to more decimals than a phone gives: GeoJSON's 7 decimals moved it."""
    await conn.execute(
        "UPDATE parcels SET geom = ST_Translate(geom, 1.234567891234e-7, -3.21987654321e-8) "
        "WHERE id = (SELECT min(id) FROM parcels WHERE commune_id = %s)",
        (maizal,),
    )
    before = await versions(conn, maizal)
    report = await export_layer(
        conn, PARCELS, tmp_path / f"p{FORMATS[fmt].suffix}", FORMATS[fmt], crs=crs,
        commune_id=maizal, access=EVERYWHERE,
    )  # fmt: skip
    back = await import_file(
        conn, PARCELS, Path(report.file), settings, mode="upsert",
        crs=crs if fmt == "csv" else None,
    )  # fmt: skip
    assert (back.inserted, back.updated, back.unchanged) == (0, 0, len(before))
    assert await versions(conn, maizal) == before


async def test_the_same_shape_is_told_from_another(conn: AsyncConnection) -> None:
    """geo_comuna_same_shape on shapes worked out by hand (tolerance 1e-9 degrees)."""
    square = "POLYGON((0 0,1 0,1 1,0 1,0 0))"
    cases = {
        "POLYGON((0 0,1 0,1 1,0 1,0 0))": True,  # itself
        "POLYGON((0 0,0 1,1 1,1 0,0 0))": True,  # the other way round
        "POLYGON((1 1,0 1,0 0,1 0,1 1))": True,  # from another corner
        "POLYGON((0 0,1 0,1 1,0 1.0000000001,0 0))": True,  # 1e-10: within
        "POLYGON((0 0,1 0,1 1,0 1.00000001,0 0))": False,  # 1e-8: moved
        "POLYGON((0 0,1 1,1 0,0 1,0 0))": False,  # the same corners, another ring
        "POLYGON((0 0,1 0,1 1,0 1,0 0),(0.2 0.2,0.2 0.4,0.4 0.4,0.2 0.2))": False,  # a hole
        "POLYGON((0 0,0.5 0,1 0,1 1,0 1,0 0))": False,  # one vertex more, same area
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)))": False,  # another type
    }
    for other, same in cases.items():
        cur = await conn.execute(
            "SELECT geo_comuna_same_shape(ST_GeomFromText(%s, 4326), "
            "ST_GeomFromText(%s, 4326), 1e-9)",
            (square, other),
        )
        assert (await cur.fetchone())[0] is same, other
    cur = await conn.execute(
        "SELECT geo_comuna_same_shape(NULL, NULL, 1e-9), "
        "geo_comuna_same_shape(ST_GeomFromText(%s, 4326), NULL, 1e-9)",
        (square,),
    )
    assert await cur.fetchone() == (True, False)


async def test_an_upsert_into_a_layer_without_a_natural_key_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, settings: Settings
) -> None:
    """Facilities have no natural key: an upsert could match nothing and inserted every
    feature of an export again. It is refused, saying why and what to do, before the file is
    read, and nothing is written."""
    maizal = await require_commune(conn, "EL-MAIZAL")
    facilities = LAYERS["facilities"]
    assert not facilities.natural_key
    report = await export_layer(
        conn, facilities, tmp_path / "f.gpkg", FORMATS["gpkg"], commune_id=maizal,
        access=EVERYWHERE,
    )  # fmt: skip
    assert report.features > 0
    count = "SELECT count(*) FROM facilities"
    held = (await (await conn.execute(count)).fetchone())[0]
    files = {"file": ("f.gpkg", Path(report.file).read_bytes())}
    r = await client.post("/collections/facilities/import?mode=upsert", files=files)
    assert r.status_code == 400, r.text
    said = r.json()["detail"]
    assert "facilities has no natural key" in said and "parcels" in said and "PATCH" in said
    with pytest.raises(InvalidInput, match="no natural key"):
        await import_file(conn, facilities, tmp_path / "missing.gpkg", settings, mode="upsert")
    assert (await (await conn.execute(count)).fetchone())[0] == held


async def test_an_export_imported_back_into_a_layer_without_a_key_is_refused(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path, settings: Settings
) -> None:
    """Production units have no natural key: their export imported back added 14 copies of
    what was there, silently. A feature the layer holds already, the same in every field and
    shape, refuses the import naming the file's feature and the stored one; a changed one is
    new; --allow-copies adds them anyway."""
    maizal = await require_commune(conn, "EL-MAIZAL")
    units = LAYERS["production_units"]
    assert not units.natural_key
    report = await export_layer(
        conn, units, tmp_path / "u.gpkg", FORMATS["gpkg"], commune_id=maizal, access=EVERYWHERE
    )
    count = "SELECT count(*) FROM production_units"
    held = (await (await conn.execute(count)).fetchone())[0]
    frame = pyogrio.read_dataframe(report.file)
    assert len(frame) >= 2
    frame.loc[0, "name"] = f"{frame.loc[0, 'name']} (ampliada)"  # the first one is changed
    edited = tmp_path / "edited.gpkg"
    pyogrio.write_dataframe(frame, edited)
    cur = await conn.execute(
        "SELECT min(id) FROM production_units WHERE commune_id = %s AND name = %s",
        (maizal, frame.loc[1, "name"]),
    )
    (second,) = await cur.fetchone()

    with pytest.raises(Conflict) as refused:
        await import_file(conn, units, edited, settings)
    assert refused.value.feature == 2
    assert f"as feature {second}, the same in every field and shape" in refused.value.reason
    assert f"(and {len(frame) - 2} more)" in refused.value.reason or len(frame) == 2
    assert (await (await conn.execute(count)).fetchone())[0] == held
    files = {"file": ("edited.gpkg", edited.read_bytes())}
    r = await client.post("/collections/production_units/import?lang=es", files=files)
    assert r.status_code == 409 and "añadiría una copia" in r.json()["detail"], r.text

    done = await import_file(conn, units, edited, settings, allow_copies=True)
    assert done.inserted == len(frame)
    assert (await (await conn.execute(count)).fetchone())[0] == held + len(frame)


async def test_the_search_for_copies_is_bounded_by_a_requests_seconds(
    conn: AsyncConnection,
    settings: Settings,
    tmp_path: Path,
    maizal: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The import runs without a statement timeout; the search for copies among features
    without a key, each laid against the stored shapes it overlaps, is held to a request's
    seconds (found in review: a file of near-copies could keep a CPU busy long). Over them,
    the file is refused saying what to do, and nothing is written."""
    import dataclasses

    from geo_comuna import work

    before = await versions(conn, maizal)
    file = await exported(conn, tmp_path, maizal)
    frame = pyogrio.read_dataframe(file)
    near = frame.iloc[[0] * 3000].copy()  # 3,000 shapes each sharing ~80 % of parcel 1's
    minx, _, maxx, _ = near.geometry.iloc[0].bounds
    near["geometry"] = near.geometry.translate(xoff=(maxx - minx) * 0.2)
    near["code"] = None
    path = tmp_path / "near.gpkg"
    pyogrio.write_dataframe(near, path)
    tight = dataclasses.replace(work.default_limits(), compute_seconds=0.001)
    monkeypatch.setattr(work, "limits", lambda: tight)
    with pytest.raises(InvalidFile) as refused:
        await import_file(conn, PARCELS, path, settings)
    assert "looking for copies of stored features" in refused.value.reason
    assert "buscar copias de entidades guardadas" in refused.value.said("es")
    assert await versions(conn, maizal) == before


async def test_thousands_of_homes_at_one_point_are_checked_for_copies_in_one_pass(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found from outside: a survey without GPS puts every home at the commune's centre. The
    search for copies probed the shapes' index once per home, and each probe walked every
    home of the file at that point: 10,000 took 16 s, 20,000 were refused for time. Now each
    place is probed once; here 20,000 homes pass well within 5 s, the same file again is
    refused as copies (for what it is, not for time), and other homes at that point are
    not copies."""
    import dataclasses

    from geo_comuna import work

    tight = dataclasses.replace(work.default_limits(), compute_seconds=5)
    monkeypatch.setattr(work, "limits", lambda: tight)
    dwellings = LAYERS["dwellings"]

    def survey(path: Path, count: int, residents: range) -> Path:
        rows = [
            f"-69.6,10.2,EL-MAIZAL,{residents[i % len(residents)]},piped,formal"
            for i in range(count)
        ]
        path.write_text("lon,lat,commune,residents,water,electricity\n" + "\n".join(rows))
        return path

    first = survey(tmp_path / "centre.csv", 20_000, range(1, 8))
    done = await import_file(conn, dwellings, first, settings)
    assert done.inserted == 20_000
    with pytest.raises(Conflict) as copies:
        await import_file(conn, dwellings, first, settings)
    assert "the same in every field and shape (and 19999 more)" in copies.value.reason
    assert copies.value.feature == 1
    others = survey(tmp_path / "others.csv", 10_000, range(8, 20))
    assert (await import_file(conn, dwellings, others, settings)).inserted == 10_000
