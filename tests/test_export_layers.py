"""Exports that add up: a commune's layers go into one GeoPackage, a second export adds a
layer instead of replacing the file, a layer it holds is replaced only when asked, and a
Shapefile refuses field names it would cut to the same one."""

from __future__ import annotations

import asyncio
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pyogrio
import pytest
from psycopg import AsyncConnection, sql

from geo_comuna.accounts import EVERYWHERE
from geo_comuna.errors import InvalidFile, InvalidInput
from geo_comuna.features.query import commune_sql, resolve_commune
from geo_comuna.io import exporter
from geo_comuna.io.exporter import _dbf_names, export_layer
from geo_comuna.io.formats import FORMATS
from geo_comuna.layers import LAYERS
from tests.test_io_errors import _cli

pytestmark = pytest.mark.anyio
GPKG = FORMATS["gpkg"]


def held(path: Path) -> dict[str, int]:
    """Layer -> features of a GeoPackage, as GDAL reads it."""
    return {
        str(name): pyogrio.read_info(path, layer=str(name))["features"]
        for name, _ in pyogrio.list_layers(path)
    }


async def export(conn: AsyncConnection, name: str, path: Path, **kw: object) -> int:
    maizal = await resolve_commune(conn, "EL-MAIZAL")
    report = await export_layer(
        conn, LAYERS[name], path, GPKG, commune_id=maizal, access=EVERYWHERE, **kw
    )
    return report.features


