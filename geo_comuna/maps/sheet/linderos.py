"""The parcel's vertices numbered and its boundaries named by side (linderos), from what
maps/sql/sheet_parcels.sql measured. Pure computation on projected metres (REGVEN / UTM).

Numbering. Each ring is walked clockwise around the parcel (the parcel on the walker's right:
the statement forces it so; holes come out the other way round, which keeps the parcel on the
right there too), starting at its northernmost vertex (of two as far north, the westernmost).
Numbers run on from one ring to the next: the outer ring first, then its holes, then the next
polygon's. Side i runs from vertex i to the next one of its ring.

Linderos. A side faces where its outward normal points: with the parcel on the right of the
walk (dx, dy), outward is to the left, (-dy, dx). Its bearing from grid north (clockwise,
degrees) gives the side: north [315, 45), east [45, 135), south [135, 225), west [225, 315).
Grid north is within 0.7 degrees of true north anywhere in Venezuela (the meridian convergence
of a zone 3 degrees of longitude wide below 12 N), far less than these 90-degree sectors.
"Along" means within the statement's tolerance (reads.TOLERANCE_M; for roads, whose lines are
their centres, reads.ROAD_TOLERANCE_M). Each side's neighbour is, in this order:
  1. every other parcel that runs along more than twice the tolerance of it (a parcel that
     only meets its corner runs along about the tolerance) or along more than half of it (a
     short side), by code;
  2. else a road, when more than half of the side runs along one;
  3. else the commune's limit, when more than half of the side runs on it;
  4. else "no registered neighbour".
The sides facing one way are grouped in the order of their numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: the four sides, in the order a sheet lists them
SIDES = ("north", "east", "south", "west")


@dataclass(frozen=True)
class Vertex:
    number: int
    easting: float  # m, REGVEN / UTM
    northing: float  # m


@dataclass
class Side:
    """One side of the parcel, from vertex ``start`` to vertex ``end``."""

    start: int
    end: int
    length_m: float
    bearing: float  # of the outward normal, degrees from grid north, clockwise
    facing: str  # north, east, south, west
    parcels: list[tuple[str, float]] = field(default_factory=list)  # (code, m shared)
    road: str | None = None  # "" for a road without a name
    commune_limit: bool = False


@dataclass
class Lindero:
    """The sides facing one way, and whom they border (in order of first appearance)."""

    facing: str
    sides: list[Side]

    @property
    def length_m(self) -> float:
        return sum(s.length_m for s in self.sides)

    @property
    def neighbours(self) -> list[tuple[str, str | None, list[Side]]]:
        """(kind, name, sides): kind "parcel" (name its code), "road" (its name or None),
        "commune_limit" or "none"; each once, in order of the sides, with the sides it
        borders."""
        found: dict[tuple[str, str | None], list[Side]] = {}
        for side in self.sides:
            if side.parcels:
                named = [("parcel", code) for code, _ in side.parcels]
            elif side.road is not None:
                named = [("road", side.road or None)]
            elif side.commune_limit:
                named = [("commune_limit", None)]
            else:
                named = [("none", None)]
            for key in named:
                found.setdefault(key, []).append(side)
        return [(kind, name, sides) for (kind, name), sides in found.items()]


def facing(bearing: float) -> str:
    """The side a direction falls in: north [315, 45), east [45, 135), south [135, 225),
    west [225, 315) degrees."""
    return SIDES[int(((bearing + 45) % 360) // 90)]


def _rings(shape: dict[str, Any]) -> list[tuple[int, int, list[list[float]]]]:
    """(polygon, ring, coordinates without the closing repeat), 1-based as PostGIS paths."""
    return [
        (p, r, ring[:-1])
        for p, polygon in enumerate(shape["coordinates"], 1)
        for r, ring in enumerate(polygon, 1)
    ]


def _first(ring: list[list[float]]) -> int:
    """Index of the northernmost vertex (ties: the westernmost)."""
    return min(range(len(ring)), key=lambda i: (-ring[i][1], ring[i][0]))


def number(
    shape: dict[str, Any], measured: list[dict[str, Any]], tolerance_m: float
) -> tuple[list[Vertex], list[Side]]:
    """The vertices, numbered, and the sides with their neighbours.

    ``shape``: the parcel as a GeoJSON MultiPolygon in metres, rings clockwise around the
    parcel; ``measured``: per side, its ``path`` [polygon, ring, index of its first vertex]
    (1-based), the metres it shares with each other parcel (``parcels``: id, code, m),
    ``road_m`` and ``road`` (the name), ``limit_m`` (on the commune's limit), all within
    ``tolerance_m``."""
    by_path = {tuple(m["path"]): m for m in measured}
    vertices: list[Vertex] = []
    sides: list[Side] = []
    for p, r, ring in _rings(shape):
        if not ring:
            continue
        start = _first(ring)
        order = [(start + k) % len(ring) for k in range(len(ring))]
        base = len(vertices) + 1
        for k, i in enumerate(order):
            vertices.append(Vertex(base + k, ring[i][0], ring[i][1]))
        for k, i in enumerate(order):
            j = (i + 1) % len(ring)
            (x0, y0), (x1, y1) = ring[i][:2], ring[j][:2]
            dx, dy = x1 - x0, y1 - y0
            bearing = math.degrees(math.atan2(-dy, dx)) % 360  # of (-dy, dx): atan2(east, north)
            side = Side(
                start=base + k,
                end=base + (k + 1) % len(ring),
                length_m=math.hypot(dx, dy),
                bearing=bearing,
                facing=facing(bearing),
            )
            _neighbours(side, by_path.get((p, r, i + 1), {}), tolerance_m)
            sides.append(side)
    return vertices, sides


def named(parcel: dict[str, Any]) -> str:
    """A parcel as a sheet names it: its code, or "#id" without one."""
    return parcel["code"] if parcel.get("code") is not None else f"#{parcel['id']}"


def _neighbours(side: Side, measured: dict[str, Any], tolerance_m: float) -> None:
    """Fills the side's neighbours by the rule in the module's docstring."""
    length = side.length_m
    shared = sorted(
        (
            (named(p), float(p["m"]))
            for p in measured.get("parcels") or []
            if p["m"] > 2 * tolerance_m or p["m"] > 0.5 * length
        ),
        key=lambda c: -c[1],
    )
    side.parcels = shared
    if shared:
        return
    if (measured.get("road_m") or 0.0) > 0.5 * length:
        side.road = measured.get("road") or ""
    elif (measured.get("limit_m") or 0.0) > 0.5 * length:
        side.commune_limit = True


def linderos(sides: list[Side]) -> list[Lindero]:
    """The sides grouped by the way they face, north, east, south, west; a way no side faces
    is left out."""
    return [
        Lindero(way, [s for s in sides if s.facing == way])
        for way in SIDES
        if any(s.facing == way for s in sides)
    ]
