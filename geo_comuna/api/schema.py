"""``GET /collections/{id}/schema``: the JSON Schema of a layer's features (OGC API -
Features Part 5, draft; shaped as pygeoapi serves it), from the registry.

Clients type their fields from it: GDAL and QGIS read ``format: date`` as a date (not a
string), ``integer`` as an integer and ``enum`` as the allowed values, and QGIS takes the
geometry type from the ``primary-geometry`` property's ``format``, field order from
``x-ogc-propertySeq`` and keeps ``readOnly`` properties (areas, lengths) out of its forms.
References go out as their clients write them (a commune by its code), the temporal property
is the ``primary-instant``, and members-only properties are listed, as in queryables, only to
readers who may read them somewhere (``x-members-only``).

``GET /collections/{id}/schema/feature``: the same as the schema of a GeoJSON Feature (its
properties under ``properties``), which the collection links as ``describedBy``: GDAL's OAPIF
driver types its fields from that link only, and otherwise from the first page, so a first
page of parcels without dates gave a text field, and one of dwellings whose residents the
reader may not read dropped the field for every dwelling after it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from geo_comuna.accounts import Access
from geo_comuna.api.deps import Lang, LayerDep, ReaderAccess, SettingsDep
from geo_comuna.api.hosts import base_url
from geo_comuna.layers import Attribute, Layer

router = APIRouter(tags=["collections"])
SCHEMA_JSON = "application/schema+json"
#: what a route answering a JSON Schema declares (OpenAPI)
SCHEMA_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {SCHEMA_JSON: {}}, "description": "JSON Schema"}
}
#: the collection link that points to the schema (QGIS looks for it)
SCHEMA_REL = "http://www.opengis.net/def/rel/ogc/1.0/schema"
#: the link to the GeoJSON Feature schema: IANA's describedby, spelt as GDAL compares it
#: (relation types are case-insensitive, RFC 8288)
DESCRIBED_BY = "describedBy"
TYPES = {
    "text": "string",
    "integer": "integer",
    "number": "number",
    "date": "string",
    "boolean": "boolean",
}
GEOMETRY = {
    "Point": ("geometry-point", "https://geojson.org/schema/Point.json"),
    "LineString": ("geometry-linestring", "https://geojson.org/schema/LineString.json"),
    "MultiPolygon": ("geometry-multipolygon", "https://geojson.org/schema/MultiPolygon.json"),
}


def feature_schema(layer: Layer, access: Access, lang: str, schema_id: str) -> dict[str, Any]:
    """The JSON Schema of ``layer``'s features as ``access`` reads them."""
    fmt, ref = GEOMETRY[layer.geometry_type]
    props: dict[str, Any] = {
        "geometry": {"x-ogc-role": "primary-geometry", "format": fmt, "$ref": ref}
    }
    seq = 0

    def add(name: str, schema: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        props[name] = {**schema, "x-ogc-propertySeq": seq}

    for reference in layer.references:
        by_code = reference.key == "code"
        add(
            reference.name,
            {
                "title": reference.title.get(lang),
                "type": "string" if by_code else "integer",
                "description": f"{reference.table}: {'registry code' if by_code else 'id'}",
            },
        )
    for attr in layer.attributes:
        if attr.read == "members" and not access.anywhere:
            continue
        add(attr.name, _attribute(layer, attr, lang))
    for derived in layer.derived:
        schema = {"title": derived.title.get(lang), "type": derived.type, "readOnly": True}
        if derived.type == "array":
            schema["items"] = {"type": "object"}
        if derived.unit:
            schema["x-ogc-unit"] = derived.unit
        add(derived.name, schema)
    required = [r.name for r in layer.references if r.required] + [
        a.name for a in layer.attributes if a.required
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "type": "object",
        "title": layer.title.get(lang),
        "description": layer.description.get(lang),
        "properties": props,
        "required": required,
    }


def _attribute(layer: Layer, attr: Attribute, lang: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": attr.title.get(lang), "type": TYPES[attr.type]}
    if attr.type == "date":
        schema["format"] = "date"
    if attr.name == layer.temporal:
        schema["x-ogc-role"] = "primary-instant"
    if attr.type == "text":
        schema["maxLength"] = attr.max_length
    if attr.domain:
        schema["enum"] = list(attr.domain.values)
        schema["x-labels"] = {k: v.get(lang) for k, v in attr.domain.values.items()}
    if attr.minimum is not None:
        schema["minimum"] = attr.minimum
    if attr.maximum is not None:
        schema["maximum"] = attr.maximum
    if attr.unit:
        schema["x-ogc-unit"] = attr.unit
    if attr.read == "members":
        schema["x-members-only"] = True
    return schema


@router.get(
    "/collections/{collection_id}/schema",
    summary="JSON Schema of the layer's features",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def schema(
    request: Request,
    settings: SettingsDep,
    layer: LayerDep,
    access: ReaderAccess,
    lang: Lang = "es",
) -> Response:
    return _schema(request, settings, layer, access, lang, as_feature=False)


def _schema(
    request: Request, settings: Any, layer: Layer, access: Access, lang: str, as_feature: bool
) -> Response:
    schema_id = f"{base_url(request, settings)}/collections/{layer.name}/schema"
    body = feature_schema(layer, access, lang, schema_id)
    if as_feature:
        body = as_geojson_feature(body)
    return schema_response(body)


def schema_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A JSON Schema document as the answer, its non-ASCII words as they are."""
    return Response(json.dumps(body, ensure_ascii=False), media_type=SCHEMA_JSON, headers=headers)


def as_geojson_feature(schema: dict[str, Any]) -> dict[str, Any]:
    """A Part 5 schema (``feature_schema``'s, or a tenure record's) as the schema of the
    GeoJSON Feature that carries it: the primary geometry as ``geometry``, the other
    properties under ``properties``."""
    props = dict(schema["properties"])
    geometry = next(
        (props.pop(n) for n, p in list(props.items()) if p.get("x-ogc-role") == "primary-geometry"),
        None,
    )
    return {
        "$schema": schema["$schema"],
        "$id": f"{schema['$id']}/feature",
        "type": "object",
        "title": schema.get("title"),
        "description": schema.get("description"),
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer"},
            "geometry": {"oneOf": [{"type": "null"}, *([geometry] if geometry else [])]},
            "properties": {
                "type": "object",
                "properties": props,
                "required": [n for n in schema.get("required", []) if n in props],
            },
        },
    }


@router.get(
    "/collections/{collection_id}/schema/feature",
    summary="JSON Schema of the layer's GeoJSON features",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def geojson_schema(
    request: Request,
    settings: SettingsDep,
    layer: LayerDep,
    access: ReaderAccess,
    lang: Lang = "es",
) -> Response:
    """The features' schema as GeoJSON carries them (the collection's ``describedBy``)."""
    return _schema(request, settings, layer, access, lang, as_feature=True)
