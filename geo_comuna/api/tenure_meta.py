"""What a client reads about the land records' collections before their items: the
collection documents (listed in ``GET /collections`` beside the layers), their queryables
and their feature schema, from layers/tenure.py's declaration.

``parties`` have no geometry (a party is a commune, a family, a person: it has no place of
its own; its land is its rights' parcels): their features carry ``"geometry": null``, which
GeoJSON and OGC API - Features allow, their schema has no primary geometry, their collection
no spatial extent, and its CRS list is CRS84 alone (there are no coordinates to give in
another). ``rights`` are drawn as their parcel: a spatial extent, every Venezuelan CRS, bbox.

Personal properties (a party's name, ID number, contact; a right's holder and note) are in
the schema only for editors and admins, and in no queryables (layers/tenure.py says why).
"""

from __future__ import annotations

from typing import Any

from geo_comuna.accounts import User
from geo_comuna.api.schema import SCHEMA_JSON
from geo_comuna.features import crs
from geo_comuna.layers.tenure import COLLECTIONS, RECORD_PROPERTIES, RIGHTS_COMMUNE, RecordProperty

GEOJSON = "application/geo+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_REL = "http://www.opengis.net/def/rel/ogc/1.0/schema"
#: the GeoJSON Feature schema's link (api/schema.DESCRIBED_BY)
DESCRIBED_BY = "describedBy"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
#: the collections with no geometry
NO_GEOMETRY = frozenset({"parties"})
_PARCEL_GEOMETRY = {
    "x-ogc-role": "primary-geometry",
    "format": "geometry-multipolygon",
    "$ref": "https://geojson.org/schema/MultiPolygon.json",
}


def collection(kind: str, base: str, lang: str, extent: list[float] | None) -> dict[str, Any]:
    """The collection document of ``parties`` or ``rights``."""
    title, description = COLLECTIONS[kind]
    href = f"{base}/collections/{kind}"
    spatial = kind not in NO_GEOMETRY
    doc: dict[str, Any] = {
        "id": kind,
        "title": title.get(lang),
        "description": description.get(lang),
        "itemType": "feature",
        "crs": crs.URIS if spatial else [crs.CRS84.uri],
        "storageCrs": crs.CRS84.uri,
        "links": [
            {"href": href, "rel": "self", "type": "application/json"},
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON, "title": "features"},
            {"href": f"{href}/queryables", "rel": QUERYABLES_REL, "type": SCHEMA_JSON},
            {
                "href": f"{href}/schema",
                "rel": SCHEMA_REL,
                "type": SCHEMA_JSON,
                "title": "feature schema",
            },
            {
                "href": f"{href}/schema/feature",
                "rel": DESCRIBED_BY,
                "type": SCHEMA_JSON,
                "title": "GeoJSON feature schema",
            },
        ],
    }
    if spatial and extent:
        doc["extent"] = {"spatial": {"bbox": [extent], "crs": crs.CRS84.uri}}
    return doc


def _property(prop: RecordProperty, lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {"title": prop.title.get(lang), "type": prop.type}
    if prop.format:
        out["format"] = prop.format
    out.update(prop.bounds or {})
    if prop.domain:
        out["enum"] = list(prop.domain.values)
        out["x-labels"] = {k: v.get(lang) for k, v in prop.domain.values.items()}
    return out


def queryables(kind: str, base: str, lang: str) -> dict[str, Any]:
    """The query parameters of ``kind``'s items, as Part 3 queryables: the same for every
    reader, since none is personal."""
    props: dict[str, Any] = {}
    if kind not in NO_GEOMETRY:
        props["geometry"] = dict(_PARCEL_GEOMETRY)
    extra = (RIGHTS_COMMUNE,) if kind == "rights" else ()
    for prop in (*RECORD_PROPERTIES[kind], *extra):
        if prop.queryable and not prop.personal:
            props[prop.name] = _property(prop, lang)
    title, _ = COLLECTIONS[kind]
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"{base}/collections/{kind}/queryables",
        "type": "object",
        "title": title.get(lang),
        "properties": props,
    }


def schema(kind: str, base: str, lang: str, user: User | None) -> dict[str, Any]:
    """The JSON Schema of ``kind``'s features as ``user`` reads them: personal properties
    only for editors and admins (``x-personal``: even they read them only in the records of
    their communes; elsewhere the keys are absent)."""
    props: dict[str, Any] = {}
    if kind not in NO_GEOMETRY:
        props["geometry"] = dict(_PARCEL_GEOMETRY)
    seq = 0
    for prop in RECORD_PROPERTIES[kind]:
        if prop.personal and not (user is not None and user.may_write):
            continue
        seq += 1
        out = {**_property(prop, lang), "x-ogc-propertySeq": seq}
        if prop.personal:
            out["x-personal"] = True
        props[prop.name] = out
    title, description = COLLECTIONS[kind]
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"{base}/collections/{kind}/schema",
        "type": "object",
        "title": title.get(lang),
        "description": description.get(lang),
        "properties": props,
    }
