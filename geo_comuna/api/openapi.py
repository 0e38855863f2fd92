"""The OpenAPI 3.0 document at /openapi.json: FastAPI's description of the routes, made into
one that GDAL, QGIS, OWSLib and code generators can act on.

What FastAPI writes is OpenAPI 3.1 with a single templated ``/collections/{collection_id}/
items``, no request bodies (the write routes read the raw body), a 422 no route sends and no
security scheme. Built once per app from it, the registry and the analyses registry:

- ``openapi: 3.0.3`` with 3.0 schema objects (api/oas30.py), as the conformance class
  ``oas30`` that /conformance claims says;
- every layer's own items and item paths, with its attributes as query parameters
  (api/openapi_layers.py) and its features as bodies (api/openapi_schemas.py);
- every analysis' own path with its parameters (its pydantic model's fields);
- ``limit`` with the server's default and maximum (#/components/parameters/limit);
- a Bearer security scheme: writes need it, reads take it (and need it when
  GEO_COMUNA_READS=token);
- application/problem+json responses for the statuses each operation can send (400, 401,
  403, 404, 409, 412, 413, 415, 422, 428, 429, 503), instead of FastAPI's 422.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api import deps, oas30
from geo_comuna.api.negotiation import asked_lang, page_lang
from geo_comuna.api.openapi_layers import ITEM, ITEMS, layer_paths, query, standard_parameters
from geo_comuna.api.openapi_schemas import geometry_schemas, layer_schemas, ref
from geo_comuna.api.parameters import LANG, LANG_VALUES
from geo_comuna.api.problems import PROBLEM
from geo_comuna.layers import LAYERS
from geo_comuna.maps.assets import REDOC, SWAGGER_UI
from geo_comuna.settings import Settings

OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
OPENAPI_VERSION = "3.0.3"
ANALYSIS = "/communes/{commune}/analyses/{name}"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")

#: what each problem status means here (components/responses)
PROBLEMS = {
    400: "A parameter or the body is not acceptable; `detail` names it and says why.",
    401: "No token, or an unknown, revoked or expired one, where one is needed "
    "(Authorization: Bearer <token>).",
    403: "The token may not do this (a viewer writing, an editor outside its communes, "
    "an outsider filtering by a members-only property).",
    404: "No such feature, commune, collection or analysis.",
    409: "The write conflicts with what is stored (a duplicate code, a reference to a "
    "missing feature).",
    412: "If-Match names a version that is no longer the stored one: read the feature again.",
    413: "The body, a geometry or the number of features is over the server's limits.",
    415: "A file format this server does not take.",
    422: "A feature's geometry or property (or a file, or a CRS) is not valid; `feature` "
    "says which, `detail` why.",
    428: "This server requires If-Match on PUT, PATCH and DELETE: read the feature, send "
    "its ETag back.",
    429: "Too many requests from this client; Retry-After says when to try again.",
    503: "The database timed out or is unreachable, or the work took too long; try later.",
}
#: what every route takes (api/parameters.py), where it declares no lang of its own
LANG_PARAMETER = {
    "name": LANG,
    "in": "query",
    "required": False,
    "description": "the language of the answer's words (a refusal's reasons at least): es or en",
    "schema": {"type": "string", "enum": list(LANG_VALUES)},
}
#: statuses some routes send beyond what their method and dependencies tell
EXTRA_PROBLEMS = {
    ("get", ITEMS): (403,),  # a members-only filter by an outsider
    ("get", "/collections/{collection_id}/export"): (415, 422),
    ("post", "/collections/{collection_id}/import"): (415,),
}


def install(app: FastAPI, settings: Settings) -> None:
    """/openapi.json (this module's document, built on first use), /docs and /redoc.
    ``create_app`` builds the FastAPI app with ``openapi_url=None`` so these are the only
    ones.

    The docs pages are FastAPI's, pointed at Swagger UI and ReDoc served by the app itself
    under /static/ (copied from npm into the package, maps/assets.py) instead of FastAPI's
    CDN defaults: they work offline and their CSP names no other site (api/headers.py). No
    Google fonts for ReDoc, and no online validator badge in Swagger UI (it would send the
    document to validator.swagger.io)."""
    here = settings.web_assets_dir
    swagger_js, swagger_css, favicon = (asset.url_in(here) for asset in SWAGGER_UI)
    (redoc_js,) = (asset.url_in(here) for asset in REDOC)
    built: dict[str, bytes] = {}

    def body(lang: str) -> bytes:
        if lang not in built:
            doc = document(app, settings)
            if lang == "es":
                doc = in_spanish(doc)
            built[lang] = json.dumps(doc, ensure_ascii=False).encode()
        return built[lang]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> Response:
        lang = asked_lang(request)  # a program's: English unless ?lang=es
        return Response(body(lang), media_type=OPENAPI_TYPE, headers={"Content-Language": lang})

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        lang = page_lang(request)
        page = get_swagger_ui_html(
            openapi_url=f"/openapi.json?lang={lang}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=swagger_js,
            swagger_css_url=swagger_css,
            swagger_favicon_url=favicon,
            # every tag closed until asked: with its ~140 operations open at once, Swagger UI
            # 5.35 stopped drawing after ~128 blocks (seen in Chromium), leaving most of the
            # API out of the page; a list of 20 tags to open is also easier to read
            swagger_ui_parameters={"validatorUrl": None, "docExpansion": "none"},
        )
        return _told(page, lang)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        lang = page_lang(request)
        page = get_redoc_html(
            openapi_url=f"/openapi.json?lang={lang}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=redoc_js,
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
        return _told(page, lang)


#: the way back from the docs pages to the site, by language
_BACK = {"es": "geo_comuna: volver al inicio", "en": "geo_comuna: back to the start"}


def _told(page: HTMLResponse, lang: str) -> HTMLResponse:
    """A docs page of FastAPI's, told its language (screen readers, translation offers)
    and given a link back to the site's home page in it."""
    html = bytes(page.body).decode()
    html = html.replace("<html>", f'<html lang="{lang}">', 1)
    html = html.replace("<body>", f'<body>\n<p><a href="/?lang={lang}">{_BACK[lang]}</a></p>', 1)
    return HTMLResponse(html, headers={"Content-Language": lang, "Vary": "Accept-Language"})


#: the groups of operations besides the layers' (a router's tags), as the docs pages head
#: them (x-displayName: ReDoc's heading; Swagger UI shows the name and the description);
#: a commune's own routes are under the communes layer's.
#: Found from outside: only the layers' were described, and six operations sat in "default"
TAGS = [
    {
        "name": "collections",
        "x-displayName": "The service and its collections",
        "description": "The landing page, conformance, the collections and their queryables "
        "and schemas (OGC API - Features)",
    },
    {
        "name": "analyses",
        "x-displayName": "Analyses",
        "description": "Planning analyses of one commune",
    },
    {
        "name": "land records",
        "x-displayName": "Land records",
        "description": "Parties and their rights over parcels, with their documents, and a "
        "parcel's printable sheet",
    },
    {
        "name": "import/export",
        "x-displayName": "Import and export",
        "description": "Files in and out: imports, exports, field packages and their sync",
    },
    {"name": "maps", "x-displayName": "Maps", "description": "Maps, map data and vector tiles"},
    {"name": "terrain", "x-displayName": "Terrain", "description": "Elevation models (DEMs)"},
    {"name": "pages", "x-displayName": "Pages", "description": "Pages for people"},
    {"name": "audit", "x-displayName": "Audit", "description": "The audit trail (admins)"},
]
#: the texts of a document a person reads, said in Spanish by openapi_es.json
SPOKEN = ("description", "summary", "x-displayName")


#: the document's descriptions and summaries in Spanish, by their English text
SPANISH = Path(__file__).with_name("openapi_es.json")


@cache
def _spanish() -> dict[str, str]:
    return json.loads(SPANISH.read_text(encoding="utf-8"))


def in_spanish(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each description and summary in Spanish (openapi_es.json; a text it does
    not hold stays English, and a test keeps it holding every one); names, types and
    values stay as they are: a program reads both documents alike."""
    words = _spanish()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: words.get(v, v) if k in SPOKEN and isinstance(v, str) else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc)


def document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The whole document (see the module's docstring)."""
    base = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=OPENAPI_VERSION,
        description=app.description,
        routes=app.routes,
    )
    calls = _route_calls(app)
    paths: dict[str, dict[str, Any]] = {}
    for path, item in base["paths"].items():
        paths[path] = {
            method: _operation(op, calls.get((method, path), set()), method, path, settings)
            for method, op in item.items()
        }
    items, item = paths.pop(ITEMS), paths.pop(ITEM)
    for layer in LAYERS.values():
        paths.update(layer_paths(layer, items, item))
    analysis = paths.pop(ANALYSIS)["get"]
    for name, path_item in _analysis_paths(analysis).items():
        paths[name] = path_item
    _layer_enum(paths)

    schemas = {
        name: oas30.schema(value)
        for name, value in base.get("components", {}).get("schemas", {}).items()
        if name not in ("HTTPValidationError", "ValidationError")
    }
    schemas.update(geometry_schemas())
    schemas.update(_shared_schemas())
    for layer in LAYERS.values():
        schemas.update(layer_schemas(layer))
    return {
        "openapi": OPENAPI_VERSION,
        "info": base["info"],
        "tags": [
            TAGS[0],
            *(
                {
                    "name": layer.name,
                    "x-displayName": layer.title.en,
                    "description": layer.description.en,
                }
                for layer in LAYERS.values()
            ),
            *TAGS[1:],
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": standard_parameters(settings),
            "responses": {
                str(status): {
                    "description": text,
                    "content": {PROBLEM: {"schema": ref("schemas", "Problem")}},
                    **(_RETRY_AFTER if status in (429, 503) else {}),
                }
                for status, text in PROBLEMS.items()
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `geo-comuna users add NAME --role ROLE`",
                }
            },
        },
    }


