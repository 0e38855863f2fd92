"""The bulk import path (io/importer.py, io/pgcopy.py, io/bulk.py): features validated and sent in
pieces (a COPY statement each), the secondary indexes rebuilt after a bulk load, PostgreSQL's
per-row key checks replaced by one check and lock per referenced row, and WKB sent as it was
read. Each is checked against what PostgreSQL then holds."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import socket
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pyarrow as pa
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna.errors import InvalidAttribute, InvalidGeometry, UnknownCRS
from geo_comuna.features import attributes, validate
from geo_comuna.features.geojson import properties_table
from geo_comuna.io import bulk, importer, pgcopy, pieces
from geo_comuna.io.formats import get_format
from geo_comuna.io.importer import import_file
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.settings import Settings
from tests.factories import LAT, LON
from tests.live import add_user, serving
from tests.test_durability import parcels_file
from tests.test_io_errors import geojson, parcels

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]


async def scalar(conn: AsyncConnection, query: str, params: tuple = ()) -> object:
    return (await (await conn.execute(query, params)).fetchone())[0]


async def test_pieces_are_one_import_all_or_nothing(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pieces, "CHUNK", 4)  # 10 features: pieces of 4, 4 and 2
    before = await scalar(conn, "SELECT count(*) FROM parcels")
    bad = geojson(parcels(10, bowtie_at=9), tmp_path / "bad.geojson")
    with pytest.raises(InvalidGeometry) as raised:
        await import_file(conn, PARCELS, bad, settings)
    assert raised.value.feature == 9  # its position in the file, not in its piece
    assert await scalar(conn, "SELECT count(*) FROM parcels") == before  # pieces 1-2 undone

    report = await import_file(
        conn, PARCELS, geojson(parcels(10), tmp_path / "good.geojson"), settings
    )
    assert report.features == 10
    cur = await conn.execute(
        "SELECT notes FROM parcels WHERE notes LIKE 'row %%' ORDER BY id DESC LIMIT 10"
    )
    assert sorted(r[0] for r in await cur.fetchall()) == sorted(f"row {i}" for i in range(1, 11))


async def index_oids(conn: AsyncConnection) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT c.relname, i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'parcels'::regclass AND i.indisvalid"
    )
    return dict(await cur.fetchall())


async def index_definitions(conn: AsyncConnection) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'parcels'"
    )
    return dict(await cur.fetchall())


async def test_bulk_load_rebuilds_the_secondary_indexes(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "BULK_ROWS", 5)
    await conn.execute("DELETE FROM production_units")
    await conn.execute("DELETE FROM documents")  # a parcel keeps its land records (0032)
    await conn.execute("DELETE FROM rights")
    await conn.execute("DELETE FROM parcels")  # rolled back with the test
    definitions = await index_definitions(conn)
    first = await index_oids(conn)
    secondary = {"parcels_geom_idx", "parcels_commune_idx"}  # GiST, and a btree with repeats
    assert secondary < set(first) and "parcels_pkey" in first

    # a bad feature: the DROP INDEX is rolled back with everything else
    with pytest.raises(InvalidGeometry):
        await import_file(
            conn, PARCELS, geojson(parcels(8, bowtie_at=8), tmp_path / "b.geojson"), settings
        )
    assert await index_oids(conn) == first

    # 8 features into an empty table: built again afterwards, same definitions, and used; the
    # primary key (referenced by production_units) is never dropped
    await import_file(conn, PARCELS, geojson(parcels(8), tmp_path / "p.geojson"), settings)
    rebuilt = await index_oids(conn)
    assert set(rebuilt) == set(first)
    assert all(rebuilt[name] != first[name] for name in secondary)
    assert rebuilt["parcels_pkey"] == first["parcels_pkey"]
    assert await index_definitions(conn) == definitions
    await conn.execute("SET LOCAL enable_seqscan = off")
    bbox = (LON - 0.0001, LAT - 0.0001, LON + 0.0161, LAT + 0.0011)
    query = "SELECT count(*) FROM parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
    cur = await conn.execute("EXPLAIN " + query, bbox)
    assert "parcels_geom_idx" in "\n".join(r[0] for r in await cur.fetchall())
    assert await scalar(conn, query, bbox) == 8
    maizal = await scalar(conn, "SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    by_commune = "SELECT count(*) FROM parcels WHERE commune_id = %s"
    cur = await conn.execute("EXPLAIN " + by_commune, (maizal,))
    assert "parcels_commune_idx" in "\n".join(r[0] for r in await cur.fetchall())
    assert await scalar(conn, by_commune, (maizal,)) == 8

    # 6 more into a table holding 8: the indexes are kept and grow
    # (the first 6 of the 8 again, without codes: copies, but for allow_copies)
    q = geojson(parcels(6), tmp_path / "q.geojson")
    await import_file(conn, PARCELS, q, settings, allow_copies=True)
    assert await index_oids(conn) == rebuilt
    assert await scalar(conn, query, bbox) == 14

    # found from outside: an upload to the running service, or a dry run, into an emptied
    # table dropped the indexes too, and every reader of parcels waited for the import
    await conn.execute("DELETE FROM parcels")
    for options in ({"isolated": True}, {"dry_run": True}):
        path = geojson(parcels(8), tmp_path / "u.geojson")
        # the second, the same codeless squares as the first: copies but for allow_copies
        await import_file(conn, PARCELS, path, settings, allow_copies=True, **options)
        assert await index_oids(conn) == rebuilt, options


async def test_each_piece_is_a_statement_that_the_audit_and_history_record(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import reads and COPYs piece by piece, one statement each (so each piece's triggers
    run while the next piece is read and checked): 7 features in pieces of 3, 3 and 1 are three
    audit entries and three first-tenure rows, naming every id once, all in the import's one
    transaction."""
    monkeypatch.setattr(pieces, "CHUNK", 3)
    audit_before = await scalar(conn, "SELECT coalesce(max(id), 0) FROM audit_log")
    history_before = await scalar(conn, "SELECT coalesce(max(id), 0) FROM parcel_history")
    await import_file(conn, PARCELS, geojson(parcels(7), tmp_path / "p.geojson"), settings)
    cur = await conn.execute("SELECT id FROM parcels WHERE notes LIKE 'row _' ORDER BY id")
    ids = [r[0] for r in await cur.fetchall()]
    assert len(ids) == 7
    cur = await conn.execute(
        "SELECT features, feature_ids::text, xmin::text FROM audit_log "
        "WHERE id > %s AND layer = 'parcels' ORDER BY id",
        (audit_before,),
    )
    entries = await cur.fetchall()
    cut = [ids[0:3], ids[3:6], ids[6:7]]
    assert [(n, ranges) for n, ranges, _ in entries] == [
        (len(p), f"{{[{p[0]},{p[-1] + 1})}}") for p in cut
    ]
    assert len({xid for _, _, xid in entries}) == 1  # one transaction
    cur = await conn.execute(
        "SELECT to_status, parcels, parcel_ids::text FROM parcel_history "
        "WHERE id > %s AND from_status IS NULL ORDER BY id",
        (history_before,),
    )
    assert await cur.fetchall() == [("occupied", len(p), f"{{[{p[0]},{p[-1] + 1})}}") for p in cut]


