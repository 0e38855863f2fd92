"""What a request may ask of any route: the query parameters it takes, ``f`` and ``Accept``.

One rule for every route: a query parameter the route does not take is a 400 naming it and
the ones it does take (a typo such as ``?limt=10`` would otherwise be ignored and the answer
silently not what was asked). The parameters a route takes are those FastAPI reads for it,
which are also the ones its OpenAPI operation documents. A route whose parameters depend on
what it serves (items: the layer's attributes; analyses: the analysis' own) checks them
itself and says so with ``@own_parameters``.

A parameter that takes one value given twice with different values (``?bbox=...&bbox=...``)
is a 400 naming it: FastAPI would keep the last one and ignore the other, a wrong answer of
the same kind. Those a route reads as a list (an import's ``rename``, a layer's attribute
filters, ORed) may repeat.

One parameter may ride along: ``commune``. QGIS repeats the query of its connection URL in
every request to the landing page, a collection, its items and an item; an editor connects
with ``?commune=CODE`` so that QGIS reads, and asks what it may edit (api/editing.py), from
its own commune first. So every OGC API - Features route (``/``, ``/conformance``,
``/collections/...``) takes it: items and exports filter by it, the others carry it.

Formats: a GET route honours ``f`` for the JSON or HTML formats it serves:
``f=json`` (any JSON document: GeoJSON and JSON Schema too), ``f=geojson`` where it serves
GeoJSON, ``f=html`` where it serves a page; any other ``f`` is a 400. Without ``f``, an
``Accept`` header that admits none of the route's formats is a 406 (``application/json``
admits GeoJSON and JSON Schema: they are JSON). Both are checked before the route does any
work. A route serving several formats by a parameter of its own (analyses' ``f``, exports'
``format``) takes no ``f`` from here.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel

from geo_comuna.errors import InvalidInput, NoSuchFormat, NotAcceptable, Said

F = TypeVar("F", bound=Callable[..., Any])
#: each f value and the formats it names
F_VALUES: dict[str, frozenset[str]] = {
    "json": frozenset({"application/json", "application/geo+json", "application/schema+json"}),
    "geojson": frozenset({"application/geo+json"}),
    "html": frozenset({"text/html"}),
}


#: taken by every OGC API - Features route: the query of a client's connection URL
BASE_URL_PARAMETERS = frozenset({"commune"})
#: taken by every route: the language of the answer's words (a refusal's reasons at least;
#: api/negotiation.asked_lang), es or en
LANG = "lang"
LANG_VALUES = ("es", "en")


def ogc_api(path: str) -> bool:
    """Is this route one of OGC API - Features (landing page, conformance, collections)?"""
    return path in ("/", "/conformance") or path.startswith("/collections")


def own_parameters(endpoint: F) -> F:
    """Mark a route that checks its query parameters itself (they depend on what it serves)."""
    endpoint.own_parameters = True  # type: ignore[attr-defined]
    return endpoint


def query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route (its dependant, with every dependency) reads; a pydantic
    model read from the query (``Annotated[Params, Query()]``) stands for its fields."""
    return frozenset(_query_fields(dependant))


def _query_fields(dependant: Dependant) -> dict[str, Any]:
    """Each query parameter a route reads, and its type."""
    fields: dict[str, Any] = {}
    todo = [dependant]
    while todo:
        current = todo.pop()
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                fields |= {f.alias or name: f.annotation for name, f in model.model_fields.items()}
            else:
                fields[field.alias] = model
        todo.extend(current.dependencies)
    return fields


def _is_list(kind: Any) -> bool:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return any(_is_list(k) for k in get_args(kind))
    return origin in (list, set, frozenset, tuple)


