"""Uploads are read by GDAL in a child process (io/reading.read_isolated, work.Streaming):
one that reads too slowly is killed at Limits.compute_seconds and the request is a 503 naming
the file; one that crashes takes only its child down and the file is refused; nothing is
written and no process is left behind. A sleep and an abort stand for the reader no known
file makes stuck or crash any more (io/sniff.py closes those)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from PIL import Image
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.errors import InvalidFile, TooLarge, TooSlow
from geo_comuna.io import reading
from geo_comuna.io.importer import import_file
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import feature

pytestmark = pytest.mark.anyio


def children() -> set[int]:
    """This process' living children but the reader started ahead for the next upload."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found |= {int(pid) for pid in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    living = set()
    for pid in found - work.spare_readers():
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                living.add(pid)
        except FileNotFoundError:  # ended and reaped meanwhile
            pass
    return living


def hurried(seconds: float) -> work.Limits:
    return work.Limits(**{**work.default_limits().__dict__, "compute_seconds": seconds})


def geojson(path: Path, count: int) -> Path:
    features = [feature(LAYERS["parcels"], commune="EL-MAIZAL") for _ in range(count)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_a_reader_stuck_for_good_is_killed_at_its_bound() -> None:
    before = children()
    with work.scope(hurried(1.0), None):
        started = time.monotonic()
        with pytest.raises(TooSlow) as refused:
            work.in_child("stuck.gpkg", reading.SAVE_AGAIN, 0, time.sleep, 60)
        took = time.monotonic() - started
    assert 1.0 <= took < 4.0, took  # its bound, not a thread held for as long as the reader
    assert "reading stuck.gpkg took longer than 1 s" in str(refused.value)
    assert "leer stuck.gpkg tardó más de 1 s" in refused.value.said("es")
    assert children() == before


def test_a_reader_that_crashes_refuses_the_file_and_the_server_goes_on() -> None:
    before = children()
    advice = reading.SAVE_AGAIN
    with pytest.raises(InvalidFile) as refused:
        work.in_child("x.gpkg", advice, 0, os.abort)  # SIGABRT, as a C library that fails a check
    assert "the reading of x.gpkg stopped without an answer" in str(refused.value)
    with pytest.raises(ZeroDivisionError):  # an exception is raised here as it was there
        work.in_child("x.gpkg", advice, 0, divmod, 1, 0)
    assert work.in_child("x.gpkg", advice, 0, divmod, 7, 2) == (3, 1)
    assert children() == before


def test_a_file_read_in_a_child_comes_in_its_batches(tmp_path: Path) -> None:
    """The features, their columns and the batches are those GDAL reads in this process."""
    path = geojson(tmp_path / "many.geojson", 25)
    here = reading.read_raw(path, LAYERS["parcels"], Settings(), 10)
    there = reading.read_isolated(path, LAYERS["parcels"], Settings(), 10)
    try:
        assert there.isolated and there.features == here.features == 25
        assert there.table.equals(here.table) and there.meta["crs"] == here.meta["crs"]
        rest_here, rest_there = [], []
        for raw, rest in ((here, rest_here), (there, rest_there)):
            while True:
                try:
                    rest.append(raw.more.read_next_batch())
                except StopIteration:
                    break
        assert [b.num_rows for b in rest_there] == [b.num_rows for b in rest_here] == [10, 5]
        assert all(a.equals(b) for a, b in zip(rest_here, rest_there, strict=True))
        with there.attributes(7, path.name) as again:
            sizes = []
            while True:
                try:
                    sizes.append(again.read_next_batch().num_rows)
                except StopIteration:
                    break
        assert sizes == [7, 7, 7, 4]
    finally:
        here.close()
        there.close()
    assert not children()


async def test_an_upload_read_too_slowly_is_a_503_naming_it_and_writes_nothing(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a bound of a millisecond (none for the file's size), shorter than GDAL's opening
    of any file, every upload's reading is too slow: the import, the sync and a photo's say
    so, name the file, write nothing and leave no process (but the one started ahead for the
    next upload)."""
    path = geojson(tmp_path / "ok.geojson", 300)
    upload = {"file": ("ok.geojson", path.read_bytes(), "application/geo+json")}
    pyogrio.write_dataframe(gpd.read_file(path), tmp_path / "campo.gpkg", layer="parcels")
    gpkg = (tmp_path / "campo.gpkg").read_bytes()
    photo = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 160, 90)).save(photo, "JPEG")
    count = "SELECT (SELECT count(*) FROM parcels), (SELECT count(*) FROM documents)"
    async with api_client(conn, settings, admin_token) as client:  # the usual bound: read
        r = await client.post("/collections/parcels/import?commune=EL-MAIZAL", files=upload)
        assert r.status_code == 201, r.text
        assert r.json()["features"] == 300
    parcel = (await (await conn.execute("SELECT max(id) FROM parcels")).fetchone())[0]
    stored = await (await conn.execute(count)).fetchone()
    before = children()
    quick = settings.model_copy(update={"compute_seconds": 0.001})
    monkeypatch.setattr(work, "READ_BYTES_PER_SECOND", 1e15)  # no time for the file's size
    async with api_client(conn, quick, admin_token) as client:
        r = await client.post("/collections/parcels/import?commune=EL-MAIZAL", files=upload)
        assert r.status_code == 503, r.text
        assert "reading ok.geojson took longer than 0.001 s" in r.json()["detail"]
        r = await client.post(
            "/documents",
            data={"title": "Casa", "parcel": str(parcel)},
            files={"file": ("casa.jpg", photo.getvalue(), "image/jpeg")},
        )
        assert r.status_code == 503, r.text
        assert "reading casa.jpg took longer than 0.001 s" in r.json()["detail"]
        assert "save the photo again as a JPEG" in r.json()["detail"]
        r = await client.post("/communes/EL-MAIZAL/sync", files={"file": ("campo.gpkg", gpkg)})
        # the sync's own deadline (the same 0.001 s) may answer first; the child is killed
        assert r.status_code == 503, r.text
        assert "took longer than 0.001 s" in r.json()["detail"]
    assert await (await conn.execute(count)).fetchone() == stored
    for _ in range(40):  # the sync's reader is killed by its thread, just after the answer
        if children() == before:
            break
        await asyncio.sleep(0.05)
    assert children() == before


async def test_an_import_cancelled_while_its_file_is_read_leaves_no_reader(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: an uploader that left while GDAL read its file (the import was
    cancelled, api/transfer.py) left the reading process blocked on its pipe and its reader
    slot taken, for good; after four, every upload of the worker waited 20 s for a slot."""
    path = geojson(tmp_path / "big.geojson", 20_000)
    before = children()
    slots = settings.heavy_requests + max(2, os.cpu_count() or 1)  # work._readers()
    for i in range(slots + 1):  # more than the reader slots
        wait = 0.05 + 0.1 * (i % 4)
        task = asyncio.ensure_future(
            import_file(conn, LAYERS["parcels"], path, settings, isolated=True, dry_run=True)
        )
        await asyncio.sleep(wait)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for _ in range(100):  # each thread ends its read, and its file is closed
        if children() == before:
            break
        await asyncio.sleep(0.1)
    assert children() == before
    with work.scope(hurried(5.0), None):  # every reader slot is free again
        assert await asyncio.to_thread(work.in_child, "x", reading.SAVE_AGAIN, 0, divmod, 7, 2)


def test_a_big_file_has_time_by_its_size_to_give_its_first_features(tmp_path: Path) -> None:
    """Found from outside: six valid 163 MB GeoJSONs at once on two CPUs, four were refused
    at a flat 20 s (GDAL reads a GeoJSON whole before its first features); the first answer
    has the bound and the file's size at READ_BYTES_PER_SECOND."""
    with work.scope(hurried(0.5), None):
        started = time.monotonic()
        with pytest.raises(TooSlow) as refused:  # 4 MiB: two seconds more than 0.5 s
            work.in_child("big.geojson", reading.SAVE_AGAIN, 4 * 2**20, time.sleep, 60)
        took = time.monotonic() - started
    assert 1.5 <= took < 5.0, took
    assert "took longer than 1.5 s" in str(refused.value)


def test_a_reader_that_wants_too_much_memory_refuses_the_file() -> None:
    """Found from outside: a reader took 1.7 GB for a zip listing 3,000,000 names, and a
    server runs several at once. A child may take child.MEMORY_BYTES; past it the file is
    refused (413), not a server error."""
    with pytest.raises(TooLarge) as refused:
        work.in_child("big.gpkg", reading.SAVE_AGAIN, 0, bytearray, 3 * 2**30)
    assert "reading big.gpkg needs more than 2 GB of memory" in str(refused.value)
    assert "leer big.gpkg necesita más de 2 GB de memoria" in refused.value.said("es")
    with pytest.raises(TooLarge) as refused:  # a repair's child (work.isolated) alike
        work.isolated(bytearray, 3 * 2**30)
    assert "needs more than 2 GB of memory" in str(refused.value)
