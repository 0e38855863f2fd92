"""Scratch files (api/scratch.py): nothing of an upload, DEM or export stays on disk after its
request, however it ended; a killed server's scratch goes at the next start whatever its age;
a live server's stays. tests/test_hostile_paths.py checks that no scratch path reaches a client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.api import scratch
from geo_comuna.api.app import create_app
from geo_comuna.settings import Settings
from tests.live import clean_env

pytestmark = pytest.mark.anyio

#: a process that holds a 1 MB upload in its scratch, prints where, then dies or waits
HOLDER = """
import os, signal, sys
from geo_comuna.api.scratch import Scratch
space = Scratch()
with space.holding("parcelas.gpkg", "upload.gpkg") as path:
    path.write_bytes(b"x" * 1_000_000)
    print(space.root, flush=True)
    if sys.argv[1] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


def holder(tmp: Path, how: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(TMPDIR=str(tmp), PYTHONPATH=os.pathsep.join(sys.path)),
    )
    root = Path(proc.stdout.readline().strip())
    assert root.parent == tmp and (root / scratch.LOCK).exists(), root
    return proc, root


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of this test (and of its subprocesses)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_killed_servers_scratch_goes_at_the_next_start(tmp: Path) -> None:
    dead, dead_root = holder(tmp, "die")
    assert dead.wait(timeout=30) == -signal.SIGKILL
    assert sum(f.stat().st_size for f in dead_root.rglob("*")) >= 1_000_000  # left behind
    alive, alive_root = holder(tmp, "wait")
    own = scratch.Scratch()
    try:
        mine = own.root
        old = tmp / "geo_comuna-upload-killed"  # an older version's, a week old
        old.mkdir()
        week_ago = time.time() - 7 * 24 * 3600
        os.utime(old, (week_ago, week_ago))
        young = tmp / "geo_comuna-export-live"
        young.mkdir()
        other = tmp / "not-ours"
        other.mkdir()
        link = tmp / f"{scratch.PREFIX}link"
        link.symlink_to(other)

        assert scratch.sweep() == 2  # the killed server's (seconds old) and the old one
        assert not dead_root.exists() and not old.exists()
        assert alive_root.exists() and mine.exists() and young.exists() and other.exists()
        assert link.is_symlink()
    finally:
        alive.stdin.close()  # it ends normally and cleans up after itself
        assert alive.wait(timeout=30) == 0
        own.close()
    assert not alive_root.exists() and not mine.exists()


async def test_every_request_leaves_its_scratch_empty(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    space: scratch.Scratch = client._transport.app.state.scratch
    ok = b'{"type": "FeatureCollection", "features": []}'
    for name, body in [("a.gpkg", b"SQLite format 3\0junk"), ("b.kml", b"<kml"), ("c.geojson", ok)]:
        r = await client.post("/collections/parcels/import", files={"file": (name, body)})
        assert r.status_code == 422, r.text
    r = await client.post("/communes/EL-MAIZAL/dems", files={"file": ("d.tif", b"II*\0junk")})
    assert r.status_code == 422
    r = await client.get("/collections/parcels/export", params={"format": "shp"})
    assert r.status_code == 200 and r.content.startswith(b"PK")
    await conn.execute("SET LOCAL statement_timeout = '1ms'")  # an export that fails midway
    r = await client.get("/collections/parcels/export", params={"format": "gpkg"})
    assert r.status_code == 503
    assert [p.name for p in space.root.iterdir()] == [scratch.LOCK]


async def test_the_app_sweeps_at_start_and_cleans_up_at_stop(
    tmp: Path, db_conninfo: str, settings: Settings
) -> None:
    dead, dead_root = holder(tmp, "die")
    assert dead.wait(timeout=30) == -signal.SIGKILL
    app = create_app(settings, conninfo=db_conninfo)
    async with app.router.lifespan_context(app):
        assert not dead_root.exists()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            r = await c.get("/collections/parcels/export", params={"format": "csv"})
            assert r.status_code == 200 and r.text.startswith("WKT,")
        root = app.state.scratch.root
        assert [p.name for p in root.iterdir()] == [scratch.LOCK]
    assert not root.exists() and list(tmp.iterdir()) == []
