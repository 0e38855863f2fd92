"""5 de Marzo: a hill in El Valle (Caracas), its DEM, paths, pipes and 1,360 dwellings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.transform import Affine, from_origin
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from ..collected import Samples
from ..constants import DEM_CELL_M, STEP_RISE_M
from ..geometry import (
    StarShape,
    choose,
    dart_sites,
    polar_path,
    position_key,
    random_point_in,
    residents_summing_to,
)
from ..layout import parcel_pieces, parcel_props
from ..placement import CommuneSpec, Placed

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
