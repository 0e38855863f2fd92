#!/usr/bin/env python3
"""Generate the ILLUSTRATIVE sample territories in geo_comuna/data/samples/ (package data).

    python3 data/boundaries/make_samples.py           # regenerate every file, then self-check
    python3 data/boundaries/make_samples.py --check   # only check the files already on disk

The communes, their sizes and headline numbers come from public reports (listed in
samples/SOURCE.md); every geometry and most other numbers are invented here. Shapes are
built in metres in each commune's UTM zone (WGS 84, EPSG:326xx) and written as RFC 7946
GeoJSON in lon/lat (EPSG:4326), coordinates rounded to 6 decimals (about 0.1 m). Seeds are
fixed and features sorted, so reruns are byte-identical. Needs only the local file
ve_states.geojson: no network.

The file is long because it is one self-contained recipe; it is organised top-down:
geometry helpers, commune placement, generic rural layout, the per-commune details, the
5 de Marzo hill (DEM and networks), writers and finally the self-check.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.transform import Affine, from_origin
from shapely import affinity
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box, mapping
from shapely.geometry import shape as geojson_shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geo_comuna.io.sample import SAMPLE_LAYERS

PACKAGE_DATA = Path(__file__).resolve().parent.parent.parent / "geo_comuna" / "data"
STATES_PATH = PACKAGE_DATA / "boundaries" / "ve_states.geojson"
OUT_DIR = PACKAGE_DATA / "samples"
GEOD = Geod(ellps="WGS84")

SOURCE_NOTE = "illustrative geometry; facts from public reports"
FOUNDING = date(2009, 3, 5)  # El Maizal's founding day: no recovery before it
LAST_DAY = date(2023, 12, 31)  # the reports stop in 2023
STEP_RISE_M = 0.17  # rise of one stair step, m
DEGREE_GRID = 1e-6  # output precision, degrees (about 0.11 m)
DEM_CELL_M = 2.0
DEM_NODATA = -9999.0

LAYERS = SAMPLE_LAYERS  # one file each, in the order the loader reads them

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def geodesic_ha(geom: BaseGeometry) -> float:
    """Area on the WGS 84 ellipsoid of a lon/lat geometry, ha."""
    area, _ = GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e4


def random_date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def jittered_grid(
    rng: np.random.Generator, bounds: Sequence[float], spacing: float, jitter: float
) -> np.ndarray:
    """A square grid over ``bounds`` (m), each point moved by up to ``jitter`` m per axis."""
    minx, miny, maxx, maxy = bounds
    gx, gy = np.meshgrid(
        np.arange(minx, maxx + spacing, spacing), np.arange(miny, maxy + spacing, spacing)
    )
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts + rng.uniform(-jitter, jitter, pts.shape)


def inside(geom: BaseGeometry, pts: np.ndarray) -> np.ndarray:
    return shapely.contains_xy(geom, pts[:, 0], pts[:, 1])


def dart_sites(
    rng: np.random.Generator,
    room: BaseGeometry,
    n: int,
    min_m: float,
    weight: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``n`` random sites in ``room`` (metres), none closer than ``min_m`` (dart throwing).

    A candidate first survives with probability ``weight(xy)``, so density follows the weight.
    """
    minx, miny, maxx, maxy = room.bounds
    cand = rng.uniform((minx, miny), (maxx, maxy), (max(20 * n, 20_000), 2))
    cand = cand[inside(room, cand)]
    cand = cand[rng.random(len(cand)) < weight(cand)]
    grid: dict[tuple[int, int], list[tuple[float, float]]] = {}
    taken: list[tuple[float, float]] = []
    for x, y in cand.tolist():
        i, j = int(x // min_m), int(y // min_m)
        near = (q for di in (-1, 0, 1) for dj in (-1, 0, 1) for q in grid.get((i + di, j + dj), ()))
        if any(math.dist((x, y), q) < min_m for q in near):
            continue
        grid.setdefault((i, j), []).append((x, y))
        taken.append((x, y))
        if len(taken) == n:
            return np.array(taken)
    raise RuntimeError(f"room for only {len(taken)} of {n} sites {min_m} m apart")


def random_point_in(rng: np.random.Generator, poly: BaseGeometry, margin_m: float) -> Point:
    """A uniform random point at least ``margin_m`` inside ``poly`` (metres)."""
    inner = poly.buffer(-margin_m)
    minx, miny, maxx, maxy = inner.bounds
    for _ in range(2000):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(inner, x, y):
            return Point(x, y)
    raise RuntimeError("no room for a point in polygon")


def choose(rng: np.random.Generator, options: Sequence[str], probs: np.ndarray) -> list[str]:
    """Pick one option per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    idx = (rng.random(len(probs))[:, None] > cum[:, :-1]).sum(axis=1)
    return [options[i] for i in idx]


def residents_summing_to(rng: np.random.Generator, n: int, total: int) -> np.ndarray:
    """Household sizes (>= 1) of ``n`` dwellings adjusted one by one to add up to ``total``."""
    res = np.clip(1 + rng.poisson(total / n - 1, n), 1, 14)
    while (diff := total - int(res.sum())) != 0:
        pool = np.arange(n) if diff > 0 else np.flatnonzero(res > 1)
        pick = rng.choice(pool, min(abs(diff), pool.size), replace=False)
        res[pick] += 1 if diff > 0 else -1
    return res


def longest_line(geom: BaseGeometry) -> LineString:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "LineString"]
    return max(parts, key=lambda g: g.length)


def offset_or_same(line: LineString, distance_m: float) -> LineString:
    """A parallel line ``distance_m`` to the left (pipes run beside the road, not under it)."""
    moved = line.offset_curve(distance_m)
    return moved if moved.geom_type == "LineString" and not moved.is_empty else line


def rotated_rect(cx: float, cy: float, w: float, h: float, angle_deg: float) -> Polygon:
    rect = box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    return affinity.rotate(rect, angle_deg, origin=(cx, cy))


def position_key(geom: BaseGeometry, row_m: float) -> tuple[int, float]:
    """Reading order (north to south in rows of ``row_m`` metres, then west to east)."""
    c = geom.centroid
    return (-int(c.y // row_m), c.x)


# ---------------------------------------------------------------------------------------------
# Frames and shapes (metres)
# ---------------------------------------------------------------------------------------------


class Frame:
    """A commune's UTM zone (WGS 84, northern hemisphere): build in metres, write lon/lat."""

    def __init__(self, lon: float, lat: float) -> None:
        self.epsg = 32600 + int((lon + 180) // 6) + 1
        self._fwd = Transformer.from_crs(4326, self.epsg, always_xy=True)
        self._inv = Transformer.from_crs(self.epsg, 4326, always_xy=True)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self._fwd.transform(lon, lat)
        return float(x), float(y)

    def to_metres(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda a: np.column_stack(self._fwd.transform(*a.T)))

    def to_lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        """Lon/lat on a 1e-6 degree grid; polygons stay valid and get RFC 7946 orientation."""
        g = shapely.transform(geom, lambda a: np.column_stack(self._inv.transform(*a.T)))
        if g.geom_type in ("Polygon", "MultiPolygon"):
            return shapely.orient_polygons(shapely.set_precision(g, DEGREE_GRID))
        return shapely.transform(g, lambda a: np.round(a, 6))


@dataclass(frozen=True)
class StarShape:
    """An irregular outline around (cx, cy), metres: r(θ) = scale·(1 + Σ a_k·cos(kθ + φ_k)).

    Star-shaped, so ``point(θ, f)`` with f < 1 is always inside it and the curves f = const
    never cross: the 5 de Marzo hill uses f as its contour coordinate.
    """

    cx: float
    cy: float
    scale: float
    amps: tuple[float, ...]
    phases: tuple[float, ...]

    @classmethod
    def random(
        cls, rng: np.random.Generator, cx: float, cy: float, scale: float, roughness: float
    ) -> StarShape:
        k = np.arange(2, 7)
        amps = roughness * rng.uniform(0.4, 1.0, k.size) / np.sqrt(k - 1)
        phases = rng.uniform(0, 2 * np.pi, k.size)
        return cls(cx, cy, scale, tuple(map(float, amps)), tuple(map(float, phases)))

    def radius(self, theta_rad: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta_rad, dtype=float)
        k = np.arange(2, 2 + len(self.amps))
        waves = np.asarray(self.amps)[:, None] * np.cos(
            np.outer(k, theta.ravel()) + np.asarray(self.phases)[:, None]
        )
        return (self.scale * (1.0 + waves.sum(axis=0))).reshape(theta.shape)

    def point(self, theta_deg: float, f: float) -> tuple[float, float]:
        """The point at angle θ (degrees, counter-clockwise from east) and radius fraction f."""
        t = math.radians(theta_deg % 360.0)
        r = f * float(self.radius(np.array([t]))[0])
        return (self.cx + r * math.cos(t), self.cy + r * math.sin(t))

    def polar(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(θ in degrees, f) of points given in metres."""
        dx, dy = x - self.cx, y - self.cy
        t = np.mod(np.arctan2(dy, dx), 2 * np.pi)
        return np.degrees(t), np.hypot(dx, dy) / self.radius(t)

    def plan_xy(self, u: float, v: float, heading_deg: float) -> tuple[float, float]:
        """Point at (u, v) scale units along/across the heading (degrees from east)."""
        h = math.radians(heading_deg)
        return (
            self.cx + self.scale * (u * math.cos(h) - v * math.sin(h)),
            self.cy + self.scale * (u * math.sin(h) + v * math.cos(h)),
        )

    def polygon(self, n: int = 144) -> Polygon:
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        r = self.radius(theta)
        return Polygon(np.column_stack([self.cx + r * np.cos(theta), self.cy + r * np.sin(theta)]))


def polar_path(
    shape: StarShape,
    controls: Sequence[tuple[float, float]],
    step_deg: float = 2.0,
    step_f: float = 0.02,
) -> LineString:
    """A line through control points (θ°, f), interpolated in (θ, f) so arcs follow contours.

    Control points are reproduced exactly, so lines sharing a control point share the vertex.
    """
    coords: list[tuple[float, float]] = []
    for (t0, f0), (t1, f1) in zip(controls[:-1], controls[1:], strict=True):
        n = max(1, math.ceil(max(abs(t1 - t0) / step_deg, abs(f1 - f0) / step_f)))
        coords += [shape.point(t0 + (t1 - t0) * i / n, f0 + (f1 - f0) * i / n) for i in range(n)]
    coords.append(shape.point(*controls[-1]))
    return LineString(coords)


# ---------------------------------------------------------------------------------------------
# Communes: what the reports say, and where the illustrative outline goes
# ---------------------------------------------------------------------------------------------


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


EL_MAIZAL = CommuneSpec(
    "EL-MAIZAL",
    "El Maizal",
    "rural",
    "VE-K",
    (-69.16, 9.78),
    2300.0,
    "active",
    101,
    founded="2009-03-05",
    families=3500,
    population=14320,
    other_state="VE-P",
    home_share=0.65,
    roughness=0.16,
)
MONTE_SINAI = CommuneSpec(
    "MONTE-SINAI",
    "Monte Sinaí",
    "rural",
    "VE-B",
    (-65.55, 9.91),
    950.0,
    "active",
    202,
    other_state="VE-M",
    home_share=0.6,
    roughness=0.15,
)
CINCO_DE_MARZO = CommuneSpec(
    "5-DE-MARZO",
    "5 de Marzo",
    "urban",
    "VE-A",
    (-66.915, 10.465),
    11.2,
    "active",
    303,
    population=6000,
    roughness=0.07,
)
SMALL_SPECS = (
    CommuneSpec(
        "LUISA-CACERES-DE-ARISMENDI",
        "Luisa Cáceres de Arismendi",
        "urban",
        "VE-B",
        (-64.69, 10.13),
        48.0,
        "registered",
        404,
    ),
    CommuneSpec("CHE-GUEVARA", "Che Guevara", "rural", "VE-L", (-71.2, 8.55), 340.0, "active", 505),
    CommuneSpec(
        "ALTOS-DE-LIDICE",
        "Altos de Lídice",
        "urban",
        "VE-A",
        (-66.94, 10.52),
        36.0,
        "registered",
        606,
    ),
    CommuneSpec(
        "INDIO-CARICUAO",
        "Indio Caricuao",
        "urban",
        "VE-A",
        (-66.98, 10.44),
        62.0,
        "registered",
        707,
    ),
    CommuneSpec(
        "SECTORES-UNIDOS", "Sectores Unidos", "mixed", "VE-K", (-69.35, 10.0), 160.0, "active", 808
    ),
    CommuneSpec(
        "PANCHA-VASQUEZ", "Pancha Vásquez", "rural", "VE-C", (-67.5, 7.9), 380.0, "active", 909
    ),
)
ALL_SPECS = (EL_MAIZAL, MONTE_SINAI, CINCO_DE_MARZO, *SMALL_SPECS)


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


# ---------------------------------------------------------------------------------------------
# Collected output
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Generic layout: a road across, settlements, parcels tiling the rest
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    name: str
    u: float  # position along the commune's heading, in units of its scale
    v: float  # position across the heading
    radius: float  # in units of scale
    dwellings: int


@dataclass(frozen=True)
class Plan:
    """How to lay out a commune without a hill model; lengths in units of the outline scale."""

    road: tuple[tuple[float, float], ...]
    settlements: tuple[Settlement, ...]
    parcel_spacing_m: float
    max_parcels: int
    min_parcel_m2: float
    dwelling_spacing_m: float = 12.0  # least distance between houses
    transit: bool = False  # whether public transport runs on the main road


@dataclass
class Layout:
    """The metres geometry of a commune laid out from a Plan."""

    main_road: list[LineString]  # split where branches join
    branches: list[LineString]
    centres: list[Point]  # settlement centres, in plan order
    parcels: list[Polygon]
    dwellings: list[tuple[Point, str]]  # point, settlement name
    spare_sites: list[list[Point]]  # free sites per settlement, nearest to the centre first


def build_roads(placed: Placed, plan: Plan) -> tuple[list[LineString], list[LineString]]:
    """Main road clipped 10 m inside the outline, branches from its vertices to settlements."""
    shape = placed.shape
    pts = [shape.plan_xy(u, v, placed.heading_deg) for u, v in plan.road]
    main = longest_line(LineString(pts).intersection(placed.outline.buffer(-10)))
    coords = list(shapely.segmentize(main, 40.0).coords)
    xy = np.array(coords)
    cuts: set[int] = set()
    branches = []
    for s in plan.settlements:
        c = shape.plan_xy(s.u, s.v, placed.heading_deg)
        i = int(np.argmin(np.hypot(xy[:, 0] - c[0], xy[:, 1] - c[1])))
        if math.dist(coords[i], c) < 40:
            continue  # the settlement sits on the main road
        if 0 < i < len(coords) - 1:
            cuts.add(i)
        branches.append(LineString([coords[i], c]))
    bounds = [0, *sorted(cuts), len(coords) - 1]
    pieces = [LineString(coords[a : b + 1]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return pieces, branches


def parcel_pieces(
    rng: np.random.Generator, land: BaseGeometry, spacing_m: float, gap_m: float, min_m2: float
) -> list[Polygon]:
    """Voronoi cells of a jittered grid clipped to ``land`` and shrunk by half the gap, so
    parcels never touch; pieces smaller than ``min_m2`` stay unparcelled."""
    seeds = jittered_grid(rng, land.bounds, spacing_m, 0.35 * spacing_m)
    cells = shapely.voronoi_polygons(
        MultiPoint(seeds), extend_to=box(*land.bounds).buffer(spacing_m)
    )
    pieces = []
    for cell in shapely.get_parts(cells):
        part = cell.intersection(land).buffer(-gap_m / 2, join_style="mitre")
        pieces += [
            p for p in shapely.get_parts(part) if p.geom_type == "Polygon" and p.area >= min_m2
        ]
    return pieces


SPARE_SITES = 12  # free sites kept per settlement for facilities and production units


def settlement_sites(
    rng: np.random.Generator,
    centre: Point,
    radius_m: float,
    n: int,
    spacing_m: float,
    allowed: BaseGeometry,
) -> tuple[np.ndarray, list[Point]]:
    """(house sites, spare sites nearest the centre first): houses thin out from the centre."""
    sigma = 0.5 * radius_m
    sites = dart_sites(
        rng,
        centre.buffer(radius_m).intersection(allowed),
        n + SPARE_SITES,
        spacing_m,
        lambda p: np.exp(-0.5 * (np.hypot(p[:, 0] - centre.x, p[:, 1] - centre.y) / sigma) ** 2),
    )
    spare = sites[n:]
    order = np.argsort(np.hypot(spare[:, 0] - centre.x, spare[:, 1] - centre.y), kind="stable")
    return sites[:n], [Point(p) for p in spare[order]]


def lay_out(placed: Placed, plan: Plan, rng: np.random.Generator) -> Layout:
    outline = placed.outline
    main, branches = build_roads(placed, plan)
    roads = shapely.union_all(main + branches)
    centres = [Point(placed.shape.plan_xy(s.u, s.v, placed.heading_deg)) for s in plan.settlements]
    discs = [
        c.buffer(s.radius * placed.shape.scale)
        for c, s in zip(centres, plan.settlements, strict=True)
    ]
    allowed = outline.buffer(-4).difference(roads.buffer(6))
    dwellings: list[tuple[Point, str]] = []
    spare: list[list[Point]] = []
    for s, c in zip(plan.settlements, centres, strict=True):
        houses, free = settlement_sites(
            rng, c, s.radius * placed.shape.scale, s.dwellings, plan.dwelling_spacing_m, allowed
        )
        dwellings += [(Point(p), s.name) for p in houses]
        spare.append(free)
    land = outline.buffer(-3).difference(roads.buffer(6)).difference(shapely.union_all(discs))
    pieces = parcel_pieces(rng, land, plan.parcel_spacing_m, 4.0, plan.min_parcel_m2)
    pieces = sorted(pieces, key=lambda p: -p.area)[: plan.max_parcels]
    pieces.sort(key=lambda p: position_key(p, plan.parcel_spacing_m))
    return Layout(main, branches, centres, pieces, dwellings, spare)


def add_roads(
    out: Samples, placed: Placed, lay: Layout, plan: Plan, names: tuple[str, str]
) -> None:
    for line in lay.main_road:
        out.add(
            "paths",
            placed,
            line,
            kind="road",
            name=names[0],
            steps=None,
            vehicles=True,
            transit=plan.transit,
        )
    for line in lay.branches:
        out.add(
            "paths",
            placed,
            line,
            kind="road",
            name=names[1],
            steps=None,
            vehicles=True,
            transit=False,
        )


def add_parcels(
    out: Samples, placed: Placed, lay: Layout, prefix: str, props: list[dict[str, object]]
) -> list[str]:
    codes = [f"{prefix}-P{i + 1:03d}" for i in range(len(lay.parcels))]
    for code, poly, p in zip(codes, lay.parcels, props, strict=True):
        out.add("parcels", placed, MultiPolygon([poly]), code=code, **p)
    return codes


def parcel_props(
    rng: np.random.Generator,
    n: int,
    uses: Sequence[tuple[str, str | None]],
    tenures: Sequence[tuple[str, float]],
) -> list[dict[str, object]]:
    """Tenure and land use for ``n`` parcels that were never recovered land."""
    names = [t for t, _ in tenures]
    p = np.array([w for _, w in tenures])
    tenure = choose(rng, names, np.tile(p / p.sum(), (n, 1)))
    props = []
    for i in range(n):
        use, note = uses[int(rng.integers(len(uses)))]
        t = "abandoned" if use == "idle" else tenure[i]
        props.append({"tenure": t, "land_use": use, "recovered_on": None, "notes": note})
    return props


def dwelling_props(
    rng: np.random.Generator, pts: Sequence[Point], supply: BaseGeometry, mean_residents: float
) -> list[dict[str, object]]:
    """Rural/urban default: piped water likely within 60 m of a working pipe."""
    d = shapely.distance(supply, np.array(pts, dtype=object))
    near = (d < 60)[:, None]
    water = choose(
        rng,
        ("piped", "intermittent", "truck", "none"),
        np.where(near, [0.55, 0.35, 0.1, 0.0], [0.0, 0.3, 0.45, 0.25]),
    )
    n = len(pts)
    elec = choose(rng, ("formal", "precarious", "none"), np.tile([0.7, 0.25, 0.05], (n, 1)))
    gas = choose(rng, ("piped", "cylinder", "none"), np.tile([0.0, 0.9, 0.1], (n, 1)))
    res = np.clip(1 + rng.poisson(mean_residents - 1, n), 1, 12)
    return [
        {"residents": int(r), "water": w, "electricity": e, "gas": g}
        for r, w, e, g in zip(res, water, elec, gas, strict=True)
    ]


def add_dwellings(
    out: Samples,
    placed: Placed,
    lay: Layout,
    supply: BaseGeometry,
    rng: np.random.Generator,
    mean_residents: float,
) -> None:
    pts = [p for p, _ in lay.dwellings]
    for (pt, sector), p in zip(
        lay.dwellings, dwelling_props(rng, pts, supply, mean_residents), strict=True
    ):
        out.add("dwellings", placed, pt, **p, sector=sector)


def add_utilities(
    out: Samples,
    placed: Placed,
    lay: Layout,
    water: tuple[str, int, str],
    branch_status: Sequence[str],
) -> BaseGeometry:
    """Water main beside the main road, branches beside the branch roads, power alongside.

    Returns the pipes that carry water (for the dwellings' water attribute)."""
    material, diameter, status = water
    carrying = []
    for line in lay.main_road:
        pipe = offset_or_same(line, 5.0)
        out.add(
            "water_mains",
            placed,
            pipe,
            kind="main",
            diameter_mm=diameter,
            material=material,
            status=status,
        )
        out.add(
            "power_lines", placed, offset_or_same(line, -5.0), voltage="medium", condition="good"
        )
        carrying.append(pipe)
    for i, line in enumerate(lay.branches):
        st = branch_status[i % len(branch_status)]
        out.add(
            "water_mains",
            placed,
            line,
            kind="branch",
            diameter_mm=max(50, diameter // 2),
            material="pvc",
            status=st,
        )
        out.add(
            "power_lines", placed, line, voltage="low", condition="precarious" if i % 2 else "good"
        )
        if st in ("working", "leaking"):
            carrying.append(line)
    return shapely.union_all(carrying)


def add_units(
    out: Samples,
    placed: Placed,
    lay: Layout,
    codes: list[str],
    props: list[dict[str, object]],
    units: Sequence[tuple[str, str, int, str | None]],
    rng: np.random.Generator,
) -> None:
    """Production units inside a parcel of the wanted land use, or (None) in a settlement."""
    used: set[int] = set()
    for name, product, workers, use in units:
        if use is None:
            out.add(
                "production_units",
                placed,
                lay.spare_sites[0].pop(0),
                name=name,
                product=product,
                workers=workers,
                parcel=None,
            )
            continue
        fits = [i for i, p in enumerate(props) if p["land_use"] == use]
        free = [i for i in fits if i not in used] or fits
        i = free[int(rng.integers(len(free)))]
        used.add(i)
        pt = random_point_in(rng, lay.parcels[i], 8.0)
        out.add(
            "production_units",
            placed,
            pt,
            name=name,
            product=product,
            workers=workers,
            parcel=codes[i],
        )


def add_facilities(
    out: Samples, placed: Placed, lay: Layout, facilities: Sequence[tuple[int, str, str]]
) -> None:
    """Facilities at free house sites of settlement ``i`` (nearest to its centre first)."""
    for i, kind, name in facilities:
        out.add("facilities", placed, lay.spare_sites[i].pop(0), kind=kind, name=name)


# ---------------------------------------------------------------------------------------------
# El Maizal
# ---------------------------------------------------------------------------------------------

MAIZAL_PLAN = Plan(
    road=((-1.4, -0.12), (-0.6, -0.02), (-0.05, 0.1), (0.5, 0.02), (1.4, 0.18)),
    settlements=(
        Settlement("Caserío Central", 0.12, -0.16, 0.1, 140),
        Settlement("Caserío del lado de Lara", 0.58, 0.34, 0.085, 90),
        Settlement("Caserío del lado de Portuguesa", -0.62, 0.3, 0.08, 70),
    ),
    parcel_spacing_m=500.0,
    max_parcels=96,
    min_parcel_m2=30_000.0,
    transit=True,
)
# (name, product, workers, land use of its parcel; None = in the central settlement)
MAIZAL_UNITS = (
    ("Maíz blanco", "maize", 16, "crops"),
    ("Maíz amarillo", "maize", 14, "crops"),
    ("Semilla de maíz", "maize", 5, "crops"),
    ("Molino de maíz", "maize", 5, None),
    ("Ganado de carne", "beef", 10, "pasture"),
    ("Ganado de levante", "beef", 5, "pasture"),
    ("Cría de cerdos", "pork", 8, "mixed"),
    ("Gallinas ponedoras", "eggs", 8, "mixed"),
    ("Vaquería", "milk", 10, "pasture"),
    ("Quesera comunal", "cheese", 7, "mixed"),
    ("Café", "coffee", 7, "forest"),
    ("Hortalizas en casas de cultivo", "vegetables", 10, "greenhouse"),
    ("Hortalizas a campo abierto", "vegetables", 6, "crops"),
    ("Empresa comunal de distribución de gas", "gas_distribution", 9, None),
)
MAIZAL_FACILITIES = (
    (0, "community_center", "Sede de la Comuna El Maizal"),
    (0, "communal_shop", "Tienda comunal El Maizal"),
    (0, "other", "Depósito de gas comunal"),
    (0, "school", "Escuela comunal Caserío Central"),
    (0, "clinic", "Consultorio popular"),
    (1, "school", "Escuela comunal lado de Lara"),
    (1, "sports", "Cancha deportiva"),
    (2, "school", "Escuela comunal lado de Portuguesa"),
)
# Latest recovery date that still leaves room for the later steps of each tenure.
RECOVERED_BY = {
    "regularized": date(2018, 12, 31),
    "regularizing": date(2021, 6, 30),
    "occupied": date(2023, 6, 30),
    "disputed": date(2019, 12, 31),
}


MAIZAL_USES = (
    ("crops", 0.45),
    ("pasture", 0.3),
    ("mixed", 0.12),
    ("forest", 0.09),
    ("housing", 0.04),
)


def shares(rng: np.random.Generator, options: Sequence[tuple[str, float]], n: int) -> list[str]:
    """``n`` values in the given proportions (largest remainders), in random order."""
    want = np.array([w for _, w in options]) * n
    counts = np.floor(want).astype(int)
    counts[np.argsort(-(want - counts), kind="stable")[: n - counts.sum()]] += 1
    values = [name for (name, _), c in zip(options, counts, strict=True) for _ in range(c)]
    return [values[i] for i in rng.permutation(n)]


def maizal_roles(
    rng: np.random.Generator, parcels: list[Polygon], centres: list[Point]
) -> list[tuple[str, str]]:
    """(tenure, land_use) per parcel: idle abandoned land at the edge, greenhouses near the
    centre, most of the rest recovered and regularized or on the way."""
    n = len(parcels)
    dist = np.array([min(p.distance(c) for c in centres) for p in parcels])
    far = np.argsort(-dist, kind="stable")
    abandoned = set(rng.choice(far[:16], 6, replace=False).tolist())
    near = [int(i) for i in np.argsort(dist, kind="stable") if int(i) not in abandoned]
    greenhouse = set(near[:3])
    rest = [int(i) for i in rng.permutation(n) if int(i) not in abandoned | greenhouse]
    roles: list[tuple[str, str]] = [("", "")] * n
    for i in abandoned:
        roles[i] = ("abandoned", "idle")
    for i in greenhouse:
        roles[i] = ("regularized", "greenhouse")
    # exact shares rather than draws: maize fields must outnumber pasture in a maize commune
    uses = shares(rng, MAIZAL_USES, len(rest))
    for k, (i, use) in enumerate(zip(rest, uses, strict=True)):
        share = k / len(rest)
        tenure = (
            "disputed"
            if k < 2
            else "regularized"
            if share < 0.58
            else "regularizing"
            if share < 0.82
            else "occupied"
        )
        roles[i] = (tenure, "pasture" if tenure == "disputed" else use)
    return roles


MAIZAL_NOTES = {
    "abandoned": "Tierra ociosa; candidata a rescate",
    "disputed": "Reclamo de un antiguo propietario pendiente",
    "greenhouse": "Casas de cultivo ocupadas y puestas a producir",
}


def maizal_parcel_props(
    rng: np.random.Generator, roles: list[tuple[str, str]]
) -> list[dict[str, object]]:
    props = []
    for tenure, use in roles:
        recovered = None
        if tenure != "abandoned":
            # about a third were taken on the founding day, the rest over the following years
            recovered = (
                FOUNDING
                if rng.random() < 0.35
                else random_date(rng, FOUNDING + timedelta(days=1), RECOVERED_BY[tenure])
            )
        note = MAIZAL_NOTES.get(tenure) or MAIZAL_NOTES.get(use)
        props.append(
            {
                "tenure": tenure,
                "land_use": use,
                "recovered_on": recovered.isoformat() if recovered else None,
                "notes": note,
            }
        )
    return props


HISTORY_STEPS = {
    "occupied": (),
    "regularizing": ("regularizing",),
    "regularized": ("regularizing", "regularized"),
    "disputed": ("regularizing", "disputed"),
}
HISTORY_NOTES = {
    "regularizing": "Solicitud de regularización de la tenencia",
    "regularized": "Tenencia regularizada (carta agraria)",
    "disputed": "Reclamo de un antiguo propietario; tenencia en disputa",
}


def tenure_history(
    rng: np.random.Generator, code: str, tenure: str, recovered: str | None
) -> list[tuple[str, str, str, str, str]]:
    """Status changes of one parcel, dates ascending, ending at its current tenure."""
    if recovered is None:
        return [
            (
                code,
                "",
                "abandoned",
                FOUNDING.isoformat(),
                "Registrada como tierra ociosa en el censo fundacional",
            )
        ]
    day = date.fromisoformat(recovered)
    rows, prev = [], ""
    if day > FOUNDING:
        rows.append(
            (
                code,
                "",
                "abandoned",
                FOUNDING.isoformat(),
                "Registrada como tierra ociosa en el censo fundacional",
            )
        )
        prev = "abandoned"
    rows.append((code, prev, "occupied", recovered, "Tierra rescatada y puesta a producir"))
    prev = "occupied"
    steps = HISTORY_STEPS[tenure]
    for k, status in enumerate(steps):
        room = (LAST_DAY - day).days // (len(steps) - k)
        day += timedelta(days=int(rng.integers(min(180, room), room + 1)))
        rows.append((code, prev, status, day.isoformat(), HISTORY_NOTES[status]))
        prev = status
    return rows


def add_greenhouses(
    out: Samples,
    placed: Placed,
    rng: np.random.Generator,
    sites: Sequence[Polygon],
    specs: Sequence[tuple[str, str, str]],
) -> list[Polygon]:
    """Rotated rectangles of 400–1,800 m² inside the given parcels, 8 m apart at least."""
    done: list[Polygon] = []
    for k, (name, condition, crop) in enumerate(specs):
        room = sites[k % len(sites)].buffer(-5)
        while True:
            w, h = rng.uniform(10, 22), rng.uniform(30, 80)
            if not 400 <= w * h <= 1800:
                continue
            c = random_point_in(rng, room, 10.0)
            rect = rotated_rect(c.x, c.y, w, h, float(rng.uniform(0, 180)))
            if room.contains(rect) and all(rect.distance(o) > 8 for o in done):
                break
        done.append(rect)
        out.add("greenhouses", placed, rect, name=name, condition=condition, crop=crop)
    return done


MAIZAL_GREENHOUSES = (
    ("Casa de cultivo 1", "working", "tomate"),
    ("Casa de cultivo 2", "working", "pimentón"),
    ("Casa de cultivo 3", "working", "ají dulce"),
    ("Casa de cultivo 4", "damaged", "pepino"),
    ("Casa de cultivo 5", "working", "lechuga"),
    ("Casa de cultivo 6", "under_construction", "cilantro"),
)


def check_sides(placed: Placed, lay: Layout, states: dict[str, BaseGeometry]) -> None:
    """The settlement names promise a state: make sure the outline keeps that promise."""
    frame = placed.frame
    for s, c in zip(MAIZAL_PLAN.settlements, lay.centres, strict=True):
        for code, state in (("VE-K", "Lara"), ("VE-P", "Portuguesa")):
            if state in s.name:
                assert states[code].contains(frame.to_lonlat(c)), f"{s.name} not in {state}"


def build_el_maizal(out: Samples, placed: Placed, states: dict[str, BaseGeometry]) -> None:
    rng = np.random.default_rng([EL_MAIZAL.seed, 1])
    lay = lay_out(placed, MAIZAL_PLAN, rng)
    check_sides(placed, lay, states)
    add_roads(out, placed, lay, MAIZAL_PLAN, ("Carretera a Sarare", "Camino de caserío"))
    supply = add_utilities(out, placed, lay, ("pvc", 160, "working"), ("working", "leaking"))
    roles = maizal_roles(rng, lay.parcels, lay.centres)
    props = maizal_parcel_props(rng, roles)
    codes = add_parcels(out, placed, lay, "EM", props)
    for code, p in zip(codes, props, strict=True):
        out.history += tenure_history(rng, code, str(p["tenure"]), p["recovered_on"])  # type: ignore[arg-type]
    add_dwellings(out, placed, lay, supply, rng, 4.6)
    add_facilities(out, placed, lay, MAIZAL_FACILITIES)
    add_units(out, placed, lay, codes, props, MAIZAL_UNITS, rng)
    gh_parcels = [lay.parcels[i] for i, p in enumerate(props) if p["land_use"] == "greenhouse"]
    add_greenhouses(out, placed, rng, gh_parcels, MAIZAL_GREENHOUSES)


# ---------------------------------------------------------------------------------------------
# Monte Sinaí
# ---------------------------------------------------------------------------------------------

SINAI_PLAN = Plan(
    road=((-1.4, 0.1), (-0.45, 0.0), (0.3, -0.12), (1.4, 0.05)),
    settlements=(
        Settlement("Santa Bárbara", 0.3, 0.28, 0.12, 35),
        Settlement("Sector La Montaña", -0.55, -0.32, 0.09, 15),
    ),
    parcel_spacing_m=470.0,
    max_parcels=34,
    min_parcel_m2=20_000.0,
)
SINAI_USES: tuple[tuple[str, str | None], ...] = (
    ("crops", "café"),
    ("crops", "cacao"),
    ("crops", "caraotas negras"),
    ("crops", "tubérculos (yuca, ocumo)"),
    ("crops", "aguacate"),
    ("forest", "café bajo sombra; matas viejas por renovar"),
    ("forest", "cacao bajo sombra"),
    ("mixed", "café, cacao y conucos"),
)
SINAI_UNITS = (
    ("Café Monte Sinaí", "coffee", 12, "forest"),
    ("Cacao del valle de Guanape", "cocoa", 8, "crops"),
    ("Vivero de café", "coffee", 5, "greenhouse"),
    ("Caraotas negras y tubérculos", "other", 6, "crops"),
)


def build_monte_sinai(out: Samples, placed: Placed) -> None:
    rng = np.random.default_rng([MONTE_SINAI.seed, 1])
    lay = lay_out(placed, SINAI_PLAN, rng)
    add_roads(out, placed, lay, SINAI_PLAN, ("Carretera del valle", "Camino de Santa Bárbara"))
    supply = add_utilities(out, placed, lay, ("pvc", 110, "leaking"), ("working",))
    props = parcel_props(
        rng,
        len(lay.parcels),
        SINAI_USES,
        (("occupied", 0.4), ("regularizing", 0.4), ("regularized", 0.2)),
    )
    props[-1] = {
        "tenure": "abandoned",
        "land_use": "idle",
        "recovered_on": None,
        "notes": "Cafetal abandonado",
    }
    nursery = int(np.argmin([p.distance(lay.centres[0]) for p in lay.parcels]))
    props[nursery] = {
        "tenure": "occupied",
        "land_use": "greenhouse",
        "recovered_on": None,
        "notes": "Vivero de plántulas de café para renovar cafetales viejos",
    }
    codes = add_parcels(out, placed, lay, "MS", props)
    add_dwellings(out, placed, lay, supply, rng, 4.2)
    add_facilities(
        out,
        placed,
        lay,
        (
            (0, "community_center", "Casa del parlamento comunal"),
            (0, "school", "Escuela rural"),
            (1, "water_tank", "Tanque La Montaña"),
        ),
    )
    add_units(out, placed, lay, codes, props, SINAI_UNITS, rng)
    (house,) = add_greenhouses(
        out,
        placed,
        rng,
        [lay.parcels[nursery]],
        (("Vivero de café", "working", "coffee seedlings"),),
    )
    out.add("facilities", placed, house.centroid, kind="nursery", name="Vivero de café")


# ---------------------------------------------------------------------------------------------
# The other six communes: a road, one settlement, a handful of parcels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmallDetail:
    dwellings: int
    parcels: int
    uses: tuple[tuple[str, str | None], ...]
    units: tuple[tuple[str, str, int, str | None], ...]
    facilities: tuple[tuple[int, str, str], ...]
    transit: bool


URBAN_USES: tuple[tuple[str, str | None], ...] = (
    ("housing", None),
    ("housing", None),
    ("mixed", "vivienda y taller"),
    ("idle", "terreno baldío"),
)
SMALL_DETAILS = {
    "LUISA-CACERES-DE-ARISMENDI": SmallDetail(
        40,
        6,
        URBAN_USES,
        (
            ("Recolección de desechos", "recycling", 14, "mixed"),
            ("Clasificación de plástico y cartón", "recycling", 6, None),
        ),
        (
            (0, "recycling_center", "Centro de acopio de reciclaje"),
            (0, "community_center", "Casa comunal"),
        ),
        True,
    ),
    "CHE-GUEVARA": SmallDetail(
        25,
        8,
        (
            ("crops", "café"),
            ("crops", "caña para panela"),
            ("forest", "cacao bajo sombra"),
            ("pasture", None),
        ),
        (
            ("Café de altura", "coffee", 9, "crops"),
            ("Trapiche comunal", "panela", 7, None),
            ("Cacao andino", "cocoa", 4, "forest"),
        ),
        (
            (0, "community_center", "Casa comunal (sede del encuentro de 2019)"),
            (0, "school", "Escuela rural"),
        ),
        False,
    ),
    "ALTOS-DE-LIDICE": SmallDetail(
        35,
        5,
        URBAN_USES,
        (("Bodega comunal", "other", 3, "mixed"),),
        ((0, "clinic", "Consultorio comunitario"), (0, "communal_shop", "Tienda comunal")),
        True,
    ),
    "INDIO-CARICUAO": SmallDetail(
        40,
        6,
        URBAN_USES,
        (("Empresa textil comunal", "textiles", 18, None),),
        (
            (0, "community_center", "Sede comunal y taller textil"),
            (0, "transit_stop", "Parada Caricuao"),
        ),
        True,
    ),
    "SECTORES-UNIDOS": SmallDetail(
        30,
        7,
        (
            ("housing", None),
            ("crops", "hortalizas"),
            ("mixed", "vivienda y conuco"),
            ("idle", "terreno sin uso"),
        ),
        (
            ("Hortalizas Sectores Unidos", "vegetables", 8, "crops"),
            ("Panadería comunal", "bakery", 5, None),
        ),
        ((0, "communal_shop", "Tienda comunal"), (0, "school", "Escuela")),
        True,
    ),
    "PANCHA-VASQUEZ": SmallDetail(
        15,
        8,
        (
            ("pasture", "sabana de llano"),
            ("pasture", None),
            ("crops", "maíz"),
            ("forest", "mata de galería"),
        ),
        (
            ("Ganado de doble propósito", "beef", 8, "pasture"),
            ("Vaquería", "milk", 5, "pasture"),
            ("Queso llanero", "cheese", 4, None),
        ),
        ((0, "school", "Escuela rural"), (0, "water_tank", "Tanque australiano")),
        False,
    ),
}


def small_plan(placed: Placed, detail: SmallDetail) -> Plan:
    area_m2 = placed.spec.area_ha * 1e4
    urban = placed.spec.kind == "urban"
    return Plan(
        road=((-1.4, -0.1), (0.0, 0.05), (1.4, -0.05)),
        settlements=(
            Settlement("Sector Centro", 0.3, 0.35, 0.35 if urban else 0.22, detail.dwellings),
        ),
        parcel_spacing_m=math.sqrt(area_m2 / (detail.parcels + 4)),
        max_parcels=detail.parcels,
        min_parcel_m2=area_m2 / (detail.parcels * 6),
        dwelling_spacing_m=8.0 if urban else 12.0,
        transit=detail.transit,
    )


def build_small(out: Samples, placed: Placed) -> None:
    spec = placed.spec
    detail = SMALL_DETAILS[spec.code]
    rng = np.random.default_rng([spec.seed, 1])
    plan = small_plan(placed, detail)
    lay = lay_out(placed, plan, rng)
    add_roads(out, placed, lay, plan, ("Calle principal", "Calle del sector"))
    supply = add_utilities(out, placed, lay, ("pvc", 110, "working"), ("leaking", "working"))
    props = parcel_props(
        rng,
        len(lay.parcels),
        detail.uses,
        (("occupied", 0.4), ("regularizing", 0.35), ("regularized", 0.25)),
    )
    for use in {u for *_, u in detail.units if u} - {p["land_use"] for p in props}:
        props[0] = {**props[0], "land_use": use}  # every unit needs a parcel of its use
    prefix = "".join(w[0] for w in spec.code.split("-") if w.upper() not in ("DE",))[:2]
    codes = add_parcels(out, placed, lay, prefix, props)
    add_dwellings(out, placed, lay, supply, rng, 4.3)
    add_facilities(out, placed, lay, detail.facilities)
    add_units(out, placed, lay, codes, props, detail.units, rng)


# ---------------------------------------------------------------------------------------------
# 5 de Marzo: a hill in El Valle, its DEM, paths, pipes and 1,360 dwellings
# ---------------------------------------------------------------------------------------------

HILL_BASE_M, HILL_RISE_M = 900.0, 120.0  # valley floor and summit height above it, m
HILL_FOOT_F = 1.05  # the slope ends just outside the commune edge (f = 1)
# Contour levels (f) of the network, from the valley road to the summit path.
BASE, LOW, MID, UPPER, TOP = 0.92, 0.78, 0.62, 0.42, 0.20


@dataclass(frozen=True)
class HillPath:
    """A path through nodes (θ°, f); each pair of consecutive nodes becomes one feature."""

    kind: str
    name: str | None
    nodes: tuple[tuple[float, float], ...]
    vehicles: bool = False
    transit: bool = False


# Angles run counter-clockwise from east, so 270° is the south side where the valley road is.
# Nodes are written with the same (θ, f) wherever paths meet, which makes them share vertices.
HILL_PATHS = (
    HillPath(
        "road",
        "Calle La Base",
        ((200, BASE), (228, BASE), (252, BASE), (280, BASE)),
        vehicles=True,
        transit=True,
    ),
    HillPath("road", "Calle La Base", ((280, BASE), (305, BASE), (340, BASE)), vehicles=True),
    HillPath("road", "Subida La Curva", ((340, BASE), (370, LOW), (320, MID)), vehicles=True),
    HillPath(
        "road",
        "Calle Intermedia",
        ((215, MID), (228, MID), (252, MID), (280, MID), (320, MID)),
        vehicles=True,
    ),
    HillPath(
        "footpath",
        "Vereda Baja",
        ((228, LOW), (280, LOW), (370, LOW), (460, LOW), (520, LOW), (588, LOW)),
    ),
    HillPath(
        "footpath", "Vereda El Mirador", ((252, UPPER), (370, UPPER), (460, UPPER), (612, UPPER))
    ),
    HillPath("footpath", "Vereda La Cumbre", ((252, TOP), (460, TOP), (612, TOP))),
    *(
        HillPath("stairway", None, pair)
        for pair in (
            ((228, BASE), (228, LOW)),
            ((228, LOW), (228, MID)),
            ((280, BASE), (280, LOW)),
            ((280, LOW), (280, MID)),
            ((252, MID), (252, UPPER)),
            ((100, LOW), (100, UPPER)),
            ((10, LOW), (10, UPPER)),
            ((252, UPPER), (252, TOP)),
            ((100, UPPER), (100, TOP)),
        )
    ),
)
# (kind, diameter mm, material, status, polar polyline): the main runs just below the valley
# road; branches stop at the middle road, so the upper hill is far from any pipe.
HILL_WATER = (
    ("main", 200, "iron", "working", ((195, 0.95), (270, 0.95))),
    ("main", 200, "iron", "leaking", ((270, 0.95), (345, 0.95))),
    ("branch", 63, "hdpe", "working", ((234, 0.95), (234, 0.64))),
    ("branch", 50, "pvc", "leaking", ((286, 0.95), (286, 0.64))),
    ("branch", 50, "pvc", "working", ((234, 0.64), (286, 0.64))),
    ("branch", 100, "steel", "damaged", ((262, 0.95), (262, 0.52))),
    ("branch", 50, "hdpe", "planned", ((262, 0.52), (200, 0.46), (140, 0.46))),
    *(("service", 25, "pvc", "working", ((t, 0.95), (t, 0.86))) for t in (210, 246, 300, 326)),
)
HILL_POWER = (
    ("medium", "good", ((195, 0.96), (345, 0.96))),
    ("low", "precarious", ((224, 0.96), (224, 0.60))),
    ("low", "precarious", ((215, 0.60), (320, 0.60))),
    ("low", "damaged", ((256, 0.60), (256, 0.20))),
    ("low", "precarious", ((20, 0.80), (160, 0.80))),
    ("low", "precarious", ((256, 0.44), (420, 0.44))),
    ("low", "planned", ((100, 0.22), (256, 0.22))),
)
HILL_FACILITIES = (
    ("water_tank", "Tanque El Mirador", 262, 0.52),
    ("transit_stop", "Parada La Base", 214, BASE),
    ("transit_stop", "Parada Las Escaleras", 264, BASE),
    ("communal_shop", "Tienda comunal 5 de Marzo", 245, 0.86),
    ("recycling_center", "Escuela de reciclaje", 300, 0.85),
    ("clinic", "Consultorio popular", 236, 0.70),
    ("community_center", "Casa comunal 5 de Marzo", 270, 0.54),
    ("sports", "Cancha La Cumbre", 150, 0.30),
)
# (name, product, workers, in a parcel?) – 19 socially owned units, as reported.
HILL_UNITS = (
    ("Centro de acopio de reciclaje", "recycling", 8, True),
    ("Clasificación de plástico", "recycling", 6, True),
    ("Prensado de cartón", "recycling", 5, True),
    ("Panadería comunal La Bajada", "bakery", 6, True),
    ("Panadería comunal El Mirador", "bakery", 4, True),
    ("Dulcería comunal", "bakery", 3, True),
    ("Taller textil de uniformes", "textiles", 7, True),
    ("Taller de costura", "textiles", 4, True),
    ("Serigrafía comunal", "textiles", 3, True),
    ("Tienda comunal La Base", "other", 4, False),
    ("Tienda comunal Las Escaleras", "other", 3, True),
    ("Tienda comunal La Cumbre", "other", 2, True),
    ("Empaquetadora de café andino", "coffee", 3, True),
    ("Huerto urbano", "vegetables", 4, False),
    ("Vivero urbano", "vegetables", 2, False),
    ("Distribución de gas en bombonas", "gas_distribution", 3, False),
    ("Bloquera comunal", "other", 5, True),
    ("Lavandería comunal", "other", 3, True),
    ("Cocina comunitaria", "other", 4, True),
)
HILL_SECTORS = (
    (0.80, "La Bajada"),
    (0.60, "Las Escaleras"),
    (0.35, "El Mirador"),
    (-1.0, "La Cumbre"),
)
HILL_DWELLINGS, HILL_RESIDENTS = 1360, 6000


def hill_elevation(shape: StarShape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Synthetic ground height, m: a smoothstep hill whose contours follow the outline (f),
    900 m at its foot and 1,020 m on top, with 1 m ripples and a 1 % valley tilt."""
    _, f = shape.polar(x, y)
    s = np.clip(f / HILL_FOOT_F, 0.0, 1.0)
    hill = 1.0 - (3 * s**2 - 2 * s**3)
    dx, dy = x - shape.cx, y - shape.cy
    ripple = np.sin(dx / 23.0 + 0.7) * np.cos(dy / 31.0 - 0.4) * 4 * s * (1 - s)
    return HILL_BASE_M + HILL_RISE_M * hill + ripple + 0.01 * dy


def hill_dem(shape: StarShape, outline: Polygon) -> tuple[np.ndarray, Affine]:
    """2 m float32 grid in the commune's UTM zone covering the outline plus 120 m."""
    minx, miny, maxx, maxy = outline.buffer(120).bounds
    x0, y1 = math.floor(minx / 10) * 10, math.ceil(maxy / 10) * 10
    w = math.ceil((maxx - x0) / DEM_CELL_M)
    h = math.ceil((y1 - miny) / DEM_CELL_M)
    xs = x0 + (np.arange(w) + 0.5) * DEM_CELL_M
    ys = y1 - (np.arange(h) + 0.5) * DEM_CELL_M
    gx, gy = np.meshgrid(xs, ys)
    # centimetre heights compress far better and are more than the sample needs
    z = np.round(hill_elevation(shape, gx, gy), 2).astype("float32")
    return z, from_origin(x0, y1, DEM_CELL_M, DEM_CELL_M)


def dem_at(dem: tuple[np.ndarray, Affine], x: float, y: float) -> float:
    """Height of the cell holding (x, y), m."""
    z, tf = dem
    col, row = ~tf * (x, y)
    return float(z[int(row), int(col)])


def hill_network(
    shape: StarShape, dem: tuple[np.ndarray, Affine]
) -> list[tuple[LineString, dict[str, object]]]:
    """Noded path network: one feature per edge; stair steps from the DEM rise."""
    edges = []
    stair = 0
    for path in HILL_PATHS:
        for a, b in zip(path.nodes[:-1], path.nodes[1:], strict=True):
            line = polar_path(shape, (a, b))
            steps, name = None, path.name
            if path.kind == "stairway":
                stair += 1
                rise = abs(dem_at(dem, *line.coords[-1]) - dem_at(dem, *line.coords[0]))
                steps, name = max(1, round(rise / STEP_RISE_M)), f"Escalera {stair}"
            edges.append(
                (
                    line,
                    {
                        "kind": path.kind,
                        "name": name,
                        "steps": steps,
                        "vehicles": path.vehicles,
                        "transit": path.transit,
                    },
                )
            )
    return edges


def hill_dwelling_props(
    rng: np.random.Generator, f: np.ndarray, water_m: np.ndarray
) -> list[dict[str, object]]:
    """Utilities worsen uphill: beyond 25 m of a carrying pipe water comes by truck or not at
    all, and formal electricity fades from 75 % at the foot to 15 % at the top."""
    n = f.size
    near = (water_m <= 25)[:, None]
    low = (f >= 0.7)[:, None]
    water = choose(
        rng,
        ("piped", "intermittent", "truck", "none"),
        np.where(
            near,
            np.where(low, [0.55, 0.4, 0.05, 0.0], [0.3, 0.5, 0.2, 0.0]),
            np.where(low, [0.0, 0.45, 0.35, 0.2], [0.0, 0.1, 0.4, 0.5]),
        ),
    )
    formal = 0.15 + 0.6 * np.clip((f - 0.2) / 0.75, 0, 1)
    elec = choose(
        rng,
        ("formal", "precarious", "none"),
        np.column_stack([formal, 0.93 - formal, np.full(n, 0.07)]),
    )
    piped_gas = np.where(f >= 0.85, 0.15, 0.0)
    gas = choose(
        rng,
        ("piped", "cylinder", "none"),
        np.column_stack([piped_gas, 0.9 - piped_gas, np.full(n, 0.1)]),
    )
    res = residents_summing_to(rng, n, HILL_RESIDENTS)
    sector = [next(name for lim, name in HILL_SECTORS if v >= lim) for v in f]
    return [
        {"residents": int(r), "water": w, "electricity": e, "gas": g, "sector": s}
        for r, w, e, g, s in zip(res, water, elec, gas, sector, strict=True)
    ]


def hill_sites(
    rng: np.random.Generator, outline: Polygon, blocked: BaseGeometry, paths: BaseGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """(dwellings, 60 leftover sites): houses at least 4 m apart (3 m is the promise, rounding
    moves points by 0.1 m), packed more densely along paths as in any barrio."""
    sites = dart_sites(
        rng,
        outline.buffer(-1.5).difference(blocked),
        HILL_DWELLINGS + 60,
        4.0,
        lambda p: 0.3 + 0.7 * np.exp(-shapely.distance(paths, shapely.points(p)) / 20.0),
    )
    return sites[:HILL_DWELLINGS], sites[HILL_DWELLINGS:]


def add_hill_parcels(
    out: Samples, placed: Placed, rng: np.random.Generator, corridors: BaseGeometry
) -> tuple[list[Polygon], list[dict[str, object]], list[str]]:
    land = placed.outline.buffer(-1).difference(corridors)
    pieces = parcel_pieces(rng, land, 80.0, 1.5, 600.0)
    pieces = [pieces[i] for i in rng.choice(len(pieces), 16, replace=False)]
    pieces.sort(key=lambda p: position_key(p, 40.0))
    props = parcel_props(
        rng,
        len(pieces),
        (("housing", "viviendas autoconstruidas"),),
        (("regularizing", 0.5), ("occupied", 0.3), ("regularized", 0.2)),
    )
    for i in rng.choice(len(pieces), 3, replace=False):
        props[i] = {
            "tenure": "abandoned",
            "land_use": "idle",
            "recovered_on": None,
            "notes": "Terreno baldío; posible huerto o cancha",
        }
    props[int(np.argmax([p.area for p in pieces]))].update(
        land_use="mixed", notes="Viviendas y talleres de las unidades de producción"
    )
    codes = [f"5M-P{i + 1:03d}" for i in range(len(pieces))]
    for code, poly, p in zip(codes, pieces, props, strict=True):
        out.add("parcels", placed, MultiPolygon([poly]), code=code, **p)
    return pieces, props, codes


def add_hill_units(
    out: Samples,
    placed: Placed,
    rng: np.random.Generator,
    parcels: tuple[list[Polygon], list[dict[str, object]], list[str]],
    loose_sites: np.ndarray,
) -> None:
    pieces, props, codes = parcels
    homes = [i for i, p in enumerate(props) if p["land_use"] in ("housing", "mixed")]
    outside = [Point(p) for p in loose_sites if not any(shapely.contains_xy(q, *p) for q in pieces)]
    for k, (name, product, workers, in_parcel) in enumerate(HILL_UNITS):
        if in_parcel:
            i = homes[k % len(homes)]
            pt, code = random_point_in(rng, pieces[i], 2.0), codes[i]
        else:
            pt, code = outside[int(rng.integers(len(outside)))], None
        out.add(
            "production_units", placed, pt, name=name, product=product, workers=workers, parcel=code
        )


def add_hill_lines(out: Samples, placed: Placed) -> BaseGeometry:
    """Water and power lines; returns the pipes that carry water."""
    carrying = []
    for kind, dia, material, status, nodes in HILL_WATER:
        line = polar_path(placed.shape, nodes)
        out.add(
            "water_mains",
            placed,
            line,
            kind=kind,
            diameter_mm=dia,
            material=material,
            status=status,
        )
        if status in ("working", "leaking"):
            carrying.append(line)
    for voltage, condition, nodes in HILL_POWER:
        out.add(
            "power_lines",
            placed,
            polar_path(placed.shape, nodes),
            voltage=voltage,
            condition=condition,
        )
    return shapely.union_all(carrying)


def build_cinco_de_marzo(out: Samples, placed: Placed) -> None:
    shape, outline = placed.shape, placed.outline
    assert placed.frame.epsg == 32619, "the 5 de Marzo DEM is specified in UTM 19N"
    rng = np.random.default_rng([CINCO_DE_MARZO.seed, 1])
    out.dem = hill_dem(shape, outline)
    network = hill_network(shape, out.dem)
    for line, props in network:
        out.add("paths", placed, line, **props)
    supply = add_hill_lines(out, placed)
    facilities = [(Point(shape.point(t, f)), kind, name) for kind, name, t, f in HILL_FACILITIES]
    for pt, kind, name in facilities:
        out.add("facilities", placed, pt, kind=kind, name=name)
    paths = shapely.union_all([line for line, _ in network])
    blocked = paths.buffer(2.5).union(shapely.union_all([p for p, *_ in facilities]).buffer(6))
    houses, loose = hill_sites(rng, outline, blocked, paths)
    _, f = shape.polar(houses[:, 0], houses[:, 1])
    water_m = shapely.distance(supply, shapely.points(houses))
    for xy, props in zip(houses, hill_dwelling_props(rng, f, water_m), strict=True):
        out.add("dwellings", placed, Point(xy), **props)
    parcels = add_hill_parcels(out, placed, rng, paths.buffer(2.0))
    add_hill_units(out, placed, rng, parcels, loose)


# ---------------------------------------------------------------------------------------------
# Exchanges between communes (monthly, illustrative volumes)
# ---------------------------------------------------------------------------------------------

EXCHANGES = (
    ("CHE-GUEVARA", "5-DE-MARZO", "coffee", 400, "kg"),
    ("CHE-GUEVARA", "5-DE-MARZO", "panela", 600, "kg"),
    ("CHE-GUEVARA", "5-DE-MARZO", "cocoa", 150, "kg"),
    ("CHE-GUEVARA", "ALTOS-DE-LIDICE", "coffee", 120, "kg"),
    ("MONTE-SINAI", "5-DE-MARZO", "coffee", 300, "kg"),
    ("MONTE-SINAI", "5-DE-MARZO", "cocoa", 120, "kg"),
    ("EL-MAIZAL", "5-DE-MARZO", "maize", 2.5, "t"),
    ("EL-MAIZAL", "5-DE-MARZO", "cheese", 300, "kg"),
    ("EL-MAIZAL", "ALTOS-DE-LIDICE", "maize", 1.2, "t"),
    ("EL-MAIZAL", "INDIO-CARICUAO", "cheese", 150, "kg"),
    ("EL-MAIZAL", "CHE-GUEVARA", "maize", 1, "t"),
    ("EL-MAIZAL", "SECTORES-UNIDOS", "gas_distribution", 400, "cylinders"),
    ("PANCHA-VASQUEZ", "SECTORES-UNIDOS", "milk", 3000, "l"),
    ("PANCHA-VASQUEZ", "5-DE-MARZO", "cheese", 200, "kg"),
    ("INDIO-CARICUAO", "5-DE-MARZO", "textiles", 300, "units"),
    ("INDIO-CARICUAO", "EL-MAIZAL", "textiles", 200, "units"),
    ("LUISA-CACERES-DE-ARISMENDI", "5-DE-MARZO", "recycling", 3, "t"),
    ("5-DE-MARZO", "ALTOS-DE-LIDICE", "bakery", 2000, "units"),
    ("SECTORES-UNIDOS", "5-DE-MARZO", "vegetables", 800, "kg"),
)

# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _rounded(obj: object) -> object:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, list | tuple):
        return [_rounded(o) for o in obj]
    return obj


def feature_json(feat: Feature) -> str:
    geom = mapping(feat.geometry)
    body = {
        "type": "Feature",
        "properties": feat.props,
        "geometry": {"type": geom["type"], "coordinates": _rounded(geom["coordinates"])},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def sort_key(line: str, feat: Feature) -> tuple[str, str, str]:
    p = feat.props
    label = p.get("code") or p.get("name") or p.get("sector") or ""
    return (str(p.get("commune") or p.get("code")), str(label), line)


def write_geojson(path: Path, features: list[Feature]) -> None:
    """One feature per line (diff-friendly), sorted by commune, code/name, then content."""
    for feat in features:
        if isinstance(feat.geometry, Polygon) and path.stem in ("communes", "parcels"):
            feat.geometry = MultiPolygon([feat.geometry])
    lines = sorted(((feature_json(f), f) for f in features), key=lambda lf: sort_key(*lf))
    text = '{"type":"FeatureCollection","features":[\n'
    text += ",\n".join(line for line, _ in lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_dem(path: Path, dem: tuple[np.ndarray, Affine]) -> None:
    z, tf = dem
    profile = {
        "driver": "GTiff",
        "width": z.shape[1],
        "height": z.shape[0],
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32619",
        "transform": tf,
        "nodata": DEM_NODATA,
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)
        dst.update_tags(
            source="ILLUSTRATIVE synthetic hill for the 5 de Marzo sample commune; "
            "generated by data/boundaries/make_samples.py",
            units="m",
        )


def write_all(out: Samples) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in LAYERS:
        write_geojson(OUT_DIR / f"{name}.geojson", out.layers[name])
    write_csv(
        OUT_DIR / "parcel_history.csv",
        ("parcel_code", "from_status", "to_status", "changed_on", "note"),
        sorted(out.history, key=lambda r: (r[0], r[3])),
    )
    write_csv(
        OUT_DIR / "exchanges.csv",
        ("from_commune", "to_commune", "product", "volume_per_month", "unit"),
        sorted(EXCHANGES),
    )
    assert out.dem is not None
    write_dem(OUT_DIR / "dem_5_de_marzo.tif", out.dem)


def generate() -> None:
    states = load_states()
    out = Samples()
    builders = {
        EL_MAIZAL.code: lambda p: build_el_maizal(out, p, states),
        MONTE_SINAI.code: lambda p: build_monte_sinai(out, p),
        CINCO_DE_MARZO.code: lambda p: build_cinco_de_marzo(out, p),
    }
    for spec in ALL_SPECS:
        print(f"building {spec.code}")
        placed = place(spec, states)
        add_commune(out, placed)
        builders.get(spec.code, lambda p: build_small(out, p))(placed)
    write_all(out)


# ---------------------------------------------------------------------------------------------
# Self-check: reads the written files back
# ---------------------------------------------------------------------------------------------


def read_layer(name: str) -> list[tuple[dict[str, object], BaseGeometry]]:
    data = json.loads((OUT_DIR / f"{name}.geojson").read_text(encoding="utf-8"))
    return [(f["properties"], geojson_shape(f["geometry"])) for f in data["features"]]


def read_csv(name: str) -> list[dict[str, str]]:
    with (OUT_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def state_split(geom: BaseGeometry, states: dict[str, BaseGeometry]) -> dict[str, float]:
    """Geodesic ha of ``geom`` in each state it touches."""
    return {
        code: geodesic_ha(part)
        for code, s in states.items()
        if not (part := geom.intersection(s)).is_empty and part.area > 0
    }


def check_geometries(
    layers: dict[str, list[tuple[dict, BaseGeometry]]], communes: dict[str, BaseGeometry]
) -> None:
    expected = {
        "communes": "MultiPolygon",
        "parcels": "MultiPolygon",
        "greenhouses": "Polygon",
        "production_units": "Point",
        "dwellings": "Point",
        "facilities": "Point",
        "water_mains": "LineString",
        "power_lines": "LineString",
        "paths": "LineString",
    }
    for name, feats in layers.items():
        for props, g in feats:
            assert g.is_valid and not g.is_empty, (name, props)
            assert g.geom_type == expected[name], (name, g.geom_type)
            if name != "communes":
                home = communes[str(props["commune"])]
                assert home.buffer(1e-6).covers(g), (name, props, "outside its commune")
    text = "".join((OUT_DIR / f"{n}.geojson").read_text(encoding="utf-8") for n in layers)
    assert "\\u" not in text, "write UTF-8, not ASCII escapes"


def check_communes(
    feats: list[tuple[dict, BaseGeometry]], states: dict[str, BaseGeometry]
) -> dict[str, object]:
    by_code = {p["code"]: (p, g) for p, g in feats}
    assert set(by_code) == {s.code for s in ALL_SPECS}, sorted(by_code)
    assert all(p["source"] == SOURCE_NOTE for p, _ in feats), "every commune is illustrative"
    figures: dict[str, object] = {}
    for spec in ALL_SPECS:
        _, g = by_code[spec.code]
        ha = geodesic_ha(g)
        split = state_split(g, states)
        figures[spec.code] = (ha, split)
        tol = {"EL-MAIZAL": 0.02, "5-DE-MARZO": 0.03}.get(spec.code, 0.05)
        assert abs(ha / spec.area_ha - 1) <= tol, (spec.code, ha)
        if spec.other_state:
            share = split.get(spec.state, 0) / ha
            assert 0.55 <= share <= 0.75, (spec.code, share)
            assert sum(split.get(c, 0) for c in (spec.state, spec.other_state)) / ha > 0.999
        else:
            assert states[spec.state].contains(g), (spec.code, "not inside", spec.state)
    assert abs(figures["5-DE-MARZO"][0] / 11.0 - 1) <= 0.03  # type: ignore[index]
    geoms = [g for _, g in feats]
    assert not any(a.intersects(b) for i, a in enumerate(geoms) for b in geoms[i + 1 :])
    return figures


def check_parcels(feats: list[tuple[dict, BaseGeometry]]) -> None:
    """Codes unique; no two parcels of a commune share interior area."""
    codes = [p["code"] for p, _ in feats]
    assert len(codes) == len(set(codes)), "parcel codes repeat"
    geoms = [g for _, g in feats]
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="intersects"), strict=True):
        if i < j and feats[i][0]["commune"] == feats[j][0]["commune"]:
            assert not shapely.relate_pattern(geoms[i], geoms[j], "2********"), (codes[i], codes[j])


def check_history(parcels: list[tuple[dict, BaseGeometry]], rows: list[dict[str, str]]) -> None:
    current = {p["code"]: p for p, _ in parcels}
    by_code: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_code.setdefault(r["parcel_code"], []).append(r)
    for code, hist in by_code.items():
        assert hist[0]["from_status"] == "", code
        for a, b in zip(hist[:-1], hist[1:], strict=True):
            assert a["to_status"] == b["from_status"] and a["changed_on"] < b["changed_on"], code
        assert hist[-1]["to_status"] == current[code]["tenure"], code
        rec = current[code]["recovered_on"]
        assert rec is None or any(
            r["to_status"] == "occupied" and r["changed_on"] == rec for r in hist
        ), code
        assert all(FOUNDING.isoformat() <= r["changed_on"] <= LAST_DAY.isoformat() for r in hist)


def check_units(
    units: list[tuple[dict, BaseGeometry]], parcels: list[tuple[dict, BaseGeometry]]
) -> None:
    by_code = {p["code"]: g for p, g in parcels}
    for p, g in units:
        if p["parcel"] is not None:
            assert by_code[p["parcel"]].contains(g), p
    maizal = [p for p, _ in units if p["commune"] == "EL-MAIZAL"]
    workers = sum(p["workers"] for p in maizal)
    assert len(maizal) == 14 and 110 <= workers <= 130, ("El Maizal units", len(maizal), workers)
    hill = sum(p["commune"] == "5-DE-MARZO" for p, _ in units)
    assert hill == 19, ("5 de Marzo units", hill)


def check_dwellings(feats: list[tuple[dict, BaseGeometry]]) -> None:
    hill = [g for p, g in feats if p["commune"] == "5-DE-MARZO"]
    residents = sum(p["residents"] for p, _ in feats if p["commune"] == "5-DE-MARZO")
    assert 1200 <= len(hill) <= 1500, ("5 de Marzo dwellings", len(hill))
    assert abs(residents / 6000 - 1) <= 0.05, ("5 de Marzo residents", residents)
    frame = Frame(*CINCO_DE_MARZO.anchor)
    pts = [frame.to_metres(g) for g in hill]
    tree = shapely.STRtree(pts)
    close = tree.query(pts, predicate="dwithin", distance=3.0)
    assert (close[0] == close[1]).all(), "dwellings closer than 3 m"


def check_network(paths: list[tuple[dict, BaseGeometry]]) -> None:
    """5 de Marzo's paths: one connected, noded network (lines meet only at end points)."""
    hill = [(p, g) for p, g in paths if p["commune"] == "5-DE-MARZO"]
    parent: dict[tuple[float, float], tuple[float, float]] = {}

    def root(k: tuple[float, float]) -> tuple[float, float]:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for _, g in hill:
        a, b = (tuple(round(c, 6) for c in g.coords[i]) for i in (0, -1))
        parent[root(a)] = root(b)
    assert len({root(k) for k in list(parent)}) == 1, "5 de Marzo paths are not connected"
    ends = [{g.coords[0], g.coords[-1]} for _, g in hill]
    for i, (_, a) in enumerate(hill):
        for j in range(i + 1, len(hill)):
            meet = a.intersection(hill[j][1])
            pts = {tuple(c) for part in shapely.get_parts(meet) for c in part.coords}
            assert pts <= (ends[i] & ends[j]), ("unnoded crossing", hill[i][0], hill[j][0])
    kinds = {p["kind"] for p, _ in hill}
    assert kinds == {"road", "footpath", "stairway"}
    assert any(p["transit"] for p, _ in hill) and any(
        p["vehicles"] and not p["transit"] for p, _ in hill
    )


def check_dem(paths: list[tuple[dict, BaseGeometry]], commune: BaseGeometry) -> None:
    path = OUT_DIR / "dem_5_de_marzo.tif"
    assert path.stat().st_size < 2_000_000
    frame = Frame(*CINCO_DE_MARZO.anchor)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32619 and src.res == (DEM_CELL_M, DEM_CELL_M)
        assert src.dtypes[0] == "float32" and src.nodata == DEM_NODATA
        assert src.compression.name.lower() == "deflate"
        z = src.read(1)
        low, high = float(z.min()), float(z.max())
        assert 890 <= low <= 910 and 1010 <= high <= 1030, ("DEM range", low, high)
        b = frame.to_metres(commune).bounds
        west, south, east, north = src.bounds
        assert west <= b[0] - 100 and south <= b[1] - 100, "DEM margin < 100 m"
        assert east >= b[2] + 100 and north >= b[3] + 100, "DEM margin < 100 m"
        for p, g in paths:
            if p["commune"] != "5-DE-MARZO" or p["kind"] != "stairway":
                continue
            ends = [frame.xy(*g.coords[i]) for i in (0, -1)]
            za, zb = (float(v[0]) for v in src.sample(ends))
            expect = abs(zb - za) / STEP_RISE_M
            assert abs(p["steps"] - expect) <= max(3, 0.05 * expect), (p, expect)


def check(states: dict[str, BaseGeometry] | None = None) -> dict[str, object]:
    """Assert the promises of SOURCE.md on the files on disk; return the key figures."""
    states = states or load_states()
    layers = {n: read_layer(n) for n in LAYERS}
    communes = {p["code"]: g for p, g in layers["communes"]}
    check_geometries(layers, communes)
    figures = check_communes(layers["communes"], states)
    check_parcels(layers["parcels"])
    check_history(layers["parcels"], read_csv("parcel_history.csv"))
    check_units(layers["production_units"], layers["parcels"])
    check_dwellings(layers["dwellings"])
    check_network(layers["paths"])
    check_dem(layers["paths"], communes["5-DE-MARZO"])
    for p, g in layers["greenhouses"]:
        assert 300 <= geodesic_ha(g) * 1e4 <= 2000, p
    exchanges = read_csv("exchanges.csv")
    assert 12 <= len(exchanges) <= 20, ("exchanges", len(exchanges))
    assert all(r["from_commune"] in communes and r["to_commune"] in communes for r in exchanges)
    total = sum(f.stat().st_size for f in OUT_DIR.iterdir())
    assert total < 3_000_000, total
    figures["counts"] = {n: len(v) for n, v in layers.items()}
    figures["bytes"] = total
    return figures


def report(figures: dict[str, object]) -> None:
    for code, value in figures.items():
        if isinstance(value, tuple):
            ha, split = value
            parts = ", ".join(f"{k} {v:.1f} ha ({100 * v / ha:.1f} %)" for k, v in split.items())
            print(f"  {code}: {ha:.2f} ha [{parts}]")
    print(f"  counts: {figures['counts']}")
    print(f"  total size: {figures['bytes']:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the existing files")
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.check:
        generate()
    report(check())
    print(f"ok in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
