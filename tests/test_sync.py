"""Field edits back (maps/sync.py): `geo-comuna sync` and POST /communes/{c}/sync.

A real package is built (maps/package.py), edited with GDAL's own tools as QGIS or QField
would (ogrinfo -sql in the GeoPackage, ogr2ogr to add and rewrite features), and synced back
into the test's transaction.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pyogrio
import pytest
import shapely
import shapely.affinity
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna import accounts
from geo_comuna.accounts import EVERYWHERE, local_admin
from geo_comuna.cli import app as cli_app
from geo_comuna.errors import (
    Conflict,
    Forbidden,
    GeoComunaError,
    InvalidAttribute,
    InvalidFile,
    InvalidGeometry,
    Said,
    TooLarge,
)
from geo_comuna.features import edit, validate
from geo_comuna.features.query import require_commune
from geo_comuna.layers import LAYERS, get_layer
from geo_comuna.maps.package import GPKG, INFO_TABLE, build_package
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.sync import read_package, report_json, sync, sync_file
from geo_comuna.maps.sync_summary import summary
from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
COMMUNE = "EL-MAIZAL"
PARCELS = get_layer("parcels")


# --- building and editing a package -------------------------------------------------------


async def _package(conn: AsyncConnection, settings: Settings, tmp_path: Path) -> Path:
    """The commune's package, its GeoPackage unpacked beside it; returns the zip."""
    commune_id = await require_commune(conn, COMMUNE)
    target = tmp_path / "comuna-maizal.zip"
    await build_package(conn, commune_id, target, settings, EVERYWHERE)
    with zipfile.ZipFile(target) as zf:
        zf.extract(GPKG, tmp_path)
    return target


def _ogr_sql(gpkg: Path, statement: str) -> None:
    done = subprocess.run(
        ["ogrinfo", "-q", str(gpkg), "-sql", statement], capture_output=True, text=True
    )
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr


def _ogr2ogr(*args: str) -> None:
    done = subprocess.run(["ogr2ogr", *args], capture_output=True, text=True)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr


def _set_tenure(gpkg: Path, parcel: int, tenure: str) -> None:
    _ogr_sql(gpkg, f"UPDATE parcels SET tenure = '{tenure}' WHERE id = {parcel}")


def _move_vertex(gpkg: Path, parcel: int, tmp_path: Path) -> shapely.Geometry:
    """Move the first vertex of ``parcel`` (and the ring's closing one) ~10 m east, rewriting
    the feature in place with ogr2ogr's upsert; returns the new geometry."""
    out = tmp_path / f"moved-{parcel}.geojson"
    _ogr2ogr(
        "-f", "GeoJSON", "-preserve_fid", str(out), str(gpkg), "parcels", "-where", f"id = {parcel}"
    )
    doc = json.loads(out.read_text())
    ring = doc["features"][0]["geometry"]["coordinates"][0][0]
    ring[0][0] += 0.0001
    ring[-1][0] += 0.0001
    out.write_text(json.dumps(doc))
    _ogr2ogr("-update", "-upsert", "-preserve_fid", "-nln", "parcels", str(gpkg), str(out))
    return shapely.from_geojson(json.dumps(doc["features"][0]["geometry"]))


async def _add_parcel(conn: AsyncConnection, gpkg: Path, tmp_path: Path) -> None:
    """A new parcel as QField adds one: no id, no version, inside the commune."""
    cur = await conn.execute(
        "SELECT ST_AsGeoJSON(ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 0.0005, 1))) "
        "FROM communes WHERE code = %s",
        (COMMUNE,),
    )
    geometry = json.loads((await cur.fetchone())[0])
    new = tmp_path / "new.geojson"
    feature = {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": "MZ-FIELD-1", "tenure": "occupied", "commune": COMMUNE},
    }
    new.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    _ogr2ogr("-update", "-append", "-nln", "parcels", str(gpkg), str(new))


def _copies(tmp_path: Path, teams: str) -> list[Path]:
    """A folder per team, each with its copy of the package's GeoPackage."""
    folders = []
    for team in teams:
        folders.append(tmp_path / team)
        folders[-1].mkdir()
        shutil.copy(tmp_path / GPKG, folders[-1] / GPKG)
    return folders


async def _inside(conn: AsyncConnection) -> tuple[float, float]:
    """A point inside the commune (lon, lat)."""
    cur = await conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM communes "
        "WHERE code = %s) c",
        (COMMUNE,),
    )
    return await cur.fetchone()


async def _parcels(conn: AsyncConnection, n: int = 3) -> list[int]:
    """The commune's first ``n`` parcels without land records (which keep a parcel from
    being deleted: migration 0032)."""
    cur = await conn.execute(
        "SELECT p.id FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = %s AND NOT EXISTS (SELECT FROM rights r WHERE r.parcel_id = p.id) "
        "AND NOT EXISTS (SELECT FROM documents d WHERE d.parcel_id = p.id) "
        "ORDER BY p.id LIMIT %s",
        (COMMUNE, n),
    )
    return [r[0] for r in await cur.fetchall()]


async def _row(conn: AsyncConnection, parcel: int) -> tuple | None:
    cur = await conn.execute(
        "SELECT tenure, land_use, ST_AsBinary(geom), xmin::text FROM parcels WHERE id = %s",
        (parcel,),
    )
    return await cur.fetchone()


async def _count(conn: AsyncConnection, table: str = "parcels") -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a constant)
    return (await cur.fetchone())[0]


async def _four_edits(
    conn: AsyncConnection, gpkg: Path, tmp_path: Path
) -> tuple[int, int, int, str, shapely.Geometry]:
    """Change a tenure, move a vertex, add a parcel, delete one, all with GDAL."""
    a, b, c = await _parcels(conn)
    tenure = (await _row(conn, a))[0]
    new_tenure = "disputed" if tenure != "disputed" else "occupied"
    _set_tenure(gpkg, a, new_tenure)
    moved = _move_vertex(gpkg, b, tmp_path)
    await _add_parcel(conn, gpkg, tmp_path)
    _ogr_sql(gpkg, f"DELETE FROM parcels WHERE id = {c}")
    return a, b, c, new_tenure, moved


async def _sync(
    conn: AsyncConnection, settings: Settings, path: Path, tmp_path: Path, **options: object
):
    commune_id = await require_commune(conn, COMMUNE)
    return await sync_file(conn, commune_id, path, tmp_path, settings, local_admin(), **options)


# --- the four edits -----------------------------------------------------------------------


@pytest.mark.parametrize("delete_missing", [False, True])
async def test_exactly_the_four_edits_come_back(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, delete_missing: bool
) -> None:
    _ = await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b, c, new_tenure, moved = await _four_edits(conn, gpkg, tmp_path)
    before = {p: await _row(conn, p) for p in await _parcels(conn, 1000)}
    total = await _count(conn)
    cur = await conn.execute("SELECT code FROM parcels WHERE id = %s", (c,))
    (code_c,) = await cur.fetchone()

    report = await _sync(conn, settings, gpkg, tmp_path, delete_missing=delete_missing)

    assert {name for name, diff in report.layers.items() if diff} == {"parcels"}
    diff = report.layers["parcels"]
    assert [(ch.id, set(ch.fields)) for ch in sorted(diff.changed, key=lambda ch: ch.id)] == sorted(
        [(a, {"tenure"}), (b, {"geometry"})]
    )
    assert diff.changed[[ch.id for ch in diff.changed].index(a)].fields["tenure"] == [
        new_tenure,
        before[a][0],
    ]
    assert len(diff.added) == 1 and diff.missing == [c] and diff.conflicts == []
    # deleted only when asked: without it the answer listed it under "deleted" all the same
    assert diff.deleted == ([c] if delete_missing else [])
    assert report.written == (4 if delete_missing else 3)
    assert report.kept == (0 if delete_missing else 1)

    after = await _row(conn, a)
    assert after[0] == new_tenure and after[1] == before[a][1]
    assert shapely.equals_exact(shapely.from_wkb((await _row(conn, b))[2]), moved, 1e-9)
    assert ((await _row(conn, c)) is None) is delete_missing
    assert await _count(conn) == total + 1 - delete_missing
    # the new row and the missing parcel by their codes too (found from outside: "nuevas (fid
    # en el paquete): 97", "ausentes del paquete: 15")
    lines = "\n".join(summary(report, "en"))
    assert re.search(r"added \(fid in the package\): \d+ \(MZ-FIELD-1\)", lines), lines
    if not delete_missing:
        assert f": {c} ({code_c})" in lines, lines
    cur = await conn.execute(
        "SELECT commune_id, tenure FROM parcels WHERE code = 'MZ-FIELD-1'",
    )
    assert await cur.fetchall() == [(await require_commune(conn, COMMUNE), "occupied")]
    untouched = [p for p in before if p not in (a, b, c)]
    assert [await _row(conn, p) for p in untouched] == [before[p] for p in untouched]

    cur = await conn.execute(
        "SELECT action, reason FROM audit_log WHERE layer = 'parcels' "
        "AND (feature_id = ANY(%s) OR action = 'insert') ORDER BY id DESC LIMIT %s",
        ([a, b, c], report.written),
    )
    entries = await cur.fetchall()
    assert {reason for _, reason in entries} == {"sync comuna.gpkg"}
    assert sorted(action for action, _ in entries) == sorted(
        ["update", "update", "insert"] + ["delete"] * delete_missing
    )


async def test_a_second_sync_of_the_same_file_adds_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """The new parcel has no id in the file after the first sync either: the second sync
    finds it stored, and neither adds it again nor takes it for a deletion."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    _, _, c, _, _ = await _four_edits(conn, gpkg, tmp_path)
    first = await _sync(conn, settings, gpkg, tmp_path)
    total = await _count(conn)
    second = await _sync(conn, settings, gpkg, tmp_path, delete_missing=True)
    diff = second.layers["parcels"]
    cur = await conn.execute("SELECT id FROM parcels WHERE code = 'MZ-FIELD-1'")
    assert diff.synced == [r[0] for r in await cur.fetchall()]
    assert (diff.added, diff.changed, diff.deleted) == ([], [], [c])
    assert first.written == 3 and second.written == 1  # the deletion only
    assert await _count(conn) == total - 1


async def test_two_syncs_of_one_file_at_once_write_it_once(
    own_db: str, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a phone that sent its sync twice at once had the second refused
    with a 412 naming its own edits (both read the store before either wrote). Syncs of one
    commune now run in turn: the second waits, finds the edits written and changes nothing."""
    first = await AsyncConnection.connect(own_db, autocommit=True)
    second = await AsyncConnection.connect(own_db, autocommit=True)
    try:
        await _package(first, settings, tmp_path)
        gpkg = tmp_path / GPKG
        (parcel,) = await _parcels(first, 1)
        tenure = "disputed" if (await _row(first, parcel))[0] != "disputed" else "occupied"
        _set_tenure(gpkg, parcel, tenure)
        (tmp_path / "b").mkdir()
        async with first.transaction():
            one = await _sync(first, settings, gpkg, tmp_path)
            other = asyncio.create_task(_sync(second, settings, gpkg, tmp_path / "b"))
            await asyncio.sleep(1)
            assert not other.done()  # it waits for the first to commit
        two = await asyncio.wait_for(other, 60)
        assert (one.written, two.written) == (1, 0)
        assert not two.layers["parcels"] and (await _row(second, parcel))[0] == tenure
    finally:
        for connection in (first, second):
            await connection.close()


