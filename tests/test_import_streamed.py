"""A file imported in pieces as it is read (io/pieces.py, io/reading.py): whatever piece a bad
feature lies in, nothing of the file is committed and the feature is named by its position in
the file; natural keys repeated across pieces, or stored before the import, are refused as in
one piece. Each is checked against what PostgreSQL then holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from psycopg import AsyncConnection

from geo_comuna.errors import Conflict, InvalidAttribute, InvalidGeometry
from geo_comuna.io import keys, pieces
from geo_comuna.io.formats import pyogrio
from geo_comuna.io.geometries import Geometries
from geo_comuna.io.importer import import_file
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.test_io_errors import parcels

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]


def gpkg(path: Path, n: int, **options: object) -> Path:
    """``n`` parcels of EL-MAIZAL as a GeoPackage, each with a code of its own (P-1...)."""
    codes = options.pop("codes", None)
    frame = parcels(n, **options)
    frame["code"] = codes or [f"P-{i + 1}" for i in range(n)]
    pyogrio.write_dataframe(frame, path, layer="parcels", driver="GPKG")
    return path


async def scalar(conn: AsyncConnection, query: str, params: tuple = ()) -> object:
    return (await (await conn.execute(query, params)).fetchone())[0]


@pytest.mark.parametrize(
    ("bad", "error"),
    [({"tenure_at": 11}, InvalidAttribute), ({"bowtie_at": 10}, InvalidGeometry)],
)
async def test_a_bad_feature_in_a_late_piece_leaves_nothing_written(
    own_db: str,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bad: dict[str, int],
    error: type[Exception],
) -> None:
    """12 features in pieces of 4: the first two pieces are COPYed before the third is read,
    then feature 10 or 11 is refused, and the import's one transaction takes them back."""
    monkeypatch.setattr(pieces, "CHUNK", 4)
    path = gpkg(tmp_path / "p.gpkg", 12, **bad)
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        audit = await scalar(conn, "SELECT count(*) FROM audit_log")
        with pytest.raises(error) as raised:
            await import_file(conn, PARCELS, path, settings)
        assert raised.value.feature == next(iter(bad.values()))  # its place in the file
        assert raised.value.layer == "parcels"
        assert await scalar(conn, "SELECT count(*) FROM parcels WHERE code LIKE 'P-%%'") == 0
        assert await scalar(conn, "SELECT count(*) FROM audit_log") == audit
        # the same file without the bad feature: every piece stored, in the file's order
        report = await import_file(conn, PARCELS, gpkg(tmp_path / "ok.gpkg", 12), settings)
        assert (report.features, report.inserted) == (12, 12)
        cur = await conn.execute("SELECT code FROM parcels WHERE code LIKE 'P-%%' ORDER BY id")
        assert [r[0] for r in await cur.fetchall()] == [f"P-{i}" for i in range(1, 13)]


