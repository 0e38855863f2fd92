"""Shared request dependencies: settings, a pooled connection, the layer, the commune, the
language, paging, filters, the app's caches. Every router takes these from here, so a
parameter means the same on every route and is resolved in one place."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Header, Path, Query, Request
from psycopg import AsyncConnection
from starlette.convertors import Convertor, register_url_convertor

from geo_comuna import work
from geo_comuna.accounts import MAX_NOTE, Access, User, authenticate
from geo_comuna.api.consistency import SAFE
from geo_comuna.api.parameters import LANG_VALUES
from geo_comuna.api.scratch import Scratch
from geo_comuna.api.temporal import parse_datetime
from geo_comuna.errors import (
    Forbidden,
    InvalidAttribute,
    InvalidInput,
    PreconditionRequired,
    Said,
    Unauthorized,
    said,
)
from geo_comuna.features import cql, crs
from geo_comuna.features.attributes import check_value
from geo_comuna.features.filters import Filters
from geo_comuna.features.output import Output, parse_properties, parse_sortby
from geo_comuna.features.query import CountCache, require_commune
from geo_comuna.features.queryables import computed_names, computed_values
from geo_comuna.features.tiles import TileCache
from geo_comuna.layers import Layer, get_layer
from geo_comuna.layers.tenure import COLLECTIONS
from geo_comuna.preconditions import Preconditions
from geo_comuna.settings import Settings

#: query parameters every items request may carry besides property filters
RESERVED = {
    *(
        "limit",
        "offset",
        "after",
        "bbox",
        "bbox-crs",
        "commune",
        "f",
        "lang",
        "crs",
        "datetime",
    ),
    *("filter", "filter-lang", "filter-crs", "sortby", "properties"),
}
CRS84 = crs.CRS84.uri


#: the form of an upload of one file
ONE_FILE = frozenset({"file"})


async def only_form_fields(request: Request, names: frozenset[str]) -> None:
    """A multipart upload gives each of the route's ``names`` at most once and nothing else
    (the form FastAPI parsed for the route, read again from Starlette's cache). A 'crs'
    field was ignored, coordinates then read as lon/lat; of two 'file' parts the last was
    read without a word about the first."""
    form = await request.form()
    given = [key for key, _ in form.multi_items()]
    unknown = ", ".join(map(repr, sorted(set(given) - names)))
    twice = ", ".join(map(repr, sorted({key for key in given if given.count(key) > 1})))
    if not unknown and not twice:
        return
    en, es = [], []
    if unknown:
        en.append(f"unknown form field {unknown}")
        es.append(f"campo de formulario desconocido {unknown}")
    if twice:
        en.append(f"{twice} given more than once")
        es.append(f"{twice} dado más de una vez")
    takes = ", ".join(sorted(names))
    one = len(names) == 1
    raise InvalidInput(
        Said(
            f"{'; '.join(en)}: this upload takes the form field{'' if one else 's'} {takes}, "
            f"{'once' if one else 'once each'} (options go in the query: ?crs=, ?mode=...)",
            f"{'; '.join(es)}: esta subida toma {'el campo' if one else 'los campos'} {takes}, "
            f"{'una sola vez' if one else 'una vez cada uno'} (las opciones van en la consulta: "
            "?crs=, ?mode=...)",
        )
    )


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_counts(request: Request) -> CountCache:
    return request.app.state.counts


async def get_scratch(request: Request) -> Scratch:
    return request.app.state.scratch


async def get_tiles(request: Request) -> TileCache:
    """The app's tile cache (made by create_app, bounded: features/tiles.py)."""
    return request.app.state.tiles


@asynccontextmanager
async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection: a standby's for reads when there are standbys (db/replicas.py;
    one that has replayed the client's own last write, api/consistency.py), else the
    primary's. A heavy request's queries (api/fairness.py) are cancelled at its
    deadline, not only at the statement timeout: a slow analysis must not hold its slot and
    its connection on after its answer could still come in time. Within it the request may
    have a second one for statements that can run side by side (work.spare_connection)."""
    state = request.scope.setdefault("state", {})
    databases = request.app.state.databases
    read = request.method in SAFE

    @asynccontextmanager
    async def spare() -> AsyncIterator[AsyncConnection | None]:
        async with databases.spare(read=read, after=state.get("read_after")) as other:
            if other is None:
                yield None
                return
            async with _within_deadline(request, other):
                yield other

    async with databases.connection(read=read, after=state.get("read_after")) as (conn, server):
        state["read_from"] = server
        with work.lending(spare):
            async with _within_deadline(request, conn):
                yield conn


@asynccontextmanager
async def _within_deadline(request: Request, conn: AsyncConnection) -> AsyncIterator[None]:
    """A heavy request's statements on ``conn`` time out at its deadline."""
    remaining = work.remaining() if request.scope.get("state", {}).get("heavy") else None
    if remaining is None:
        yield
        return
    ms = max(1, min(int(remaining * 1000), request.app.state.settings.statement_timeout_ms))
    await conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(ms),))
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # a broken connection leaves the pool
            await conn.execute("RESET statement_timeout")


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """The request's pooled connection (connection() above), as a dependency."""
    async with connection(request) as conn:
        yield conn


