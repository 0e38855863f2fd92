"""A commune's package for field work over HTTP (maps/package.py): the same zip as
`geo-comuna package`, built once per day and version of the data and kept (Packages), then
sent from its file: with its ETag a client that has it gets a 304, and a download cut short
goes on where it stopped (a ``Range`` request, ``If-Range`` with the ETag), which is what a
field team on a bad line needs of 15 MB.

It holds what its reader may read, as an export does: an anonymous reader's package has no
members-only column or position (parcel notes, residents, each home), a commune member's or
an admin's has everything of the commune.

A package takes what its commune holds to build: 25 s for 200,000 parcels. It is built by a
task of its own, with a connection of its own and Settings.package_seconds to finish (one
build at a time per worker, one more waiting). A request waits for it what its deadline
allows (compute_seconds), and is otherwise answered 503 with Retry-After while the build
goes on: the request after it finds the package kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from psycopg import AsyncConnection
from starlette.responses import MalformedRangeHeader

from geo_comuna import __version__, work
from geo_comuna.accounts import Access
from geo_comuna.api import etags
from geo_comuna.api.deps import Conn, ReaderAccess, SettingsDep, get_conn
from geo_comuna.api.scratch import Scratch
from geo_comuna.errors import Said, TooSlow
from geo_comuna.features.query import require_commune
from geo_comuna.maps import data
from geo_comuna.maps.package import build_package, made_on
from geo_comuna.settings import Settings

router = APIRouter(tags=["import/export"])
ZIP = "application/zip"
#: builds a worker runs or has waiting at once (each more is told to ask again)
BUILDS = 2
#: a package served this recently is not removed to make room (its file is being opened)
IN_USE_SECONDS = 60.0
#: how long a package some analysis of which did not finish is kept (a later build may)
UNFINISHED_SECONDS = 600.0
#: what a 503 tells a client to wait before it asks for a package again (Retry-After)
RETRY_SECONDS = 60
#: how often a worker looks whether another worker's build of a package is done
POLL_SECONDS = 0.5
#: where `serve` tells its workers the directory they keep packages in (one for them all)
SHARED_DIR_ENV = "GEO_COMUNA_SERVE_PACKAGE_DIR"


class Packages:
    """The packages built, by key (package_key), as files ``<key>.zip`` in ``folder`` (one
    all workers of a `serve` share, else this process' scratch directory): at most
    ``max_bytes`` of them, the least recently used (their files' atime) removed first. A
    package some analysis of which did not finish is ``<key>.until-<time>.zip``, kept
    UNFINISHED_SECONDS. The builds under way in this process, one at a time; a worker
    building a package holds ``<key>.lock`` (flock), and the others wait for its file."""

    def __init__(self, folder: Callable[[], Path], max_bytes: int) -> None:
        self._folder = folder
        self.max_bytes = max_bytes
        self._builds: dict[str, asyncio.Task[Path]] = {}
        self._turn: asyncio.Semaphore | None = None  # made in the event loop: one build at a time

    @property
    def folder(self) -> Path:
        folder = self._folder()
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    def get(self, key: str) -> tuple[Path, os.stat_result] | None:
        """The package kept under ``key`` and its file's stat, or None. Its use is noted in
        the file's access time (the least recently used go first); its modification time
        stays the time it was built (Last-Modified)."""
        folder = self.folder
        # a complete one first: an unfinished one of the same key may still be there
        for path in [folder / f"{key}.zip", *sorted(folder.glob(f"{key}.until-*.zip"))]:
            until = path.name.removeprefix(f"{key}.").removesuffix("zip").strip(".")
            try:
                if until and float(until.removeprefix("until-")) < time.time():
                    path.unlink(missing_ok=True)
                    continue
                built = path.stat()
                os.utime(path, ns=(time.time_ns(), built.st_mtime_ns))
                return path, built
            except (OSError, ValueError):  # removed by another worker meanwhile
                continue
        return None

    def keep(self, key: str, built: Path, *, finished: bool) -> Path:
        """``built`` moved into the folder under ``key``; older packages removed past
        max_bytes, except those used in the last IN_USE_SECONDS (with max_bytes 0 a package
        is kept that long after its last use, for the requests waiting for it)."""
        until = f".until-{time.time() + UNFINISHED_SECONDS:.0f}"
        name = f"{key}{'' if finished else until}.zip"
        path = self.folder / name
        os.replace(built, path)
        if finished:  # what an earlier, unfinished build of the same data left
            for older in self.folder.glob(f"{key}.until-*.zip"):
                older.unlink(missing_ok=True)
        self._make_room(path)
        return path

    def _make_room(self, kept: Path) -> None:
        found = []
        for path in self.folder.glob("*.zip"):
            with contextlib.suppress(OSError):
                found.append((path.stat(), path))
        total = sum(stat.st_size for stat, _ in found)
        now = time.time()
        for stat, path in sorted(found, key=lambda item: item[0].st_atime):
            if total <= self.max_bytes:
                return
            if path != kept and now - stat.st_atime >= IN_USE_SECONDS:
                path.unlink(missing_ok=True)
                total -= stat.st_size

    def building(self, key: str, build: Callable[[], Awaitable[Path]]) -> asyncio.Task[Path]:
        """The build of ``key`` under way, or a new one started (``build()``, in its turn
        and unless another worker builds it: then its file is waited for); TooSlow when
        BUILDS are under way already."""
        task = self._builds.get(key)
        if task is not None:
            return task
        if len(self._builds) >= BUILDS:
            busy = TooSlow(
                Said(
                    "the server is building other communes' packages; ask again in a minute",
                    "el servidor está preparando los paquetes de otras comunas; vuelva a "
                    "pedirlo en un minuto",
                )
            )
            busy.retry_after = RETRY_SECONDS
            raise busy
        if self._turn is None:
            self._turn = asyncio.Semaphore(1)
        turn = self._turn

        async def in_turn() -> Path:
            async with turn:
                while True:
                    with self._lock(key) as mine:
                        if (found := self.get(key)) is not None:
                            return found[0]
                        if mine:
                            return await build()
                    await asyncio.sleep(POLL_SECONDS)  # another worker builds it

        task = asyncio.get_running_loop().create_task(in_turn())
        self._builds[key] = task
        task.add_done_callback(lambda done: self._done(key, done))
        return task

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[bool]:
        """Whether this process holds ``key``'s build lock for the block's length."""
        fd = os.open(self.folder / f"{key}.lock", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(self.folder / f"{key}.lock")
        finally:
            os.close(fd)

    def _done(self, key: str, task: asyncio.Task[Path]) -> None:
        self._builds.pop(key, None)
        if not task.cancelled():
            task.exception()  # a failure nobody waited for: the next request builds again


async def package_key(
    conn: AsyncConnection, commune_id: int, access: Access, settings: Settings
) -> str:
    """What tells two packages apart: the commune, who reads it, the day it is made on (its
    contents carry it: maps/package.py), the version of every table (any write makes a new
    one), this code's and the database schema's versions, and the settings that shape it."""
    cur = await conn.execute(
        "SELECT (SELECT array_agg(layer || ':' || version ORDER BY layer) FROM layer_versions),"
        " (SELECT max(version) FROM schema_migrations)"
    )
    tables, schema = await cur.fetchone()
    styles = settings.styles_path.stat()
    shape = (
        settings.tile_url,
        settings.map_tile_threshold,
        str(settings.web_assets_dir),
        str(settings.styles_path),
        styles.st_mtime_ns,
        styles.st_size,
        dataclasses.replace(work.Limits.of(settings), compute_seconds=0, heavy_requests=0),
    )
    parts = (__version__, schema, commune_id, repr(access), made_on(), tables, shape)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@router.get(
    "/communes/{commune}/package",
    summary="A commune's package for QGIS and QField (zip)",
    response_class=FileResponse,
    responses={
        200: {"content": {ZIP: {}}},
        206: {"content": {ZIP: {}}, "description": "the part a Range header asked for"},
        304: {"description": "the client's copy (If-None-Match: its ETag) is current"},
    },
)
async def commune_package(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    access: ReaderAccess,
    commune: Annotated[str, PathParam(description="commune id or registry code")],
) -> Response:
    """One GeoPackage with every layer of the commune (each feature with its ``id`` and
    ``version``, for the sync; the map styles in its ``layer_styles`` table), QGIS projects
    with drop-downs for coded values in Spanish and English, the offline map, the report and
    a README.

    Built once per day and version of the data, then kept: ``If-None-Match`` with its
    ``ETag`` answers 304, and ``Range`` (with ``If-Range``) sends the rest of a download cut
    short. A package that takes longer to build than a request may wait is a 503 with
    ``Retry-After`` while its build goes on; asked again, it is sent."""
    commune_id = await require_commune(conn, commune)
    name = f"comuna-{await data.file_code(conn, commune_id)}.zip"
    key = await package_key(conn, commune_id, access, settings)
    packages: Packages = request.app.state.packages
    found = packages.get(key)
    # a complete package is the same bytes whenever it is built: its ETag is its key
    if found is None and etags.fresh(request, f'"{key}"'):
        return etags.not_modified(f'"{key}"')
    if found is None:
        build = functools.partial(_build, request, packages, key, commune_id, access, name)
        task = packages.building(key, build)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=work.remaining())
        except TimeoutError:
            raise _being_built(name, settings.compute_seconds) from None
        found = _sent(task.result())
    path, stat = found
    etag = _etag(key, path, stat)
    if etags.fresh(request, etag):
        return etags.not_modified(etag)
    return WholeUnlessRanged(
        path, media_type=ZIP, filename=name, stat_result=stat, headers={"ETag": etag}
    )


class WholeUnlessRanged(FileResponse):
    """A file sent whole when its Range header is not a valid one ("bytes=5-1", "bytes=x",
    "items=0-9"), as RFC 9110 (14.2) has a server ignore it; Starlette answered those with a
    400 in plain English that no download manager recovers from. A valid range past the end
    stays a 416."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # FileResponse sends the whole file


def _etag(key: str, path: Path, stat: os.stat_result) -> str:
    """A complete package's ETag is its key; one some analysis of which did not finish is
    that build's alone (the next build may differ)."""
    return f'"{key}"' if path.name == f"{key}.zip" else f'"{key}-{stat.st_mtime_ns}"'


def _sent(path: Path) -> tuple[Path, os.stat_result]:
    return path, path.stat()


async def _build(
    request: Request, packages: Packages, key: str, commune_id: int, access: Access, name: str
) -> Path:
    """The package built apart from the request that asked for it, which may be answered
    before it is done: on a connection of its own, within Settings.package_seconds."""
    app = request.app
    settings: Settings = app.state.settings
    limits = dataclasses.replace(work.Limits.of(settings), compute_seconds=settings.package_seconds)
    scratch: Scratch = app.state.scratch
    seconds = settings.package_seconds
    try:
        async with asyncio.timeout(seconds) as bound, _own_connection(request) as conn:
            scope = work.scope(
                limits, app.state.workers, seconds, app.state.answers, setting="package_seconds"
            )
            with scope, scratch.holding(name, name) as target:
                report = await build_package(conn, commune_id, target, settings, access)
                return packages.keep(key, target, finished=not report.unfinished)
    except TimeoutError:
        if not bound.expired():
            raise
        raise TooSlow(
            Said(
                f"building {name} took longer than {seconds:g} s, the most a package may take "
                "here (GEO_COMUNA_PACKAGE_SECONDS); `geo-comuna package` on the server builds "
                "it without a limit",
                f"preparar {name} tardó más de {seconds:g} s, lo máximo que puede tardar un "
                "paquete aquí (GEO_COMUNA_PACKAGE_SECONDS); `geo-comuna package` en el servidor "
                "lo prepara sin límite",
            )
        ) from None


@asynccontextmanager
async def _own_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection that outlives the request: the primary's or a standby's that has the
    client's last write (api/consistency.py). The tests' one connection where they put it."""
    override = request.app.dependency_overrides.get(get_conn)
    if override is not None:
        async with asynccontextmanager(override)() as conn:
            yield conn
        return
    after = request.scope.get("state", {}).get("read_after")
    async with request.app.state.databases.connection(read=True, after=after) as (conn, _):
        yield conn


def _being_built(name: str, waited: float) -> TooSlow:
    seconds = f"{waited:g}"
    error = TooSlow(
        Said(
            f"{name} is being built, which takes longer than the {seconds} s a request waits "
            "here; it is kept once built: ask again in a minute",
            f"se está preparando {name}, lo que tarda más que los {seconds} s que espera una "
            "petición aquí; se guarda una vez listo: vuelva a pedirlo en un minuto",
        )
    )
    error.retry_after = RETRY_SECONDS
    return error
