"""The layer registry: every collection geo_comuna serves, declared once."""

from __future__ import annotations

from geo_comuna.errors import NotFound
from geo_comuna.layers import networks, production, territory
from geo_comuna.layers.model import (
    MIN_GROUP,
    Aggregate,
    Attribute,
    Derived,
    Domain,
    Label,
    Layer,
    Measure,
    Reference,
)

LAYERS: dict[str, Layer] = {
    layer.name: layer for layer in (*territory.LAYERS, *production.LAYERS, *networks.LAYERS)
}


def get_layer(name: str) -> Layer:
    try:
        return LAYERS[name]
    except KeyError:
        raise NotFound(f"no collection named {name!r}; known: {', '.join(LAYERS)}") from None


__all__ = [
    "LAYERS",
    "MIN_GROUP",
    "Aggregate",
    "Attribute",
    "Derived",
    "Domain",
    "Label",
    "Layer",
    "Measure",
    "Reference",
    "get_layer",
]
