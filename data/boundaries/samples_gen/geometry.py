"""Small geometry helpers, metre frames around a commune and the star-shaped outlines
they are drawn with (all in metres, in the commune's UTM zone)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from .constants import DEGREE_GRID, GEOD


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
