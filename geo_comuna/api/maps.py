"""Maps as HTML pages, the iframe snippet to embed them, vector tiles, the commune report, and
the map libraries served by the app itself (no CDN).

``?embed=true`` gives a page made for an <iframe>, on other sites too (api/headers.py: the only
pages other origins may frame); ``?standalone=true`` one self-contained
file that works with no network. Feature data inside pages and tiles is built by PostGIS.

Pages and tiles hold what their reader may read (the registry's read rules), so whatever
depends on the reader goes out ``private`` (with ``Vary: Authorization``, api/app.py): a shared
cache never hands one reader's page or tile to another. Only tiles that carry nothing
members-only (parcels' tiles hold no notes), on a server whose reads are public, are
``public``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import escape
from starlette.types import Scope

from geo_comuna.accounts import Access, User
from geo_comuna.analysis.base import parse_params
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api import etags
from geo_comuna.api.deps import (
    Commune,
    CommuneFilter,
    Conn,
    LabelLang,
    Reader,
    ReaderAccess,
    SettingsDep,
    Tiles,
)
from geo_comuna.api.headers import embed_headers
from geo_comuna.api.hosts import base_url
from geo_comuna.api.negotiation import page_lang, wants_html
from geo_comuna.api.parameters import own_parameters, single_values
from geo_comuna.errors import InvalidInput, NotFound, Said, said
from geo_comuna.features import tiles
from geo_comuna.features.filters import Filters
from geo_comuna.layers import get_layer
from geo_comuna.maps import assets, data
from geo_comuna.maps.analysis_map import analysis_map, analysis_title, known
from geo_comuna.maps.commune import commune_map
from geo_comuna.maps.national import national_map
from geo_comuna.maps.page import Page
from geo_comuna.maps.report import report
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings

router = APIRouter(tags=["maps"])
Embed = Annotated[bool, Query(description="a page for an <iframe>: only the map")]
Standalone = Annotated[
    bool,
    Query(
        description="one self-contained HTML file that works "
        "offline (every script, style and feature "
        "inlined)"
    ),
]
MAP_QUERY = {"lang", "embed", "standalone"}
TILE_TYPE = "application/vnd.mapbox-vector-tile"


def _page(
    settings: Any,
    lang: str,
    embed: bool,
    standalone: bool,
    access: Access,
    reader: User | None = None,
) -> Page:
    return Page(
        lang=lang,
        embed=embed,
        standalone=standalone,  # type: ignore[arg-type]
        tile_url=settings.tile_url,
        tile_threshold=settings.map_tile_threshold,
        access=access,
        reader=reader,
        styles_path=settings.styles_path,
        web_assets_dir=settings.web_assets_dir,
    )


#: a downloaded file's name in Spanish (report-1-es.html came in a Spanish page)
_NAMES_ES = {"communes": "comunas", "commune": "comuna", "report": "informe"}


def _named(stem: str, lang: str) -> str:
    """A downloaded page's file name, its first word in the page's language."""
    word, _, rest = stem.partition("-")
    if lang == "es":
        word = _NAMES_ES.get(word, word)
    return f"{word}{'-' if rest else ''}{rest}-{lang}.html"


def _html(
    request: Request,
    html: str,
    standalone: bool,
    filename: str,
    embed_for: Settings | None = None,
) -> Response:
    """``embed_for``: the page is made for other sites' <iframe>s (api/headers.py). A map
    is the same bytes for the same data (maps/page.py steady_ids), so its ETag is their
    digest: a browser that has it gets a 304 and nothing more on a slow line (the page is
    still built; what it reads is too many tables to know it unchanged beforehand)."""
    body = html.encode()
    # a page holds what its reader may read: kept by the reader's own browser only
    headers = {
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Language",
        "ETag": f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"',
    }
    if standalone:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if embed_for is not None:
        headers.update(embed_headers(embed_for))
    if etags.fresh(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


def _snippet(
    request: Request,
    settings: Any,
    path: str,
    lang: str,
    title: str,
    asked: dict[str, Any] | None = None,
) -> Any:
    """The <iframe> for ``path``'s map, with the analysis parameters ``asked``: as JSON, or
    as a page for a person's browser."""
    base = base_url(request, settings)
    asked = asked or {}
    url = f"{base}{path}?{urlencode({**asked, 'embed': 'true', 'lang': lang})}"
    html = (
        f'<iframe src="{escape(url)}" title="{escape(title)}" width="100%" height="480" '
        f'style="border:0" loading="lazy" allowfullscreen></iframe>'
    )
    snippet = {
        "url": url,
        "html": html,
        "standalone_url": f"{base}{path}?"
        + urlencode({**asked, "standalone": "true", "lang": lang}),
    }
    if not base.startswith(("http://", "https://")):
        host = request.url.hostname
        snippet["warning"] = said(
            Said(
                f"the address is relative: host {host!r} is not a trusted one, so the "
                "snippet works only on this server's own pages; set GEO_COMUNA_PUBLIC_URL (or "
                "add the host to GEO_COMUNA_TRUSTED_HOSTS)",
                f"la dirección es relativa: {host!r} no es un servidor de confianza, así que el "
                "código solo funciona en las páginas de este mismo servidor; defina "
                "GEO_COMUNA_PUBLIC_URL (o añada el servidor a GEO_COMUNA_TRUSTED_HOSTS)",
            ),
            lang,
        )
    if wants_html(request):  # a person who followed the map's "Insertar" link
        return _snippet_page(snippet, title, page_lang(request))
    return snippet


