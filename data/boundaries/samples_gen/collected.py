"""What the generator collects before writing: features per layer, tenure history, DEM."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rasterio.transform import Affine
from shapely.geometry.base import BaseGeometry

from .constants import LAYERS, SOURCE_NOTE
from .placement import Placed


@dataclass
class Feature:
    props: dict[str, object]
    geometry: BaseGeometry  # lon/lat, already on the output grid


@dataclass
class Samples:
    """Everything the generator writes, filled commune by commune."""

    layers: dict[str, list[Feature]] = field(default_factory=lambda: {n: [] for n in LAYERS})
    history: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    dem: tuple[np.ndarray, Affine] | None = None

    def add(self, layer: str, placed: Placed, geom_m: BaseGeometry, **props: object) -> None:
        """Add one feature built in ``placed``'s metres; ``commune`` goes first."""
        props = {"commune": placed.spec.code, **props}
        self.layers[layer].append(Feature(props, placed.frame.to_lonlat(geom_m)))


def add_commune(out: Samples, placed: Placed) -> None:
    s = placed.spec
    out.layers["communes"].append(
        Feature(
            {
                "code": s.code,
                "name": s.name,
                "kind": s.kind,
                "founded": s.founded,
                "families": s.families,
                "population": s.population,
                "status": s.status,
                "source": SOURCE_NOTE,
            },
            placed.frame.to_lonlat(placed.outline),
        )
    )