async def test_a_second_layer_is_added_and_a_held_one_replaced_only_when_asked(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    path = tmp_path / "el_maizal.gpkg"
    parcels = await export(conn, "parcels", path)
    dwellings = await export(conn, "dwellings", path)
    assert parcels and dwellings
    assert held(path) == {"parcels": parcels, "dwellings": dwellings}

    before = path.read_bytes()
    with pytest.raises(InvalidInput, match="already holds the layer 'parcels'.*--overwrite-layer"):
        await export(conn, "parcels", path)
    assert path.read_bytes() == before  # nothing partly written

    await conn.execute(
        "DELETE FROM parcels WHERE id = (SELECT min(id) FROM parcels WHERE commune_id = %s)",
        (await resolve_commune(conn, "EL-MAIZAL"),),
    )
    assert await export(conn, "parcels", path, overwrite_layer=True) == parcels - 1
    assert held(path) == {"parcels": parcels - 1, "dwellings": dwellings}


async def test_a_file_that_is_not_a_geopackage_is_not_overwritten(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    path = tmp_path / "notes.gpkg"
    path.write_text("a planner's notes, misnamed")
    with pytest.raises(InvalidFile, match="notes.gpkg"):
        await export(conn, "parcels", path)
    assert path.read_text() == "a planner's notes, misnamed"


def test_shapefile_names_that_would_cut_to_one_are_refused() -> None:
    assert _dbf_names(["code", "recovered_on"]) == {"recovered_on": "recovered_"}
    with pytest.raises(InvalidInput, match="'volume_per_month' and 'volume_per_year'"):
        _dbf_names(["volume_per_month", "volume_per_year"])
    with pytest.raises(InvalidInput, match="'Tenure' and 'tenure'"):
        _dbf_names(["Tenure", "tenure"])  # dBASE and the importer ignore case


def test_no_layer_has_names_a_shapefile_cannot_hold() -> None:
    """Every layer exports as a Shapefile: the registry's names stay apart at 10 characters."""
    from geo_comuna.io.exporter import column_types

    for layer in LAYERS.values():
        _dbf_names([*column_types(layer), "geometry"])


def test_cli_exports_every_layer_of_a_commune_into_one_geopackage(
    own_db: str, tmp_path: Path
) -> None:
    path = tmp_path / "maizal.gpkg"
    done = _cli(own_db, "export", "all", str(path), "--commune", "EL-MAIZAL")
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert [r["layer"] for r in reports] == list(LAYERS)
    assert "(1/" in done.stderr  # progress, layer by layer
    with psycopg.connect(own_db) as db:
        maizal = db.execute("SELECT id FROM communes WHERE code = 'EL-MAIZAL'").fetchone()[0]
        expected = {
            layer.name: db.execute(
                sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
                    sql.Identifier(layer.table), commune_sql(layer, sql.Literal(maizal))
                )
            ).fetchone()[0]
            for layer in LAYERS.values()
        }
    assert held(path) == expected
    assert expected["parcels"] > 0 and expected["states"] == 2

    again = _cli(own_db, "export", "parcels", str(path), "--commune", "EL-MAIZAL")
    assert again.returncode != 0 and "already holds the layer 'parcels'" in again.stderr
    assert held(path) == expected
    many = _cli(own_db, "export", "parcels,dwellings", str(tmp_path / "two.geojson"))
    assert many.returncode != 0 and "one GeoPackage (.gpkg) or a directory" in many.stderr

    # every layer into a file holding one of them: refused before any layer is written (it
    # added states and communes, then stopped at parcels), the file as it was
    one = tmp_path / "one.gpkg"
    assert _cli(own_db, "export", "parcels", str(one), "--commune", "EL-MAIZAL").returncode == 0
    before = one.read_bytes()
    refused = _cli(own_db, "export", "all", str(one), "--commune", "EL-MAIZAL")
    assert refused.returncode == 2 and "already holds the layer 'parcels'" in refused.stderr
    assert one.read_bytes() == before and held(one) == {"parcels": expected["parcels"]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("suffix", "crs"), [("csv", "EPSG:4326"), ("zip", "EPSG:32619")])
async def test_a_layer_read_in_pieces_is_the_layer_read_whole(
    conn: AsyncConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    crs: str,
) -> None:
    """An export reads PIECE rows at a time, each piece reprojected on its own: pieces of 7
    rows (El Maizal's parcels in dozens, the last part full) write the same file as one piece,
    CSV cells and Shapefile parts alike, in lon/lat and in UTM."""
    maizal = await resolve_commune(conn, "EL-MAIZAL")
    fmt = FORMATS["csv" if suffix == "csv" else "shp"]
    files = {}
    for piece in (1_000_000, 7):
        monkeypatch.setattr(exporter, "PIECE", piece)
        path = tmp_path / f"{piece}.{suffix}"
        report = await export_layer(
            conn, LAYERS["parcels"], path, fmt, crs=crs, commune_id=maizal, access=EVERYWHERE
        )
        assert report.features % 7, "a last piece part full is the case to see"
        if suffix == "zip":
            with zipfile.ZipFile(path) as zf:
                files[piece] = {name: zf.read(name) for name in zf.namelist()}
        else:
            files[piece] = {path.name: path.read_bytes()}
    whole, pieces = files.values()
    assert list(whole.values()) == list(pieces.values())


async def test_heavy_rows_are_read_in_smaller_pieces(
    conn: AsyncConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A piece ends with the fetch that brings it to PIECE_BYTES of geometry. With a bound of
    one byte, the first fetch (FIRST_FETCH rows) is one piece, and every fetch after it asks
    for the one row its bytes per row say would fill a piece: one piece per parcel. The file
    is the one written from one piece."""
    made: list[int] = []
    piece = exporter._piece

    def counted(schema, rows, fmt, crs):  # noqa: ANN001, ANN202
        made.append(len(rows))
        return piece(schema, rows, fmt, crs)

    async def csv(path: Path) -> int:
        maizal = await resolve_commune(conn, "EL-MAIZAL")
        report = await export_layer(
            conn, LAYERS["parcels"], path, FORMATS["csv"], commune_id=maizal, access=EVERYWHERE
        )
        return report.features

    features = await csv(tmp_path / "whole.csv")
    monkeypatch.setattr(exporter, "_piece", counted)
    monkeypatch.setattr(exporter, "PIECE_BYTES", 1)
    assert await csv(tmp_path / "cut.csv") == features > exporter.FIRST_FETCH
    assert made == [exporter.FIRST_FETCH] + [1] * (features - exporter.FIRST_FETCH)
    assert (tmp_path / "cut.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


async def test_a_read_that_fails_midway_leaves_no_file_and_stops_the_writer(
    conn: AsyncConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows go to GDAL as they are read. When the reading fails after GDAL has written
    some (here the third piece of 7 rows), its error is the one raised, the writer thread
    stops, and neither the file nor the scratch directory is left; so too when the export is
    cancelled midway (a client gone). The connection is left as it was, out of the read's
    transaction."""
    piece, made = exporter._piece, []

    def failing(schema, rows, fmt, crs):  # noqa: ANN001, ANN202
        made.append(len(rows))
        if len(made) == 3:
            raise InvalidInput("the third piece cannot be made")
        return piece(schema, rows, fmt, crs)

    status = conn.info.transaction_status
    monkeypatch.setattr(exporter, "_piece", failing)
    monkeypatch.setattr(exporter, "PIECE", 7)
    path = tmp_path / "el_maizal.gpkg"
    with pytest.raises(InvalidInput, match="the third piece"):
        await export(conn, "parcels", path)
    assert len(made) == 3
    assert list(tmp_path.iterdir()) == []
    assert conn.info.transaction_status == status
    assert await (await conn.execute("SELECT 1")).fetchone() == (1,)

    second = asyncio.Event()

    def slow(schema, rows, fmt, crs):  # noqa: ANN001, ANN202
        made.append(len(rows))
        if len(made) == 5:  # the second piece of this export
            second.set()
            time.sleep(0.2)
        return piece(schema, rows, fmt, crs)

    monkeypatch.setattr(exporter, "_piece", slow)
    task = asyncio.ensure_future(export(conn, "parcels", path))
    await asyncio.wait_for(second.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert list(tmp_path.iterdir()) == []
    assert conn.info.transaction_status == status
    assert await (await conn.execute("SELECT 1")).fetchone() == (1,)


async def test_more_exports_at_once_than_the_pool_has_threads_all_finish(
    own_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each export's GDAL writer waits for pieces made on the event loop's thread pool. On
    that pool, seven packages at once held its six threads waiting for pieces none could
    make, and the server hung until restarted. Here three exports at once on a pool of two
    threads: each finishes, with every parcel."""
    loop = asyncio.get_running_loop()
    small = ThreadPoolExecutor(max_workers=2)
    monkeypatch.setattr(loop, "_default_executor", small)
    monkeypatch.setattr(exporter, "PIECE", 7)
    conns = [await psycopg.AsyncConnection.connect(own_db, autocommit=True) for _ in range(3)]
    try:
        maizal = await resolve_commune(conns[0], "EL-MAIZAL")

        async def one(conn: AsyncConnection, n: int) -> int:
            report = await export_layer(
                conn, LAYERS["parcels"], tmp_path / f"{n}.csv", FORMATS["csv"],
                commune_id=maizal, access=EVERYWHERE,
            )  # fmt: skip
            return report.features

        done = await asyncio.wait_for(asyncio.gather(*(one(c, n) for n, c in enumerate(conns))), 60)
        cur = await conns[0].execute(
            "SELECT count(*) FROM parcels WHERE commune_id = %s", (maizal,)
        )
        assert done == [(await cur.fetchone())[0]] * 3
    finally:
        for c in conns:
            await c.close()
        small.shutdown(wait=False)


def test_a_format_and_a_suffix_that_disagree_are_refused(own_db: str, tmp_path: Path) -> None:
    """Found from outside: --format shp wrote its zip to p.shp, which GDAL and QGIS cannot
    open. A suffix that names no file of the format asked is refused, saying what to name
    it; .json for GeoJSON and a suffix that agrees are fine."""
    shp = tmp_path / "p.shp"
    done = _cli(own_db, "--lang", "en", "export", "parcels", str(shp), "--format", "shp")
    assert done.returncode != 0 and "name it 'p.zip'" in done.stderr, done.stderr
    assert not shp.exists()
    fine = _cli(own_db, "export", "parcels", str(tmp_path / "p.json"), "--format", "geojson")
    assert fine.returncode == 0, fine.stderr
