"""Parsing GeoJSON request bodies (one Feature or a FeatureCollection) into columns for
features/validate.py. Geometry parsing is GEOS' GeoJSON reader; we only walk the envelope.

Properties become an Arrow table, the format a file's columns come in (io/importer.py), so
one set of attribute rules serves both (features/attributes.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from geo_comuna.errors import InvalidGeometry, InvalidInput, Said, TooLarge, json_refusal
from geo_comuna.layers import Layer


@dataclass
class Parsed:
    properties: pa.Table  # a column per writable property (properties_table)
    geometries: np.ndarray
    labels: list[Any]
    present: set[str]  # property names the body gave (PATCH writes only these)
    geometry_given: bool


#: JSON's kinds of value that Arrow holds as a column of one type
_ARROW_KINDS = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _column(values: list[Any]) -> pa.Array:
    """JSON values of one kind (and nulls) as the Arrow column a file's would be; any other
    mix (numbers and text, lists, objects), text that is not UTF-8 (a lone surrogate) or an
    integer beyond 64 bits as JSON text, each value given back as sent
    (attributes.python_values) and then checked one by one."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values))
    if len(kinds) == 1 and (kind := _ARROW_KINDS.get(kinds.pop())) is not None:
        try:
            return pa.array(values, kind)
        except (OverflowError, UnicodeError, pa.ArrowInvalid):
            pass
    return pa.array([None if v is None else json.dumps(v) for v in values], pa.json_())


def properties_table(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> pa.Table:
    """Features' properties (one dict each) -> an Arrow table of the columns ``names``; a
    property a feature does not give is null."""
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


def _no_constants(name: str) -> None:
    raise InvalidInput(
        Said(
            f"{name} is not a JSON number; coordinates and values must be finite",
            f"{name} no es un número JSON; las coordenadas y los valores deben ser finitos",
        )
    )


#: a number JSON writes but a float cannot hold (1e400, or 400 digits): json reads it as
#: infinity, which no coordinate or value may be
_HUGE_NUMBER = re.compile(rb"[eE]\+?0*[1-9][0-9]{2,}|[0-9]{309,}")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else f"{text[:20]}..."
        raise InvalidInput(
            Said(
                f"the number {shown} is too large to be read; coordinates and values must be "
                "finite",
                f"el número {shown} es demasiado grande para leerlo; las coordenadas y los "
                "valores deben ser finitos",
            )
        )
    return value


def _finite_int(text: str) -> int:
    return int(text) if len(text.lstrip("-")) < 309 else int(_finite(text))


def loads(body: bytes, max_depth: int = 64) -> Any:
    try:
        doc = json.loads(body, parse_constant=_no_constants)
        if _HUGE_NUMBER.search(body):  # rare: read again, each number checked
            doc = json.loads(
                body, parse_constant=_no_constants, parse_float=_finite, parse_int=_finite_int
            )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            json_refusal(exc, Said("the body", "el cuerpo de la petición"))
        ) from None
    except RecursionError:
        raise InvalidInput(
            Said(
                "the body is nested too deeply",
                "el cuerpo de la petición tiene demasiados niveles de anidamiento",
            )
        ) from None
    except ValueError:  # an integer of thousands of digits: Python refuses to read it
        raise InvalidInput(
            Said(
                "the body holds a number too long to be read",
                "el cuerpo de la petición contiene un número demasiado largo para leerlo",
            )
        ) from None
    return doc


def _geometry(layer: Layer, value: Any, label: Any) -> shapely.Geometry | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "type" not in value:
        raise InvalidGeometry(
            Said(
                "geometry must be a GeoJSON geometry object",
                "la geometría debe ser un objeto de geometría GeoJSON",
            ),
            feature=label,
            layer=layer.name,
        )
    try:
        return shapely.from_geojson(json.dumps(value))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidGeometry(
            Said(
                f"not a readable GeoJSON geometry: {exc}",
                f"no es una geometría GeoJSON legible: {exc}",
            ),
            feature=label,
            layer=layer.name,
        ) from None


