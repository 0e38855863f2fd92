"""Scratch space for files in flight: uploads being imported, DEMs being read, exports being
written. None of it outlives the request, and none of its paths reaches a client.

Each server process works in one directory of its own, ``<tmp>/geo_comuna-scratch-<pid>-…``,
and holds an exclusive lock (flock) on the ``.lock`` file inside for as long as it lives; each
request's files go into a directory of their own inside, removed when the request ends however
it ends. A process killed outright (SIGKILL, power cut, out of memory) cannot clean up, and the
kernel drops its lock: the next server to start removes every scratch directory whose lock it
can take, whatever its age, so an interrupted 200 MB upload stays on disk only until then.

A GDAL or rasterio error names the file it was given, which here is ours: an error raised while
a client's file is held names the client's file instead (``Scratch.holding``), and
``hide_paths`` is the last guard before any problem+json goes out.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from geo_comuna.errors import GeoComunaError, Said

PREFIX = "geo_comuna-scratch-"
LOCK = ".lock"
#: what versions before per-process directories left behind: swept by age only, since
#: nothing tells whether the server that made one still runs
OLD_PREFIXES = ("geo_comuna-upload-", "geo_comuna-export-", "geo_comuna-dem-")
OLD_MAX_AGE_S = 6 * 3600


class Scratch:
    """The scratch directory of one server process: made on first use, removed by ``close``
    (the app's shutdown) or, failing that, when the interpreter exits."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._done: weakref.finalize | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            # made and locked under a name the sweep ignores, then renamed: no other server's
            # sweep can ever see it unlocked
            staging = Path(tempfile.mkdtemp(prefix=f".{PREFIX}"))
            lock = os.open(staging / LOCK, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX)
            root = staging.with_name(f"{PREFIX}{os.getpid()}-{staging.name[len(PREFIX) + 1 :]}")
            os.rename(staging, root)
            self._root = root
            self._done = weakref.finalize(self, _remove, root, lock)
        return self._root

    def close(self) -> None:
        if self._done is not None:
            self._done()  # runs at most once
        self._root = self._done = None

    @contextmanager
    def holding(self, client_name: str, saved_name: str) -> Iterator[Path]:
        """A path ``saved_name`` in a fresh directory for one request's file, removed with
        everything beside it when the block ends. An error raised inside names
        ``client_name`` wherever it named that directory or the file."""
        directory = Path(tempfile.mkdtemp(dir=self.root))
        try:
            yield directory / saved_name
        except GeoComunaError as exc:
            exc.reason = _named(exc.reason, directory, saved_name, client_name)
            for detail in exc.details:
                for key, value in detail.items():
                    if isinstance(value, str):
                        detail[key] = _named(value, directory, saved_name, client_name)
            raise
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def client_name(filename: str | None, default: str = "upload") -> str:
    """The last component of a client's filename (either slash), for messages only: never
    used as a path."""
    return PureWindowsPath(PurePosixPath(filename or default).name).name or default


def _remove(root: Path, lock: int) -> None:
    shutil.rmtree(root, ignore_errors=True)
    os.close(lock)


def _named(text: str, directory: Path, saved_name: str, client_name: str) -> str:
    """``text`` with the scratch file (also as GDAL's /vsizip/ path, with a member inside it
    kept: ``parcelas.zip/parcelas.shp``) and the bare saved name shown as ``client_name``; a
    reason that knows its Spanish keeps it (a browser's error page says it)."""
    if isinstance(text, Said):
        return Said(
            _named(str(text), directory, saved_name, client_name),
            _named(text.es, directory, saved_name, client_name),
        )
    where = re.escape(str(directory))
    text = re.sub(
        rf"(?:/vsi\w+/)?{where}/{re.escape(saved_name)}",
        lambda _: client_name,
        text,
    )
    text = re.sub(rf"(?:/vsi\w+/)?{where}[^\s'\"]*", lambda _: client_name, text)
    return re.sub(rf"(?<![\w.-]){re.escape(saved_name)}(?![\w-])", lambda _: client_name, text)


def hide_paths(text: str) -> str:
    """Any path under the temporary directory shortened to its last component: the guard for
    messages that were not raised inside ``Scratch.holding``."""
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.sub(
        rf"(?:/vsi\w+/)?{tmp}/[^\s'\",;:]*",
        lambda m: PurePosixPath(m.group()).name or "file",
        text,
    )


def sweep() -> int:
    """Remove the scratch directories of servers that are gone: every per-process directory
    whose lock nobody holds, whatever its age, and older versions' directories past
    ``OLD_MAX_AGE_S``. Only directories of our own user. Returns how many went."""
    tmp = Path(tempfile.gettempdir())
    gone = 0
    for path in tmp.glob(f"{PREFIX}*"):
        if _ours(path) and _abandoned(path):
            shutil.rmtree(path, ignore_errors=True)
            gone += 1
    cutoff = time.time() - OLD_MAX_AGE_S
    for prefix in OLD_PREFIXES:
        for path in tmp.glob(f"{prefix}*"):
            info = _ours(path)
            if info is not None and info.st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                gone += 1
    return gone


def _ours(path: Path) -> os.stat_result | None:
    """A real directory (not a link) of this user, or None."""
    try:
        info = path.lstat()
    except OSError:  # raced with another server's sweep
        return None
    return info if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() else None


def _abandoned(root: Path) -> bool:
    """Is nobody holding ``root``'s lock? (A process' lock goes with it, however it ends.)"""
    try:
        lock = os.open(root / LOCK, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True  # half removed by another server's sweep (made ones get it first)
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(lock)
    return True