class _NotTenure(Convertor[str]):
    """``{collection_id:not_tenure}``: a collection's name in a path, any but the land
    records' (parties, rights), which have routes of their own (api/tenure.py). So the
    items routes can come first in the app's list, which FastAPI walks for each request
    (behind the land records' 28 routes they were ~5 % of a one-feature request,
    bench/README.md), and a PUT of a land record is a 405 naming the methods it takes, not
    a layer's route saying there is no such layer. A name that is no layer still reaches
    the routes, and its 404 says which are."""

    regex = "(?!(?:" + "|".join(re.escape(name) for name in COLLECTIONS) + ")/)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("not_tenure", _NotTenure())


#: a layer's name in a path
CollectionId = Annotated[str, Path(description="layer name")]


async def get_layer_dep(collection_id: CollectionId) -> Layer:
    return get_layer(collection_id)


SettingsDep = Annotated[Settings, Depends(get_settings)]
Conn = Annotated[AsyncConnection, Depends(get_conn)]
LayerDep = Annotated[Layer, Depends(get_layer_dep)]
Counts = Annotated[CountCache, Depends(get_counts)]
ScratchDep = Annotated[Scratch, Depends(get_scratch)]
Tiles = Annotated[TileCache, Depends(get_tiles)]

#: ``?lang=``: Spanish (the default) or English
LANGS = f"^({'|'.join(LANG_VALUES)})$"
#: the language of a document's titles (collections, queryables, schemas)
Lang = Annotated[str, Query(pattern=LANGS, description="language of titles")]
#: ``?note=``: why a write is made (accounts.writing)
ChangeNote = Annotated[
    str | None,
    Query(
        max_length=MAX_NOTE,
        description="why the change is made: a parcel's tenure history and the audit record it "
        "(e.g. the file number of its regularization)",
    ),
]


def label_lang(
    request: Request,
    lang: Annotated[
        str | None,
        Query(
            pattern=LANGS,
            description="language of labels (default: the browser's Accept-Language, else es)",
        ),
    ] = None,
) -> str:
    """A map's, a report's or a sheet's language: ``?lang=``, else the first of Spanish or
    English the browser prefers, else Spanish, as the pages for people do (an English
    browser got Spanish maps and reports)."""
    from geo_comuna.maps.pages import page_language

    return page_language(lang, request.headers.get("accept-language"))


#: the language of a map's, a report's or a sheet's labels
LabelLang = Annotated[str, Depends(label_lang)]

#: a commune as a path names it: its id (digits) or its registry code
CommuneRef = Annotated[str, Path(description="commune id or registry code")]


async def path_commune(conn: Conn, commune: CommuneRef) -> int:
    """The id of the commune the path names; a 404 naming the value when there is none."""
    return await require_commune(conn, commune)


#: ``?commune=``, a commune as a query names it
CommuneQuery = Annotated[str | None, Query(description="commune id or registry code")]


async def query_commune(conn: Conn, commune: CommuneQuery = None) -> int | None:
    """The id of the ``?commune=`` commune (None without one); a 404 naming the value when
    there is none."""
    return None if commune is None else await require_commune(conn, commune)


#: the id of the commune a route's path names
Commune = Annotated[int, Depends(path_commune)]
#: the id of the commune ``?commune=`` narrows a route to, or None
CommuneFilter = Annotated[int | None, Depends(query_commune)]


