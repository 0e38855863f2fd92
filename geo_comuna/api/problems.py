"""The one place where errors become HTTP responses: RFC 9457 application/problem+json.

Typed errors keep their status; malformed parameters are 400 naming the parameter; a database
that times out or is unreachable is 503. Anything else is a bug: logged, and a plain 500.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import escape
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from geo_comuna.api.hosts import base_url
from geo_comuna.api.negotiation import asked_lang, page_lang, wants_html
from geo_comuna.api.scratch import hide_paths
from geo_comuna.db.replicas import PRIMARY
from geo_comuna.errors import (
    GeoComunaError,
    NoSuchFormat,
    NotAcceptable,
    Said,
    TooSlow,
    pydantic_reason,
    said,
)

log = logging.getLogger("geo_comuna.api")
PROBLEM = "application/problem+json"


#: how to authenticate, on every 401 (RFC 6750)
BEARER = 'Bearer realm="geo_comuna"'


def problem(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    **extra: object,
) -> JSONResponse:
    """A problem+json body (RFC 9457); ``title``: the code's words in the language asked
    (the type stays the code, what programs go by)."""
    body = {
        "type": f"urn:geo-comuna:problem:{code}",
        "title": title or code.replace("-", " "),
        "status": status,
        "detail": hide_paths(detail),  # a library's words may name our scratch files
        **{k: v for k, v in extra.items() if v},
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _person(request: Request) -> str | None:
    """The language of a page to answer with, when a person's browser asked (text/html above
    JSON, or f=html); None for a program, which gets the problem as JSON."""
    return page_lang(request) if wants_html(request) else None


#: an error page's words, by language
_PAGE = {
    "es": {"home": "Volver al inicio", "error": "Error"},
    "en": {"home": "Back to the start", "error": "Error"},
}


def error_page(
    status: int,
    title: str,
    detail: str,
    lang: str,
    headers: dict[str, str] | None = None,
    details: list[str] | None = None,
) -> HTMLResponse:
    """An error as a page for a person, in ``lang``: a browser that followed a link to a
    commune that is not there got a problem document in English JSON. ``details``: each
    reason of many (a sync's refused features), listed under the first."""
    words = _PAGE[lang]
    text = escape(hide_paths(detail))
    listed = "".join(f"<li>{escape(hide_paths(d))}</li>" for d in details or [])
    body = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{status} · {escape(title)}</title><style>body{{font:16px/1.5 system-ui,"
        "Arial,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
        "h1{font-size:1.4rem;color:#08519c}</style></head><body>"
        f"<h1>{status} · {escape(title)}</h1><p>{text}</p>"
        + (f"<ul>{listed}</ul>" if listed else "")
        + f'<p><a href="/?lang={lang}">{words["home"]}</a></p></body></html>'
    )
    out = {**(headers or {}), "Vary": "Accept, Accept-Language"}
    return HTMLResponse(body, status_code=status, headers=out)


async def _typed(request: Request, exc: GeoComunaError) -> Response:
    headers = None
    if exc.status == 401:
        # a token was sent and refused (unknown, revoked, expired, malformed): say so
        sent = "authorization" in request.headers
        headers = {"WWW-Authenticate": BEARER + (', error="invalid_token"' if sent else "")}
    if isinstance(exc, TooSlow) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    # a format the resource does not come in (a page of /conformance): said in its own
    lang = None if isinstance(exc, NoSuchFormat | NotAcceptable) else _person(request)
    if lang is not None:
        title = exc.title_es if lang == "es" else exc.code.replace("-", " ")
        return error_page(exc.status, title, exc.said(lang), lang, headers, exc.listed(lang))
    # a program that asked for Spanish (?lang=es: the sync page's own requests, a client
    # showing the reasons to people) gets them in Spanish, its title too (found from
    # outside: "invalid input" above a Spanish detail); the type stays the code's
    asked = asked_lang(request)
    if asked == "es":
        headers = {**(headers or {}), "Content-Language": "es"}
    return problem(
        exc.status,
        exc.code,
        exc.said(asked),
        headers,
        exc.title_es if asked == "es" else None,
        feature=said(exc.feature, asked) if isinstance(exc.feature, str) else exc.feature,
        layer=exc.layer,
        details=[_detail(d, asked) for d in exc.details],
    )


def _detail(detail: Any, lang: str) -> Any:
    """One of a problem's details with its reason (and a feature named in words) in
    ``lang``."""
    if not isinstance(detail, dict):
        return detail
    out = dict(detail)
    for key in ("reason", "feature"):
        if isinstance(out.get(key), str):
            out[key] = said(out[key], lang)
    return out


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    lang = _person(request)
    spoken = lang or asked_lang(request)
    errors = [pydantic_reason(err, spoken) for err in exc.errors()]
    detail = "; ".join(errors) or "invalid request"
    if lang is not None:  # a browser's page, in its language
        title = "parámetro no válido" if lang == "es" else "invalid parameter"
        return error_page(400, title, detail, lang)
    # a program asking for Spanish gets its title too (found from outside: "invalid
    # parameter" above a Spanish detail), as a typed error's (_typed)
    if spoken == "es":
        return problem(
            400, "invalid-parameter", detail, {"Content-Language": "es"}, "parámetro no válido"
        )
    return problem(400, "invalid-parameter", detail)


#: a page that is not there, for a person
_NO_PAGE = {
    "es": ("no encontrado", "Esta dirección no existe."),
    "en": ("not found", "There is no such page."),
}


#: Starlette's own refusals, said in Spanish (found from outside: a 405 with ?lang=es was
#: "http error", "Method Not Allowed"): (title, detail) by status
_HTTP_ES = {
    404: _NO_PAGE["es"],
    405: (
        "método no permitido",
        "Esta dirección no admite este método (la cabecera Allow dice cuáles).",
    ),
}


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404 and (moved := _without_slash(request)) is not None:
        return moved
    lang = _person(request)
    if lang is not None:
        if exc.status_code == 404:
            title, detail = _NO_PAGE[lang]
            return error_page(404, title, detail, lang, exc.headers)
        return error_page(exc.status_code, _PAGE[lang]["error"], str(exc.detail), lang, exc.headers)
    if asked_lang(request) == "es" and exc.status_code in _HTTP_ES:
        title, detail = _HTTP_ES[exc.status_code]
        headers = {**(exc.headers or {}), "Content-Language": "es"}
        return problem(exc.status_code, "http-error", detail, headers, title)
    return problem(exc.status_code, "http-error", str(exc.detail), exc.headers)


def _without_slash(request: Request) -> Response | None:
    """A 307 to the address without its trailing slash, when that one is a route's: what
    Starlette's router does (``redirect_slashes``, turned off in api/app.py), with the
    address built as every link is (hosts.base_url). Found from outside: Starlette built it
    from the Host header as sent, GEO_COMUNA_PUBLIC_URL or not, a redirect to any host."""
    path = request.scope["path"]
    if path == "/" or not path.endswith("/"):
        return None
    scope = {**request.scope, "path": path.rstrip("/") or "/"}
    if all(route.matches(scope)[0] == Match.NONE for route in request.app.router.routes):
        return None
    query = request.scope.get("query_string", b"").decode("latin-1")
    # the path as a URL writes it again: a %3F or %23 the client sent stays one (decoded,
    # /items/2%3Ff%3Dhtml/ led to /items/2?f=html: found from outside)
    path = quote(scope["path"], safe="/:@!$&'()*+,;=~")
    target = base_url(request, request.app.state.settings) + path
    return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)


def _spoken(request: Request, status: int, code: str, text: Said) -> Response:
    """A problem of the server's own (not a typed error) in the language asked: a page for a
    person's browser, else problem+json (Spanish with ?lang=es)."""
    lang = _person(request)
    if lang is not None:
        return error_page(status, _PAGE[lang]["error"], said(text, lang), lang)
    asked = asked_lang(request)
    headers = {"Content-Language": "es"} if asked == "es" else None
    return problem(status, code, said(text, asked), headers)


async def _timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> Response:
    return _spoken(
        request,
        503,
        "query-timeout",
        Said(
            "the query took longer than the statement timeout; narrow it (bbox, commune, "
            "smaller limit) or try later",
            "la consulta tardó más que el límite de tiempo; acótela (bbox, commune, un limit "
            "menor) o vuelva a intentarlo más tarde",
        ),
    )


async def _out_of_range(request: Request, exc: psycopg.errors.NumericValueOutOfRange) -> Response:
    """A number from a request that PostgreSQL cannot compute with (underflow, overflow):
    the parameters' bounds should have caught it, the client still gets a 400, not a 500."""
    log.warning("a value out of range reached the database: %s", exc)
    return _spoken(
        request,
        400,
        "out-of-range",
        Said(
            "a number in the request is too large or too small to compute with",
            "un número de la petición es demasiado grande o demasiado pequeño para calcular con él",
        ),
    )


async def _unavailable(request: Request, exc: psycopg.OperationalError) -> Response:
    log.error("database unavailable: %s", exc)
    databases = getattr(request.app.state, "databases", None)
    state = request.scope.get("state", {})
    gone = unreachable(exc)
    if databases is not None and state.get("read_from", PRIMARY) == PRIMARY and gone:
        databases.found_down(waited=isinstance(exc, PoolTimeout))
    response = _spoken(
        request,
        503,
        "database-unavailable",
        Said(
            "the database is not reachable; try later",
            "no se llega a la base de datos; vuelva a intentarlo más tarde",
        )
        if gone  # else a statement failed (a deadlock, a lock not had): not "unreachable"
        else Said(
            "the database could not finish the request (a conflict with another write, or a "
            "lock not had in time); try again",
            "la base de datos no pudo terminar la petición (un conflicto con otra escritura, o "
            "un bloqueo no obtenido a tiempo); vuelva a intentarlo",
        ),
    )
    response.headers["Retry-After"] = str(RETRY_UNREACHABLE_S)
    return response


def unreachable(exc: psycopg.OperationalError) -> bool:
    """Did the server go away (no answer, a connection lost, PostgreSQL shutting down or
    starting), rather than a statement fail (a deadlock, a lock not had, a limit: an
    OperationalError too)? Only the former may tell the other requests to wait less for it:
    a statement anyone can make fail is no sign the database is down."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


#: what a 503 for an unreachable database tells a client to wait before it asks again
RETRY_UNREACHABLE_S = 5


def install(app: FastAPI) -> None:
    app.add_exception_handler(GeoComunaError, _typed)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _timeout)
    app.add_exception_handler(psycopg.OperationalError, _unavailable)
    app.add_exception_handler(psycopg.errors.NumericValueOutOfRange, _out_of_range)
