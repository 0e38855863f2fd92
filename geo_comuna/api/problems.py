"""The one place where errors become HTTP responses: RFC 9457 application/problem+json.

Typed errors keep their status; malformed parameters are 400 naming the parameter; a database
that times out or is unreachable is 503. Anything else is a bug: logged, and a plain 500.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_comuna.api.scratch import hide_paths
from geo_comuna.errors import GeoComunaError

log = logging.getLogger("geo_comuna.api")
PROBLEM = "application/problem+json"


#: how to authenticate, on every 401 (RFC 6750)
BEARER = 'Bearer realm="geo_comuna"'


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = {
        "type": f"urn:geo-comuna:problem:{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": hide_paths(detail),  # a library's words may name our scratch files
        **{k: v for k, v in extra.items() if v},
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _typed(request: Request, exc: GeoComunaError) -> JSONResponse:
    headers = None
    if exc.status == 401:
        # a token was sent and refused (unknown, revoked, expired, malformed): say so
        sent = "authorization" in request.headers
        headers = {"WWW-Authenticate": BEARER + (', error="invalid_token"' if sent else "")}
    return problem(
        exc.status,
        exc.code,
        exc.message,
        headers,
        feature=exc.feature,
        layer=exc.layer,
        details=exc.details,
    )


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        errors.append(f"{where}: {err.get('msg')}")
    return problem(400, "invalid-parameter", "; ".join(errors) or "invalid request")


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return problem(exc.status_code, "http-error", str(exc.detail), exc.headers)


async def _timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
    return problem(
        503,
        "query-timeout",
        "the query took longer than the statement timeout; narrow it (bbox, "
        "commune, smaller limit) or try later",
    )


async def _out_of_range(
    request: Request, exc: psycopg.errors.NumericValueOutOfRange
) -> JSONResponse:
    """A number from a request that PostgreSQL cannot compute with (underflow, overflow):
    the parameters' bounds should have caught it, the client still gets a 400, not a 500."""
    log.warning("a value out of range reached the database: %s", exc)
    return problem(
        400, "out-of-range", "a number in the request is too large or too small to compute with"
    )


async def _unavailable(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
    log.error("database unavailable: %s", exc)
    return problem(503, "database-unavailable", "the database is not reachable; try later")


def install(app: FastAPI) -> None:
    app.add_exception_handler(GeoComunaError, _typed)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _timeout)
    app.add_exception_handler(psycopg.OperationalError, _unavailable)
    app.add_exception_handler(psycopg.errors.NumericValueOutOfRange, _out_of_range)