async def current_user(request: Request, conn: Conn, settings: SettingsDep) -> User | None:
    """The user of ``Authorization: Bearer <token>``; None without a header. When reads need
    a token (GEO_COMUNA_READS=token), a request without one is refused here."""
    return await user_of(request, conn, settings)


async def user_of(request: Request, conn: AsyncConnection, settings: Settings) -> User | None:
    """current_user's work, for a route that resolves its reader itself (reading())."""
    header = request.headers.get("authorization")
    if header is None:
        if settings.reads == "token":
            raise Unauthorized(
                Said(
                    "this server needs a token for reads too: Authorization: Bearer <token>",
                    "este servidor pide un token también para leer: Authorization: Bearer <token>",
                )
            )
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            Said(
                "use Authorization: Bearer <token>",
                "envíe el token en el encabezado Authorization: Bearer <token>",
            )
        )
    user = await authenticate(conn, token.strip())
    if user is None:
        raise Unauthorized(
            Said(
                "unknown or revoked token",
                "token desconocido o revocado: pida uno nuevo a quien administra el servidor",
            )
        )
    return user


@asynccontextmanager
async def reading(request: Request) -> AsyncIterator[tuple[AsyncConnection, Access]]:
    """What the readers' dependencies give a route (api/app.py READERS, Conn, ReaderAccess),
    resolved in one call: for the hottest read, one feature by id, whose answer takes less
    time in PostgreSQL than FastAPI takes to solve a dozen dependencies. The route runs
    check_request itself too."""
    # an override of get_conn (the tests' one connection, rolled back) applies here as it
    # does wherever get_conn is a dependency
    override = request.app.dependency_overrides.get(get_conn)
    source = connection(request) if override is None else asynccontextmanager(override)()
    async with source as conn:
        yield conn, Access.of(await user_of(request, conn, request.app.state.settings))


async def writer(request: Request, user: Annotated[User | None, Depends(current_user)]) -> User:
    if user is None and request.method in SAFE:  # a read only some may make (the audit)
        raise Unauthorized(
            Said(
                "this needs a token: Authorization: Bearer <token> "
                "(geo-comuna users add NAME --role admin)",
                "esto necesita un token: Authorization: Bearer <token> "
                "(geo-comuna users add NOMBRE --role admin)",
            )
        )
    if user is None:
        raise Unauthorized(
            Said(
                "writing needs a token: Authorization: Bearer <token> "
                "(geo-comuna users add NAME --role editor --commune CODE)",
                "para escribir hace falta un token: Authorization: Bearer <token> "
                "(geo-comuna users add NOMBRE --role editor --commune CÓDIGO)",
            )
        )
    return user


async def admin(user: Annotated[User, Depends(writer)]) -> User:
    if user.role != "admin":
        raise Forbidden(
            Said(
                f"user {user.name!r} is not an admin",
                f"el usuario {user.name!r} no es administrador",
            )
        )
    return user


async def conditions(
    settings: SettingsDep,
    match: Annotated[
        str | None,
        Header(alias="If-Match", description="ETag read earlier; 412 if it changed"),
    ] = None,
    none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="ETags (or *) the change must not find stored; 412 if it does",
        ),
    ] = None,
) -> Preconditions:
    """The If-Match and If-None-Match of a change; with GEO_COMUNA_REQUIRE_IF_MATCH a change
    without If-Match is refused (428) instead of overwriting whatever is stored now."""
    # "*" matches any version: in this mode it would overwrite as blindly as no header
    if settings.require_if_match and (match is None or match.strip() == "*"):
        raise PreconditionRequired(
            Said(
                "this server requires the If-Match header on PUT, PATCH and DELETE: read the "
                "feature, then send its ETag back as If-Match",
                "este servidor exige la cabecera If-Match en PUT, PATCH y DELETE: lea la "
                "entidad y devuelva su ETag como If-Match",
            )
        )
    return Preconditions(match, none_match)


async def reader_access(user: Annotated[User | None, Depends(current_user)]) -> Access:
    """What of the registry's members-only data this request may read."""
    return Access.of(user)


Reader = Annotated[User | None, Depends(current_user)]
ReaderAccess = Annotated[Access, Depends(reader_access)]
Writer = Annotated[User, Depends(writer)]
Admin = Annotated[User, Depends(admin)]
Conditions = Annotated[Preconditions, Depends(conditions)]


