"""Security headers on every response, and the Content-Security-Policy of HTML pages.

Every response says ``X-Content-Type-Options: nosniff`` (a browser never runs an uploaded or
exported file as a script or page because it looks like one) and a ``Referrer-Policy``.
HTML pages also carry a CSP listing what they really load: our own /static/ libraries and
/tiles/ (same origin), inline scripts and styles (folium writes each map as inline code; every
property value in it is escaped, tests/maps check that nothing from a feature runs), the
basemap's tile server when ``GEO_COMUNA_TILE_URL`` names one, and nothing else: no other
script origin, no plugins, no ``<base>`` or form posts elsewhere.

A page may be framed by our own pages only (``frame-ancestors 'self'``, ``X-Frame-Options:
SAMEORIGIN``) except the maps asked for with ``?embed=true``, whose point is an <iframe> on
another site: they allow ``GEO_COMUNA_EMBED_ORIGINS`` (default: any, local files too) and
carry no X-Frame-Options, which cannot express that. The API docs pages (/docs, /redoc) load
Swagger UI and ReDoc from our own /static/ too (api/openapi.py), so they get the same CSP: no
CDN at all.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_comuna.settings import Settings

REFERRER_POLICY = "strict-origin-when-cross-origin"


def tile_origin(tile_url: str | None) -> str | None:
    """The origin a basemap's tiles come from, for img-src; ``{s}`` subdomains as ``*``."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(settings: Settings, frame_ancestors: str | None = "'self'") -> str:
    """The CSP of our HTML pages; ``frame_ancestors``: who may put the page in an <iframe>
    (None: anyone, a file on someone's laptop included)."""
    sources = {
        "default-src": "'self'",
        "script-src": "'self' 'unsafe-inline'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:",
        "frame-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }
    if frame_ancestors is not None:
        sources["frame-ancestors"] = frame_ancestors
    basemap = tile_origin(settings.tile_url)
    if basemap:
        sources["img-src"] += f" {basemap}"
    return "; ".join(f"{name} {value}" for name, value in sources.items())


def embed_headers(settings: Settings) -> dict[str, str]:
    """Headers of a page made for other sites' <iframe>s (maps with ?embed=true). Allowed to
    any site (the default), the CSP names no frame-ancestors at all: ``frame-ancestors *``
    matches network schemes only, and a report saved on a laptop and opened from its disk
    (file://) showed blank frames (found from outside). Allowed to some sites, our own pages
    stay among them: the report and the embed page frame the maps (found from outside: with
    GEO_COMUNA_EMBED_ORIGINS set, every map of the report was a blocked frame)."""
    origins = settings.embed_origins
    allowed = None if "*" in origins else " ".join(["'self'", *origins])
    return {"Content-Security-Policy": page_csp(settings, allowed)}


class SecurityHeaders:
    """nosniff and Referrer-Policy everywhere; a CSP and X-Frame-Options on HTML responses
    that do not set their own (embed pages do, see ``embed_headers``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.page = page_csp(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.page

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                html = headers.get("content-type", "").startswith("text/html")
                if html and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = csp
                    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
            await send(message)

        await self.app(scope, receive, with_headers)
