"""Weighted geometric medians of many groups of points at once: PostGIS'
``ST_GeometricMedian`` (PostGIS 3.3, liblwgeom/lwgeom_median.c, default tolerance and
iterations) step for step, every group's Weiszfeld iteration advanced together in numpy.

What makes it PostGIS' answer and not just a geometric median:
- the start is the weighted mean; points of weight 0 are dropped, as PostGIS drops them;
- each step is Weiszfeld's, with Vardi and Zhang's correction when the estimate sits on a
  point; a group stops when its weighted sum of distances falls by less than its tolerance
  (the estimate before that step is the answer) or after 10,000 steps;
- the tolerance is 1e-6 of the smaller side of the group's bounding box as PostgreSQL stores
  it (single-precision floats rounded outwards), and at least 1e-8;
- every sum runs over the points in the given order, as the C loops do (numpy's bincount
  adds in order), so the medians agree with PostGIS' to the last bit.

Coordinates are metres (the commune's UTM zone); groups are numbered 0 .. k - 1.
"""

from __future__ import annotations

import numpy as np

MAX_STEPS = 10_000  # ST_GeometricMedian's default max_iter
TOLERANCE = 1e-6  # of the bounding box's smaller side
MIN_TOLERANCE = 1e-8
EPSILON = np.finfo(float).eps  # DBL_EPSILON, as lwgeom_median.c compares


def medians(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, group: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's weighted geometric median (x, y): ``ST_GeometricMedian(ST_Collect(
    ST_MakePointM(x, y, weight)))`` over each group's points in the given order. Every group
    needs a point of positive weight."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    weight, group = np.asarray(weight, float), np.asarray(group, np.int64)
    tol = _tolerances(x, y, group, k)
    keep = weight > EPSILON
    x, y, m, g = x[keep], y[keep], weight[keep], group[keep]
    mass = np.bincount(g, m, k)
    cx, cy = np.bincount(g, x * m, k) / mass, np.bincount(g, y * m, k) / mass
    d = _distance(x, y, cx[g], cy[g])
    scaled = d / m
    total = np.bincount(g, d * m, k)
    live = np.ones(k, bool)
    on = np.arange(len(x))  # the points of the groups still going
    for _ in range(MAX_STEPS):
        if not len(on):
            break
        nx, ny, moves = _step(x[on], y[on], scaled[on], g[on], cx, cy, k)
        live &= moves
        on = on[live[g[on]]]
        d = _distance(x[on], y[on], nx[g[on]], ny[g[on]])
        scaled[on] = d / m[on]
        after = np.bincount(g[on], d * m[on], k)
        live &= ~(total - after < tol)  # PostGIS keeps the estimate before this step
        cx, cy = np.where(live, nx, cx), np.where(live, ny, cy)
        total = np.where(live, after, total)
        on = on[live[g[on]]]
    return cx, cy


def _step(
    x: np.ndarray,
    y: np.ndarray,
    scaled: np.ndarray,
    g: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Weiszfeld step for the groups of these points: the next estimates, and which
    groups move (not one whose points all sit on its estimate: it is final). ``scaled``: each
    point's distance to its group's estimate over its weight."""
    far = scaled > EPSILON
    safe = np.where(far, scaled, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # the groups that do not move
        denom = np.bincount(g, np.where(far, 1.0 / safe, 0.0), k)
        nx = np.bincount(g, np.where(far, x / safe, 0.0), k) / denom
        ny = np.bincount(g, np.where(far, y / safe, 0.0), k) / denom
        hit = np.bincount(g, ~far, k) > 0
        if hit.any():
            # Vardi and Zhang: from an estimate on a point, step by the pull of the others
            dx = np.bincount(g, np.where(far, (x - cx[g]) / safe, 0.0), k)
            dy = np.bincount(g, np.where(far, (y - cy[g]) / safe, 0.0), k)
            pull = np.sqrt(dx * dx + dy * dy)
            r = np.maximum(0.0, 1.0 / pull)
            fix = hit & (pull > EPSILON)
            nx = np.where(fix, (1.0 - r) * nx + r * cx, nx)
            ny = np.where(fix, (1.0 - r) * ny + r * cy, ny)
    return nx, ny, denom >= EPSILON


def _distance(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """distance3d_pt_pt with z = 0, as lwgeom_median.c measures."""
    h, v = x - cx, y - cy
    return np.sqrt(h * h + v * v)


def _tolerances(x: np.ndarray, y: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """ST_GeometricMedian's default tolerance per group, from its bounding box as stored: a
    box of single-precision floats, rounded down at the minimum and up at the maximum. (A
    one-point group has no stored box, but its median is its first estimate at any of
    these tolerances.)"""
    sides = []
    for v in (x, y):
        low, high = np.full(k, np.inf), np.full(k, -np.inf)
        np.minimum.at(low, group, v)
        np.maximum.at(high, group, v)
        sides.append(_float_up(high).astype(float) - _float_down(low).astype(float))
    return np.maximum(MIN_TOLERANCE, TOLERANCE * np.minimum(*sides))


def _float_down(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(float) > v, np.nextafter(f, np.float32(-np.inf)), f)


def _float_up(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(float) < v, np.nextafter(f, np.float32(np.inf)), f)
