"""Grouping homes for transformers: PostGIS' DBSCAN (``ST_ClusterDBSCAN`` of PostGIS 3.3) finds
the clusters, and its k-means (``ST_ClusterKMeans``, without a radius limit) cuts each into
parts of about ``dwellings_per_site``; both step for step, with the neighbour searches done in
k-d trees.

DBSCAN in SQL took ~0.4 s for 40,000 homes (one R-tree query and one distance per neighbour,
a union-find per pair); here the pairs within the radius come from one k-d tree query and the
clusters from the graph of core points (scipy). The distance that decides is PostGIS' own
(``sqrt(dx * dx + dy * dy) <= eps``).

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

Coordinates are metres in the commune's UTM zone; clusters and parts are numbered from 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo_comuna.errors import InvalidInput, Said

MAX_ROUNDS = 1000  # PostGIS gives up (an error) after as many
#: DBSCAN's pairs within the radius held at once (~60 bytes each while they are sorted out)
MAX_PAIRS = 4_000_000
PAIR_SAMPLE = 500  # points whose neighbours estimate the pairs
#: k-means' homes x parts in one cluster (its seeds measure each home once per part: ~1 s)
MAX_KMEANS_WORK = 200_000_000
#: margin (m, and relative) on the distance bounds: far above the rounding of UTM metres
SLACK_M = 1e-6
SLACK = 1e-9


def dbscan(x: np.ndarray, y: np.ndarray, eps: float, min_points: int) -> np.ndarray | None:
    """Each point's cluster (-1: noise), as ``ST_ClusterDBSCAN(geom, eps, min_points)`` over
    the points in this order groups them; None when they hold more than about ``MAX_PAIRS``
    pairs within ``eps`` (a radius that takes in whole barrios): too many to hold at once,
    PostGIS' own, which never holds them, does those (``by_first_point`` numbers its answer).

    A point with at least ``min_points`` points within ``eps`` (itself included) is a core;
    cores within ``eps`` of each other share a cluster; any other point within ``eps`` of a
    core joins the cluster of the first such core in the given order (PostGIS' union-find
    visits the points in order and a border point stays with the first core that takes it).
    Clusters are numbered in the order of their first point."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    label = np.full(n, -1, np.int64)
    if n == 0 or n < min_points:  # PostGIS gives up before looking, too
        return label
    points = np.column_stack([x, y])
    tree = cKDTree(points)
    reach = eps * (1 + SLACK) + SLACK_M
    # pairs within reach, estimated from every (n / PAIR_SAMPLE)-th point's neighbours
    sample = points[:: max(1, n // PAIR_SAMPLE)]
    if tree.query_ball_point(sample, reach, return_length=True).mean() * n / 2 > MAX_PAIRS:
        return None
    pairs = tree.query_pairs(reach, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    h, v = x[j] - x[i], y[j] - y[i]
    near = np.sqrt(h * h + v * v) <= eps  # PostGIS' distance and test, not the tree's
    i, j = i[near], j[near]
    core = 1 + np.bincount(i, minlength=n) + np.bincount(j, minlength=n) >= min_points
    both = core[i] & core[j]
    graph = coo_array((np.ones(int(both.sum()), np.int8), (i[both], j[both])), shape=(n, n))
    component = connected_components(graph, directed=False)[1]
    label[core] = component[core]
    # a border point: the first core (lowest index) within eps
    one = core[i] != core[j]
    cores, borders = np.where(core[i[one]], i[one], j[one]), np.where(core[i[one]], j[one], i[one])
    order = np.lexsort((cores, borders))
    first = order[np.r_[True, borders[order][1:] != borders[order][:-1]]] if len(order) else order
    label[borders[first]] = component[cores[first]]
    return by_first_point(label)


def by_first_point(label: np.ndarray) -> np.ndarray:
    """The same clusters (-1: none) numbered from 0 in the order of their first point."""
    label = np.array(label, np.int64)
    on = np.flatnonzero(label >= 0)
    found, start = np.unique(label[on], return_index=True)
    number = np.empty(len(found), np.int64)
    number[np.argsort(start, kind="stable")] = np.arange(len(found))
    label[on] = number[np.searchsorted(found, label[on])]
    return label


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
    p1, p2 = _far_pair(x, y)
    chosen = [p1, p2]
    if k > 2:
        far = _sq(x, y, x[p1], y[p1])
        far[[p1, p2]] = -1.0  # below any squared distance: a seed is never picked again
        h, v = np.empty_like(x), np.empty_like(y)
        for _ in range(2, k):
            last = chosen[-1]
            # _sq(x, y, x[last], y[last]) in place: the same operations, no new arrays
            np.multiply(np.subtract(x[last], x, out=h), h, out=h)
            np.multiply(np.subtract(y[last], y, out=v), v, out=v)
            np.minimum(far, np.add(h, v, out=h), out=far)
            pick = int(np.argmax(far))
            far[pick] = -1.0
            chosen.append(pick)
    return x[chosen].copy(), y[chosen].copy()


def _far_pair(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """PostGIS' greedy pass for two far-apart points: along the points, the pair (p1, p2) and
    their squared distance ``best``; a point farther than ``best`` from p1 replaces p2 (or from
    p2, p1). The pass looks at a run of points at once and jumps to the first that changes the
    pair; runs grow while nothing does."""
    p1 = p2 = 0
    best = -1.0
    i, run = 1, 64
    while i < len(x):
        end = min(len(x), i + run)
        d1 = _sq(x[i:end], y[i:end], x[p1], y[p1])
        d2 = _sq(x[i:end], y[i:end], x[p2], y[p2])
        change = np.flatnonzero((d1 > best) | (d2 > best))
        if not len(change):
            i, run = end, run * 2
            continue
        at = int(change[0])
        if d1[at] > d2[at]:
            best, p2 = float(d1[at]), i + at
        else:
            best, p1 = float(d2[at]), i + at
        i, run = i + at + 1, 64
    return p1, p2


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


def clusters(dbscan: np.ndarray, x: np.ndarray, y: np.ndarray, per_part: int) -> np.ndarray:
    """Each dwelling's cluster key: its DBSCAN cluster (-1: isolated, as ``dbscan`` labels)
    cut into ceil(n / ``per_part``) parts by ``kmeans`` over its members in the given (id)
    order, keyed ``dbscan * 1,000,000 + part``."""
    group = np.asarray(dbscan, np.int64)
    key = np.full(len(group), -1, np.int64)
    for c in np.unique(group[group >= 0]).tolist():
        members = np.flatnonzero(group == c)
        k = math.ceil(len(members) / float(per_part))
        if len(members) * k > MAX_KMEANS_WORK:  # the seeds alone measure every home k times
            least = math.ceil(len(members) ** 2 / MAX_KMEANS_WORK)
            raise InvalidInput(
                Said(
                    f"dwellings_per_site={per_part} would cut a cluster of {len(members):,} "
                    f"dwellings into {k:,} parts: more work than one request may do; ask for "
                    f"at least {least:,} dwellings per site",
                    f"dwellings_per_site={per_part} cortaría un grupo de {len(members):,} "
                    f"viviendas en {k:,} partes: más trabajo del que puede hacer una petición; "
                    f"pida al menos {least:,} viviendas por sitio",
                )
            )
        key[members] = c * 1_000_000 + kmeans(x[members], y[members], k)
    return key