Limit = Annotated[int | None, Query(ge=1, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=100_000_000)]
After = Annotated[
    int | None,
    Query(ge=0, le=2_147_483_647, description="the page after this feature id ('next' links)"),
]


async def paging(
    settings: SettingsDep, limit: Limit = None, offset: Offset = 0, after: After = None
) -> tuple[int, int, int | None]:
    """``limit`` items from ``offset``, or after the feature ``after`` (keyset: what the
    ``next`` links carry, as fast at any depth as the first page). A limit above the maximum
    page size is not an error (OGC API - Features Part 1): the page is the maximum, and the
    ``next`` links go on from there, so ``ogr2ogr -oo PAGE_SIZE=20000`` reads everything."""
    limit = settings.default_limit if limit is None else min(limit, settings.max_limit)
    if after is not None and offset:
        raise InvalidInput(
            Said(
                f"offset={offset} and after={after} name two starts: give one (the next links "
                "carry after)",
                f"offset={offset} y after={after} nombran dos comienzos: dé uno (los enlaces "
                "next llevan after)",
            )
        )
    return limit, offset, after


Paging = Annotated[tuple[int, int, int | None], Depends(paging)]
_CRS_HELP = f"coordinates: {', '.join(crs.URIS)}; EPSG:<code> for the EPSG ones"


def parse_bbox(
    value: str | None, bbox_crs: crs.Crs = crs.CRS84
) -> tuple[float, float, float, float] | None:
    """bbox in ``bbox_crs``'s axis order, as xmin, ymin, xmax, ymax (x: longitude or
    easting). West beyond east in degrees crosses the antimeridian."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidInput(
            Said(
                f"bbox {value!r} must be numbers: west,south,east,north",
                f"bbox {value!r} debe ser de números: oeste,sur,este,norte",
            )
        ) from None
    return crs.parse_bbox_numbers(numbers, value, bbox_crs)


# The query parameters of a page of features (api/features.py items), declared once here
Bbox = Annotated[str | None, Query(description="west,south,east,north in bbox-crs (default CRS84)")]
BboxCrs = Annotated[str | None, Query(alias="bbox-crs", description=_CRS_HELP)]
FilterText = Annotated[
    str | None, Query(alias="filter", description="a CQL2 filter over the queryables")
]
FilterLang = Annotated[
    str | None, Query(alias="filter-lang", description="cql2-text (default) or cql2-json")
]
FilterCrs = Annotated[
    str | None, Query(alias="filter-crs", description=f"CRS of the filter's {_CRS_HELP}")
]
Datetime = Annotated[
    str | None,
    Query(
        description="a date, an RFC 3339 date-time or an interval start/end ('..' open) "
        "matched against the layer's temporal property (parcels: recovered_on, "
        "communes: founded)"
    ),
]
Sortby = Annotated[
    str | None, Query(description="queryables to sort by, '-' for descending: -recovered_on")
]
Properties = Annotated[str | None, Query(description="the properties to include, comma-separated")]


async def filters(
    request: Request,
    layer: Layer,
    access: Access,
    commune_id: int | None,
    bbox: str | None,
    bbox_crs: str | None,
    filter_text: str | None,
    filter_lang: str | None,
    filter_crs: str | None,
    datetime: str | None,
) -> Filters:
    """bbox, commune, datetime, equality filters on any attribute (``?tenure=abandoned,occupied``)
    and a CQL2 filter (features/cql), all of which a feature must match."""
    interval = parse_datetime(datetime)
    if interval is not None and layer.temporal is None:
        raise InvalidInput(
            Said(
                f"{layer.name} has no date to filter by: datetime applies to layers with a "
                "temporal property (their collection has an extent.temporal)",
                f"{layer.name} no tiene fecha por la que filtrar: datetime se aplica a las capas "
                "con una propiedad temporal (su colección tiene extent.temporal)",
            )
        )
    # a CRS for a parameter that is not there would be ignored: a wrong answer
    for given, name, needs in (
        (bbox_crs, "bbox-crs", bbox),
        (filter_crs, "filter-crs", filter_text),
    ):
        if given is not None and needs is None:
            subject = name.split("-")[0]
            raise InvalidInput(
                Said(
                    f"{name} says the CRS of {subject}, and there is no {subject}",
                    f"{name} indica el CRS de {subject}, y no hay {subject}",
                )
            )
    if filter_lang is not None and filter_text is None:
        raise InvalidInput(
            Said(
                "filter-lang says the language of filter, and there is no filter",
                "filter-lang indica el lenguaje de filter, y no hay filter",
            )
        )
    box_crs = crs.parse(bbox_crs, "bbox-crs")
    geometry_crs = crs.parse(filter_crs, "filter-crs")
    canonical = None
    if filter_text is not None:  # off the event loop: a long filter takes some parsing
        canonical = await work.cpu(cql.parse, filter_text, filter_lang)
    props: dict[str, list] = {}
    # an unknown coded value is refused listing the labels in the page's language (?lang=en
    # listed the Spanish ones, as a POST with it did not)
    lang = "en" if request.query_params.get("lang") == "en" else "es"
    for name, raw in request.query_params.multi_items():
        if name in RESERVED:
            continue
        attr = layer.attribute(name)
        if attr is None and name in computed_names(layer):
            props.setdefault(name, []).extend(computed_values(layer, name, raw))
            continue
        if attr is None:
            queryable = sorted(
                a.name for a in layer.attributes if a.read == "public" or access.anywhere
            ) + computed_names(layer)
            raise InvalidInput(
                Said(
                    f"unknown query parameter {name!r}; {layer.name} can be filtered by "
                    f"{', '.join(queryable)}, and takes {', '.join(sorted(RESERVED))}",
                    f"parámetro desconocido {name!r}; {layer.name} se puede filtrar por "
                    f"{', '.join(queryable)}, y toma {', '.join(sorted(RESERVED))}",
                )
            )
        try:
            values = [check_value(layer, attr, v, None, lang=lang) for v in raw.split(",")]
        except InvalidAttribute as exc:
            raise InvalidInput(
                Said(
                    f"query parameter {name!r}: {said(exc.reason, 'en')}",
                    f"parámetro {name!r}: {said(exc.reason, 'es')}",
                )
            ) from None
        props.setdefault(name, []).extend(v for v in values if v is not None)
    return Filters(
        parse_bbox(bbox, box_crs),
        commune_id,
        props,
        bbox_crs=box_crs,
        cql=canonical,
        filter_crs=geometry_crs,
        interval=interval,
    )


#: ``?crs=``, the CRS a feature response's coordinates are in
CrsParam = Annotated[str | None, Query(alias="crs", description=_CRS_HELP)]


async def response_crs(value: CrsParam = None) -> crs.Crs:
    """The CRS a feature response's coordinates are in (Content-Crs)."""
    return crs.parse(value, "crs")


