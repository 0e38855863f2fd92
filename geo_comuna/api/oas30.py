"""JSON Schema as pydantic writes it (2020-12, OpenAPI 3.1's dialect) made into OpenAPI 3.0.3's
schema objects, which GDAL, QGIS and the OGC API conformance class oas30 expect.

Only what our models produce is translated: ``anyOf``/``oneOf`` with ``{"type": "null"}``
becomes ``nullable``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` become a bound with
the boolean flag, ``const`` an ``enum`` of one, ``examples`` an ``example``, a file's
``contentMediaType`` ``format: binary``, and a ``$ref`` with siblings (ignored in 3.0) an
``allOf`` of one.
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}
_BOUNDS = (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum"))


def schema(node: dict[str, Any]) -> dict[str, Any]:
    """One schema object (and every schema inside it) in OpenAPI 3.0.3's dialect."""
    out = _nullable(_children(node))
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": t} for t in types]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples:
            out.setdefault("example", examples[0])
    for exclusive, plain in _BOUNDS:
        bound = out.get(exclusive)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            out[plain] = bound
            out[exclusive] = True
    if out.pop("contentMediaType", None) is not None and out.get("type") == "string":
        out["format"] = "binary"
    out.pop("contentEncoding", None)
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _children(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with the schemas inside it translated."""
    out = dict(node)
    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {name: schema(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = schema(out[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [schema(sub) for sub in out[key]]
    return out


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {"type": "null"}]`` -> X with ``nullable: true`` (outer keys kept)."""
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if not isinstance(options, list) or _NULL not in options:
            continue
        rest = [o for o in options if o != _NULL]
        del out[key]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        elif len(rest) == 1:
            out["allOf"] = rest
        else:
            out[key] = rest
        out["nullable"] = True
    return out


def parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A parameter object: its schema in 3.0's dialect. A query or header value is absent or a
    string, never null: an optional one is not ``nullable``."""
    out = dict(param)
    if isinstance(out.get("schema"), dict):
        out["schema"] = schema(out["schema"])
        out["schema"].pop("nullable", None)
        if out["schema"].get("default", 0) is None:
            del out["schema"]["default"]
    return out


def operation(op: dict[str, Any]) -> dict[str, Any]:
    """An operation's parameters, request body and responses in 3.0's dialect."""
    out = dict(op)
    if "parameters" in out:
        out["parameters"] = [parameter(p) for p in out["parameters"]]
    body = out.get("requestBody")
    if isinstance(body, dict):
        out["requestBody"] = {**body, "content": _content(body.get("content", {}))}
    if "responses" in out:
        out["responses"] = {
            code: {**resp, "content": _content(resp["content"])} if "content" in resp else resp
            for code, resp in out["responses"].items()
        }
    return out


def _content(content: dict[str, Any]) -> dict[str, Any]:
    return {
        media: {**item, "schema": schema(item["schema"])} if "schema" in item else item
        for media, item in content.items()
    }