async def test_a_new_feature_edited_again_in_the_same_file_is_updated_not_added_twice(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A field worker adds a parcel, syncs, goes on editing it in the same file (which never
    gets the id the sync gave it) and syncs again. It was stored a second time (or refused
    for its code): it is the same parcel, made after the package at the same place with the
    same shape, and its edited attribute is a change of it."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    await _add_parcel(conn, gpkg, tmp_path)
    first = await _sync(conn, settings, gpkg, tmp_path)
    assert len(first.layers["parcels"].added) == 1
    cur = await conn.execute("SELECT id, tenure FROM parcels WHERE code = 'MZ-FIELD-1'")
    ((new_id, tenure),) = await cur.fetchall()
    # the answer says what each new row became (found from outside: it listed fids alone)
    (row,) = first.layers["parcels"].added
    assert first.layers["parcels"].created == {row: new_id}
    assert report_json(first)["layers"]["parcels"]["created"] == {row: new_id}
    assert f"{row} (MZ-FIELD-1) → id {new_id}" in "\n".join(summary(first, "es"))
    total = await _count(conn)
    _ogr_sql(gpkg, "UPDATE parcels SET tenure = 'disputed', notes = 'again' WHERE id IS NULL")
    second = await _sync(conn, settings, gpkg, tmp_path)
    diff = second.layers["parcels"]
    assert diff.added == [] and diff.synced == [new_id] and diff.missing == []
    assert [(ch.id, sorted(ch.fields)) for ch in diff.changed] == [(new_id, ["notes", "tenure"])]
    assert await _count(conn) == total and second.written == 1
    cur = await conn.execute("SELECT tenure, notes FROM parcels WHERE id = %s", (new_id,))
    assert await cur.fetchone() == ("disputed", "again") and tenure != "disputed"
    # the same file once more changes nothing
    third = await _sync(conn, settings, gpkg, tmp_path)
    assert third.written == 0 and third.layers["parcels"].synced == [new_id]
    # and says so, beside "nothing to change" (found from outside: it said only that)
    said = "\n".join(summary(third, "en"))
    assert "new but stored by an earlier sync already" in said and "Nothing to change" in said


async def test_another_teams_new_feature_is_kept_not_deleted(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Two teams take the same package. Team A adds a parcel and syncs. Team B deletes one
    parcel and syncs with --delete-missing: team A's parcel, stored since the package was
    made, was missing from B's file too, and was deleted with the one B deleted. It is now
    told apart (its id is above every id the package was made with) and kept."""
    await _package(conn, settings, tmp_path)
    team_a, team_b = tmp_path / "a", tmp_path / "b"
    team_a.mkdir()
    team_b.mkdir()
    for folder in (team_a, team_b):
        shutil.copy(tmp_path / GPKG, folder / GPKG)
    await _add_parcel(conn, team_a / GPKG, tmp_path)
    first = await _sync(conn, settings, team_a / GPKG, team_a)
    assert len(first.layers["parcels"].added) == 1
    cur = await conn.execute("SELECT id FROM parcels WHERE code = 'MZ-FIELD-1'")
    ((theirs,),) = await cur.fetchall()
    (gone,) = await _parcels(conn, 1)
    _ogr_sql(team_b / GPKG, f"DELETE FROM parcels WHERE id = {gone}")
    total = await _count(conn)
    second = await _sync(conn, settings, team_b / GPKG, team_b, delete_missing=True)
    diff = second.layers["parcels"]
    assert diff.deleted == [gone] and diff.missing == [gone]
    assert diff.newer == [theirs] and diff.added == []
    assert await _row(conn, theirs) is not None and await _row(conn, gone) is None
    assert await _count(conn) == total - 1 and second.written == 1


def _sql(gpkg: Path, statement: str) -> None:
    """A statement in the GeoPackage's own SQL (SQLite, with GDAL's spatial functions)."""
    done = subprocess.run(
        ["ogrinfo", "-q", str(gpkg), "-dialect", "SQLite", "-sql", statement],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr


async def test_a_new_feature_edited_after_its_first_sync_is_found_again(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a new feature whose shape the field team moved after its first
    sync was stored again (a production unit), or refused the whole sync as a repeated code
    (a parcel). The sync now records which feature each new row of the package became (by
    the package's id and the row's fid), and the next sync of the file updates it."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    x, y = await _inside(conn)
    _sql(
        gpkg,
        "INSERT INTO production_units (commune, name, product, workers, geom) VALUES "
        f"('{COMMUNE}', 'Panadería Ñema', 'bakery', 3, MakePoint({x}, {y}, 4326))",
    )
    await _add_parcel(conn, gpkg, tmp_path)
    units, parcels = await _count(conn, "production_units"), await _count(conn)
    first = await _sync(conn, settings, gpkg, tmp_path)
    assert [len(first.layers[n].added) for n in ("production_units", "parcels")] == [1, 1]
    cur = await conn.execute("SELECT id FROM parcels WHERE code = 'MZ-FIELD-1'")
    (parcel,) = await cur.fetchone()
    # the field goes on: the unit moved ~20 m and more workers, the parcel moved ~10 m and
    # given a land use; neither row has an id in the file
    _sql(
        gpkg,
        f"UPDATE production_units SET geom = MakePoint({x + 0.0002}, {y}, 4326), workers = 7 "
        "WHERE id IS NULL",
    )
    _sql(
        gpkg,
        "UPDATE parcels SET geom = ST_Translate(geom, 0.0001, 0, 0), land_use = 'pasture' "
        "WHERE id IS NULL",
    )
    second = await _sync(conn, settings, gpkg, tmp_path)
    unit_diff, parcel_diff = (second.layers[n] for n in ("production_units", "parcels"))
    assert unit_diff.added == [] and parcel_diff.added == [] and parcel_diff.conflicts == []
    assert [set(c.fields) for c in unit_diff.changed] == [{"geometry", "workers"}]
    assert [(c.id, set(c.fields)) for c in parcel_diff.changed] == [
        (parcel, {"geometry", "land_use"})
    ]
    assert await _count(conn, "production_units") == units + 1 and await _count(conn) == parcels + 1
    assert (await _row(conn, parcel))[1] == "pasture"
    cur = await conn.execute("SELECT workers FROM production_units WHERE name = 'Panadería Ñema'")
    assert await cur.fetchall() == [(7,)]
    # the same file again: nothing to change
    third = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    assert not third.layers["production_units"] and not third.layers["parcels"]


@pytest.mark.parametrize(
    "moved",
    [
        "ST_Translate(geom, 0.003, 0.003, 0), code = 'MZ-FIELD-2'",
        # found from outside: team C drew the plot team A had synced, 10 m off, under another
        # code and with fields left empty: taken for A's, it rewrote A's parcel field by field
        "ST_Translate(geom, 0.0001, 0, 0), code = 'MZ-FIELD-7', tenure = 'disputed'",
        # and one without a code blanked A's (found from outside): it stays new, and is then
        # refused as a codeless parcel on A's ground
        "ST_Translate(geom, 0.00001, 0, 0), code = NULL, tenure = 'abandoned'",
    ],
    ids=["elsewhere", "same place, another code", "same place, no code"],
)
async def test_another_copys_new_row_of_the_same_fid_stays_new(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, moved: str
) -> None:
    """Copies of one day's package share its id, and each team's first new parcel gets the
    same fid: team B's parcel, far from the one team A synced, or in its place under another
    code, is a new parcel, not an edit of A's."""
    await _package(conn, settings, tmp_path)
    team_a, team_b = _copies(tmp_path, "ab")
    await _add_parcel(conn, team_a / GPKG, tmp_path)
    _sql(team_a / GPKG, "UPDATE parcels SET land_use = 'crops' WHERE id IS NULL")
    await _add_parcel(conn, team_b / GPKG, tmp_path)
    _sql(team_b / GPKG, f"UPDATE parcels SET geom = {moved} WHERE id IS NULL")  # noqa: S608
    await _sync(conn, settings, team_a / GPKG, team_a)
    total = await _count(conn)
    if "NULL" in moved:
        with pytest.raises(Conflict) as refused:
            await _sync(conn, settings, team_b / GPKG, team_b)
        assert "lies on the ground of parcels feature" in str(refused.value), refused.value
    else:
        second = await _sync(conn, settings, team_b / GPKG, team_b)
        diff = second.layers["parcels"]
        assert len(diff.added) == 1 and diff.changed == [] and diff.conflicts == [], diff
    assert await _count(conn) == total + ("NULL" not in moved)
    cur = await conn.execute("SELECT tenure, land_use FROM parcels WHERE code = 'MZ-FIELD-1'")
    assert await cur.fetchone() == ("occupied", "crops")  # team A's, as A wrote it


@pytest.mark.parametrize("edit", ["DELETE", "parcels"])
async def test_an_old_package_deletes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, edit: str
) -> None:
    """Found from outside: a package made before the last ids were recorded, synced with
    delete_missing, deleted every feature made on the server after it (it cannot tell them
    from the field's deletions). Such a sync is refused, saying why; without deleting it
    syncs as before."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    with sqlite3.connect(gpkg) as db:
        if edit == "DELETE":
            db.execute(f"DELETE FROM {INFO_TABLE} WHERE key = 'layer_last_ids'")  # noqa: S608
        else:  # one layer's missing (found from outside: its parcels made since were deleted)
            query = f"SELECT value FROM {INFO_TABLE} WHERE key = 'layer_last_ids'"  # noqa: S608
            (ids,) = db.execute(query).fetchone()
            kept = ",".join(p for p in ids.split(",") if not p.startswith("parcels:"))
            db.execute(
                f"UPDATE {INFO_TABLE} SET value = ? WHERE key = 'layer_last_ids'",  # noqa: S608
                (kept,),
            )
    db.close()
    await conn.execute(  # a parcel made on the server after the package
        "INSERT INTO parcels (commune_id, code, tenure, geom) SELECT c.id, 'MZ-SERVER-1', "
        "'occupied', ST_Multi(ST_Buffer(ST_PointOnSurface(c.geom), 0.0003)) FROM communes c "
        "WHERE c.code = %s",
        (COMMUNE,),
    )
    total = await _count(conn)
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, gpkg, tmp_path, delete_missing=True)
    assert "would delete their work" in refused.value.reason
    assert await _count(conn) == total
    assert (await _sync(conn, settings, gpkg, tmp_path)).written == 0


async def test_another_communes_package_id_finds_nothing_of_it(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a package's id is no secret (anyone can work it out from a
    downloaded package), and what its new rows became was found by that id alone. A file
    of El Maizal carrying 5 de Marzo's package id, synced to El Maizal, made 5 de Marzo's
    next sync take its own new parcel of the same fid for El Maizal's feature: a conflict
    with nothing stored. A sync now reads and records the rows of its own commune only."""
    await _package(conn, settings, tmp_path)
    ours = tmp_path / GPKG
    marzo = await require_commune(conn, "5-DE-MARZO")
    theirs_dir = tmp_path / "marzo"
    theirs_dir.mkdir()
    await build_package(conn, marzo, theirs_dir / "p.zip", settings, EVERYWHERE)
    with zipfile.ZipFile(theirs_dir / "p.zip") as zf:
        zf.extract(GPKG, theirs_dir)
    theirs = theirs_dir / GPKG
    with sqlite3.connect(theirs) as db:
        (their_id,) = db.execute(
            f"SELECT value FROM {INFO_TABLE} WHERE key = 'package_id'"  # noqa: S608
        ).fetchone()
    with sqlite3.connect(ours) as db:
        db.execute(f"UPDATE {INFO_TABLE} SET value = ? WHERE key = 'package_id'", (their_id,))  # noqa: S608
    await _add_parcel(conn, ours, tmp_path)
    await _sync(conn, settings, ours, tmp_path)
    # 5 de Marzo's team adds its own first parcel: the same fid in its copy
    cur = await conn.execute(
        "SELECT ST_AsGeoJSON(ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 0.0001, 1))) "
        "FROM communes WHERE id = %s",
        (marzo,),
    )
    shape = (await cur.fetchone())[0]
    new = theirs_dir / "new.geojson"
    feature = {
        "type": "Feature",
        "geometry": json.loads(shape),
        "properties": {"code": "5M-FIELD-1", "tenure": "occupied", "commune": "5-DE-MARZO"},
    }
    new.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    _ogr2ogr("-update", "-append", "-nln", "parcels", str(theirs), str(new))
    with sqlite3.connect(ours) as a:
        (fid,) = a.execute("SELECT fid FROM parcels WHERE id IS NULL").fetchone()
    _sql(theirs, f"UPDATE parcels SET fid = {fid} WHERE id IS NULL")  # the same fid
    total = await _count(conn)
    done = await sync_file(conn, marzo, theirs, theirs_dir, settings, local_admin())
    diff = done.layers["parcels"]
    assert len(diff.added) == 1 and diff.changed == [] and diff.conflicts == [], diff
    assert await _count(conn) == total + 1
    cur = await conn.execute("SELECT count(*) FROM parcels WHERE code = '5M-FIELD-1'")
    assert (await cur.fetchone())[0] == 1