async def test_key_checks_are_skipped_only_when_provably_redundant(conn: AsyncConnection) -> None:
    maizal = await scalar(conn, "SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    refs = {"commune_id": [maizal, maizal, None]}
    # the test database user is a superuser and every trigger fires ALWAYS (migration 0010)
    assert await bulk._may_skip_key_checks(conn, PARCELS)
    locked: dict[str, set[int]] = {}
    assert await bulk._lock_references(conn, PARCELS, refs, locked)
    assert locked == {"commune_id": {maizal}}  # each piece locks only what is new
    # a referenced commune gone since it was resolved: PostgreSQL's own checks must run
    assert not await bulk._lock_references(conn, PARCELS, {"commune_id": [2**31 - 1]}, locked)
    # a trigger that replica mode would silence: no skipping
    await conn.execute("ALTER TABLE parcels ENABLE TRIGGER parcels_first_tenure")
    assert not await bulk._may_skip_key_checks(conn, PARCELS)


async def test_import_locks_what_it_references_and_leaves_replica_mode(
    own_db: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "BULK_ROWS", 1)
    path = geojson(parcels(3), tmp_path / "p.geojson")
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        async with conn.transaction():
            await import_file(conn, PARCELS, path, settings)
            assert await scalar(conn, "SHOW session_replication_role") == "origin"
            # until this commits, nobody may delete the commune the parcels point at
            with psycopg.connect(own_db, autocommit=True) as other:
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute("SELECT FROM communes WHERE code = 'EL-MAIZAL' FOR UPDATE NOWAIT")
        # committed: the foreign key still guards them from the other side
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            await conn.execute("DELETE FROM communes WHERE code = 'EL-MAIZAL'")
        assert await scalar(conn, "SELECT count(*) FROM parcels WHERE notes LIKE 'row _'") == 3
        # audit and tenure history fired under replica mode (ALWAYS triggers)
        assert (
            await scalar(
                conn,
                "SELECT features FROM audit_log WHERE layer = 'parcels' ORDER BY id DESC LIMIT 1",
            )
            == 3
        )
        assert (
            await scalar(
                conn,
                "SELECT count(*) FROM parcel_history h JOIN parcels p ON h.parcel_ids @> p.id "
                "WHERE p.notes LIKE 'row _' AND h.from_status IS NULL",
            )
            == 3
        )


SQUARE = shapely.box(LON, LAT, LON + 0.001, LAT + 0.001)


@pytest.mark.parametrize(
    ("layer", "given", "wkb"),
    [
        ("parcels", SQUARE, shapely.to_wkb(SQUARE)),  # promoted by header
        ("parcels", SQUARE, shapely.to_wkb(SQUARE, byte_order=0)),  # big-endian, as read
        ("parcels", shapely.MultiPolygon([SQUARE]), None),  # written fresh
        ("parcels", shapely.force_3d(SQUARE, 7.0), shapely.to_wkb(shapely.force_3d(SQUARE, 7))),
        ("dwellings", shapely.Point(LON, LAT), shapely.to_wkb(shapely.Point(LON, LAT))),
        ("dwellings", shapely.MultiPoint([(LON, LAT)]), None),  # one part: unwrapped
    ],
)
async def test_ewkb_sent_is_what_postgis_reads(
    conn: AsyncConnection, settings: Settings, layer: str, given: object, wkb: bytes | None
) -> None:
    decoded = np.array([shapely.from_wkb(wkb) if wkb else given], dtype=object)
    geoms, _ = validate.check_geometries(
        LAYERS[layer], decoded, [1], service_bbox=settings.service_bbox, promote=False
    )
    source = pgcopy.Source(decoded, np.array([wkb], dtype=object)) if wkb else None
    [data] = pgcopy.ewkb(LAYERS[layer], geoms, source).to_pylist()
    want = "MultiPolygon" if layer == "parcels" else "Point"
    cur = await conn.execute(
        "SELECT ST_SRID(g), GeometryType(g), ST_NDims(g), ST_Equals(g, ST_GeomFromText(%s, 4326))"
        " FROM (SELECT ST_GeomFromEWKB(%s) AS g) t",
        (shapely.force_2d(shapely.get_geometry(given, 0) if want == "Point" else given).wkt, data),
    )
    assert await cur.fetchone() == (4326, want.upper(), 2, True)


def only(layer: str, column: str) -> Layer:
    """The layer with that one attribute, so a frame of one column is complete."""
    found = LAYERS[layer]
    return dataclasses.replace(
        found, attributes=tuple(a for a in found.attributes if a.name == column)
    )


ARROW_COLUMNS = [
    ("parcels", "land_use", pa.string(), ["crops", None, " ", "forest"]),  # blank is NULL
    ("parcels", "notes", pa.string(), ["a", None, "ñandú", ""]),
    ("parcels", "recovered_on", pa.date32(), [dt.date(2021, 3, 4), None]),
    ("communes", "population", pa.int64(), [0, None, 2**31 - 1]),
    ("communes", "population", pa.float64(), [12.0, None]),  # a whole number, read as a float
    ("exchanges", "volume_per_month", pa.float64(), [0.5, 1200.0]),
    ("paths", "steps", pa.int32(), [120, None]),
    ("paths", "vehicles", pa.bool_(), [True, None, False]),
]


@pytest.mark.parametrize(("layer", "column", "kind", "values"), ARROW_COLUMNS)
def test_arrow_columns_are_checked_like_any_other(
    layer: str, column: str, kind: pa.DataType, values: list
) -> None:
    """A file's columns stay Arrow data through validation (the fast path) and come out as
    the same values as the same column sent in a request body (JSON: dates as text)."""
    labels = range(1, len(values) + 1)
    table = pa.table({column: pa.array(values, kind)})
    sent = [v.isoformat() if isinstance(v, dt.date) else v for v in values]
    body = properties_table([{column: v} for v in sent], [column])
    read = attributes.check_attributes(only(layer, column), table, labels)[column]
    written = attributes.check_attributes(only(layer, column), body, labels)[column]
    assert read.type == attributes.ARROW_TYPES[only(layer, column).attributes[0].type]
    assert read.type == written.type
    want = [None if isinstance(v, str) and not v.strip() else v for v in values]
    assert read.to_pylist() == written.to_pylist() == want


def test_a_body_column_of_mixed_kinds_keeps_what_was_sent() -> None:
    """JSON values Arrow cannot hold as one column (numbers and text, lists, a lone surrogate,
    an integer beyond 64 bits) are kept as JSON text and checked one by one as sent."""
    sent = [1, "2", [4], {"a": None}, "\ud800", 2**64, None, True]
    body = properties_table([{"x": v} for v in sent], ["x"])
    assert attributes.python_values(body.column("x").combine_chunks()) == sent
    for values in (["a", "\ud800"], [2**64, 1]):
        kept = properties_table([{"x": v} for v in values], ["x"])
        assert attributes.python_values(kept.column("x").combine_chunks()) == values
    mixed = properties_table([{"population": v} for v in (5, "6", 7.0)], ["population"])
    checked = attributes.check_attributes(only("communes", "population"), mixed, range(1, 4))
    assert checked["population"].to_pylist() == [5, 6, 7]
    wrong = properties_table([{"population": v} for v in (5, [6])], ["population"])
    with pytest.raises(InvalidAttribute) as raised:
        attributes.check_attributes(only("communes", "population"), wrong, range(1, 3))
    assert raised.value.feature == 2 and "[6] is not a whole number" in raised.value.message


def test_a_file_column_checked_value_by_value_comes_out_as_arrow() -> None:
    """Dates written as text (a CSV) miss the fast path: checked value by value, they still
    come out as the Arrow column that pgcopy.copy_rows encodes."""
    table = pa.table({"recovered_on": pa.array(["2021-03-04", None, " ", "2020-12-31T00:00"])})
    read = attributes.check_attributes(only("parcels", "recovered_on"), table, range(1, 5))
    assert read["recovered_on"].type == pa.date32()
    assert read["recovered_on"].to_pylist() == [
        dt.date(2021, 3, 4),
        None,
        None,
        dt.date(2020, 12, 31),
    ]


@pytest.mark.parametrize(
    ("layer", "column", "kind", "values", "feature", "says"),
    [
        ("parcels", "land_use", pa.string(), ["crops", "crops", "mall"], 3, "'mall' is not one"),
        ("parcels", "tenure", pa.string(), ["occupied", " "], 2, "'tenure' is required"),
        ("parcels", "notes", pa.string(), ["ok", "nul \x00 here"], 2, "NUL character"),
        ("communes", "population", pa.int64(), [1, -5], 2, "-5 is outside [0, 2147483647]"),
        ("communes", "population", pa.float64(), [1.0, 2.5], 2, "2.5 is not a whole number"),
        ("exchanges", "volume_per_month", pa.float64(), [1.0, float("inf")], 2, "inf"),
    ],
)
def test_bad_values_in_arrow_columns_are_named(
    layer: str, column: str, kind: pa.DataType, values: list, feature: int, says: str
) -> None:
    given = pa.table({column: pa.array(values, kind)})
    with pytest.raises(InvalidAttribute) as raised:
        attributes.check_attributes(only(layer, column), given, range(1, len(values) + 1))
    assert raised.value.feature == feature
    assert says in raised.value.message


async def test_a_crs_the_file_cannot_spell_is_refused_unless_given(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """A CRS GDAL hands over but PROJ cannot read is a clear refusal (it was read while
    reading the file, where it could only fail as a 500); --crs overrides it."""
    wkb = np.array([shapely.to_wkb(SQUARE)], dtype=object)
    garbage = importer.Geometries(wkb, file_crs='PROJCS["broken", GEOGCS[')
    fmt = get_format("gpkg")
    with pytest.raises(UnknownCRS) as raised:
        importer.to_wgs84(garbage, fmt, None)
    assert "CRS cannot be read" in raised.value.message and "--crs" in raised.value.message
    assert importer.to_wgs84(garbage, fmt, "EPSG:4326").source is None  # given: taken as is
    fine = importer.Geometries(wkb, file_crs="EPSG:2202")
    assert importer.to_wgs84(fine, fmt, None).label == "EPSG:2202"


async def test_a_copy_over_a_unix_socket_gets_a_roomy_send_buffer(conn: AsyncConnection) -> None:
    def send_buffer() -> tuple[int, int]:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            return sock.family, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)

    family, before = send_buffer()
    if family != socket.AF_UNIX:
        pytest.skip("the test database is reached over TCP, whose buffers tune themselves")
    bulk._roomy_send_buffer(conn)
    ceiling = int(Path("/proc/sys/net/core/wmem_max").read_text())
    # Linux doubles what it is asked, within net.core.wmem_max
    assert send_buffer()[1] == 2 * min(bulk.COPY_SEND_BUFFER, ceiling) >= before
    assert await scalar(conn, "SELECT 1") == 1  # the connection's own socket is untouched


async def _lock_waits(conn: AsyncConnection) -> int:
    """Server connections of this database waiting for a lock (a table's or a queue's)."""
    return await scalar(
        conn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'",
    )


def test_concurrent_imports_into_one_layer_queue(own_db: str, tmp_path: Path) -> None:
    """Four 20,000-parcel uploads into one layer at once, through a real server. The test
    holds the table until all four wait for it, so they reach it at the same moment: without
    a queue each found the layer fit for a bulk load, read it, then asked to drop its indexes
    while the others read it, and PostgreSQL's deadlock detector cancelled all but one (503).
    Queued (bulk.queue_import), one waits for the table and three for the queue, then each
    for the one before it: all four acknowledged, every feature stored once."""
    token = add_user(own_db, "bulk-admin")
    files = [parcels_file(tmp_path / f"q{k}.gpkg", 20_000, code=f"Q{k}") for k in range(4)]

    async def race(base: str) -> tuple[int, list[httpx.Response]]:
        async with (
            await AsyncConnection.connect(own_db, autocommit=True) as gate,
            await AsyncConnection.connect(own_db, autocommit=True) as watch,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300
            ) as client,
        ):
            before = await scalar(gate, "SELECT count(*) FROM parcels")
            async with gate.transaction():
                await gate.execute("LOCK TABLE parcels IN ACCESS EXCLUSIVE MODE")
                uploads = [
                    asyncio.create_task(
                        client.post(
                            "/collections/parcels/import",
                            files={"file": (f.name, f.read_bytes())},
                        )
                    )
                    for f in files
                ]
                deadline = asyncio.get_running_loop().time() + 120
                while await _lock_waits(watch) < len(files):
                    done = [u for u in uploads if u.done()]
                    assert not done, [u.result().text for u in done]
                    assert asyncio.get_running_loop().time() < deadline, "uploads never waited"
                    await asyncio.sleep(0.05)
            return before, await asyncio.gather(*uploads)

    with serving(own_db, tmp_path / "serve.log") as (_, base):
        before, answers = asyncio.run(race(base))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert all(a.json()["features"] == 20_000 for a in answers)
    with psycopg.connect(own_db, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM parcels").fetchone()[0] == before + 80_000
        per_file = db.execute(
            "SELECT split_part(code, '-', 1), count(*), count(DISTINCT code) FROM parcels "
            "WHERE code LIKE 'Q_-%' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert per_file == [(f"Q{k}", 20_000, 20_000) for k in range(4)]
        # the secondary indexes that bulk loads drop are all there again, and valid
        indexes = db.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'parcels'::regclass AND i.indisvalid ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in indexes] == [
            "parcels_commune_idx",
            "parcels_geom_idx",
            "parcels_natural_key",
            "parcels_pkey",
            "parcels_recovered_on_idx",
        ]