_RETRY_AFTER = {
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
}


def _operation(
    op: dict[str, Any], calls: set[Callable], method: str, path: str, settings: Settings
) -> dict[str, Any]:
    """One operation in 3.0, with its security and its problem responses."""
    out = oas30.operation(op)
    if "parameters" in out:
        out["parameters"] = _path_order(out["parameters"], path)
    if not any(p.get("name") == LANG for p in out.get("parameters", [])):
        out.setdefault("parameters", []).append(LANG_PARAMETER)
    responses = {k: v for k, v in out.get("responses", {}).items() if k != "422"}
    writes = deps.writer in calls or deps.admin in calls
    statuses = {401, 429, 503}
    params = out.get("parameters", [])
    if params or method in ("post", "put", "patch"):
        statuses.add(400)
    if any(p["in"] == "path" or p["name"] == "commune" for p in params):
        statuses.add(404)
    if writes:
        statuses.add(403)
    if method in ("post", "put", "patch"):
        statuses |= {409, 413, 422}
    if deps.conditions in calls:
        statuses.add(412)
        if settings.require_if_match:
            statuses.add(428)
    statuses |= set(EXTRA_PROBLEMS.get((method, path), ()))
    for status in sorted(statuses):
        responses[str(status)] = ref("responses", str(status))
    out["responses"] = responses
    if writes or settings.reads == "token":
        out["security"] = [{"bearerAuth": []}]
    else:  # anyone reads; a token unlocks members-only data of the reader's communes
        out["security"] = [{}, {"bearerAuth": []}]
    return out