async def test_rows_recorded_before_take_their_features_commune(conn: AsyncConnection) -> None:
    """Migration 0030 gives each row recorded before the commune of the feature it names (an
    exchange's: the commune it comes from) and drops the rows whose feature is gone."""
    cur = await conn.execute(
        "SELECT (SELECT id FROM parcels ORDER BY id LIMIT 1), "
        "(SELECT id FROM exchanges ORDER BY id LIMIT 1), (SELECT max(id) + 1 FROM parcels)"
    )
    parcel, exchange, gone = await cur.fetchone()
    migration = (
        Path(__file__).parents[1] / "geo_comuna/db/migrations/0030_package_rows_by_commune.sql"
    )
    [fill] = re.findall(r"^DO \$\$.*?END \$\$;$", migration.read_text(), re.S | re.M)
    async with conn.transaction():  # on a copy of the table without its key: rolled back
        await conn.execute(
            "CREATE TEMP TABLE package_rows AS SELECT * FROM public.package_rows WITH NO DATA"
        )
        await conn.execute(
            "INSERT INTO package_rows (package, layer, fid, feature_id, version) VALUES "
            "('p', 'parcels', 1, %s, 1), ('p', 'exchanges', 2, %s, 1), "
            "('p', 'parcels', 3, %s, 1)",
            (parcel, exchange, gone),
        )
        await conn.execute(fill)
        await conn.execute("DELETE FROM package_rows WHERE commune_id IS NULL")
        cur = await conn.execute("SELECT fid, commune_id FROM package_rows ORDER BY fid")
        assert await cur.fetchall() == [
            (1, await _commune_of(conn, "parcels", "commune_id", parcel)),
            (2, await _commune_of(conn, "exchanges", "from_commune_id", exchange)),
        ]
        raise psycopg.Rollback()


async def _commune_of(conn: AsyncConnection, table: str, column: str, fid: int) -> int:
    cur = await conn.execute(f"SELECT {column} FROM {table} WHERE id = %s", (fid,))  # noqa: S608
    return (await cur.fetchone())[0]