CrsDep = Annotated[crs.Crs, Depends(response_crs)]


async def content_crs(
    value: Annotated[
        str | None,
        Header(
            alias="Content-Crs",
            description="the CRS of the body's coordinates, e.g. "
            "<http://www.opengis.net/def/crs/EPSG/0/2202> (Part 2; default CRS84, lon/lat)",
        ),
    ] = None,
) -> crs.Crs:
    """The CRS a write's body is in (OGC API - Features Part 2's Content-Crs, as QGIS sends
    it for a layer in another CRS): a URI in angle brackets, or as ``?crs=`` takes it."""
    text = None if value is None else value.strip().removeprefix("<").removesuffix(">")
    return crs.parse(text, "Content-Crs")


ContentCrs = Annotated[crs.Crs, Depends(content_crs)]


def output(
    layer: Layer, access: Access, response: crs.Crs, sortby: str | None, properties: str | None
) -> Output:
    """The CRS, order and properties of the features a request gets (features/output.py)."""
    return Output(
        response,
        parse_sortby(layer, access, sortby),
        parse_properties(layer, access, properties),
    )


T = TypeVar("T")
#: how often an import looks whether its client is still there (s)
WATCH_SECONDS = 0.5


async def unless_gone(request: Request, step: Coroutine[Any, Any, T]) -> T:
    """``step``, cancelled (its transaction rolled back) once the client has gone: an import
    has no deadline, being long by nature, and one whose client had left went on reading for
    40 s, holding a heavy request's slot; a DEM whose uploader had left was stored all the
    same (found from outside)."""
    task = asyncio.ensure_future(step)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=WATCH_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise InvalidInput(
                    Said(
                        "the client went away before its upload was stored: nothing was written",
                        "el cliente se fue antes de que se guardara lo que subió: no se "
                        "escribió nada",
                    )
                )
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