#: what an embed snippet comes as: JSON for a program, a page for a person (_snippet_page)
SNIPPET_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/html": {}}}
}
#: the words of the page that hands over a map's <iframe>
_SNIPPET_WORDS = {
    "es": {
        "title": "Insertar el mapa",
        "how": "Copie este código (manténgalo pulsado en un teléfono; Ctrl+C en un teclado) y "
        "péguelo en la página o el informe donde quiera el mapa:",
        "file": "Un mapa que funciona sin conexión: descargar el archivo HTML",
        "preview": "Así se verá:",
        "back": "Volver al mapa",
    },
    "en": {
        "title": "Embed the map",
        "how": "Copy this code (press and hold it on a phone; Ctrl+C on a keyboard) and paste "
        "it into the page or report where you want the map:",
        "file": "A map that works offline: download the HTML file",
        "preview": "What it will look like:",
        "back": "Back to the map",
    },
}


def _snippet_page(snippet: dict[str, str], title: str, lang: str) -> HTMLResponse:
    """The <iframe> code as a page for a person: a box to copy it from, the offline file,
    and the map as it will show. It was the JSON document, escaped markup and all."""
    words = _SNIPPET_WORDS[lang]
    back = snippet["url"].replace("embed=true", "embed=false")
    warning = f'<p class="warn">{escape(snippet["warning"])}</p>' if "warning" in snippet else ""
    body = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        '<link rel="icon" href="data:,"/>'  # no request for /favicon.ico (a 404 in the console)
        f"<title>{escape(words['title'])} · {escape(title)}</title><style>body{{font:16px/1.5 "
        "system-ui,Arial,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
        "color:#1b1b1b}h1{font-size:1.4rem;color:#08519c}textarea{width:100%;font:13px "
        "ui-monospace,monospace;box-sizing:border-box}.warn{background:#fff3cd;padding:.5rem}"
        "</style></head><body>"
        f"<h1>{escape(words['title'])}: {escape(title)}</h1>{warning}"
        f'<p><label for="code">{escape(words["how"])}</label></p>'
        f'<textarea id="code" rows="4" readonly>{escape(snippet["html"])}</textarea>'
        f'<p><a href="{escape(snippet["standalone_url"])}">{escape(words["file"])}</a> · '
        f'<a href="{escape(back)}">{escape(words["back"])}</a></p>'
        f"<p>{escape(words['preview'])}</p>{snippet['html']}</body></html>"
    )
    return HTMLResponse(body, headers={"Vary": "Accept, Accept-Language"})


