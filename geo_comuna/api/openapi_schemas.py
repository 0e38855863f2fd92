"""Each layer's features as OpenAPI 3.0 schemas, derived from the registry: its properties as
read (members-only ones may be absent) and as written (required ones required, unknown ones
refused), its pages, its new features and its patches, and the GeoJSON geometries they use.
"""

from __future__ import annotations

from typing import Any

from geo_comuna.layers import Attribute, Layer

_TYPES = {
    "text": "string",
    "integer": "integer",
    "number": "number",
    "date": "string",
    "boolean": "boolean",
}
#: what a write of each layer geometry type accepts: GeoJSON types (a one-part multi is
#: unwrapped, a Polygon promoted; features/validate.py)
_ACCEPTED = {
    "Point": ("Point", "MultiPoint"),
    "LineString": ("LineString", "MultiLineString"),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
}
_POSITION = {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}}


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_name(layer: Layer, suffix: str) -> str:
    """``production_units`` + ``Feature`` -> ``ProductionUnitsFeature``."""
    return "".join(part.capitalize() for part in layer.name.split("_")) + suffix


def geometry_schemas() -> dict[str, dict[str, Any]]:
    """GeoJSON geometries (RFC 7946) of the types the layers store or accept."""
    line = {"type": "array", "minItems": 2, "items": _POSITION}
    ring = {"type": "array", "minItems": 4, "items": _POSITION}
    polygon = {"type": "array", "minItems": 1, "items": ring}
    coordinates = {
        "Point": _POSITION,
        "MultiPoint": {"type": "array", "items": _POSITION},
        "LineString": line,
        "MultiLineString": {"type": "array", "items": line},
        "Polygon": polygon,
        "MultiPolygon": {"type": "array", "items": polygon},
    }
    return {
        name: {
            "type": "object",
            "title": f"GeoJSON {name}",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"type": "string", "enum": [name]},
                "coordinates": coords,
                "bbox": {"type": "array", "minItems": 4, "items": {"type": "number"}},
            },
        }
        for name, coords in coordinates.items()
    }


def attribute_schema(attr: Attribute) -> dict[str, Any]:
    """An attribute's value: type, allowed values, bounds (units in the description)."""
    out: dict[str, Any] = {"type": _TYPES[attr.type], "title": attr.title.en}
    if attr.type == "date":
        out["format"] = "date"
    if attr.type == "text" and attr.domain is None:
        out["maxLength"] = attr.max_length
    notes = []
    if attr.domain:
        out["enum"] = list(attr.domain.values)
        notes += [
            f"{value}: {label.es} / {label.en}" for value, label in attr.domain.values.items()
        ]
    if attr.minimum is not None:
        out["minimum"] = attr.minimum
    if attr.maximum is not None:
        out["maximum"] = attr.maximum
    if attr.unit:
        notes.append(f"in {attr.unit}")
    if notes:
        out["description"] = "; ".join(notes)
    if attr.read == "members":
        out["x-members-only"] = True
    return out


def _reference_schema(layer: Layer, name: str) -> dict[str, Any]:
    reference = layer.reference(name)
    assert reference is not None
    if reference.key == "id":
        return {"type": "integer", "title": reference.title.en, "description": "its id"}
    return {
        "type": "string",
        "title": reference.title.en,
        "description": f"{reference.table[:-1]} {reference.key}",
    }


def _derived_schemas(layer: Layer) -> dict[str, dict[str, Any]]:
    out = {}
    for derived in layer.derived:
        value: dict[str, Any] = {"title": derived.title.en, "readOnly": True}
        if derived.type == "array":
            value.update(type="array", items={"type": "object"})
        else:  # null where what it is computed from is (a unit on no parcel)
            value.update(type=derived.type, nullable=True)
        value["description"] = "computed by the database; ignored when sent" + (
            f" ({derived.unit})" if derived.unit else ""
        )
        out[derived.name] = value
    return out


def layer_schemas(layer: Layer) -> dict[str, dict[str, Any]]:
    """The layer's properties and features as read (everything optional: members-only ones
    are absent for other readers) and as written (required ones required, unknown ones
    refused), its collections and a PATCH body."""
    read = {
        r.name: {**_reference_schema(layer, r.name), "nullable": True} for r in layer.references
    }
    written = {
        r.name: {**_reference_schema(layer, r.name), "nullable": not r.required}
        for r in layer.references
    }
    for attr in layer.attributes:
        read[attr.name] = {**attribute_schema(attr), "nullable": True}
        written[attr.name] = {**attribute_schema(attr), "nullable": not attr.required}
    derived = _derived_schemas(layer)
    required = [r.name for r in layer.references if r.required]
    required += [a.name for a in layer.attributes if a.required]
    geometry = ref("schemas", layer.geometry_type)
    accepted = {"oneOf": [ref("schemas", t) for t in _ACCEPTED[layer.geometry_type]]}
    properties = schema_name(layer, "Properties")
    new_properties = schema_name(layer, "NewProperties")
    feature = schema_name(layer, "Feature")
    new_feature = schema_name(layer, "NewFeature")
    links = {"type": "array", "items": ref("schemas", "Link")}
    return {
        properties: {
            "type": "object",
            "title": f"{layer.title.en}: properties",
            "properties": {**read, **derived},
        },
        new_properties: {
            "type": "object",
            "title": f"{layer.title.en}: properties of a new or replaced feature",
            "required": required,
            "additionalProperties": False,
            "properties": {**written, **derived},
        },
        feature: {
            "type": "object",
            "title": f"{layer.title.en}: a feature",
            "required": ["type", "id", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer"},
                # members-only positions are null for other readers (layers/model.py)
                "geometry": {"allOf": [geometry], "nullable": True},
                "properties": ref("schemas", properties),
                "links": links,
            },
        },
        schema_name(layer, "FeatureCollection"): {
            "type": "object",
            "title": f"{layer.title.en}: a page of features",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": ref("schemas", feature)},
                "links": links,
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
            },
        },
        new_feature: {
            "type": "object",
            "title": f"{layer.title.en}: a new or replaced feature",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": {**accepted, "nullable": layer.geometry_optional},
                "properties": ref("schemas", new_properties),
            },
        },
        schema_name(layer, "NewFeatureCollection"): {
            "type": "object",
            "title": f"{layer.title.en}: new features, written all or none",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "minItems": 1, "items": ref("schemas", new_feature)},
            },
        },
        schema_name(layer, "Patch"): {
            "type": "object",
            "title": f"{layer.title.en}: what changes (JSON merge patch of a feature)",
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": {**accepted, "nullable": True},
                "properties": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "only the properties given change; null clears one",
                    "properties": {
                        name: {**value, "nullable": True} for name, value in written.items()
                    },
                },
            },
        },
    }
