"""The vector tile cache on disk, shared by every worker process of `serve` (and by servers on
other machines that mount the same directory).

A tile's key holds its layer's version (bumped by every write, read from the database on each
request), so a write makes the old tiles unreachable from every worker at once: nothing is
invalidated, nothing stale is served. Files live under
``<dir>/<database>/<layer>/<version>/<hash>.pbf``; ``<database>`` is the cluster's system
identifier and the database's oid (the same on the primary and its standbys, different for a
database dropped and made again, whose versions start over). A tile is written to a file of
its own and renamed into place, so a reader sees a whole tile or none.

Bounded: every ``SWEEP_EVERY`` tiles it stores, a worker drops the directories of versions
older than the newest of each layer, then the oldest tiles while the whole is over
``max_bytes``. The directory is the server user's alone (0700): tiles of members-only layers
are per reader, and hold what only that reader may read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Hashable
from pathlib import Path

from psycopg import AsyncConnection

#: tiles stored by one worker between two sweeps
SWEEP_EVERY = 256


class DiskTileCache:
    """Same interface as features.tiles.TileCache: get, put, clear."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._puts = 0
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)

    @classmethod
    async def open(cls, conn: AsyncConnection, directory: Path, max_bytes: int) -> DiskTileCache:
        """The cache of the database ``conn`` is on, in ``directory``."""
        cur = await conn.execute(
            "SELECT (SELECT system_identifier FROM pg_control_system()), "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        system, oid = await cur.fetchone()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(directory / f"{system}-{oid}", max_bytes)

    def _path(self, key: Hashable) -> Path:
        # the route's key: (layer, version, commune, z, x, y, properties, reader)
        layer, version = key[0], key[1]  # type: ignore[index]
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
        return self.root / str(layer) / str(version) / f"{digest}.pbf"

    def get(self, key: Hashable) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pbf")
        except FileNotFoundError:
            return  # another worker's sweep took the version away meanwhile: a newer exists
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(tmp, path)
        except FileNotFoundError:
            return  # swept meanwhile, as above
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._puts += 1
        if self._puts % SWEEP_EVERY == 0:
            self.sweep()

    def sweep(self) -> None:
        """Old versions out, then the oldest tiles until the whole fits in ``max_bytes``.
        Other workers may sweep at the same time: a file gone already is no error."""
        tiles: list[tuple[float, int, Path]] = []
        for layer in _dirs(self.root):
            versions = sorted(_dirs(layer), key=lambda p: int(p.name) if p.name.isdigit() else -1)
            for old in versions[:-1]:
                shutil.rmtree(old, ignore_errors=True)
            for newest in versions[-1:]:
                for entry in os.scandir(newest):
                    try:
                        info = entry.stat()
                    except FileNotFoundError:
                        continue
                    tiles.append((info.st_mtime, info.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in tiles)
        for _, size, path in sorted(tiles, key=lambda t: t[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def clear(self) -> None:
        """Forget every tile of this database (bench/bench_maps.py times a cold cache)."""
        for layer in _dirs(self.root):
            shutil.rmtree(layer, ignore_errors=True)


def _dirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