@router.get(
    "/maps/national",
    response_class=HTMLResponse,
    summary="National map: communes by state and status, the exchange network",
)
async def national(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    access: ReaderAccess,
    lang: LabelLang,
    embed: Embed = False,
    standalone: Standalone = False,
) -> Response:
    html = await national_map(conn, _page(settings, lang, embed, standalone, access))
    named = _named("communes", lang)
    return _html(request, html, standalone, named, settings if embed else None)


@router.get(
    "/maps/national/embed-snippet",
    summary="The <iframe> to paste for the national map",
    responses=SNIPPET_FORMATS,
)
async def national_snippet(
    request: Request, settings: SettingsDep, lang: LabelLang
) -> dict[str, str]:
    title = "Comunas de Venezuela" if lang == "es" else "Venezuela's communes"
    return _snippet(request, settings, "/maps/national", lang, title)


@router.get("/maps/communes/{commune}", response_class=HTMLResponse, summary="A commune's map")
async def commune(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune_id: Commune,
    access: ReaderAccess,
    user: Reader,
    lang: LabelLang,
    embed: Embed = False,
    standalone: Standalone = False,
) -> Response:
    """Every layer of the commune. Readers outside it see its dwellings per sector (count of
    homes, residents, homes without piped water…) instead of one point per home, and no
    residents or notes; its own users and admins see everything. The parcels' holders are
    named for the commune's editors and admins only (others see their kind), as are the
    photos' positions."""
    page = _page(settings, lang, embed, standalone, access, user)
    html = await commune_map(conn, commune_id, page)
    return _html(
        request,
        html,
        standalone,
        _named(f"commune-{await data.file_code(conn, commune_id)}", lang),
        settings if embed else None,
    )


@router.get(
    "/maps/communes/{commune}/embed-snippet",
    summary="The <iframe> to paste for a commune's map",
    responses=SNIPPET_FORMATS,
)
async def commune_snippet(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune_id: Commune,
    lang: LabelLang,
) -> dict[str, str]:
    info = await data.commune_info(conn, commune_id)
    return _snippet(
        request, settings, f"/maps/communes/{quote(info.code, safe='')}", lang, info.name
    )


@router.get(
    "/maps/communes/{commune}/{analysis}",
    response_class=HTMLResponse,
    summary="A commune's map of one analysis",
)
@own_parameters  # the analysis' own (parse_params)
async def analysis(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune_id: Commune,
    analysis: str,
    access: ReaderAccess,
    lang: LabelLang,
    embed: Embed = False,
    standalone: Standalone = False,
) -> Response:
    """Other query parameters are the analysis' own (GET /communes/X/analyses lists them).
    An analysis of homes shows readers outside the commune its per-sector figures only."""
    params = _params(request, analysis, MAP_QUERY)
    html = await analysis_map(
        conn, commune_id, analysis, _page(settings, lang, embed, standalone, access), params
    )
    return _html(
        request,
        html,
        standalone,
        _named(f"commune-{await data.file_code(conn, commune_id)}-{analysis}", lang),
        settings if embed else None,
    )


@router.get(
    "/maps/communes/{commune}/{analysis}/embed-snippet",
    summary="The <iframe> to paste for an analysis map",
    responses=SNIPPET_FORMATS,
)
@own_parameters  # the analysis' own, as the map takes them
async def analysis_snippet(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune_id: Commune,
    analysis: str,
    lang: LabelLang,
) -> dict[str, str]:
    """Other query parameters are the analysis' own: the snippet's map is drawn with them."""
    styles = Styles.load(settings.styles_path)
    if not known(analysis, styles):
        raise NotFound(
            Said(f"no analysis named {analysis!r}", f"no hay ningún análisis llamado {analysis!r}")
        )
    params = _params(request, analysis, {"lang"})
    asked = {} if params is None else params.model_dump(mode="json", exclude_defaults=True)
    info = await data.commune_info(conn, commune_id)
    title = f"{info.name} — {analysis_title(analysis, styles, lang)}"
    path = f"/maps/communes/{quote(info.code, safe='')}/{quote(analysis, safe='')}"
    return _snippet(request, settings, path, lang, title, asked)


