"""Each layer's own paths in the OpenAPI document, derived from the registry.

``/collections/{collection_id}/items`` says nothing a client can act on: GDAL's OAPIF driver
pushes a ``-where`` equality to the server only for a query parameter it finds, by name, under
``paths["/collections/<layer>/items"].get.parameters`` (GetQueryableAttributes in
ogr/ogrsf_frmts/wfs/ogroapifdriver.cpp), and QGIS only for one declared there with ``style:
form``, ``explode: false`` and a scalar ``schema.type`` (qgsoapifapirequest.cpp). So every
layer gets ``/collections/<layer>/items`` and ``/collections/<layer>/items/{feature_id}``,
each with the layer's attributes as parameters and its features as request and response
bodies. The operations start from FastAPI's description of the one router that serves all
layers, so what a route declares (headers, ``repair``) stays; nothing here names a layer.
"""

from __future__ import annotations

import copy
from typing import Any

from geo_comuna.api.openapi_schemas import attribute_schema, ref, schema_name
from geo_comuna.features.queryables import computed
from geo_comuna.layers import Layer
from geo_comuna.settings import Settings

GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
ITEMS = "/collections/{collection_id}/items"
ITEM = "/collections/{collection_id}/items/{feature_id}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: the items parameters described here, whatever the route declares of them
MANAGED = {
    *("bbox", "bbox-crs", "datetime", "crs", "limit", "offset", "commune"),
    *("filter", "filter-lang", "filter-crs", "sortby", "properties"),
}


# -- parameters ------------------------------------------------------------------------------