async def test_what_the_sync_does_not_write_is_said(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: an area typed over and notes in a column the team added came back
    as "nothing to change", the team's work gone without a word. The report names them."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b, *_ = await _parcels(conn)
    _sql(gpkg, f"UPDATE parcels SET area_ha = 999 WHERE id = {a}")
    _sql(gpkg, "ALTER TABLE parcels ADD COLUMN observaciones TEXT")
    _sql(gpkg, f"UPDATE parcels SET observaciones = 'cerca caída' WHERE id IN ({a}, {b})")
    x, y = await _inside(conn)
    _sql(  # a new unit naming its parcel by the code the package shows, not by parcel
        gpkg,
        "INSERT INTO production_units (commune, name, product, parcel_code, geom) VALUES "
        f"('{COMMUNE}', 'Vivero', 'vegetables', 'EM-P001', MakePoint({x}, {y}, 4326))",
    )
    before = await _row(conn, a)
    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    units = report.layers["production_units"]
    assert list(units.read_only_rows) == ["parcel_code"] and len(units.added) == 1
    diff = report.layers["parcels"]
    assert diff.read_only == {"area_ha": [a]} and diff.not_fields == {"observaciones": 2}
    assert not diff.added and not diff.changed and not diff.conflicts
    english = "\n".join(summary(report, "en"))
    assert "column 'observaciones' (2 values) not written: it is no field of the layer" in english
    assert f"not written where changed: {a}" in english and "Nothing to change" not in english
    spanish = "\n".join(summary(report, "es"))
    assert "no se guardó la columna «observaciones» (2 valores)" in spanish, spanish
    written = await _sync(conn, settings, gpkg, tmp_path)
    assert written.written == 1 and await _row(conn, a) == before  # the unit alone
    # an untouched package says nothing of the kind
    await _package(conn, settings, tmp_path)
    again = await _sync(conn, settings, tmp_path / GPKG, tmp_path, dry_run=True)
    assert not any(again.layers.values()), again.layers


async def test_a_feature_without_a_code_is_said_by_its_name(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a facility's change read "14: Nombre: …", and the team could not
    tell which it was. A feature of a layer without codes is said by its name."""
    await _package(conn, settings, tmp_path)
    cur = await conn.execute(
        "SELECT f.id, f.name FROM facilities f JOIN communes c ON c.id = f.commune_id "
        "WHERE c.code = %s AND f.name IS NOT NULL ORDER BY f.id LIMIT 1",
        (COMMUNE,),
    )
    fid, name = await cur.fetchone()
    _sql(
        tmp_path / GPKG,
        "UPDATE facilities SET kind = CASE kind WHEN 'school' THEN 'clinic' ELSE 'school' END "
        f"WHERE id = {fid}",
    )
    report = await _sync(conn, settings, tmp_path / GPKG, tmp_path, dry_run=True)
    [change] = report.layers["facilities"].changed
    assert (change.id, change.code, change.name) == (fid, None, name)
    assert f"  {fid} ({name}): " in "\n".join(summary(report, "es"))


async def test_a_parcel_with_land_records_is_not_deleted_by_a_sync(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: deleting a parcel in the package and syncing with delete_missing
    deleted its rights (a granted collective use) with it, the report saying "deleted". It
    is refused beside the package's other refusals, in one run (it came up only once they
    were mended), and says where the parcel's records are listed (it said '{id}')."""
    await _package(conn, settings, tmp_path)
    cur = await conn.execute(
        "SELECT p.id FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = %s AND EXISTS (SELECT FROM rights r WHERE r.parcel_id = p.id) "
        "ORDER BY p.id LIMIT 1",
        (COMMUNE,),
    )
    (held,) = await cur.fetchone()
    _ogr_sql(tmp_path / GPKG, f"DELETE FROM parcels WHERE id = {held}")
    (other,) = await _parcels(conn, 1)
    _set_tenure(tmp_path / GPKG, other, "robada")
    before = await _count(conn, "rights")
    with pytest.raises(GeoComunaError) as refused:
        await _sync(conn, settings, tmp_path / GPKG, tmp_path, delete_missing=True)
    assert [(d["feature"], str(d["reason"]).split(":")[0]) for d in refused.value.details] == [
        (other, "property 'tenure'"),
        (held, "it holds land records (rights or documents), which are not deleted with it"),
    ], refused.value.details
    assert (
        f"GET /collections/parcels/items/{held}/records lists" in refused.value.details[1]["reason"]
    )
    assert await _row(conn, held) is not None and await _count(conn, "rights") == before


async def test_a_new_row_without_a_code_on_a_stored_parcel_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a new row of the package without a code, on a stored parcel's
    exact shape, was added (a second parcel on the same land), which an import of the same
    feature refused. A sync refuses it as an import does, naming the stored parcel."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    parcel = (await _parcels(conn, 1))[0]
    _sql(
        gpkg,
        "INSERT INTO parcels (commune, tenure, geom) SELECT commune, 'occupied', geom "
        f"FROM parcels WHERE id = {parcel}",
    )
    before = await _count(conn)
    with pytest.raises(Conflict) as refused:
        await _sync(conn, settings, gpkg, tmp_path)
    assert f"lies on the ground of parcels feature {parcel}" in str(refused.value)
    assert await _count(conn) == before


async def test_a_key_column_named_as_sql_is_refused_not_run(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: the sync read the date columns with a statement that named the
    file's key column as the file named it, so a package whose parcels' key was called
    'fid", (WITH RECURSIVE ...) --' ran that query (one that never ends held a CPU for
    good). A key column that is not a plain name is refused, naming the layer."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    # bounded here, so that a regression fails instead of hanging the suite
    count = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)"
    hostile = f'fid", ({count} SELECT max(x) FROM c) --'
    with sqlite3.connect(gpkg) as db:
        db.execute(
            f'ALTER TABLE parcels RENAME COLUMN fid TO "{hostile.replace(chr(34), chr(34) * 2)}"'
        )
    db.close()
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    assert refused.value.layer == "parcels" and "key column" in refused.value.reason


async def test_dates_are_read_by_fid_where_the_fid_is_not_the_rowid(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a package whose parcels' key is no alias of SQLite's rowid ("fid
    INTEGER PRIMARY KEY DESC", rows written in the other order) is read by GDAL in rowid
    order, and its dates were taken in fid order: an unedited package gave ~100 parcels
    another's date. Each date is now its own feature's."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    with sqlite3.connect(gpkg) as db:
        schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'parcels'").fetchone()[0]
        db.execute("ALTER TABLE parcels RENAME TO parcels_before")
        db.execute(re.sub(r'"?fid"? INTEGER PRIMARY KEY[^,]*', '"fid" INTEGER PRIMARY KEY DESC '
                          "NOT NULL", schema, count=1))  # fmt: skip
        db.execute("INSERT INTO parcels SELECT * FROM parcels_before ORDER BY fid DESC")
        db.execute("DROP TABLE parcels_before")
        dated = db.execute("SELECT count(DISTINCT recovered_on) FROM parcels").fetchone()[0]
    db.close()
    assert dated > 5  # the parcels' dates differ, so that one taken for another shows
    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    assert not report.layers["parcels"], report.layers["parcels"]


def test_a_label_as_the_maps_write_it_names_its_code() -> None:
    """The maps call abandoned parcels 'Abandonada (recuperable)' (styles.json), and a
    refusal lists labels as 'Ocupada (occupied)'; typed back into QField they were refused.
    The label decides; what the brackets say must not name another value."""
    tenure = LAYERS["parcels"].attribute("tenure").domain
    assert tenure.code("Abandonada (recuperable)") == "abandoned"
    assert tenure.code("abandoned (Recoverable) ") == "abandoned"
    assert tenure.code("Ocupada (occupied)") == "occupied"
    assert tenure.code("Ocupada (abandoned)") is None
    assert tenure.code("Robada (occupied)") is None and tenure.code("(occupied)") is None


async def test_labels_are_stored_as_codes_and_the_same_file_again_is_no_conflict(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Coded values picked as their labels (Ocupada, Cultivos) are stored as codes; syncing
    the same file again is no conflict (it was: package 'Ocupada', server 'occupied')."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    (a,) = await _parcels(conn, 1)
    tenure = (await _row(conn, a))[0]
    label = ("En disputa", "disputed") if tenure == "occupied" else ("Ocupada", "occupied")
    _ogr_sql(
        gpkg, f"UPDATE parcels SET tenure = '{label[0]}', land_use = 'Cultivos' WHERE id = {a}"
    )
    first = await _sync(conn, settings, gpkg, tmp_path)
    assert first.layers["parcels"].changed and not first.layers["parcels"].conflicts
    assert (await _row(conn, a))[:2] == (label[1], "crops")
    again = await _sync(conn, settings, gpkg, tmp_path)
    diff = again.layers["parcels"]
    assert (diff.changed, diff.conflicts, again.written) == ([], [], 0)


async def test_the_zip_itself_syncs(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    zipped = await _package(conn, settings, tmp_path)
    a = (await _parcels(conn, 1))[0]
    _set_tenure(tmp_path / GPKG, a, "disputed")
    # a second comuna.gpkg: which one is meant?
    with zipfile.ZipFile(zipped, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr(GPKG, (tmp_path / GPKG).read_bytes())
    with pytest.raises(InvalidFile, match="holds two files named"):
        await _sync(conn, settings, zipped, tmp_path)
    upper = tmp_path / "upper.zip"  # COMUNA.GPKG beside comuna.gpkg: the same, to a reader
    with zipfile.ZipFile(upper, "w") as zf:
        zf.write(tmp_path / GPKG, GPKG)
        zf.write(tmp_path / GPKG, GPKG.upper())
    with pytest.raises(InvalidFile, match="holds two files named"):
        await _sync(conn, settings, upper, tmp_path)
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(edited, "w") as zf:  # the edited GeoPackage zipped again
        zf.write(tmp_path / GPKG, GPKG)
    report = await _sync(conn, settings, edited, tmp_path)
    assert report.written == 1 and (await _row(conn, a))[0] == "disputed"
    assert report.file == "edited.zip"


async def test_an_unchanged_package_changes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    zipped = await _package(conn, settings, tmp_path)
    cur = await conn.execute("SELECT count(*) FROM audit_log")
    audited = (await cur.fetchone())[0]
    rows = {p: await _row(conn, p) for p in await _parcels(conn, 1000)}
    for path in (zipped, tmp_path / GPKG):
        report = await _sync(conn, settings, path, tmp_path, delete_missing=True)
        assert report.written == 0 and not any(report.layers.values())
    assert {p: await _row(conn, p) for p in rows} == rows
    cur = await conn.execute("SELECT count(*) FROM audit_log")
    assert (await cur.fetchone())[0] == audited


async def test_a_dry_run_writes_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b, c, _, _ = await _four_edits(conn, gpkg, tmp_path)
    rows = {p: await _row(conn, p) for p in await _parcels(conn, 1000)}
    total = await _count(conn)
    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True, delete_missing=True)
    diff = report.layers["parcels"]
    assert {ch.id for ch in diff.changed} == {a, b} and diff.deleted == [c]
    assert len(diff.added) == 1 and report.written == 0 and diff.created == {}
    assert {p: await _row(conn, p) for p in rows} == rows
    assert await _count(conn) == total


def _cross_itself(gpkg: Path, parcel: int, tmp_path: Path) -> None:
    """Swap two vertices of ``parcel``'s ring, so that it crosses itself (a bow tie)."""
    out = tmp_path / f"bowtie-{parcel}.geojson"
    _ogr2ogr(
        "-f", "GeoJSON", "-preserve_fid", str(out), str(gpkg), "parcels", "-where", f"id = {parcel}"
    )  # fmt: skip
    doc = json.loads(out.read_text())
    ring = doc["features"][0]["geometry"]["coordinates"][0][0]
    ring[1], ring[2] = ring[2], ring[1]
    out.write_text(json.dumps(doc))
    _ogr2ogr("-update", "-upsert", "-preserve_fid", "-nln", "parcels", str(gpkg), str(out))


async def test_a_dry_run_refuses_what_the_sync_would_and_repair_is_taken(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A dry run made no write, so it passed a parcel that crosses itself, which the sync
    then refused with advice (?repair=true, --repair) the sync did not take. The dry run now
    makes the writes and undoes them; repair makes the parcel valid and says so."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    (a,) = await _parcels(conn, 1)
    before = await _row(conn, a)
    _cross_itself(gpkg, a, tmp_path)
    for dry_run in (True, False):
        with pytest.raises(InvalidGeometry) as refused:
            await _sync(conn, settings, gpkg, tmp_path, dry_run=dry_run)
        assert refused.value.feature == a and "repair" in refused.value.reason
    checked = await _sync(conn, settings, gpkg, tmp_path, dry_run=True, repair=True)
    assert checked.written == 0 and [r["feature"] for r in checked.repairs] == [a]
    assert await _row(conn, a) == before
    done = await _sync(conn, settings, gpkg, tmp_path, repair=True)
    assert done.written == 1 and [(r["layer"], r["feature"]) for r in done.repairs] == [
        ("parcels", a)
    ]
    cur = await conn.execute("SELECT ST_IsValid(geom) FROM parcels WHERE id = %s", (a,))
    assert (await cur.fetchone())[0] is True
    assert (await _row(conn, a))[2] != before[2]


async def test_a_geometry_cleared_in_the_package_is_refused_not_dropped(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A parcel whose geometry was emptied in the package was skipped without a word (written
    0, nothing reported). It is refused, naming it and saying how to remove a feature."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b = await _parcels(conn, 2)
    before = {p: await _row(conn, p) for p in (a, b)}
    _set_tenure(gpkg, a, "disputed" if before[a][0] != "disputed" else "occupied")
    _ogr_sql(gpkg, f"UPDATE parcels SET geom = NULL WHERE id = {b}")
    for dry_run in (True, False):
        with pytest.raises(InvalidGeometry) as refused:
            await _sync(conn, settings, gpkg, tmp_path, dry_run=dry_run)
        assert refused.value.layer == "parcels" and refused.value.feature == b
        assert "--delete-missing" in refused.value.reason
    assert {p: await _row(conn, p) for p in (a, b)} == before


# --- conflicts ----------------------------------------------------------------------------


async def _concurrent(conn: AsyncConnection, settings: Settings, parcel: int, use: str) -> None:
    body = json.dumps({"properties": {"land_use": use}}).encode()
    await edit.patch(conn, PARCELS, parcel, body, settings, local_admin())


USES = ["crops", "pasture", "forest", "idle", "housing", "mixed"]


def _other(*avoid: str | None) -> str:
    return next(use for use in USES if use not in avoid)


@pytest.mark.parametrize("resolve", [None, "theirs", "ours"])
async def test_a_concurrent_edit_is_a_conflict_only_where_both_changed(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, resolve: str | None
) -> None:
    """Three ways, from the package's base: a field only the server changed since the package
    was made stands, a field only the package changed is written, and only a field both
    changed is a conflict. Without the base, another team's edits on parcels this team never
    touched were conflicts, and 'ours' put their old values back."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b, c = await _parcels(conn, 3)
    (tenure_a, use_a), (tenure_b, use_b), (_, use_c) = [
        (await _row(conn, p))[:2] for p in (a, b, c)
    ]
    # a: both change its land use, the package its tenure too; b: the package changes its
    # tenure, the server its land use; c: only the server changes it
    tenure = {
        p: "disputed" if t != "disputed" else "occupied" for p, t in ((a, tenure_a), (b, tenure_b))
    }
    ours_a, theirs_a = _other(use_a), _other(use_a, _other(use_a))
    _ogr_sql(
        gpkg, f"UPDATE parcels SET tenure = '{tenure[a]}', land_use = '{ours_a}' WHERE id = {a}"
    )
    _set_tenure(gpkg, b, tenure[b])
    server = {a: theirs_a, b: _other(use_b), c: _other(use_c)}
    for parcel, use in server.items():
        await _concurrent(conn, settings, parcel, use)
    stored_c = await _row(conn, c)

    report = await _sync(conn, settings, gpkg, tmp_path, resolve=resolve)

    diff = report.layers["parcels"]
    assert [(ch.id, set(ch.fields)) for ch in diff.changed] == [(b, {"tenure"})]
    [conflict] = diff.conflicts
    assert conflict.id == a and conflict.also == ["tenure"]
    assert conflict.fields == {"land_use": {"package": ours_a, "server": theirs_a}}
    assert conflict.resolved == resolve and report.unresolved == (resolve is None)
    assert (await _row(conn, b))[:2] == (tenure[b], server[b])  # both edits kept
    assert await _row(conn, c) == stored_c  # the server's edit stands, untouched
    now_a = (await _row(conn, a))[:2]
    if resolve == "ours":
        assert now_a == (tenure[a], ours_a) and report.written == 2
    elif resolve == "theirs":  # the server's land use; the package's tenure, which it alone changed
        assert now_a == (tenure[a], theirs_a) and report.written == 2
    else:  # left unwritten, the package's tenure too: the feature is settled as a whole
        assert now_a == (tenure_a, theirs_a) and report.written == 1

    lines = "\n".join(summary(report, "es"))
    uses = LAYERS["parcels"].attribute("land_use").domain.values
    assert f"  conflicto {a} (" in lines and ": cambiada en el paquete y en el servidor" in lines
    use = LAYERS["parcels"].attribute("land_use").title.es
    assert f"{use}: paquete '{uses[ours_a].es}' / servidor '{uses[theirs_a].es}'" in lines
    assert "solo en el paquete, se guarda al resolver: Tenencia" in lines


@pytest.mark.parametrize("resolve", [None, "theirs", "ours"])
async def test_deleting_a_feature_the_server_changed_since_is_a_conflict(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, resolve: str | None
) -> None:
    """Found from outside: --delete-missing deleted a parcel another team had changed on
    the server after the package was made, and said nothing. Deleted in the field and
    changed on the server is a conflict, as changed in the field and deleted on the server
    is: 'ours' deletes it, 'theirs' and no choice keep it with its change. A feature the
    server left alone is deleted as before."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b = await _parcels(conn, 2)
    use = _other((await _row(conn, a))[1])
    await _concurrent(conn, settings, a, use)
    for parcel in (a, b):
        _ogr_sql(gpkg, f"DELETE FROM parcels WHERE id = {parcel}")
    before = await _count(conn)

    report = await _sync(conn, settings, gpkg, tmp_path, delete_missing=True, resolve=resolve)

    diff = report.layers["parcels"]
    [conflict] = diff.conflicts
    assert conflict.id == a and conflict.deleted_in_package and conflict.resolved == resolve
    assert diff.deleted == ([a, b] if resolve == "ours" else [b])
    assert report.unresolved == (resolve is None)
    assert await _row(conn, b) is None
    if resolve == "ours":
        assert await _row(conn, a) is None and await _count(conn) == before - 2
    else:
        assert (await _row(conn, a))[1] == use and await _count(conn) == before - 1
    lines = "\n".join(summary(report, "es"))
    assert f"conflicto {a} (" in lines and "borrada en el paquete, cambiada en el servidor" in lines
    english = "\n".join(summary(report, "en"))
    assert "deleted in the package, changed on the server since the package was made" in english
    # 'ours' deleted it, which the line says (found from outside: "the package's values
    # written")
    if resolve == "ours":
        assert "(resuelto: se borró, como en el paquete)" in lines
        assert "(settled: deleted, as in the package)" in english
    elif resolve == "theirs":
        assert "(settled: the server's values kept)" in english
    # without --delete-missing nothing is deleted, and a feature kept is no conflict
    again = (await _sync(conn, settings, gpkg, tmp_path, dry_run=True)).layers["parcels"]
    assert again.conflicts == [] and again.deleted == []
    assert again.missing == ([] if resolve == "ours" else [a])


async def test_a_feature_changed_in_the_field_and_deleted_on_the_server_is_named_by_its_code(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Changed in the field and deleted on the server is a conflict; found from outside, it
    was said 'conflicto 40' alone: the server's row is gone, and the code is the file's."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    (parcel,) = await _parcels(conn, 1)
    cur = await conn.execute("SELECT code FROM parcels WHERE id = %s", (parcel,))
    (code,) = await cur.fetchone()
    _set_tenure(
        gpkg, parcel, "disputed" if (await _row(conn, parcel))[0] != "disputed" else "occupied"
    )
    await edit.remove(conn, PARCELS, parcel, local_admin())
    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    [conflict] = report.layers["parcels"].conflicts
    assert (conflict.id, conflict.server_version, conflict.code) == (parcel, None, code)
    lines = "\n".join(summary(report, "es"))
    assert f"conflicto {parcel} ({code}): borrada en el servidor" in lines, lines


@pytest.mark.parametrize("layer", ["parcels", "dwellings"])
async def test_a_feature_added_again_by_ours_is_that_feature_at_the_next_sync(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, layer: str
) -> None:
    """Changed in the field, deleted on the server, written back by 'ours': found from
    outside, each later sync of the same package with 'ours' added it once more (three
    identical homes after three syncs), or refused the whole package (a parcel's code was
    taken). It is now recorded as what its row became, as a new row is: the next sync
    finds nothing to write, and a later edit of the row updates it."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    table = LAYERS[layer].table
    cur = await conn.execute(
        f"SELECT t.id FROM {table} t JOIN communes c ON c.id = t.commune_id "  # noqa: S608
        "WHERE c.code = %s ORDER BY t.id LIMIT 1",
        (COMMUNE,),
    )
    (gone,) = await cur.fetchone()
    edit_of = {
        "parcels": ("tenure", "'disputed'", "'occupied'"),
        "dwellings": ("residents", "coalesce(residents, 0) + 40", "coalesce(residents, 0) + 1"),
    }
    column, first, second = edit_of[layer]
    _ogr_sql(gpkg, f"UPDATE {layer} SET {column} = {first} WHERE id = {gone}")
    await edit.remove(conn, LAYERS[layer], gone, local_admin())
    before = await _count(conn, table)

    report = await _sync(conn, settings, gpkg, tmp_path, resolve="ours")
    assert report.written == 1 and await _count(conn, table) == before + 1
    again = await _sync(conn, settings, gpkg, tmp_path, resolve="ours")
    assert again.written == 0 and await _count(conn, table) == before + 1
    assert again.layers[layer].conflicts == [] and again.layers[layer].added == []

    # a later edit of the row: the copy that added it again cannot be told from another
    # (copies share the package's id), so it is compared three ways with the row's base, and
    # an edit of what that sync wrote is a conflict, written with 'ours'
    _ogr_sql(gpkg, f"UPDATE {layer} SET {column} = {second} WHERE id = {gone}")
    later = await _sync(conn, settings, gpkg, tmp_path, resolve="ours")
    assert later.written == 1 and await _count(conn, table) == before + 1
    [conflict] = later.layers[layer].conflicts
    assert set(conflict.fields) == {column} and conflict.id != gone  # the feature 'ours' made


async def test_an_unedited_copy_leaves_another_copys_feature_as_it_is(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside, three copies of one package: team A deleted a parcel, team B
    changed it and wrote it back with 'ours' (a new feature), and team D's copy, which nobody
    had touched, then put back the parcel's old values over B's, with no conflict."""
    await _package(conn, settings, tmp_path)
    teams = dict(zip("abd", _copies(tmp_path, "abd"), strict=True))
    parcel = (await _parcels(conn, 1))[0]
    land_use = (await _row(conn, parcel))[1]
    changed = "crops" if land_use != "crops" else "pasture"
    _ogr_sql(teams["a"] / GPKG, f"DELETE FROM parcels WHERE id = {parcel}")
    await _sync(conn, settings, teams["a"] / GPKG, teams["a"], delete_missing=True)
    _ogr_sql(teams["b"] / GPKG, f"UPDATE parcels SET land_use = '{changed}' WHERE id = {parcel}")
    await _sync(conn, settings, teams["b"] / GPKG, teams["b"], resolve="ours")
    cur = await conn.execute(
        "SELECT id FROM parcels WHERE land_use = %s AND id > %s", (changed, parcel)
    )
    again = max(r[0] for r in await cur.fetchall())
    report = await _sync(conn, settings, teams["d"] / GPKG, teams["d"])
    assert report.written == 0 and report.layers["parcels"].changed == [], report.layers
    assert (await _row(conn, again))[1] == changed
    # team B's own copy, synced again: nothing to write either
    mine = await _sync(conn, settings, teams["b"] / GPKG, teams["b"], resolve="ours")
    assert mine.written == 0
    # found from outside: a third copy that changed the same field was taken for the row
    # team B's sync wrote, and overwrote B's value with no conflict; it is one now, and
    # B's value stands until it is settled
    third = "forest" if changed != "forest" and land_use != "forest" else "idle"
    teams["i"] = tmp_path / "i"
    teams["i"].mkdir()
    shutil.copy(teams["d"] / GPKG, teams["i"] / GPKG)
    _ogr_sql(teams["i"] / GPKG, f"UPDATE parcels SET land_use = '{third}' WHERE id = {parcel}")
    report = await _sync(conn, settings, teams["i"] / GPKG, teams["i"])
    [conflict] = report.layers["parcels"].conflicts
    assert conflict.id == again and conflict.fields == {
        "land_use": {"package": third, "server": changed}
    }, conflict
    assert report.written == 0 and (await _row(conn, again))[1] == changed
    assert report.layers["parcels"].synced == []  # not "a new row stored already"


async def test_a_package_sent_without_the_log_qgis_keeps_says_to_close_the_project(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: QGIS keeps an open GeoPackage in write-ahead-log mode, its last
    edits in comuna.gpkg-wal; the .gpkg sent alone from the sync page was read without them
    and the sync said nothing of it. QGIS leaves that mode set after closing too, with every
    edit in the file, so the two cannot be told apart: the summary says to close the project
    and send it again. Read where it lies, its -wal beside it, the edit is there."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a = (await _parcels(conn, 1))[0]
    tenure = "disputed" if (await _row(conn, a))[0] != "disputed" else "occupied"
    qgis = sqlite3.connect(gpkg)  # as QGIS holds it while the project is open
    # GDAL's spatial index triggers, fired by any update: the tenure's leaves the shape, the
    # index is not read by the sync
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        qgis.create_function(name, 1, lambda _: 0)
    try:
        qgis.execute("PRAGMA journal_mode = WAL")
        qgis.execute("UPDATE parcels SET tenure = ? WHERE id = ?", (tenure, a))
        qgis.commit()
        assert gpkg.with_name(f"{GPKG}-wal").stat().st_size > 0
        sent = tmp_path / "sent"
        sent.mkdir()
        shutil.copy(gpkg, sent / GPKG)  # the .gpkg alone, as a browser sends it
        report = await _sync(conn, settings, sent / GPKG, tmp_path, dry_run=True)
        assert report.log_left_behind and report.layers["parcels"].changed == []
        lines = summary(report, "es")
        assert lines[0].startswith("Nada que cambiar") and "cierre el proyecto" in lines[1]
        assert "close the project" in summary(report, "en")[1]
        here = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
        assert not here.log_left_behind
        assert [c.id for c in here.layers["parcels"].changed] == [a]
        assert not any("gpkg-wal" in line for line in summary(here, "es"))
        # found from outside: sent in a zip beside the GeoPackage, the log was left out of it
        # and its edits lost; it is written into the GeoPackage before anything reads it
        zipped = tmp_path / "with-log.zip"
        with zipfile.ZipFile(zipped, "w") as zf:
            zf.write(gpkg, GPKG)
            zf.write(gpkg.with_name(f"{GPKG}-wal"), f"{GPKG}-wal")
        both = await _sync(conn, settings, zipped, tmp_path, dry_run=True)
        assert not both.log_left_behind
        assert [c.id for c in both.layers["parcels"].changed] == [a]
        assert gpkg.with_name(f"{GPKG}-wal").stat().st_size > 0  # the team's files untouched
        # its name in another case is that log too; a log none of which can be read is
        # refused, not passed over (found from outside: both were, the edits lost)
        for log, says in ((gpkg.with_name(f"{GPKG}-wal").read_bytes(), None),
                          (bytes(range(256)) * 20, "could not be written into it")):  # fmt: skip
            with zipfile.ZipFile(zipped, "w") as zf:
                zf.write(gpkg, GPKG)
                zf.writestr(f"{GPKG}-wal".upper(), log)
            if says is None:
                found = await _sync(conn, settings, zipped, tmp_path, dry_run=True)
                assert [c.id for c in found.layers["parcels"].changed] == [a]
            else:
                with pytest.raises(InvalidFile) as refused:
                    await _sync(conn, settings, zipped, tmp_path, dry_run=True)
                assert says in refused.value.reason
    finally:
        qgis.close()


async def test_a_geometry_nested_deep_is_refused_naming_its_feature(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a parcel nested 100,000 collections deep crashed the child that
    reads the package, and the sync said only that the reading stopped. It is refused before
    GEOS reads it, naming the layer and the feature (here 1,100 deep: a crash it is not)."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    nested = b"\x01\x07\x00\x00\x00\x01\x00\x00\x00" * 1100
    blob = b"GP\x00\x01" + struct.pack("<i", 4326) + nested + b"\x01\x01\x00\x00\x00" + bytes(16)
    with sqlite3.connect(gpkg) as db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{trigger}"')
        (fid,) = db.execute("SELECT min(fid) FROM parcels").fetchone()
        db.execute("UPDATE parcels SET geom = ? WHERE fid = ?", (blob, fid))
    db.close()
    with pytest.raises(InvalidGeometry) as refused:
        await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    assert (refused.value.layer, refused.value.feature) == ("parcels", fid)
    assert "nests collections more than 32 deep" in refused.value.reason


async def test_a_package_cut_short_is_said_to_be(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: the first 50,000 bytes of a GeoPackage were said to hold a schema
    that runs SQL."""
    await _package(conn, settings, tmp_path)
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes((tmp_path / GPKG).read_bytes()[:50_000])
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, cut, tmp_path, dry_run=True)
    assert "cut.gpkg is cut short: it holds 50,000 of the" in str(refused.value)
    assert "está cortado" in refused.value.said("es")


async def test_a_shape_moved_on_the_server_only_stands(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """The geometry of a feature the team left alone, moved on the server since: the
    package's copy digests as its base did (PostGIS' WKB when made, GDAL's when read back),
    so the server's shape stands and nothing is a conflict; the same shape moved in the
    package as well is one."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b = await _parcels(conn, 2)
    for parcel in (a, b):  # moved on the server: ~10 m east, as a PATCH of the geometry
        wkb = (await _row(conn, parcel))[2]
        moved = shapely.affinity.translate(shapely.from_wkb(wkb), xoff=0.0001)
        body = json.dumps({"geometry": json.loads(shapely.to_geojson(moved))}).encode()
        await edit.patch(conn, PARCELS, parcel, body, settings, local_admin())
    _move_vertex(gpkg, b, tmp_path)  # and b in the field too
    stored = await _row(conn, a)

    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)

    diff = report.layers["parcels"]
    assert diff.changed == [] and [c.id for c in diff.conflicts] == [b]
    assert diff.conflicts[0].fields == {"geometry": {"package": "moved", "server": "moved"}}
    assert await _row(conn, a) == stored


async def test_an_id_the_package_never_held_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """An id typed over in QGIS was taken for a feature deleted on the server since: a
    conflict, which 'ours' settled by adding the feature again."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a = (await _parcels(conn, 1))[0]
    _ogr_sql(gpkg, f"UPDATE parcels SET id = 99999 WHERE id = {a}")
    before = await _count(conn)
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, gpkg, tmp_path, resolve="ours")
    assert refused.value.feature == 99999 and refused.value.layer == "parcels"
    assert "no tenía la entidad 99999" in refused.value.said("es")
    assert await _count(conn) == before


async def test_a_package_without_bases_keeps_its_two_way_conflicts(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A package made before bases were kept (no geo_comuna_base table) still syncs: a feature
    changed on both sides is a conflict on every field where the two differ."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    _ogr_sql(gpkg, "DROP TABLE geo_comuna_base")
    a = (await _parcels(conn, 1))[0]
    tenure, use = (await _row(conn, a))[:2]
    _set_tenure(gpkg, a, "disputed" if tenure != "disputed" else "occupied")
    await _concurrent(conn, settings, a, _other(use))
    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    [conflict] = report.layers["parcels"].conflicts
    assert set(conflict.fields) == {"tenure", "land_use"} and conflict.also == []


@pytest.mark.parametrize("damaged", ["not json", "[1,2]", "[" * 100_000 + "]" * 100_000])
async def test_a_damaged_base_is_refused_naming_it(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, damaged: str
) -> None:
    """Found from outside: a feature's base edited to text that is no JSON object was a 500
    once the server had changed the feature (only then is its base read)."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a = (await _parcels(conn, 1))[0]
    tenure, use = (await _row(conn, a))[:2]
    _set_tenure(gpkg, a, "disputed" if tenure != "disputed" else "occupied")
    with sqlite3.connect(gpkg) as db:
        db.execute(
            "UPDATE geo_comuna_base SET properties = ? WHERE layer = 'parcels' AND feature = ?",
            (damaged, a),
        )
    db.close()
    await _concurrent(conn, settings, a, _other(use))
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    assert (refused.value.layer, refused.value.feature) == ("parcels", a)
    assert "geo_comuna_base row of this feature is damaged" in refused.value.reason


# --- refusals -----------------------------------------------------------------------------


async def test_a_bad_feature_refuses_the_whole_sync(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b = await _parcels(conn, 2)
    rows = {p: await _row(conn, p) for p in (a, b)}
    _set_tenure(gpkg, a, "disputed" if rows[a][0] != "disputed" else "occupied")
    _set_tenure(gpkg, b, "stolen")
    with pytest.raises(InvalidAttribute) as refused:
        await _sync(conn, settings, gpkg, tmp_path)
    assert refused.value.layer == "parcels" and refused.value.feature == b
    assert "tenure" in refused.value.reason
    assert {p: await _row(conn, p) for p in (a, b)} == rows


async def test_every_refusal_of_a_sync_is_named_at_once(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, own_db: str
) -> None:
    """A field team fixed its package one refusal per run: the sync stopped at the first.
    It now tries every feature, each in a savepoint, and refuses them all at once, naming
    each (layer, feature, reason); still nothing is written, and the good edit waits."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b, c, d = await _parcels(conn, 4)
    rows = {p: await _row(conn, p) for p in (a, b, c, d)}
    _set_tenure(gpkg, a, "disputed" if rows[a][0] != "disputed" else "occupied")  # good
    _set_tenure(gpkg, b, "stolen")
    _ogr_sql(gpkg, f"UPDATE parcels SET recovered_on = 'ayer' WHERE id = {c}")
    _set_tenure(gpkg, d, "robada")
    with pytest.raises(InvalidAttribute) as refused:
        await _sync(conn, settings, gpkg, tmp_path, dry_run=True)
    details = refused.value.details
    assert [(x["layer"], x["feature"]) for x in details] == [
        ("parcels", b),
        ("parcels", c),
        ("parcels", d),
    ]
    assert "tenure" in details[0]["reason"] and "recovered_on" in details[1]["reason"]
    assert "and 2 more features refused" in refused.value.message
    assert {p: await _row(conn, p) for p in (a, b, c, d)} == rows
    # the command line lists them, in its language
    run = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        ["sync", COMMUNE, str(gpkg), "--dry-run", "--lang", "es"],
        env={"GEO_COMUNA_DATABASE_URL": own_db},
    )
    assert run.exit_code != 0
    assert "y 2 entidades más rechazadas" in run.stderr, run.stderr
    for parcel in (b, c, d):
        assert f"  - capa parcels, entidad {parcel}: " in run.stderr


@pytest.mark.parametrize("written", ["31/02/2020", "2020-02-31", "ayer", "0000-01-01"])
async def test_a_date_that_is_no_date_is_refused_not_stored(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, written: str
) -> None:
    """A date as a field worker may type it in QGIS' or QField's text box. GDAL read
    31/02/2020 and 'ayer' as 1970-01-01 and 2020-02-31 as 2020-03-02, and the sync stored
    them. The package's text is checked as an API write's date is: refused, naming the
    feature, nothing written; a real date still comes back. (Year 0000, which GDAL reads
    and Python cannot hold, was a 500: found from outside.)"""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a, b = await _parcels(conn, 2)
    before = {p: await _row(conn, p) for p in (a, b)}
    _ogr_sql(gpkg, f"UPDATE parcels SET recovered_on = '2019-07-01' WHERE id = {a}")
    _ogr_sql(gpkg, f"UPDATE parcels SET recovered_on = '{written}' WHERE id = {b}")
    with pytest.raises(InvalidAttribute) as refused:
        await _sync(conn, settings, gpkg, tmp_path)
    assert refused.value.layer == "parcels" and refused.value.feature == b
    assert "recovered_on" in refused.value.reason and written in refused.value.reason
    # a day that does not exist, written as asked, is not told to be written as asked
    calendar = "no day of the calendar" in refused.value.reason
    assert calendar == (written in ("2020-02-31", "0000-01-01")), refused.value.reason
    assert {p: await _row(conn, p) for p in (a, b)} == before

    _ogr_sql(gpkg, f"UPDATE parcels SET recovered_on = NULL WHERE id = {b}")
    await _sync(conn, settings, gpkg, tmp_path)
    cur = await conn.execute("SELECT recovered_on::text FROM parcels WHERE id = %s", (a,))
    assert (await cur.fetchone())[0] == "2019-07-01"


async def test_a_package_of_another_commune_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    await _package(conn, settings, tmp_path)
    cur = await conn.execute("SELECT id, code FROM communes WHERE code <> %s LIMIT 1", (COMMUNE,))
    other_id, other = await cur.fetchone()
    package = read_package(tmp_path / GPKG, settings)
    with pytest.raises(InvalidFile) as refused:
        await sync(conn, other_id, package, settings, local_admin())
    assert COMMUNE in refused.value.reason and other in refused.value.reason


async def test_a_package_of_a_newer_schema_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    _ogr_sql(gpkg, f"UPDATE {INFO_TABLE} SET value = '9999' WHERE key = 'schema_version'")
    with pytest.raises(InvalidFile) as refused:
        await _sync(conn, settings, gpkg, tmp_path)
    assert "newer" in refused.value.reason and "9999" in refused.value.reason


async def test_not_a_package_is_refused(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    await _package(conn, settings, tmp_path)
    plain = tmp_path / "plain.gpkg"
    _ogr2ogr("-f", "GPKG", str(plain), str(tmp_path / GPKG), "parcels")
    with pytest.raises(InvalidFile, match="not a commune package"):
        await _sync(conn, settings, plain, tmp_path)
    fake = tmp_path / "fake.gpkg"
    fake.write_bytes(b"not a database at all" * 10)
    with pytest.raises(InvalidFile, match="not a GeoPackage"):
        await _sync(conn, settings, fake, tmp_path)


# --- over HTTP ----------------------------------------------------------------------------


async def test_the_route_syncs_for_an_editor_of_the_commune(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    zipped = await _package(conn, settings, tmp_path)
    a = (await _parcels(conn, 1))[0]
    _set_tenure(
        tmp_path / GPKG, a, "disputed" if (await _row(conn, a))[0] != "disputed" else "occupied"
    )
    upload = {"file": ("comuna.gpkg", (tmp_path / GPKG).read_bytes())}
    _, editor = await accounts.add_user(conn, "maizal-editor", "editor", [COMMUNE])
    _, viewer = await accounts.add_user(conn, "maizal-viewer", "viewer", [COMMUNE])
    cur = await conn.execute("SELECT code FROM communes WHERE code <> %s LIMIT 1", (COMMUNE,))
    _, stranger = await accounts.add_user(conn, "far-editor", "editor", [(await cur.fetchone())[0]])
    path = f"/communes/{COMMUNE}/sync"
    async with api_client(conn, settings, viewer) as client:
        r = await client.post(path, files=upload)
        assert r.status_code == 403, r.text
    async with api_client(conn, settings, stranger) as client:
        r = await client.post(path, files=upload)
        assert r.status_code == 403, r.text
        assert f"may not edit commune {COMMUNE}" in r.json()["detail"]  # as asked, not an id
        r = await client.post(path, files=upload, headers={"Accept": "text/html"})
        assert f"no puede editar la comuna {COMMUNE}" in r.text
    async with api_client(conn, settings) as client:
        r = await client.post(path, files=upload)
        assert r.status_code == 401, r.text
    before = await _row(conn, a)
    async with api_client(conn, settings, editor) as client:
        r = await client.post(path, files=upload, params={"dry_run": "true"})
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()["layers"]["parcels"]["changed"]] == [a]
        assert await _row(conn, a) == before
        r = await client.post(path, files=upload)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["written"] == 1 and body["file"] == "comuna.gpkg"
        assert body["layers"]["parcels"]["changed"][0]["fields"]["tenure"][1] == before[0]
        r = await client.post(path, files=upload)  # again: nothing left to write
        assert r.status_code == 200 and r.json()["written"] == 0
        r = await client.post(path, files={"file": ("comuna.zip", zipped.read_bytes())})
        # the original package: the server changed since, the package did not (its base
        # says so): no conflict, nothing written back over the server's tenure
        assert r.status_code == 200, r.text
        assert r.json()["layers"]["parcels"]["conflicts"] == [] and r.json()["written"] == 0
        r = await client.post(path, files={"file": ("x.gpkg", b"")})
        assert r.status_code == 422, r.text


async def test_the_route_speaks_to_the_page_that_sends_a_package_back(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """The page (GET /communes/{c}/sync) posts as any client and shows what comes back:
    with ``lang`` the diff carries its summary in that language; refused, a browser's error
    page lists every refused feature in the page's language."""
    await _package(conn, settings, tmp_path)
    a, b, gone = await _parcels(conn, 3)
    tenure = (await _row(conn, a))[0]
    now = "disputed" if tenure != "disputed" else "occupied"
    _set_tenure(tmp_path / GPKG, a, now)
    _, editor = await accounts.add_user(conn, "maizal-editor", "editor", [COMMUNE])
    path = f"/communes/{COMMUNE}/sync"
    labels = LAYERS["parcels"].attribute("tenure").domain.values
    async with api_client(conn, settings, editor) as client:
        page = await client.get(path, params={"lang": "en"})
        assert page.status_code == 200 and "Send the field package back" in page.text
        assert "<title>Send the field package back · El Maizal · geo_comuna</title>" in page.text
        assert f'"{path}"' in page.text or f'{path}"' in page.text  # where it posts
        assert (await client.get("/communes/NO-SUCH/sync")).status_code == 404

        upload = {"file": ("comuna.gpkg", (tmp_path / GPKG).read_bytes())}
        r = await client.post(path, files=upload, params={"dry_run": "true", "lang": "es"})
        assert r.status_code == 200, r.text
        summary = r.json()["summary"]
        assert f"  {a} (" in "\n".join(summary) and labels[now].es in "\n".join(summary)
        assert summary[-1] == "Simulación: no se guardó nada."
        r = await client.post(path, files=upload, params={"dry_run": "true"})
        assert "summary" not in r.json()  # a program's answer stays the diff alone
        # what to do next: as the page labels it for the page's own request, as the query's
        # parameters for curl (found from outside: a curl user read 'marque «Borrar...»')
        _ogr_sql(tmp_path / GPKG, f"DELETE FROM parcels WHERE id = {gone}")
        missing = {"file": ("comuna.gpkg", (tmp_path / GPKG).read_bytes())}
        asked = {"dry_run": "true", "lang": "es"}
        r = await client.post(path, files=missing, params=asked)
        assert "(no borrada; envíe delete_missing=true)" in "\n".join(r.json()["summary"])
        for browser in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"}):
            r = await client.post(path, files=missing, params=asked, headers=browser)
            said = "\n".join(r.json()["summary"])
            assert "(no borrada; marque «Borrar las entidades" in said, browser
        r = await client.post(
            path, files=missing, params=asked, headers={"Origin": "http://elsewhere.example"}
        )
        assert "envíe delete_missing=true" in "\n".join(r.json()["summary"])

        for fid in (a, b):
            _set_tenure(tmp_path / GPKG, fid, "inventada")
        upload = {"file": ("comuna.gpkg", (tmp_path / GPKG).read_bytes())}
        r = await client.post(
            path, files=upload, params={"lang": "es"}, headers={"Accept": "text/html"}
        )
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        items = re.findall(r"<li>(.*?)</li>", r.text)
        assert [i.split(":")[0] for i in items] == [f"capa parcels, entidad {f}" for f in (a, b)]
        assert all("no es ninguno de" in i and "Ocupada" in i for i in items), items
        assert "y 1 entidad más rechazada" in r.text
        # a program that asks for Spanish gets the problem's reasons in Spanish
        r = await client.post(path, files=upload, params={"lang": "es"})
        assert r.status_code == 422 and r.headers["content-language"] == "es"
        assert "no es ninguno de" in r.json()["detail"]
        assert all("no es ninguno de" in d["reason"] for d in r.json()["details"])
        r = await client.post(path, files=upload)  # and in English unless it asks
        assert "is not one of" in r.json()["detail"] and "content-language" not in r.headers
        # an English page lists the English labels a value may take
        r = await client.post(
            path, files=upload, params={"lang": "en"}, headers={"Accept": "text/html"}
        )
        assert r.status_code == 422 and "Occupied" in r.text and "Ocupada" not in r.text
    assert (await _row(conn, a))[0] == tenure  # nothing written


async def test_the_check_of_rights_comes_first(conn: AsyncConnection, settings: Settings) -> None:
    """A viewer is refused before the file is even looked at."""
    commune_id = await require_commune(conn, COMMUNE)
    user = accounts.User(None, "v", "viewer", (commune_id,))
    with pytest.raises(Forbidden):
        await sync_file(conn, commune_id, Path("/nonexistent.gpkg"), Path("/"), settings, user)


# --- the command line ---------------------------------------------------------------------


def test_cli_sync(own_db: str, tmp_path: Path) -> None:
    # a Spanish locale: the summary's default language
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": own_db, "LANG": "es_VE.UTF-8", "LC_ALL": ""}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "geo_comuna.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    out = tmp_path / "maizal.zip"
    done = cli("package", COMMUNE, "--out", str(out))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as zf:
        zf.extract(GPKG, tmp_path)
    gpkg = tmp_path / GPKG
    with psycopg.connect(own_db) as db:
        a, tenure, code = db.execute(
            "SELECT p.id, p.tenure, p.code FROM parcels p JOIN communes c "
            "ON c.id = p.commune_id WHERE c.code = %s ORDER BY p.id LIMIT 1",
            (COMMUNE,),
        ).fetchone()
    new_tenure = "disputed" if tenure != "disputed" else "occupied"
    _set_tenure(gpkg, a, new_tenure)

    dry = cli("sync", COMMUNE, str(gpkg), "--dry-run", "--lang", "en")
    assert dry.returncode == 0, dry.stderr
    # which parcel (its code too) and the value before and after: it said "30: tenure"
    # as the package's drop-downs say them (found from outside: 'Abandoned' there, and
    # 'Abandoned (recoverable)' in the form)
    domain = LAYERS["parcels"].attribute("tenure").domain
    label = functools.partial(Styles.load().value_label, domain, lang="en")
    was, now = label(tenure), label(new_tenure)
    assert f"  {a} ({code}): Tenure: {was} → {now}" in dry.stdout, dry.stdout
    assert "Dry run: nothing was written." in dry.stdout
    assert "Parcels (parcels): 1 changed\n" in dry.stdout, dry.stdout
    done = cli("sync", COMMUNE, str(gpkg))
    assert done.returncode == 0, done.stderr
    assert "1 entidad guardada (auditoría: «sync comuna.gpkg»)" in done.stdout
    again = cli("sync", COMMUNE, str(gpkg), "--lang", "en")
    assert again.returncode == 0 and "Nothing to change" in again.stdout, again.stdout
    assert "the states are context: never synced" in again.stdout  # not "the package matches"
    env["LANG"] = "en_US.UTF-8"  # an English locale, no --lang: English
    assert "Nothing to change" in cli("sync", COMMUNE, str(gpkg)).stdout
    env["LANG"] = "es_VE.UTF-8"

    # the first package again, as it came: the server changed since, the package did not
    assert "Nothing to change" in cli("sync", COMMUNE, str(out), "--lang", "en").stdout
    # another team's copy of it, whose tenure of the same parcel is a third one: a conflict
    other = tmp_path / "other"
    with zipfile.ZipFile(out) as zf:
        zf.extract(GPKG, other)
    third = next(
        t for t in ("regularizing", "occupied", "abandoned") if t not in (tenure, new_tenure)
    )
    _set_tenure(other / GPKG, a, third)
    conflict = cli("sync", COMMUNE, str(other / GPKG), "--lang", "en")
    assert conflict.returncode == 3, conflict.stderr
    assert f"conflict {a} ({code}): changed in the package and on the server" in conflict.stdout
    assert "1 conflict left unwritten" in conflict.stdout  # one conflict, not "1 conflicts"
    ours, theirs = label(third), label(new_tenure)
    assert f"Tenure: package {ours!r} / server {theirs!r}" in conflict.stdout
    kept = cli("sync", COMMUNE, str(other / GPKG), "--theirs")
    assert kept.returncode == 0, kept.stderr
    with psycopg.connect(own_db) as db:
        assert db.execute("SELECT tenure FROM parcels WHERE id = %s", (a,)).fetchone() == (
            new_tenure,
        )
    both = cli("sync", COMMUNE, str(other / GPKG), "--theirs", "--ours")
    assert both.returncode == 2 and "se excluyen" in both.stderr  # the locale is Spanish


async def test_the_route_takes_uploads_up_to_their_own_limit(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A package is an upload (GEO_COMUNA_MAX_UPLOAD_BYTES), not a request body."""
    await _package(conn, settings, tmp_path)
    body = (tmp_path / GPKG).read_bytes()
    _, editor = await accounts.add_user(conn, "maizal-editor", "editor", [COMMUNE])
    roomy = settings.model_copy(update={"max_body_bytes": 1024, "max_upload_bytes": len(body) * 2})
    async with api_client(conn, roomy, editor) as client:
        r = await client.post(f"/communes/{COMMUNE}/sync", files={"file": (GPKG, body)})
        assert r.status_code == 200, r.text
    tight = settings.model_copy(update={"max_upload_bytes": 2048})
    async with api_client(conn, tight, editor) as client:
        r = await client.post(f"/communes/{COMMUNE}/sync", files={"file": (GPKG, body)})
        assert r.status_code == 413, r.text


async def test_a_parcel_a_unit_names_is_said_by_its_code(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A production unit moved to another parcel in the field: the summary said 'Parcela:
    12 → 15', ids only the database knows; each parcel is now said with its code."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    unit, was = await (
        await conn.execute(
            "SELECT u.id, u.parcel_id FROM production_units u JOIN communes c "
            "ON c.id = u.commune_id WHERE c.code = %s AND u.parcel_id IS NOT NULL "
            "ORDER BY u.id LIMIT 1",
            (COMMUNE,),
        )
    ).fetchone()
    now = next(p for p in await _parcels(conn, 3) if p != was)
    _ogr_sql(gpkg, f"UPDATE production_units SET parcel = {now} WHERE id = {unit}")
    codes = dict(
        await (
            await conn.execute("SELECT id, code FROM parcels WHERE id IN (%s, %s)", (was, now))
        ).fetchall()
    )

    report = await _sync(conn, settings, gpkg, tmp_path, dry_run=True)

    [change] = report.layers["production_units"].changed
    assert change.id == unit and change.fields == {"parcel": [now, was]}
    assert report.codes == {"parcels": codes}
    from geo_comuna.maps.sync_summary import summary

    line = f"{was} ({codes[was]}) → {now} ({codes[now]})"
    assert any(line in shown for shown in summary(report, "en")), summary(report, "en")


def test_the_summary_says_fields_and_values_as_people_read_them() -> None:
    """A conflict on a production unit's parcel printed 'parcel: paquete 125 / servidor
    None'; a change printed '31: recovered_on'. Fields by their titles, codes by their
    labels, an empty value said so, each change with the value before and after."""
    from geo_comuna.maps.sync import Change, Conflict, LayerDiff, SyncReport
    from geo_comuna.maps.sync_summary import summary

    report = SyncReport("EL-MAIZAL", "comuna.gpkg", True, False, None)
    report.layers["production_units"] = LayerDiff(
        conflicts=[
            Conflict(36, 10, 12, {"parcel": {"package": 125, "server": None}}, None),
            Conflict(37, 10, 12, {"parcel": {"package": 125, "server": 7}}, None),
        ]
    )
    report.codes = {"parcels": {125: "EM-P125"}}  # 7's is unknown: its id alone
    report.layers["parcels"] = LayerDiff(
        changed=[
            Change(31, {"recovered_on": ["2020-02-01", None]}, "EM-P002"),
            Change(32, {"tenure": ["occupied", "regularized"], "geometry": [True, True]}),
        ]
    )
    lines = "\n".join(summary(report, "es"))
    units = LAYERS["production_units"]
    parcel = next(r for r in units.references if r.name == "parcel").title.es
    assert f"    {parcel}: paquete 125 (EM-P125) / servidor (vacío)" in lines, lines
    assert f"    {parcel}: paquete 125 (EM-P125) / servidor 7" in lines, lines
    recovered = LAYERS["parcels"].attribute("recovered_on").title.es
    assert f"  31 (EM-P002): {recovered}: (vacío) → 2020-02-01" in lines, lines
    tenure = LAYERS["parcels"].attribute("tenure").domain
    said = functools.partial(Styles.load().value_label, tenure, lang="es")
    assert f"  32: Tenencia: {said('regularized')} → {said('occupied')}; " in lines
    assert "Geometría: movida" in lines and "None" not in lines
    # found from outside: a form's box said 'True → False'
    report.layers["paths"] = LayerDiff(changed=[Change(37, {"vehicles": [False, True]})])
    assert "  37: Acceso vehicular: sí → no" in "\n".join(summary(report, "es"))
    assert "  37: Vehicle access: yes → no" in "\n".join(summary(report, "en"))
    del report.layers["paths"]

    # a repair: the area's change where it means something, as the language writes numbers
    bowtie = shapely.from_wkt("POLYGON((0 0,2 2,2 0,0 2,0 0))")
    reason = shapely.is_valid_reason(bowtie)
    assert validate._area_change(bowtie, shapely.make_valid(bowtie), reason) is None
    report.repairs = [
        {
            "layer": "parcels",
            "feature": 31,
            "reason": "Nested shells[1 1]",
            "area_change_pct": -35.3,
        },
        {"layer": "parcels", "feature": 32, "reason": reason, "area_change_pct": None},
    ]
    lines = "\n".join(summary(report, "es"))
    assert "  reparada Parcelas (parcels) 31: Nested shells[1 1] (área -35,3 %)" in lines, lines
    assert f"  reparada Parcelas (parcels) 32: {reason}\n" in lines, lines
    # a new feature's row is said in the summary's language (it read "reparada parcels row 9")
    report.repairs = [
        {
            "layer": "parcels",
            "feature": Said("row 9", "fila 9"),
            "reason": reason,
            "area_change_pct": None,
        }
    ]
    assert "  reparada Parcelas (parcels) fila 9: " in "\n".join(summary(report, "es"))
    report.repairs = []

    # what to do next, as the command line offers it and as the page does
    report.unresolved, report.layers["parcels"].missing = 2, [40]
    cli, page = summary(report, "es"), summary(report, "es", "page")
    assert "2 conflictos sin guardar: --theirs conserva lo del servidor" in cli[-2], cli
    assert "elija «conservar lo del servidor» o «guardar lo del paquete»" in page[-2], page
    assert "(no borrada; use --delete-missing)" in "\n".join(cli)
    assert "(no borrada; marque «Borrar las entidades que" in "\n".join(page)


async def test_a_layer_over_the_limit_is_refused_without_being_read_whole(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A package's layer was read whole, then counted: a view repeating El Maizal's parcels
    40,000 times took a worker past 10 GB before its 503. At most one row past the limit is
    read now."""
    await _package(conn, settings, tmp_path)
    held = len(pyogrio.read_dataframe(tmp_path / GPKG, layer="parcels", read_geometry=False))
    small = settings.model_copy(update={"max_features_per_import": held - 1})
    with pytest.raises(TooLarge, match=f"more than {held - 1:,} features"):
        read_package(tmp_path / GPKG, small)
    assert read_package(tmp_path / GPKG, settings).layers["parcels"]


async def test_a_package_bringing_more_than_the_commune_and_one_write_is_refused_early(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A zipped package of 8 MB held El Maizal's 97 parcels 18,000 times (574 MB unpacked):
    read up to the import's 2,000,000 features, it took a worker past 3.4 GB. A layer may
    bring what the commune holds and what one write may add: one row past that is read."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    await _add_parcel(conn, gpkg, tmp_path)  # one new parcel: within one write of 1
    one = settings.model_copy(update={"max_features_per_write": 1})
    report = await _sync(conn, one, gpkg, tmp_path, dry_run=True)
    assert len(report.layers["parcels"].added) == 1
    _ogr_sql(gpkg, "UPDATE parcels SET code = 'MZ-FIELD-0' WHERE code = 'MZ-FIELD-1'")
    await _add_parcel(conn, gpkg, tmp_path)  # a second: over it
    cur = await conn.execute(
        "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id WHERE c.code = %s",
        (COMMUNE,),
    )
    (held,) = await cur.fetchone()
    with pytest.raises(TooLarge, match=f"more than {held + 1:,} features"):
        await _sync(conn, one, gpkg, tmp_path, dry_run=True)


async def test_a_zipped_package_that_is_no_geopackage_is_refused_before_it_is_written_out(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a 611 KB zip whose comuna.gpkg was 600 MB of zeros was written out
    whole before it was refused, and the refusal named the server's copy (sync.gpkg). Its
    first bytes are checked first, and the refusal names the file the team sent."""
    bomb = tmp_path / "campo.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(GPKG, "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(1 << 20))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    commune_id = await require_commune(conn, COMMUNE)
    with pytest.raises(InvalidFile) as refused:
        await sync_file(conn, commune_id, bomb, scratch, settings, local_admin(), dry_run=True)
    assert f"{GPKG} is not a GeoPackage (no SQLite header)" in str(refused.value)
    written = sum(f.stat().st_size for f in scratch.rglob("*") if f.is_file())
    assert written <= 100  # the first bytes, not 64 MB


def test_a_shape_is_the_same_as_the_database_says_it_is() -> None:
    """Found from outside: after a round trip through PSAD56, a vertex 1e-8 degrees east and
    5e-9 north (1.1e-8 across) was listed as a move, and the write, which compares each axis
    (geo_comuna_same_shape) and keeps the stored shape, moved nothing. Both compare each
    axis now, whatever the start or direction of the ring."""
    from geo_comuna.maps.sync import COORD_TOLERANCE, same_geometry

    square = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    for dx, dy, same in ((1e-8, 5e-9, True), (1.5e-8, 0.0, False), (0.0, 1e-8, True)):
        moved = shapely.Polygon([(0, 0), (1, 0), (1 + dx, 1 + dy), (0, 1)])
        assert same_geometry(square, moved) is same, (dx, dy)
        assert same_geometry(square, moved.reverse()) is same, (dx, dy)  # another direction
    assert COORD_TOLERANCE == 1e-8
    assert not same_geometry(square, shapely.Polygon([(0, 0), (1, 0), (1, 1)]))


async def test_a_package_saved_again_as_polygons_is_the_same_shapes(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: parcels saved again as Polygon (ogr2ogr -nlt POLYGON, a Shapefile
    round trip) were each listed as moved, none written (the database keeps them as
    MultiPolygon), and a parcel the server had moved since became a conflict, which 'ours'
    would have moved back. The same shape of either type is no change."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    copy = tmp_path / "copy.gpkg"
    shutil.copy(gpkg, copy)
    _ogr2ogr("-update", "-overwrite", "-nlt", "POLYGON", str(gpkg), str(copy), "parcels")
    types = pyogrio.read_info(gpkg, layer="parcels")["geometry_type"]
    assert types == "Polygon", types
    a = (await _parcels(conn, 1))[0]
    wkb = (await _row(conn, a))[2]
    moved = shapely.affinity.translate(shapely.from_wkb(wkb), xoff=0.0001)
    body = json.dumps({"geometry": json.loads(shapely.to_geojson(moved))}).encode()
    await edit.patch(conn, PARCELS, a, body, settings, local_admin())
    stored = await _row(conn, a)

    report = await _sync(conn, settings, gpkg, tmp_path, resolve="ours")

    assert report.written == 0 and not any(report.layers.values()), report.layers
    assert await _row(conn, a) == stored  # the server's move stands


async def test_a_code_with_blanks_around_it_is_the_same_code(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: 'EM-P007 ' in the package was stored beside 'EM-P007' and listed
    as a change of code. A write takes a code without its blanks; the sync compares it so."""
    await _package(conn, settings, tmp_path)
    gpkg = tmp_path / GPKG
    a = (await _parcels(conn, 1))[0]
    cur = await conn.execute("SELECT code FROM parcels WHERE id = %s", (a,))
    code = (await cur.fetchone())[0]
    _ogr_sql(gpkg, f"UPDATE parcels SET code = ' {code}  ' WHERE id = {a}")
    report = await _sync(conn, settings, gpkg, tmp_path)
    assert report.written == 0 and not any(report.layers.values()), report.layers
    cur = await conn.execute("SELECT code FROM parcels WHERE id = %s", (a,))
    assert (await cur.fetchone())[0] == code