def _params(request: Request, analysis: str, route_takes: set[str]) -> Any:
    """The analysis parameters of a map's query (besides the route's own), checked; None
    for a map with no analysis behind it, which takes only the route's own."""
    installed = all_analyses().get(analysis)
    values = single_values(request, route_takes)
    if installed is not None:
        return parse_params(installed.params, values, route_takes)
    if values:
        given, takes = ", ".join(sorted(values)), ", ".join(sorted(route_takes))
        raise InvalidInput(
            Said(
                f"unknown query parameters {given}; this map takes {takes}",
                f"parámetros desconocidos: {given}; este mapa admite {takes}",
            )
        )
    return None


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.pbf",
    summary="Vector tile (MVT) of a layer",
    response_class=Response,
    responses={200: {"content": {TILE_TYPE: {}}}},
)
async def tile(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    access: ReaderAccess,
    cache: Tiles,
    layer: str,
    z: int,
    x: int,
    y: int,
    commune_id: CommuneFilter,
    v: Annotated[
        int | None, Query(description="layer version; makes the URL cacheable for long")
    ] = None,
) -> Response:
    """Web Mercator z/x/y; one MVT layer named after the layer, with the properties the map
    styles show. ETag is the layer's version: a repeat request gets 304 until a write.

    Where read rules apply to what a tile carries (homes: their positions), each reader gets
    what they may read (homes of their communes only): such tiles are ``private`` and vary
    with the token. So is every tile when reads need a token."""
    target = get_layer(layer)
    tiles.check_tile(z, x, y)
    version = await data.layer_version(conn, target)
    names = Styles.load(settings.styles_path).slim_properties(target)
    personal = tiles.depends_on_reader(target, names)
    # readers with one key read the same tile; "-" when every reader reads the same
    reader = "-".join(map(str, access.key)) if personal else "-"
    etag = f'"{target.name}-{version}-{commune_id}-{z}-{x}-{y}-{reader}"'
    shared = not personal and settings.reads == "public"
    lasting = v == version and not personal
    cache_control = f"{'public' if shared else 'private'}, " + (
        "max-age=31536000, immutable" if lasting else "max-age=60, must-revalidate"
    )
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if shared:  # what anyone may read, drawn by any site's map (docs/security.md)
        headers["Access-Control-Allow-Origin"] = "*"
    if etags.fresh(request, etag):  # weakly: a compressed tile came with W/ (compression.py)
        return Response(status_code=304, headers=headers)
    key = (target.name, version, commune_id, z, x, y, tuple(names), reader)
    body = cache.get(key)
    if body is None:
        body = await tiles.tile(
            conn, target, z, x, y, Filters(commune_id=commune_id), names, access
        )
        cache.put(key, body)
    return Response(body, media_type=TILE_TYPE, headers=headers)


@router.get(
    "/communes/{commune}/report",
    response_class=HTMLResponse,
    summary="A commune's report: figures, maps, print styles",
)
async def commune_report(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    commune_id: Commune,
    access: ReaderAccess,
    lang: LabelLang,
    download: Annotated[
        bool, Query(description="one HTML file with every map inlined, as an attachment")
    ] = False,
) -> Response:
    """Readers outside the commune get figures of residents only for groups of at least
    MIN_GROUP homes, and its maps as they would see them."""
    html = await report(conn, commune_id, _page(settings, lang, False, download, access))
    named = _named(f"report-{await data.file_code(conn, commune_id)}", lang)
    return _html(request, html, download, named)


class _Kept(StaticFiles):
    """A file asked for by its content (``?v=``, assets.Asset.url) may be kept for a year:
    a page of a new version names another. Without it, the browser asks each time (it
    re-checked 4-6 files per page, ~0.5 s at 400 ms of latency)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        named = b"v=" in scope.get("query_string", b"")
        if named and response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount_static(app: FastAPI, settings: Settings) -> None:
    """The web libraries (copied from npm into the package at set-up, Settings.web_assets_dir)
    and our runtime under /static/<package>/; a missing directory answers 404 rather than
    stopping the app."""
    for package, directory in assets.static_dirs(settings.web_assets_dir).items():
        app.mount(
            f"{assets.STATIC_PREFIX}/{package}",
            _Kept(directory=directory, check_dir=False),
            name=f"static-{package}",
        )
