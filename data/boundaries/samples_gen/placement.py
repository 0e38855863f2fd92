"""Where a commune's illustrative outline goes: the spec of what the reports say, and
its placement in (or across) its state."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from .constants import STATES_PATH
from .geometry import Frame, StarShape, geodesic_ha


@dataclass(frozen=True)
class CommuneSpec:
    """One commune: reported facts plus the target of its illustrative outline."""

    code: str
    name: str
    kind: str
    state: str  # ISO 3166-2 code of the state holding ``anchor``
    anchor: tuple[float, float]  # lon, lat of the reported place
    area_ha: float  # target geodesic area, ha
    status: str
    seed: int
    founded: str | None = None
    families: int | None = None
    population: int | None = None
    other_state: str | None = None  # the neighbour state of a commune drawn across a state line
    home_share: float = 1.0  # target share of the area inside ``state``
    roughness: float = 0.12


@dataclass(frozen=True)
class Placed:
    """A commune's outline in its frame; ``heading_deg`` points into ``spec.state``."""

    spec: CommuneSpec
    frame: Frame
    shape: StarShape
    heading_deg: float

    @property
    def outline(self) -> Polygon:
        return self.shape.polygon()


def load_states() -> dict[str, BaseGeometry]:
    states = gpd.read_file(STATES_PATH)
    return dict(zip(states["iso_3166_2"], states.geometry, strict=True))


def state_in_frame(state: BaseGeometry, frame: Frame, lon: float, lat: float) -> BaseGeometry:
    """The part of a state within ~60 km of (lon, lat), in metres (whole states are slow)."""
    near = shapely.clip_by_rect(state, lon - 0.6, lat - 0.6, lon + 0.6, lat + 0.6)
    return shapely.make_valid(frame.to_metres(near))


def fit_area(shape: StarShape, frame: Frame, target_ha: float) -> StarShape:
    """Rescale so the geodesic area of the written (rounded) polygon is ``target_ha``."""
    for _ in range(4):
        ha = geodesic_ha(frame.to_lonlat(shape.polygon()))
        shape = replace(shape, scale=shape.scale * math.sqrt(target_ha / ha))
    return shape


def straddle(
    shape: StarShape,
    home: BaseGeometry,
    other: BaseGeometry,
    anchor: tuple[float, float],
    share: float,
) -> tuple[StarShape, float]:
    """Centre the shape on the home/other state line where it is nearest ``anchor``, then slide
    it along the line's normal until ``share`` of its area lies in ``home``.

    Returns the shape and the heading (degrees) from the border point towards the anchor.
    """
    border = shapely.line_merge(shapely.intersection(home.boundary, other.boundary))
    bpt = nearest_points(border, Point(anchor))[0]
    ux, uy = anchor[0] - bpt.x, anchor[1] - bpt.y
    norm = math.hypot(ux, uy)
    ux, uy = ux / norm, uy / norm
    lo, hi = -1.5 * shape.scale, 1.5 * shape.scale
    for _ in range(40):  # bisection: the home share grows as the centre moves towards the anchor
        mid = (lo + hi) / 2
        moved = replace(shape, cx=bpt.x + mid * ux, cy=bpt.y + mid * uy)
        poly = moved.polygon()
        if poly.intersection(home).area / poly.area < share:
            lo = mid
        else:
            hi = mid
    return moved, math.degrees(math.atan2(uy, ux))


def nudge_inside(shape: StarShape, state: BaseGeometry, margin_m: float = 300.0) -> StarShape:
    """Move the centre away from the nearest state border until the outline is ``margin_m``
    inside it (the state lines are 1:10 million, so a margin keeps the assignment unambiguous)."""
    core = state.buffer(-margin_m)
    for _ in range(30):
        if core.contains(shape.polygon()):
            return shape
        centre = Point(shape.cx, shape.cy)
        edge = nearest_points(state.boundary, centre)[0]
        dx, dy = shape.cx - edge.x, shape.cy - edge.y
        d = math.hypot(dx, dy) or 1.0
        print("  moving the outline 250 m away from the state border")
        shape = replace(shape, cx=shape.cx + 250 * dx / d, cy=shape.cy + 250 * dy / d)
    raise RuntimeError("could not fit the commune inside its state")


def place(spec: CommuneSpec, states: dict[str, BaseGeometry]) -> Placed:
    frame = Frame(*spec.anchor)
    home = state_in_frame(states[spec.state], frame, *spec.anchor)
    ax, ay = frame.xy(*spec.anchor)
    rng = np.random.default_rng([spec.seed, 0])
    shape = StarShape.random(rng, ax, ay, math.sqrt(spec.area_ha * 1e4 / math.pi), spec.roughness)
    shape = fit_area(shape, frame, spec.area_ha)
    heading = 0.0
    if spec.other_state:
        other = state_in_frame(states[spec.other_state], frame, *spec.anchor)
        shape, heading = straddle(shape, home, other, (ax, ay), spec.home_share)
    else:
        shape = nudge_inside(shape, home)
    return Placed(spec, frame, fit_area(shape, frame, spec.area_ha), heading)