def refuse_repeated(request: Request, names: Callable[[str], bool]) -> None:
    """A 400 for the first parameter given more than once, with different values, among
    those ``names`` says take one value. The same value twice is that value: QGIS adds its
    connection URL's query (``?commune=X``) to links that may carry it already."""
    values: dict[str, set[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, set()).add(value)
    repeated = sorted(name for name, seen in values.items() if len(seen) > 1 and names(name))
    if repeated:
        name = repeated[0]
        n = len(values[name])
        raise InvalidInput(
            Said(
                f"query parameter {name!r} is given {n} different values; it takes one (the "
                "others would be ignored)",
                f"el parámetro {name!r} tiene {n} valores distintos; admite uno (los demás se "
                "ignorarían)",
            )
        )


def single_values(request: Request, skip: set[str] | frozenset[str]) -> Mapping[str, str]:
    """A route's own parameters (an analysis'), each given once, but those in ``skip``."""
    refuse_repeated(request, lambda name: name not in skip)
    return {k: v for k, v in request.query_params.items() if k not in skip}


def formats(route: Any) -> frozenset[str]:
    """The media types a route answers with on success."""
    found = set()
    for status, spec in (getattr(route, "responses", None) or {}).items():
        if str(status).startswith("2"):
            found |= set((spec or {}).get("content", {}))
    response_class = getattr(route, "response_class", None)
    response_class = getattr(response_class, "value", response_class)  # FastAPI's Default()
    media = getattr(response_class, "media_type", None)
    if media:
        found.add(media)
    return frozenset(found)


def f_values(route: Any, method: str, names: frozenset[str]) -> list[str]:
    """The ``f`` values this route honours: on GET, those of the formats it serves, unless a
    parameter of its own picks the format (analyses' ``f``, exports' ``format``)."""
    if method != "GET" or names & {"f", "format"}:
        return []
    served = formats(route)
    return [value for value, media in F_VALUES.items() if served & media]


def accepts(header: str, served: frozenset[str]) -> bool:
    """Does an Accept header admit one of ``served``? (q=0 excludes; */* and type/* match;
    application/json admits any +json type.)"""
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        if not media:
            continue
        quality = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) <= 0:
                continue
        except ValueError:
            continue
        for offered in served:
            if media in ("*/*", offered, f"{offered.split('/')[0]}/*"):
                return True
            if media == "application/json" and offered.endswith("+json"):
                return True
    return not header.strip()


async def check_request(request: Request) -> None:
    """The dependency every route runs first (api/app.py)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    method = request.method
    fields = _query_fields(dependant)
    names = frozenset(fields)
    listed = {name for name, kind in fields.items() if _is_list(kind)}  # these may repeat
    refuse_repeated(
        request,
        lambda name: (
            (name in names or name in BASE_URL_PARAMETERS or name in ("f", LANG))
            and name not in listed
        ),
    )
    lang = request.query_params.get(LANG)
    if lang is not None and lang not in LANG_VALUES:
        raise InvalidInput(
            Said(
                f"lang={lang!r} is no language of this server: es or en",
                f"lang={lang!r} no es un idioma de este servidor: es o en",
            )
        )
    honoured = f_values(route, method, names)
    if not getattr(route.endpoint, "own_parameters", False):
        known = names | {LANG} | ({"f"} if honoured else set())
        if ogc_api(getattr(route, "path_format", "")):
            known |= BASE_URL_PARAMETERS
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "none"
            en = (
                f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; this route takes: {takes}"
            )
            es = (
                f"parámetro{'s' if len(unknown) > 1 else ''} desconocido"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; esta ruta "
                f"toma: {takes if known else 'ninguno'}"
            )
            if method == "POST" and getattr(route, "path_format", "").endswith("/items"):
                # OWSLib's collection_items(cql=...) POSTs a search here
                en += "; a POST to items adds features: to search them, GET items with filter="
                es += "; un POST a items añade entidades: para buscarlas, GET items con filter="
            raise InvalidInput(Said(en, es))
    if method != "GET" or "f" in names:
        return  # a route with an f of its own (analyses) chooses its format itself
    f = request.query_params.get("f")
    if f is not None:
        if f not in honoured:
            choices = ", ".join(f"f={v}" for v in honoured) or "no f"
            raise NoSuchFormat(
                Said(
                    f"f={f!r} is not a format of this resource; it takes {choices}",
                    f"f={f!r} no es un formato de este recurso; toma {choices}".replace(
                        "no f", "ningún f"
                    ),
                )
            )
        return  # f chooses the format, whatever Accept says
    served = formats(route)
    accept = request.headers.get("accept")
    if served and accept is not None and not accepts(accept, served):
        shown = accept if len(accept) <= 200 else accept[:200] + "…"  # the client's, echoed
        listed = ", ".join(sorted(served))
        raise NotAcceptable(
            Said(
                f"Accept: {shown} admits none of the formats of this resource: {listed}",
                f"Accept: {shown} no admite ninguno de los formatos de este recurso: {listed}",
            )
        )