def query(name: str, value: dict[str, Any], description: str) -> dict[str, Any]:
    """A query parameter as OGC API - Features writes them (``style: form``, ``explode:
    false``: what QGIS looks for)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "style": "form",
        "explode": False,
        "schema": value,
    }


def standard_parameters(settings: Settings) -> dict[str, dict[str, Any]]:
    """The items parameters every layer shares (#/components/parameters). ``limit``'s
    default and maximum are the server's: QGIS sizes its pages from
    components.parameters.limit, GDAL 3.8+ from the items path's limit."""
    return {
        "limit": query(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_limit,
                "default": settings.default_limit,
            },
            f"Features per page: {settings.default_limit} when not given, at most "
            f"{settings.max_limit}. Follow the `next` link for the rest.",
        ),
        "offset": query(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": 100_000_000, "default": 0},
            "Features to skip (the `next` and `prev` links carry it).",
        ),
        "bbox": query(
            "bbox",
            {
                "type": "array",
                "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                "items": {"type": "number"},
            },
            "Only features whose geometry intersects this box: west,south,east,north in "
            "`bbox-crs` (default CRS84, longitude/latitude); 6 numbers add heights, ignored.",
        ),
        "bbox-crs": query(
            "bbox-crs",
            {"type": "string", "format": "uri", "default": CRS84},
            "The CRS of `bbox`: one of the collection's `crs` list.",
        ),
        "crs": query(
            "crs",
            {"type": "string", "format": "uri", "default": CRS84},
            "The CRS of the response's geometries: one of the collection's `crs` list "
            "(the response's Content-Crs header names it).",
        ),
        "filter": query(
            "filter",
            {"type": "string"},
            "A CQL2 expression over the layer's queryables (GET /collections/{layer}/"
            "queryables), in the language of `filter-lang`.",
        ),
        "filter-lang": query(
            "filter-lang",
            {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
            "The language of `filter`.",
        ),
        "filter-crs": query(
            "filter-crs",
            {"type": "string", "format": "uri", "default": CRS84},
            "The CRS of the geometries in `filter`.",
        ),
    }


def _datetime(layer: Layer) -> dict[str, Any]:
    dates = [a.name for a in layer.attributes if a.type == "date"]
    if dates:
        what = f"Only features whose {' or '.join(f'`{d}`' for d in dates)} falls in"
    else:
        what = f"{layer.name} has no date property: no feature of it falls in"
    return query(
        "datetime",
        {"type": "string"},
        f"{what} this date or interval (RFC 3339): `2020-05-01`, "
        "`2020-01-01/2020-12-31`, `2020-01-01/..`, `../2020-12-31`.",
    )


def _commune(layer: Layer) -> dict[str, Any]:
    communes = [r.name for r in layer.references if r.table == "communes"]
    if layer.name == "communes":
        what = "Only this commune"
    elif communes == ["commune"]:
        what = "Only the features of this commune"
    elif communes:
        what = f"Only the features whose {' or '.join(communes)} is this commune"
    else:  # states
        what = "Only the features whose area this commune's land lies in (not merely borders)"
    return query("commune", {"type": "string"}, f"{what} (registry code, or id).")


def _sort_keys(layer: Layer) -> list[str]:
    """``name``, ``+name`` and ``-name`` of every stored property."""
    names = ["id", *(r.name for r in layer.references), *(a.name for a in layer.attributes)]
    names += [d.name for d in computed(layer)]
    return [f"{sign}{name}" for sign in ("", "+", "-") for name in names]


def property_parameters(layer: Layer) -> list[dict[str, Any]]:
    """One equality filter per attribute (``?tenure=abandoned,occupied``: any of them).

    Not for a date: GDAL 3.6 sends ``recovered_on = '2015-03-01'`` as ``datetime=`` unless
    ``recovered_on`` is a declared parameter, and when it is, evaluates it itself, failing
    on every feature without a date. ``datetime`` is the layer's date (at most one: a
    test checks it); ``?recovered_on=`` still works."""
    out = []
    for attr in layer.attributes:
        if attr.type == "date":
            continue
        value = attribute_schema(attr)
        note = value.pop("description", None)
        description = (
            f"{attr.title.en} ({attr.title.es}): only features with this value, or any of "
            "several separated by commas."
        )
        if note:
            description += f" Values: {note}."
        if attr.read == "members":
            description += (
                " Members-only: filters the features of the reader's communes (admins: all); "
                "anyone else gets 403."
            )
        out.append(query(attr.name, value, description))
    for derived in computed(layer):  # worked out by PostGIS from each feature
        kind = "number" if derived.type == "number" else "string"
        unit = f", in {derived.unit}" if derived.unit else ""
        out.append(
            query(
                derived.name,
                {"type": kind},
                f"{derived.title.en} ({derived.title.es}{unit}, read-only): only features "
                "with this value, or any of several separated by commas.",
            )
        )
    return out


def items_parameters(layer: Layer, declared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer's items parameters: the shared ones, its datetime, commune, sortby and
    properties, its attributes, and whatever else the route declares."""
    names = [*(r.name for r in layer.references), *(a.name for a in layer.attributes)]
    names += [d.name for d in layer.derived]
    ours = [
        ref("parameters", "bbox"),
        ref("parameters", "bbox-crs"),
        _datetime(layer),
        ref("parameters", "crs"),
        ref("parameters", "limit"),
        ref("parameters", "offset"),
        _commune(layer),
        ref("parameters", "filter"),
        ref("parameters", "filter-lang"),
        ref("parameters", "filter-crs"),
        query(
            "sortby",
            {
                "type": "array",
                "items": {"type": "string", "enum": _sort_keys(layer)},
            },
            "Order of the features: properties, each with `-` for descending.",
        ),
        query(
            "properties",
            {"type": "array", "items": {"type": "string", "enum": names}},
            "Only these properties in each feature.",
        ),
        *property_parameters(layer),
    ]
    taken = MANAGED | {a.name for a in layer.attributes}
    return [p for p in ours if p is not None] + [p for p in declared if p["name"] not in taken]


# -- paths -----------------------------------------------------------------------------------


def _body(schemas: dict[str, Any], *media: str) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": schemas} for m in media}}


def _json(schema_ref: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema_ref}},
    }
    if headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return out


def layer_paths(
    layer: Layer, items: dict[str, dict[str, Any]], item: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``/collections/<layer>/items`` and ``/items/{feature_id}`` from the templated
    operations (``items``, ``item``: method -> operation), with the layer's parameters and
    bodies."""

    def own(op: dict[str, Any], method: str, what: str) -> dict[str, Any]:
        out = copy.deepcopy(op)
        out["operationId"] = f"{method}_{layer.name}_{what}"
        out["tags"] = [layer.name]
        out["parameters"] = [p for p in out.get("parameters", []) if p["name"] != "collection_id"]
        return out

    feature = ref("schemas", schema_name(layer, "Feature"))
    written = _json(
        ref("schemas", "WriteResult"),
        "Written: the ids, and each geometry repaired (with ?repair=true)",
        ETag="the feature's new version, for If-Match",
    )
    paths: dict[str, dict[str, Any]] = {}
    collection: dict[str, Any] = {}
    for method, op in items.items():
        out = own(op, method, "items")
        if method in ("get", "head"):
            out["parameters"] = items_parameters(layer, out["parameters"])
        if method == "get":
            out["responses"]["200"] = {
                "description": f"A page of {layer.title.en.lower()} (GeoJSON FeatureCollection)",
                "content": {
                    GEOJSON: {"schema": ref("schemas", schema_name(layer, "FeatureCollection"))}
                },
            }
        if method == "post":
            new = {
                "oneOf": [
                    ref("schemas", schema_name(layer, "NewFeature")),
                    ref("schemas", schema_name(layer, "NewFeatureCollection")),
                ]
            }
            out["requestBody"] = _body(new, GEOJSON, "application/json")
            out["responses"]["201"] = {
                **written,
                "headers": {
                    **written["headers"],
                    "Location": {
                        "description": "the new feature (one feature written)",
                        "schema": {"type": "string"},
                    },
                },
            }
        collection[method] = out
    paths[f"/collections/{layer.name}/items"] = collection
    one: dict[str, Any] = {}
    for method, op in item.items():
        out = own(op, method, "item")
        if method == "get":
            out["responses"]["200"] = {
                "description": f"One of the {layer.title.en.lower()} (GeoJSON Feature)",
                "headers": {
                    "ETag": {
                        "description": "its version, for If-Match",
                        "schema": {"type": "string"},
                    }
                },
                "content": {GEOJSON: {"schema": feature}},
            }
        if method == "put":
            new = ref("schemas", schema_name(layer, "NewFeature"))
            out["requestBody"] = _body(new, GEOJSON, "application/json")
            out["responses"]["200"] = written
        if method == "patch":
            patch = ref("schemas", schema_name(layer, "Patch"))
            out["requestBody"] = _body(patch, MERGE_PATCH, "application/json", GEOJSON)
            out["responses"]["200"] = written
        one[method] = out
    paths[f"/collections/{layer.name}/items/{{feature_id}}"] = one
    return paths