def parse(
    layer: Layer,
    doc: Any,
    *,
    max_features: int,
    label_start: int = 1,
    strict: bool = True,
    single_id: Any = None,
    creating: bool = False,
) -> Parsed:
    """A Feature or FeatureCollection -> columns. Unknown properties are refused when
    ``strict`` (a typo would otherwise lose data); read-only ones (ids, derived) are ignored,
    but one given without the reference it is worked out from (_derived_without_source;
    ``creating``: a POST's new features, whose null reference counts as none)."""
    if not isinstance(doc, dict):
        raise InvalidInput(
            Said(
                "the body must be a GeoJSON Feature or FeatureCollection object",
                "el cuerpo de la petición debe ser un objeto GeoJSON Feature o FeatureCollection",
            )
        )
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InvalidInput(
                Said(
                    "a FeatureCollection needs a 'features' array",
                    "una FeatureCollection necesita un arreglo 'features'",
                )
            )
        labels = list(range(label_start, label_start + len(features)))
    elif doc.get("type") == "Feature":
        features = [doc]
        labels = [single_id if single_id is not None else label_start]
    else:
        raise InvalidInput(
            Said(
                "the body must be a GeoJSON Feature or FeatureCollection "
                f"(got type {doc.get('type')!r})",
                "el cuerpo de la petición debe ser un GeoJSON Feature o FeatureCollection "
                f"(llegó el tipo {doc.get('type')!r})",
            )
        )
    if not features:
        raise InvalidInput(
            Said("the FeatureCollection has no features", "la FeatureCollection no tiene entidades")
        )
    if len(features) > max_features:
        raise TooLarge(
            Said(
                f"{len(features)} features in one request; at most {max_features}",
                f"{len(features)} entidades en una sola petición; como máximo {max_features}",
            )
        )
    writable = set(layer.property_names)
    ignored = {"id", *(d.name for d in layer.derived)}
    rows, geoms, present = [], [], set()
    for label, feature in zip(labels, features, strict=True):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InvalidInput(
                Said("not a GeoJSON Feature", "no es un Feature de GeoJSON"),
                feature=label,
                layer=layer.name,
            )
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidInput(
                Said("'properties' must be an object", "'properties' debe ser un objeto"),
                feature=label,
                layer=layer.name,
            )
        unknown = sorted(set(props) - writable - ignored)
        if unknown and strict:
            raise InvalidInput(
                Said(
                    f"unknown properties {', '.join(unknown)}; {layer.name} has "
                    f"{', '.join(sorted(writable))}",
                    f"campos desconocidos {', '.join(unknown)}; {layer.name} tiene "
                    f"{', '.join(sorted(writable))}",
                ),
                feature=label,
                layer=layer.name,
            )
        _derived_without_source(layer, props, label, creating)
        rows.append({k: v for k, v in props.items() if k in writable})
        present |= set(props) & writable
        geoms.append(_geometry(layer, feature.get("geometry"), label))
    return Parsed(
        properties_table(rows, layer.property_names),
        np.array(geoms, dtype=object),
        labels,
        present,
        any("geometry" in f and f["geometry"] is not None for f in features),
    )


def _derived_without_source(
    layer: Layer, props: dict[str, Any], label: Any, creating: bool
) -> None:
    """A value worked out from another table's row (a production unit's ``parcel_code``,
    from its ``parcel``) given without that row's reference: the writer meant it to say
    which parcel, and it was dropped without a word (found from outside). Given beside its
    reference, as a feature read back carries it (a PUT that clears the parcel included: its
    code is then stale), it is ignored as any derived value is; a new feature's null
    reference does not count as given."""
    for derived in layer.derived:
        if props.get(derived.name) is None:
            continue
        sources = [r for r in layer.references if r.table in derived.reads]
        given = [
            r for r in sources if r.name in props and (props[r.name] is not None or not creating)
        ]
        if sources and not given:
            names = " or ".join(r.name for r in sources)
            raise InvalidInput(
                Said(
                    f"{derived.name} is worked out from {names} (read-only): give {names}, its id",
                    f"{derived.name} se calcula a partir de {names} (solo lectura): indique "
                    f"{names}, su id",
                ),
                feature=label,
                layer=layer.name,
            )
