"""Pages for people: the index of communes (/communes) and of maps (/maps), and what decides
when an OGC API route (/, /collections, items, an item) answers with its HTML page
(maps/pages.py) instead of JSON.

A route gives its page for ``f=html``, or when the request's Accept header prefers text/html
to JSON, as a browser's does (``text/html,...,*/*;q=0.8``); clients of the API (QGIS, GDAL,
OWSLib, curl) ask for JSON or anything (``*/*``) and get JSON as before. The page's language
is ``lang`` when given, else the browser's Accept-Language, else Spanish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from psycopg import AsyncConnection

from geo_comuna.accounts import Access
from geo_comuna.api.deps import LANGS, Conn, ReaderAccess, SettingsDep, base_url
from geo_comuna.maps import pages
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings

router = APIRouter(tags=["pages"])
PageLang = Annotated[
    str | None,
    Query(pattern=LANGS, description="language of the page (default: the browser's, else es)"),
]
#: the media types a route's HTML page adds to its JSON (for f=html and Accept)
HTML_CONTENT = {"text/html": {}}
JSON_TYPES = ("application/json", "application/geo+json")


def _quality(header: str, media: str) -> float:
    """The q an Accept header gives ``media`` by name (not by */*): 0 when not named."""
    best = 0.0
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name.lower() != media:
            continue
        try:
            best = max(best, float(next((p[2:] for p in params if p.startswith("q=")), "1")))
        except ValueError:
            continue
    return best


def wants_html(request: Request) -> bool:
    """Does this request ask for the page? ``f=html``, or an Accept header naming text/html
    above every JSON type it names (``*/*`` alone is JSON: what curl and clients send)."""
    f = request.query_params.get("f")
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept") or ""
    html = _quality(accept, "text/html")
    return html > 0 and all(html > _quality(accept, media) for media in JSON_TYPES)


def page_lang(request: Request) -> str:
    return pages.page_language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )


def html(text: str) -> HTMLResponse:
    """A page whose body depends on Accept: caches must key on it."""
    return HTMLResponse(text, headers={"Vary": "Accept, Accept-Language"})


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
