"""The layer registry: every collection geo_comuna serves, declared once."""

from __future__ import annotations

from geo_comuna.errors import NotFound, Said
from geo_comuna.layers import networks, production, territory
from geo_comuna.layers.model import (
    MIN_GROUP,
    Aggregate,
    Attribute,
    CommuneFilter,
    Derived,
    Domain,
    Label,
    Layer,
    Measure,
    Reference,
    Sample,
)
from geo_comuna.layers.tenure import COLLECTIONS

LAYERS: dict[str, Layer] = {
    layer.name: layer for layer in (*territory.LAYERS, *production.LAYERS, *networks.LAYERS)
}

#: the layer every commune reference points to: communes are looked up there by id or code
COMMUNES: Layer = territory.COMMUNES


def get_layer(name: str) -> Layer:
    try:
        return LAYERS[name]
    except KeyError:
        if name in COLLECTIONS:  # listed in /collections too: not "no collection"
            raise NotFound(
                Said(
                    f"{name!r} holds land records, not a layer's features: their items are at "
                    f"/collections/{name}/items (no tiles, exports or imports of them here)",
                    f"{name!r} contiene registros de tenencia, no entidades de una capa: sus "
                    f"elementos están en /collections/{name}/items (sin teselas, exportaciones "
                    "ni importaciones aquí)",
                )
            ) from None
        raise NotFound(
            Said(
                f"no collection named {name!r}; known: {', '.join(LAYERS)}",
                f"no hay ninguna colección llamada {name!r}; las conocidas: {', '.join(LAYERS)}",
            )
        ) from None


def commune_map_layers() -> list[Layer]:
    """The layers a commune's map draws, bottom to top (``Layer.commune_map``)."""
    drawn = [layer for layer in LAYERS.values() if layer.commune_map is not None]
    return sorted(drawn, key=lambda layer: layer.commune_map or 0)


__all__ = [
    "COMMUNES",
    "LAYERS",
    "MIN_GROUP",
    "Aggregate",
    "Attribute",
    "CommuneFilter",
    "Derived",
    "Domain",
    "Label",
    "Layer",
    "Measure",
    "Reference",
    "Sample",
    "commune_map_layers",
    "get_layer",
]