async def test_pieces_are_cut_by_the_bytes_of_their_geometries(
    own_db: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A piece was CHUNK features whatever their size: 100 parcels of 50,000 vertices were
    one piece of 80 MB, held several times over (728 MB at the peak). A piece now holds at
    most PIECE_BYTES of geometry: here three features' worth, so 12 features come in pieces
    of 3, a bad one is still named by its place in the file, nothing is written, and the
    good file is stored whole and in order."""
    path = gpkg(tmp_path / "ok.gpkg", 12)
    sizes = [len(wkb) for wkb in pyogrio.raw.read(path)[2]]
    assert max(sizes) < 1.1 * min(sizes)  # alike: three fit, four do not
    monkeypatch.setattr(pieces, "PIECE_BYTES", 3 * max(sizes) + min(sizes) // 2)
    seen: list[int] = []
    real = pieces.Streamed.next

    def counted(self: pieces.Streamed) -> pieces.Batch | None:
        batch = real(self)
        if batch is not None:
            seen.append(batch.table.num_rows)
        return batch

    monkeypatch.setattr(pieces.Streamed, "next", counted)
    async with await AsyncConnection.connect(own_db, autocommit=True) as conn:
        with pytest.raises(InvalidGeometry) as raised:
            await import_file(
                conn, PARCELS, gpkg(tmp_path / "bad.gpkg", 12, bowtie_at=10), settings
            )
        assert raised.value.feature == 10
        assert await scalar(conn, "SELECT count(*) FROM parcels WHERE code LIKE 'P-%%'") == 0
        seen.clear()
        report = await import_file(conn, PARCELS, path, settings)
        assert (report.features, report.inserted) == (12, 12)
        assert seen == [3, 3, 3, 3]
        cur = await conn.execute("SELECT code FROM parcels WHERE code LIKE 'P-%%' ORDER BY id")
        assert [r[0] for r in await cur.fetchall()] == [f"P-{i}" for i in range(1, 13)]


def test_a_table_in_memory_is_cut_by_the_bytes_of_its_geometries_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request body or a CSV (pieces.Sliced) is cut like a streamed file: at CHUNK rows
    and at PIECE_BYTES of WKB, one row at least. Rows of 10, 10, 40, 10, 10, 10 bytes under
    a bound of 30: pieces [0, 2), [2, 3) (one row alone, over the bound), [3, 6); the
    second reading (for repeated keys) goes by the same pieces."""
    wkb = np.array([b"x" * n for n in (10, 10, 40, 10, 10, 10)], dtype=object)
    table = pa.table({"code": [f"C-{i}" for i in range(6)]})
    monkeypatch.setattr(pieces, "PIECE_BYTES", 30)
    sliced = pieces.Sliced(table, Geometries(wkb))
    got = []
    while (batch := sliced.next()) is not None:
        got.append(batch.table.column("code").to_pylist())
    assert got == [["C-0", "C-1"], ["C-2"], ["C-3", "C-4", "C-5"]]
    assert [b.table.num_rows for b in sliced.again()] == [2, 1, 3]


async def test_a_key_repeated_in_a_later_piece_is_refused_naming_both(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feature 9 repeats feature 2's code, two pieces later: only a hash of feature 2's key
    is kept by then, and the file is read again to name both."""
    monkeypatch.setattr(pieces, "CHUNK", 4)
    codes = [f"R-{i}" for i in range(1, 11)]
    codes[8] = "R-2"
    before = await scalar(conn, "SELECT count(*) FROM parcels")
    with pytest.raises(Conflict) as raised:
        await import_file(conn, PARCELS, gpkg(tmp_path / "r.gpkg", 10, codes=codes), settings)
    assert raised.value.feature == 9
    assert "code 'R-2'" in raised.value.message
    assert "feature 2 of the file" in raised.value.message
    assert await scalar(conn, "SELECT count(*) FROM parcels") == before


async def test_a_stored_key_in_a_later_piece_is_refused_or_updated(
    conn: AsyncConnection, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain import refuses feature 7, whose key a feature stored before holds; with upsert
    the same file updates that one feature and inserts the other nine."""
    monkeypatch.setattr(pieces, "CHUNK", 3)
    await import_file(conn, PARCELS, gpkg(tmp_path / "one.gpkg", 1, codes=["S-7"]), settings)
    stored = await scalar(conn, "SELECT id FROM parcels WHERE code = 'S-7'")
    before = await scalar(conn, "SELECT count(*) FROM parcels")
    path = gpkg(tmp_path / "s.gpkg", 10, codes=[f"S-{i}" for i in range(1, 11)])
    with pytest.raises(Conflict) as raised:
        await import_file(conn, PARCELS, path, settings)
    assert raised.value.feature == 7
    assert f"already stored as parcels feature {stored}" in raised.value.message
    # the count is of the piece it was found in (features 7 to 9), not of the whole file
    assert "(1 of the file's features 7 to 9 are)" in raised.value.message
    assert await scalar(conn, "SELECT count(*) FROM parcels") == before

    report = await import_file(conn, PARCELS, path, settings, mode="upsert")
    assert (report.inserted, report.updated, report.unchanged) == (9, 1, 0)
    assert await scalar(conn, "SELECT count(*) FROM parcels WHERE code LIKE 'S-%%'") == 10
    assert await scalar(conn, "SELECT notes FROM parcels WHERE id = %s", (stored,)) == "row 7"


def test_key_hashes_tell_keys_apart_wherever_they_sit_in_memory() -> None:
    """Equal strings hash alike at any offset of Arrow's buffers (a slice of a batch), and
    strings of the same bytes in another order do not."""
    data = pa.array(["LP-000001", "LP-000010", "LP-000001", "", "10-PL", "ñandú"])
    whole = keys._text_hashes(data)
    assert whole[0] == whole[2]
    assert len(set(whole.tolist())) == 5
    assert (keys._text_hashes(data.slice(2)) == whole[2:]).all()
    many = keys._text_hashes(pa.array([f"LP-{i:06d}" for i in range(100_000)]))
    assert np.unique(many).size == 100_000
