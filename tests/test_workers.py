"""`serve --workers 2`: a write through one worker process is seen at once through the other,
in items, counts and tiles, whether each worker keeps its tiles in memory or all share them
on disk (GEO_COMUNA_TILE_CACHE_DIR). A real multi-process server; which worker answers each
client is read from the kernel (the owner of the server end of its connection), so the test
knows it crossed workers rather than hoping it did."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from geo_comuna.features.tile_cache import DiskTileCache
from geo_comuna.layers import get_layer
from geo_comuna.settings import Settings
from tests.factories import MAIZAL, feature
from tests.live import add_user, serving

ITEMS = "/collections/parcels/items?limit=5"
TILE = "/tiles/parcels/0/0/0.pbf"  # the whole world: a parcel anywhere changes it
MAX_TRIES = 400


def children_of(pid: int) -> list[int]:
    """The workers (and multiprocessing's resource tracker, which holds no connection)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def server_of(port: int, workers: list[int]) -> int | None:
    """The worker holding the server end of the connection whose client port is ``port``."""
    owners = {inode: pid for pid in workers for inode in socket_inodes(pid)}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        inode = int(fields[9])
        if remote_port == port and inode in owners:
            return owners[inode]
    return None


@contextmanager
def clients(base: str, workers: list[int], n: int) -> Iterator[dict[int, list]]:
    """``n`` kept-alive connections, as many to each worker, grouped by the worker that
    answers each. The kernel hands each new connection to whichever worker accepts first,
    and a busy machine may let one win many times running: connections are opened (up to
    ``MAX_TRIES``) until every worker holds its share; the ones past a share are closed."""
    host, port = base.removeprefix("http://").split(":")
    share = n // len(workers)
    by_worker: dict[int, list] = {pid: [] for pid in workers}
    try:
        for _ in range(MAX_TRIES):
            if all(len(conns) == share for conns in by_worker.values()):
                break
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            assert get(conn, "/conformance")[0] == 200
            pid = server_of(conn.sock.getsockname()[1], workers)
            assert pid is not None
            if len(by_worker[pid]) < share:
                by_worker[pid].append(conn)
            else:
                conn.close()
            time.sleep(0.01)  # every worker back in its wait for the next one
        yield {pid: conns for pid, conns in by_worker.items() if conns}
    finally:
        for conns in by_worker.values():
            for conn in conns:
                conn.close()


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes, dict]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read(), dict(r.getheaders())


@pytest.mark.parametrize("shared_tiles", [False, True], ids=["tiles-per-worker", "tiles-on-disk"])
def test_a_write_through_one_worker_is_read_through_the_other(
    own_db: str, tmp_path: Path, shared_tiles: bool
) -> None:
    token = add_user(own_db, "workers-admin")
    env = {"GEO_COMUNA_TILE_CACHE_DIR": str(tmp_path / "tiles")} if shared_tiles else {}
    with serving(own_db, tmp_path / "serve.log", workers=2, **env) as (proc, base):
        workers = [pid for pid in children_of(proc.pid) if socket_inodes(pid)]
        assert len(workers) == 2, workers
        with clients(base, workers, 12) as by_worker:
            assert len(by_worker) == 2, f"{MAX_TRIES} connections, one worker: {list(by_worker)}"
            every = [c for conns in by_worker.values() for c in conns]
            # every worker caches the count and the tile of the layer's present version
            before = set()
            tile_before = set()
            for conn in every * 2:
                status, body, _ = get(conn, ITEMS)
                assert status == 200
                before.add(json.loads(body)["numberMatched"])
                status, body, _ = get(conn, TILE)
                assert status == 200 and body
                tile_before.add(body)
            assert len(before) == 1 and len(tile_before) == 1
            matched, old_tile = before.pop(), tile_before.pop()

            writer = next(iter(by_worker.values()))[0]
            body = json.dumps(feature(get_layer("parcels"), "EL-MAIZAL", *MAIZAL))
            writer.request(
                "POST",
                "/collections/parcels/items",
                body,
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            created = writer.getresponse()
            assert created.status == 201, created.read()
            created.read()

            for conn in every * 3:  # both workers, each several times
                status, body, _ = get(conn, ITEMS)
                assert json.loads(body)["numberMatched"] == matched + 1
                status, body, _ = get(conn, TILE)
                assert status == 200 and body != old_tile
        if shared_tiles:
            stored = list((tmp_path / "tiles").glob("*/parcels/*/*.pbf"))
            versions = {p.parent.name for p in stored}
            assert len(stored) == 2 and len(versions) == 2  # one tile per version, shared


def test_the_disk_tile_cache_keeps_the_newest_version_within_its_bound(tmp_path: Path) -> None:
    cache = DiskTileCache(tmp_path / "db", max_bytes=10_000)
    for version in (1, 2):
        for i in range(4):
            cache.put(("parcels", version, None, 14, i, 0, (), "-"), bytes([version]) * 3_000)
    assert cache.get(("parcels", 1, None, 14, 0, 0, (), "-")) == bytes([1]) * 3_000
    cache.sweep()
    # version 1 is unreachable once 2 exists; of version 2's 12,000 bytes, the oldest goes
    assert cache.get(("parcels", 1, None, 14, 0, 0, (), "-")) is None
    kept = [cache.get(("parcels", 2, None, 14, i, 0, (), "-")) for i in range(4)]
    assert sum(body is not None for body in kept) == 3 and kept[3] == bytes([2]) * 3_000
    assert (tmp_path / "db").stat().st_mode & 0o777 == 0o700
    cache.put(("parcels", 3, None, 0, 0, 0, (), "-"), b"x" * 10_001)  # over the bound: not kept
    assert cache.get(("parcels", 3, None, 0, 0, 0, (), "-")) is None


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        ("host=/a dbname=g, host=/b dbname=g", ["host=/a dbname=g", "host=/b dbname=g"]),
        ('["postgresql://r1,r2/g"]', ["postgresql://r1,r2/g"]),
        ("", []),
    ],
)
def test_standbys_are_named_by_commas_or_a_json_list(value: str, urls: list[str]) -> None:
    assert Settings(read_database_url=value).read_database_urls == urls


def test_a_malformed_list_of_standbys_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="read_database_url"):
        Settings(read_database_url='["host=/a"')
