"""Cutting a cluster of homes into parts of about ``dwellings_per_site``: PostGIS' k-means
(``ST_ClusterKMeans`` of PostGIS 3.3, without a radius limit), step for step, with the
nearest-centre search done fast.

In SQL a 40,000-home cluster cut into 500 parts took ~3 s: every round of Lloyd's iteration
measures every home against every centre, and it takes a hundred rounds or more to settle.
Here each round measures only the homes whose centre may have changed: a home keeps its
centre while the distance to it (an upper bound, grown by how far that centre moved) stays
below the distance to any other centre (a lower bound, shrunk by how far the farthest centre
moved), as in Hamerly's k-means; the others are looked up in a k-d tree of the centres. The
bounds keep a margin far above the rounding of metres in UTM, and a home whose two nearest
centres are that close is measured against every centre as PostGIS measures it (squared
differences, the first centre on a tie). The seeds, the sums for the means (in the homes'
order) and the stopping rule are PostGIS' own, so the parts are the same.

Coordinates are metres in the commune's UTM zone; parts are numbered from 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

MAX_ROUNDS = 1000  # PostGIS gives up (an error) after as many
#: margin (m, and relative) on the distance bounds: far above the rounding of UTM metres
SLACK_M = 1e-6
SLACK = 1e-9


def kmeans(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The part (0 .. k - 1) of each point, as ``ST_ClusterKMeans(geom, k)`` over the points in
    this order gives it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    if k < 2:
        return np.zeros(n, np.int64)
    k = min(k, n)
    cx, cy = _seeds(x, y, k)
    parts, upper, lower = _nearest(x, y, cx, cy, np.arange(n))
    for _ in range(MAX_ROUNDS):
        nx, ny = _means(x, y, parts, k)
        moved = np.hypot(nx - cx, ny - cy)
        cx, cy = nx, ny
        upper = upper + moved[parts]
        lower = lower - moved.max()
        unsure = np.flatnonzero(upper + SLACK_M + SLACK * upper >= lower - SLACK_M - SLACK * lower)
        if not len(unsure):
            return parts
        now, upper[unsure], lower[unsure] = _nearest(x, y, cx, cy, unsure)
        if np.array_equal(now, parts[unsure]):
            return parts
        parts = parts.copy()
        parts[unsure] = now
    raise RuntimeError(f"k-means did not settle in {MAX_ROUNDS} rounds")


def _sq(x: np.ndarray, y: np.ndarray, cx: float | np.ndarray, cy: float | np.ndarray) -> np.ndarray:
    """Squared distance as PostGIS computes it (difference per axis, squared, summed)."""
    h, v = cx - x, cy - y
    return h * h + v * v


def _seeds(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PostGIS' seeds: two far-apart points found in one greedy pass, then each next seed the
    point farthest from all seeds so far (the first such, in order)."""
    xs, ys = x.tolist(), y.tolist()
    p1 = p2 = 0
    best = -1.0
    for i in range(1, len(xs)):
        h1, v1 = xs[p1] - xs[i], ys[p1] - ys[i]
        h2, v2 = xs[p2] - xs[i], ys[p2] - ys[i]
        d1, d2 = h1 * h1 + v1 * v1, h2 * h2 + v2 * v2
        if d1 > best or d2 > best:
            if d1 > d2:
                best, p2 = d1, i
            else:
                best, p1 = d2, i
    chosen = [p1, p2]
    if k > 2:
        far = _sq(x, y, x[p1], y[p1])
        far[[p1, p2]] = -1.0
        for _ in range(2, k):
            last = chosen[-1]
            d = _sq(x, y, x[last], y[last])
            np.minimum(far, d, out=far, where=far >= 0)
            pick = int(np.argmax(far))
            far[pick] = -1.0
            chosen.append(pick)
    return x[chosen].copy(), y[chosen].copy()


def _means(x: np.ndarray, y: np.ndarray, parts: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Each part's mean, summed in the points' order as PostGIS sums (numpy's bincount adds in
    order); an empty part's centre is (0, 0), as PostGIS leaves it."""
    count = np.bincount(parts, minlength=k).astype(float)
    sx = np.bincount(parts, weights=x, minlength=k)
    sy = np.bincount(parts, weights=y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, sx / count, 0.0), np.where(count > 0, sy / count, 0.0)


def _nearest(
    x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points ``which``: the nearest centre (PostGIS' choice), the distance to it and to
    the second nearest (m; equal where they were too close to call, to look again)."""
    px, py = x[which], y[which]
    tree = cKDTree(np.column_stack([cx, cy]))
    dist, idx = tree.query(np.column_stack([px, py]), k=2, workers=-1)  # same answer, every CPU
    part, first, second = idx[:, 0].astype(np.int64), dist[:, 0], dist[:, 1]
    close = np.flatnonzero(second - first <= 2 * (SLACK_M + SLACK * second))
    if len(close):
        exact = _sq(px[close, None], py[close, None], cx[None, :], cy[None, :])
        part[close] = np.argmin(exact, axis=1)
        second[close] = first[close]
    return part, first, second


def clusters(dbscan: list[int | None], x: np.ndarray, y: np.ndarray, per_part: int) -> np.ndarray:
    """Each dwelling's cluster key: its DBSCAN cluster (None: isolated, -1 here) cut into
    ceil(n / ``per_part``) parts by ``kmeans`` over its members in the given (id) order, keyed
    ``dbscan * 1,000,000 + part`` as the SQL keyed them."""
    group = np.array([-1 if c is None else c for c in dbscan], np.int64)
    key = np.full(len(group), -1, np.int64)
    for c in np.unique(group[group >= 0]).tolist():
        members = np.flatnonzero(group == c)
        k = math.ceil(len(members) / float(per_part))
        key[members] = c * 1_000_000 + kmeans(x[members], y[members], k)
    return key
