"""Pages for people: the index of communes (/communes) and of maps (/maps), and what an OGC
API route (/, /collections, items, an item) adds to answer with its HTML page (maps/pages.py)
instead of JSON.

A route gives its page for ``f=html``, or when the request's Accept header prefers text/html
to JSON, as a browser's does (``text/html,...,*/*;q=0.8``); clients of the API (QGIS, GDAL,
OWSLib, curl) ask for JSON or anything (``*/*``) and get JSON as before. The page's language
is ``lang`` when given, else the browser's Accept-Language, else Spanish (api/negotiation.py
decides both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from psycopg import AsyncConnection

from geo_comuna.accounts import Access
from geo_comuna.api.deps import LANGS, Conn, ReaderAccess, SettingsDep
from geo_comuna.api.hosts import base_url
from geo_comuna.api.negotiation import page_lang
from geo_comuna.features.query import require_commune
from geo_comuna.maps import data, pages
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings

router = APIRouter(tags=["pages"])
PageLang = Annotated[
    str | None,
    Query(pattern=LANGS, description="language of the page (default: the browser's, else es)"),
]
#: the media types a route's HTML page adds to its JSON (for f=html and Accept)
HTML_CONTENT = {"text/html": {}}


def html(text: str, etag: str | None = None) -> HTMLResponse:
    """A page whose body depends on Accept: caches must key on it; with its ``etag``, a
    browser's next visit is a 304 when it is current."""
    headers = {"Vary": "Accept, Accept-Language"}
    if etag is not None:
        headers["ETag"] = etag
    return HTMLResponse(text, headers=headers)


async def _index(
    request: Request, conn: AsyncConnection, settings: Settings, access: Access, which: Callable
) -> HTMLResponse:
    """An index of every commune, written by ``which`` (maps/pages.py)."""
    chosen = page_lang(request)
    styles = Styles.load(settings.styles_path)
    rows = await pages.communes(conn, access, styles, chosen)
    return html(which(base_url(request, settings), chosen, rows, styles))


@router.get("/communes", response_class=HTMLResponse, summary="Index of communes (a page)")
async def communes_index(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    access: ReaderAccess,
    lang: PageLang = None,
) -> HTMLResponse:
    """Every commune with its states, area and links to its map, report and field package."""
    return await _index(request, conn, settings, access, pages.communes_index)


@router.get("/maps", response_class=HTMLResponse, summary="Index of maps (a page)")
async def maps_index(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    access: ReaderAccess,
    lang: PageLang = None,
) -> HTMLResponse:
    """The national map, and each commune's map and analysis maps."""
    return await _index(request, conn, settings, access, pages.maps_index)


@router.get(
    "/communes/{commune}/sync",
    response_class=HTMLResponse,
    summary="Send a commune's field package back (a page)",
)
async def sync_page(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune: Annotated[str, Path(description="commune id or registry code")],
    lang: PageLang = None,
) -> HTMLResponse:
    """A form for the package's file and an editor's token: it checks the sync first (a dry
    run) and then writes it, through ``POST /communes/{commune}/sync`` as any client."""
    info = await data.commune_info(conn, await require_commune(conn, commune))
    return html(
        pages.sync_page(base_url(request, settings), page_lang(request), info.code, info.name)
    )
