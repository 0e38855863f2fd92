"""create_app(settings): everything is built here; the pool opens in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_comuna import __version__, work
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api import (
    access_log,
    analyses,
    audit,
    communes,
    editing,
    features,
    maps,
    openapi,
    package,
    pages,
    problems,
    schema,
    scratch,
    sheets,
    sync,
    tenure,
    terrain,
    transfer,
    writes,
)
from geo_comuna.api.compression import Compression
from geo_comuna.api.consistency import AFTER_HEADER, LSN_HEADER, READ_HEADER, ReadYourWrites
from geo_comuna.api.deps import current_user
from geo_comuna.api.fairness import Fairness, body_ended
from geo_comuna.api.headers import SecurityHeaders
from geo_comuna.api.methods import ORDER, Methods
from geo_comuna.api.parameters import check_request
from geo_comuna.db import migrate
from geo_comuna.db.pool import open_pool, resolve_conninfo
from geo_comuna.db.replicas import Databases
from geo_comuna.db.versions import VersionedCache
from geo_comuna.features.query import CountCache
from geo_comuna.features.tile_cache import DiskTileCache
from geo_comuna.features.tiles import TileCache
from geo_comuna.maps.assets import STATIC_PREFIX
from geo_comuna.settings import Settings
from geo_comuna.tenure import calendar

UPLOAD_PATHS = ("/import", "/dems", "/sync")
#: what a script of another site may send and read (GEO_COMUNA_CORS_ORIGINS); tokens travel
#: in Authorization, never in cookies, so no credentials mode is needed
CORS_REQUEST_HEADERS = [
    *("Authorization", "Content-Type", "Content-Crs", "If-Match", "If-None-Match"),
    AFTER_HEADER,
]
CORS_RESPONSE_HEADERS = [
    "Allow",
    "ETag",
    "Location",
    "Retry-After",
    "X-Bounds",
    "X-Geo-Comuna-Repairs",
    LSN_HEADER,
    READ_HEADER,
]
#: every data route checks its query parameters and format (api/parameters.py), then knows
#: its user; with GEO_COMUNA_READS=token this refuses anonymous reads
READERS = [Depends(check_request), Depends(current_user)]


#: a body's pace: no byte for BODY_IDLE_S, or fewer than BODY_MIN_RATE bytes a second on
#: average after its first BODY_GRACE_S, and it is given up (408). Found from outside: bodies
#: sent a byte every 2 s held their requests for days; a phone on 2G sends 5,000 a second
BODY_IDLE_S = 60.0
BODY_GRACE_S = 60.0
BODY_MIN_RATE = 1024


class _TooSlow(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class BodyLimit:
    """413 before a handler runs: bodies over the limit (declared or streamed) are refused."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = scope["path"].endswith(UPLOAD_PATHS)
        limit = self.settings.max_upload_bytes if upload else self.settings.max_body_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        spanish = b"lang=es" in scope.get("query_string", b"").split(b"&")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit, spanish)
            return
        seen, started, whole = 0, time.monotonic(), False

        async def counted() -> Message:
            nonlocal seen, whole
            if whole:  # the body has come: a wait for the client's leaving, as long as it is
                return await receive()
            try:
                async with asyncio.timeout(BODY_IDLE_S):  # no task made per piece of body
                    message = await receive()
            except TimeoutError:
                raise _TooSlow(seen) from None
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooBig(seen)
            whole = message["type"] != "http.request" or body_ended(message)
            late = time.monotonic() - started - BODY_GRACE_S
            if not whole and late > 0 and seen < late * BODY_MIN_RATE:
                raise _TooSlow(seen)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooBig as exc:
            await self._refuse(send, exc.size, limit, spanish)
        except _TooSlow as exc:
            detail = (
                f"el cuerpo de la petición llegó demasiado despacio ({exc.size} bytes en "
                f"{time.monotonic() - started:.0f} s): envíelo de nuevo"
                if spanish
                else f"the body came too slowly ({exc.size} bytes in "
                f"{time.monotonic() - started:.0f} s): send it again"
            )
            response = problems.problem(408, "request-timeout", detail)
            await response({"type": "http"}, _nothing, send)

    @staticmethod
    async def _refuse(send: Send, size: int, limit: int, spanish: bool) -> None:
        """The 413, in Spanish for ?lang=es (the request is not parsed yet)."""
        detail = (
            f"el cuerpo de la petición ({size} bytes o más) supera el límite de {limit} bytes"
            if spanish
            else f"the body ({size} bytes or more) is over the limit of {limit} bytes"
        )
        response = problems.problem(413, "too-large", detail)
        await response({"type": "http"}, _nothing, send)


class WorkScope:
    """Every HTTP request runs inside work.scope: the Settings' limits, the app's CPU workers
    and a deadline of Settings.compute_seconds for its CPU-heavy steps."""

    def __init__(
        self, app: ASGIApp, settings: Settings, workers: work.Workers, cache: VersionedCache
    ) -> None:
        self.app = app
        self.limits = work.Limits.of(settings)
        self.workers = workers
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with work.scope(
            self.limits, self.workers, self.limits.compute_seconds, self.cache
        ) as current:

            async def then_the_time() -> Message:
                """The body's messages; once its last one has come, the work's time starts."""
                message = await receive()
                if body_ended(message):
                    current.restart()
                return message

            await self.app(scope, then_the_time, send)


#: what an address may answer by its request's Accept: JSON documents and pages
_NEGOTIATED = ("application/json", "application/geo+json", "application/schema+json", "text/html")


