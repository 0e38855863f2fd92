"""The generic layout of a commune: a road across, settlements, parcels tiling the rest,
dwellings, utilities, production units and facilities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from .collected import Samples
from .geometry import (
    choose,
    dart_sites,
    jittered_grid,
    longest_line,
    offset_or_same,
    position_key,
    random_point_in,
)
from .placement import Placed


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
