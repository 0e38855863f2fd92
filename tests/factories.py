"""Small valid features for any layer, derived from the registry, near a given point."""

from __future__ import annotations

import itertools
from typing import Any

from geo_comuna.layers import Layer

# A spot in Sarare, Lara (inside VE-K, ~10 km from Portuguesa)
LON, LAT = -69.16, 9.78
# A spot inside El Maizal's territory (the sample commune), for editors of EL-MAIZAL, whose
# features must lie there: the 0.01-degree square east and north of it is all El Maizal
MAIZAL = (-69.15, 9.69)
#: numbers the codes of natural keys (a parcel's code within its commune must not repeat)
_SERIAL = itertools.count(1)


def geometry(layer: Layer, lon: float = LON, lat: float = LAT, size: float = 0.001) -> dict:
    if layer.geometry_type == "Point":
        return {"type": "Point", "coordinates": [lon, lat]}
    if layer.geometry_type == "LineString":
        return {"type": "LineString", "coordinates": [[lon, lat], [lon + size, lat + size]]}
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "MultiPolygon", "coordinates": [[ring]]}


def properties(layer: Layer, commune: str | None = None, **overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for attr in layer.attributes:
        if attr.domain:
            props[attr.name] = next(iter(attr.domain.values))
        elif attr.type == "integer":
            props[attr.name] = int(attr.minimum or 0) + 3
        elif attr.type == "number":
            props[attr.name] = 12.5
        elif attr.type == "date":
            props[attr.name] = "2020-05-01"
        elif attr.type == "boolean":
            props[attr.name] = True
        elif attr.name in layer.natural_key:
            props[attr.name] = f"test {attr.name} {next(_SERIAL)}"
        else:
            props[attr.name] = f"test {attr.name}"
    for ref in layer.references:
        if ref.table == "communes" and commune is not None:
            props[ref.name] = commune
    if layer.name == "states":
        props["code"] = "VE-ZZ"
    return {**props, **overrides}


def feature(
    layer: Layer, commune: str | None = None, lon: float = LON, lat: float = LAT, **overrides: Any
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry(layer, lon, lat),
        "properties": properties(layer, commune, **overrides),
    }