class ReaderCaching:
    """What a response holds may depend on who asks (the registry's read rules; with
    GEO_COMUNA_READS=token, whether they may read at all). Every response of the API says so
    with ``Vary: Authorization``; one whose route set no Cache-Control goes out ``private,
    no-cache``; and when reads need a token none goes out ``public``. So a shared cache never
    hands one reader's response to another. The map libraries under /static/ are the same
    for everyone and are left alone."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STATIC_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        token_reads = self.settings.reads == "token"

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cache = headers.get("cache-control")
                if cache is None:
                    headers["Cache-Control"] = "private, no-cache"
                elif token_reads and "public" in cache:
                    headers["Cache-Control"] = cache.replace("public", "private")
                headers.add_vary_header("Authorization")
                if headers.get("content-type", "").startswith(_NEGOTIATED) or (
                    message["status"] == 304 and "/tiles/" not in scope["path"]
                ):  # a 304 says what its 200 says
                    # the same address answers a page or JSON by Accept (found from outside:
                    # the JSON said nothing of it, and a shared cache could give it a browser)
                    headers.add_vary_header("Accept")
            await send(message)

        await self.app(scope, receive, marked)


class _TooBig(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _route_once(app: FastAPI) -> None:
    """One request for a path no route has, straight to the router: FastAPI builds each
    included route's state (its dependencies, parameters, signature) on the first request
    that looks through them, ~0.1-0.2 s that a fresh server's first report or analysis would
    otherwise wait for."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/.geo-comuna-starting",
        "raw_path": b"/.geo-comuna-starting",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app.router(scope, receive, send)  # a 404 that nobody reads


def shared_by_workers() -> scratch.Scratch:
    """What the workers of a `serve --workers N` share, made by its process before it starts
    them: the directory they keep commune packages in (api/package.py), in that process' own
    scratch directory, which goes when the process ends (or is swept if it is killed): a new
    server never reads an old one's packages. Hold the object returned while serving. (One
    worker keeps them in its own scratch directory.)"""
    shared = scratch.Scratch()
    os.environ[package.SHARED_DIR_ENV] = str(shared.root / "packages")
    return shared


def create_app(settings: Settings | None = None, *, conninfo: str | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(scratch.sweep)  # what killed servers left behind
        await anyio.to_thread.run_sync(all_analyses)  # their imports, not in a first request
        dsn = conninfo or await anyio.to_thread.run_sync(resolve_conninfo, settings)
        pool = await open_pool(settings, dsn)
        async with pool.connection() as conn:
            await migrate.upgrade(conn)  # on the primary; under an advisory lock (workers)
            if settings.tile_cache_dir is not None:  # files of this database only
                app.state.tiles = await DiskTileCache.open(
                    conn, settings.tile_cache_dir, settings.tile_cache_bytes
                )
        app.state.databases = Databases(settings, pool)
        await app.state.databases.open()
        await _route_once(app)
        following = asyncio.create_task(calendar.keep_following(pool))  # rights' dates
        log = access_log.after_responses()
        try:
            yield
        finally:
            access_log.as_before(log)
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            app.state.workers.close()
            await app.state.databases.close()
            await pool.close()
            app.state.scratch.close()

    app = FastAPI(
        title="geo_comuna",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,  # api/openapi.py serves it, and the docs pages
        docs_url=None,
        redoc_url=None,
        description="OGC API - Features for Venezuela's communes: states, commune "
        "boundaries across state lines, parcels with tenure history, "
        "production, dwellings and networks.",
    )
    # a trailing slash is redirected by the 404 handler, with the address links have
    # (api/problems.py _without_slash); Starlette's took the Host header as sent
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.counts = CountCache()
    app.state.tiles = TileCache(settings.tile_cache_bytes)  # or on disk: see the lifespan
    app.state.workers = work.Workers(settings.compute_workers)
    app.state.answers = VersionedCache(settings.cached_answers)
    app.state.scratch = scratch.Scratch()  # made on first use
    shared = os.environ.get(package.SHARED_DIR_ENV)  # `serve`'s, for all its workers
    app.state.packages = package.Packages(
        (lambda: Path(shared)) if shared else (lambda: app.state.scratch.root / "packages"),
        settings.package_cache_bytes,
    )
    problems.install(app)
    openapi.install(app, settings)
    # first, as the hottest reads; it resolves the readers' dependencies itself, and its
    # paths leave /collections/parties and /rights to the land records' routes
    app.include_router(features.item_router)
    app.include_router(audit.router, dependencies=READERS)
    # before features: /collections/parties and /rights are not layers of the registry
    app.include_router(tenure.router, dependencies=READERS)
    app.include_router(features.router, dependencies=READERS)
    app.include_router(writes.router, dependencies=READERS)
    app.include_router(editing.router, dependencies=READERS)
    app.include_router(schema.router, dependencies=READERS)
    app.include_router(communes.router, dependencies=READERS)
    app.include_router(analyses.router, dependencies=READERS)
    app.include_router(transfer.router, dependencies=READERS)
    app.include_router(maps.router, dependencies=READERS)
    app.include_router(pages.router, dependencies=READERS)
    app.include_router(package.router, dependencies=READERS)
    app.include_router(sync.router, dependencies=READERS)
    app.include_router(terrain.router, dependencies=READERS)
    app.include_router(sheets.router, dependencies=READERS)
    maps.mount_static(app, settings)
    app.add_middleware(
        WorkScope, settings=settings, workers=app.state.workers, cache=app.state.answers
    )
    app.add_middleware(ReaderCaching, settings=settings)
    app.add_middleware(ReadYourWrites)  # reads on standbys see the client's own writes
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(Fairness, settings=settings)
    app.add_middleware(Compression)  # gzip for clients that accept it
    app.add_middleware(Methods, router=app.router)  # HEAD as GET, OPTIONS, Allow on 405s
    if settings.cors_origins:  # scripts of other sites; preflights answered here
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=list(ORDER),
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, settings=settings)  # outermost: on 413s too
    return app