def _path_order(params: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Path parameters in the order the path names them, the others as they come. FastAPI
    lists a route's own parameters before those of its dependencies (the commune a path
    names: api/deps.py), and clients generated from the document pass path parameters in
    the document's order."""

    def where(p: dict[str, Any]) -> int:
        return path.find("{" + p["name"] + "}") if p["in"] == "path" else len(path)

    return sorted(params, key=where)


def _route_calls(app: FastAPI) -> dict[tuple[str, str], set[Callable]]:
    """(method, path) -> every dependency its route runs. FastAPI 0.12x+ keeps included
    routers as such in ``app.routes``; ``iter_route_contexts`` walks their routes."""
    iterate = getattr(routing, "iter_route_contexts", None)
    out: dict[tuple[str, str], set[Callable]] = {}
    for route in iterate(app.routes) if iterate else app.routes:
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and route.include_in_schema:
            calls = set(_dependencies(route.dependant))
            for method in route.methods:
                out[(method.lower(), route.path_format)] = calls
    return out


def _dependencies(dependant: Dependant) -> Iterator[Callable]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def _analysis_paths(templated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``/communes/{commune}/analyses/<name>`` for every analysis, with its parameters: the
    fields of its pydantic model (defaults, bounds, units in the descriptions)."""
    out = {}
    for name, analysis in all_analyses().items():
        op = copy.deepcopy(templated)
        op["operationId"] = f"run_{name.replace('-', '_')}"
        op["summary"] = analysis.title_en
        op["tags"] = ["analyses"]
        model = analysis.params.model_json_schema()
        own = [
            query(
                field,
                {k: v for k, v in oas30.schema(value).items() if k not in ("description",)},
                value.get("description", ""),
            )
            for field, value in model.get("properties", {}).items()
        ]
        for param in own:
            param["schema"].pop("nullable", None)
            if param["schema"].get("default", 0) is None:
                del param["schema"]["default"]
            param["required"] = param["name"] in model.get("required", [])
        kept = [p for p in op.get("parameters", []) if p["name"] != "name"]
        op["parameters"] = kept + own
        out[f"/communes/{{commune}}/analyses/{name}"] = {"get": op}
    return out


def _layer_enum(paths: dict[str, dict[str, Any]]) -> None:
    """The routes still templated over layers (collection, queryables, import, export) name
    them: an enum of the registry's layers."""
    for item in paths.values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param.get("name") == "collection_id" and param.get("in") == "path":
                    param["schema"] = {**param["schema"], "enum": list(LAYERS)}


def _shared_schemas() -> dict[str, dict[str, Any]]:
    return {
        "Link": {
            "type": "object",
            "required": ["href", "rel"],
            "properties": {
                "href": {"type": "string"},
                "rel": {"type": "string"},
                "type": {"type": "string"},
                "title": {"type": "string"},
            },
        },
        "Problem": {
            "type": "object",
            "title": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "description": "urn:geo-comuna:problem:<code>"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "feature": {
                    "description": "the feature concerned: its id, or its position in the body",
                    "oneOf": [{"type": "integer"}, {"type": "string"}],
                },
                "layer": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        },
        "WriteResult": {
            "type": "object",
            "required": ["ids", "repairs"],
            "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}},
                "repairs": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
