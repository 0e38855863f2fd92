"""A commune's path network as a graph, and shortest paths over it for every dwelling at once.

Every path is cut into its segments (geodesic metres, WGS 84, as PostGIS measures them) and
points (dwellings, facilities) are attached to their nearest segment; scipy solves the shortest
paths. Nodes are segment ends snapped to a ``SNAP_M`` grid in the commune's UTM zone: paths are
noded where they meet (shared end points) and snapping only absorbs coordinate rounding, so two
ends in the same 0.5 m cell are one node. One Dijkstra from a virtual root linked to every
source serves all points; per-point work is numpy over arrays, never a Python loop over
dwellings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyproj
from psycopg import AsyncConnection
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo_comuna import work
from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.toolkit.dem import coarsened_warning, elevations
from geo_comuna.analysis.toolkit.features import PointFeatures
from geo_comuna.errors import NotFound, Said
from geo_comuna.io.dems import Dem, for_commune

KINDS = ("footpath", "road", "stairway")  # sorted; Network.kind holds indexes into this
FOOTPATH, ROAD, STAIRWAY = range(3)
SNAP_M = 0.5  # node snapping grid (m, UTM)
EPS = 1e-9  # weight floor: scipy would read an explicit 0 as "no edge"


def rounded(values: np.ndarray, digits: int = 1) -> list[float | None]:
    """Numbers for JSON: rounded, None where unknown (NaN or infinite; JSON has no NaN)."""
    values = np.asarray(values, float)
    out = np.round(values, digits).astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()


def whole(values: np.ndarray) -> list[int | None]:
    """Whole numbers for JSON, None where unknown."""
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    out = np.full(len(values), None, object)
    out[ok] = np.round(values[ok]).astype(np.int64)
    return out.tolist()


async def utm_srid(conn: AsyncConnection, commune_id: int) -> int:
    """EPSG code of the WGS 84 UTM zone holding the commune's centroid (metric work: DBSCAN,
    node snapping)."""
    cur = await conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM communes "
        "WHERE id = %s) s",
        (commune_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(f"no commune with id {commune_id}", f"no existe la comuna con id {commune_id}")
        )
    return _utm_code(row[0], row[1])


def _utm_code(lon: float, lat: float) -> int:
    """The zone whose area of use (EPSG: 6 degrees of longitude, one hemisphere) holds the
    point, by arithmetic: what PROJ's database answers, which took 0.16-0.4 s a lookup (a
    first report of 5 de Marzo paid it on top of its analyses)."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class Network:
    """Edges are path segments (arrays of length E); nodes are snapped segment ends."""

    path_id: np.ndarray  # int64
    seg: np.ndarray  # int64, 1-based index of the segment in its path
    kind: np.ndarray  # int8, index into KINDS
    steps: np.ndarray  # float: the path's steps shared by segment length
    vehicles: np.ndarray  # bool
    transit: np.ndarray  # bool
    length_m: np.ndarray  # float, geodesic
    a: np.ndarray  # int64 start node
    b: np.ndarray  # int64 end node
    node_lon: np.ndarray
    node_lat: np.ndarray
    #: each segment's start and end as read, (E, 2, 2) lon/lat: what points attach to
    ends: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.node_lon)

    @property
    def n_edges(self) -> int:
        return len(self.path_id)

    def edge_of(self, path_id: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Edge index of each (path id, segment); -1 where there is none."""
        key = self.path_id * 2**20 + self.seg  # rows come ordered by (path, segment)
        want = np.asarray(path_id, np.int64) * 2**20 + np.asarray(seg, np.int64)
        if not len(key):
            return np.full(len(want), -1, np.int64)
        pos = np.minimum(np.searchsorted(key, want), len(key) - 1)
        return np.where(key[pos] == want, pos, -1)


def snap(lon: np.ndarray, lat: np.ndarray, srid: int) -> np.ndarray:
    """One int64 key per point: its SNAP_M cell in the UTM zone ``srid``."""
    x, y = pyproj.Transformer.from_crs(4326, srid, always_xy=True).transform(lon, lat)
    kx = np.round(np.asarray(x) / SNAP_M).astype(np.int64)
    ky = np.round(np.asarray(y) / SNAP_M).astype(np.int64) + 2**30  # southern y is negative
    return kx * 2**32 + ky


async def load(conn: AsyncConnection, commune_id: int, srid: int) -> Network:
    """The commune's paths as a graph (no paths: an empty network; callers decide)."""
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "network_paths.sql"), {"commune": commune_id, "kinds": list(KINDS)}
    )
    return await work.cpu(_network, await cur.fetchone(), srid)


#: one path's attributes as network_paths.sql packs them
PATH_RECORD = np.dtype(
    [
        ("id", ">i4"),
        ("kind", ">i2"),
        ("steps", ">i4"),
        ("vehicles", "u1"),
        ("transit", "u1"),
        ("npoints", ">i4"),
    ]
)


def _network(row: tuple, srid: int) -> Network:
    packed, wkb = row
    if len(packed) % PATH_RECORD.itemsize:
        raise ValueError("paths: the packed attributes are cut short")
    record = np.frombuffer(packed, PATH_RECORD)
    if not ((record["kind"] >= 1) & (record["kind"] <= len(KINDS))).all():
        raise ValueError(f"paths: a kind outside {KINDS}")
    ids, path_steps = record["id"].astype(np.int64), record["steps"].astype(float)
    vehicles, transit = record["vehicles"] != 0, record["transit"] != 0
    kind = (record["kind"] - 1).astype(np.int8)
    npoints = record["npoints"].astype(np.int64)
    xy, line = _linestrings(npoints, wkb)
    # a segment joins two consecutive vertices of one line, numbered from 1 along it; edges
    # are ordered by (path, segment)
    inner = np.flatnonzero(line[1:] == line[:-1])
    first_vertex = np.cumsum(npoints) - npoints
    seg = inner - first_vertex[line[inner]] + 1
    order = np.lexsort((seg, ids[line[inner]]))
    inner, seg = inner[order], seg[order]
    path_ix = line[inner]
    ends = np.stack([xy[inner], xy[inner + 1]], axis=1)  # (E, 2, 2)
    length = geodesic_m(ends[:, 0, 0], ends[:, 0, 1], ends[:, 1, 0], ends[:, 1, 1], rounded=False)
    # A path's steps are spread over its segments by length.
    path_len = np.bincount(path_ix, weights=length, minlength=len(ids))
    steps_of = path_steps[path_ix]
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(path_len[path_ix] > 0, steps_of * length / path_len[path_ix], 0.0)
    both_lon = np.concatenate([ends[:, 0, 0], ends[:, 1, 0]])
    both_lat = np.concatenate([ends[:, 0, 1], ends[:, 1, 1]])
    _, first, node = np.unique(
        snap(both_lon, both_lat, srid), return_index=True, return_inverse=True
    )
    n = len(inner)
    return Network(
        ids[path_ix],
        seg.astype(np.int64),
        kind[path_ix],
        steps,
        vehicles[path_ix],
        transit[path_ix],
        length,
        node[:n].astype(np.int64),
        node[n:].astype(np.int64),
        both_lon[first],
        both_lat[first],
        ends,
    )


def _linestrings(npoints: np.ndarray, wkb: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 2) and the index of their line, of 2D LineStrings given as little-endian
    WKB one after the other (``npoints`` vertices each): read in place, as one numpy view
    rather than one object per line."""
    blob = np.frombuffer(wkb, np.uint8)
    size = 9 + 16 * npoints  # byte order, type, count; then x, y per vertex
    start = np.cumsum(size) - size
    kind = (blob[start[:, None] + np.arange(5)] == [1, 2, 0, 0, 0]).all() if len(start) else True
    if len(blob) != size.sum() or not kind:  # NDR, type 2 (LineString, 2D)
        raise ValueError("paths are not all 2D LineStrings")
    header = np.zeros(len(blob), bool)
    header[(start[:, None] + np.arange(9)).ravel()] = True
    xy = blob[~header].view("<f8").reshape(-1, 2)
    return xy, np.repeat(np.arange(len(npoints)), npoints)


@dataclass(frozen=True)
class Dwellings:
    """A commune's dwellings sorted by id, placed by ``lon``/``lat`` (WGS 84)."""

    ids: np.ndarray
    residents: np.ndarray
    water: list[str]
    sector: list[str | None]
    lon: np.ndarray
    lat: np.ndarray

    @property
    def sector_names(self) -> np.ndarray:
        """Each dwelling's sector as a numpy string array, '' for none (to group by)."""
        return np.array([s or "" for s in self.sector])


def as_features(dw: Dwellings, properties: dict[str, Sequence[Any]]) -> PointFeatures:
    """GeoJSON Point features of the dwellings, in ``dw.ids`` order, from property columns
    (one value per dwelling each): written column-wise, never a dict per dwelling unless
    someone reads them as dicts (toolkit/features.py)."""
    return PointFeatures(dw.ids.tolist(), dw.lon, dw.lat, properties)


async def load_dwellings(
    conn: AsyncConnection, commune_id: int, *, without_piped: bool = False
) -> Dwellings:
    """The points network analyses route from (only those without piped water if asked)."""
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "dwellings.sql"),
        {"commune": commune_id, "without_piped": without_piped},
    )
    ids, residents, water, sector, lon, lat = await cur.fetchone()
    ids = np.array(ids, np.int64)
    order = by_id(ids)
    return Dwellings(
        ids[order],
        np.array(residents, float)[order],
        np.array(water, object)[order].tolist(),
        np.array(sector, object)[order].tolist(),
        np.array(lon, float)[order],
        np.array(lat, float)[order],
    )


def by_id(ids: np.ndarray) -> np.ndarray | slice:
    """The order that sorts ``ids``: all of them (a slice) when they came sorted, as the
    queries sort them once for all their arrays."""
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return slice(None)
    return np.argsort(ids, kind="stable")


@dataclass(frozen=True)
class Attachment:
    """Points on their nearest segment, aligned with ``ids`` (sorted). ``along_m`` runs from the
    edge's node ``a``; the connector is a straight line (flagged in outputs)."""

    ids: np.ndarray
    edge: np.ndarray  # -1: not attached (no path, or connector over the limit)
    along_m: np.ndarray
    connector_m: np.ndarray  # NaN when not attached
    lon: np.ndarray  # the attachment point on the segment (NaN when not attached)
    lat: np.ndarray

    @property
    def attached(self) -> np.ndarray:
        return self.edge >= 0


async def attach_dwellings(net: Network, dw: Dwellings, max_connector_m: float) -> Attachment:
    """``attach_points`` for dwellings already read."""
    return (await attach_points(net, [(dw.ids, dw.lon, dw.lat)], max_connector_m))[0]


async def attach_points(
    net: Network,
    sets: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    max_connector_m: float,
) -> list[Attachment]:
    """Attach sets of points, (ids, lon, lat) each, to the network by their nearest segment;
    those farther than ``max_connector_m`` stay unattached. One search over the segments
    already loaded serves all of them (its index is built once), off the event loop: a KNN
    lookup per point in SQL cost ~70 µs each, most of a 100,000-dwelling analysis."""
    return await work.cpu(_attach_sets, net, sets, max_connector_m)


def _attach_sets(
    net: Network, sets: list[tuple[np.ndarray, np.ndarray, np.ndarray]], max_connector_m: float
) -> list[Attachment]:
    sizes = [len(ids) for ids, _, _ in sets]
    if not sum(sizes) or not net.n_edges:
        return [
            Attachment(ids, np.full(n, -1), np.zeros(n), *[np.full(n, np.nan)] * 3)
            for (ids, _, _), n in zip(sets, sizes, strict=True)
        ]
    ids, lon, lat = (np.concatenate(column) for column in zip(*sets, strict=True))
    whole = _attachment(net, (ids, lon, lat), max_connector_m)
    cuts = np.cumsum(sizes)[:-1]
    parts = [np.split(getattr(whole, f.name), cuts) for f in fields(Attachment)]
    return [Attachment(*values) for values in zip(*parts, strict=True)]


#: WGS 84 from its semi-axes, as PostGIS builds its spheroid (flattening (a - b) / a)
_GEOD = pyproj.Geod(a=6378137.0, b=6378137.0 * (1 - 1 / 298.257223563))


def nearest_segments(net: Network, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Edge index of each point's nearest segment, by planar distance in lon/lat as
    closest_points measures it (what PostGIS' ``<->`` ranks by; at these latitudes it ranks
    like metres to within ~2 percent). Of equally near segments, the first in (path, segment)
    order.

    Exact, not approximate: segments are cut into pieces no longer than their median length
    and a k-d tree holds the pieces' midpoints. A segment at distance d has a piece midpoint
    within d + h (h: the longest half piece), so once the K nearest midpoints reach beyond
    the best candidate's distance + h, no other segment can be nearer or as near; the few
    points for which they do not are searched again by radius."""
    ends = net.ends
    if not len(lon):
        return np.zeros(0, np.int64)
    start, delta = ends[:, 0], ends[:, 1] - ends[:, 0]
    length = np.sqrt((delta * delta).sum(axis=1))
    piece = max(float(np.median(length)) * (1 + 1e-9), 1e-6)  # degrees; ~0.1 m floor
    pieces = np.maximum(np.ceil(length / piece).astype(np.int64), 1)
    owner = np.repeat(np.arange(len(length)), pieces)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    mid = start[owner] + ((nth + 0.5) / pieces[owner])[:, None] * delta[owner]
    reach = float((length / pieces).max()) / 2
    tree = cKDTree(mid)
    points = np.column_stack([lon, lat])
    k = min(K_NEAREST, len(owner))
    gap, found = tree.query(points, k=k, workers=-1)  # every CPU: same answer, sooner
    gap, found = gap.reshape(len(points), k), found.reshape(len(points), k)
    edge = _best(owner[found], ends, lon[:, None], lat[:, None])
    best = _closest(ends[edge], lon, lat)[2]
    radius = (best + reach) * (1 + 1e-9) + 1e-12
    unsure = np.flatnonzero(gap[:, -1] <= radius) if k < len(owner) else np.zeros(0, np.int64)
    if len(unsure):
        near = tree.query_ball_point(points[unsure], radius[unsure], workers=-1)
        count = np.array([len(n) for n in near])
        width = int(count.max())
        cand = np.full((len(unsure), width), -1, np.int64)
        cand[np.arange(width) < count[:, None]] = np.concatenate(near).astype(np.int64)
        cand = np.where(cand >= 0, owner[np.maximum(cand, 0)], edge[unsure][:, None])
        edge[unsure] = _best(cand, ends, lon[unsure][:, None], lat[unsure][:, None])
    return edge


K_NEAREST = 8  # piece midpoints looked at per point before a radius search


def _best(cand: np.ndarray, ends: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Of each row of candidate edges, the nearest to its point; ties to the lowest edge."""
    dist = _closest(ends[cand], lon, lat)[2]
    low = dist.min(axis=1, keepdims=True)
    return np.where(dist == low, cand, np.iinfo(np.int64).max).min(axis=1)


def _closest(
    ends: np.ndarray, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The point of each segment (``ends``: (..., 2, 2)) closest to (lon, lat), and its
    distance, in degrees: the formula of PostGIS' ST_ClosestPoint and ST_Distance
    (lw_dist2d_pt_seg), in the same order of operations so that figures and rankings match
    its own: the start when the projection falls before it (or the segment has no length),
    the end from the end on, the point itself when it lies on the segment exactly."""
    ax, ay = ends[..., 0, 0], ends[..., 0, 1]
    bx, by = ends[..., 1, 0], ends[..., 1, 1]
    dx, dy = bx - ax, by - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((lon - ax) * dx + (lat - ay) * dy) / (dx * dx + dy * dy)
    cx, cy = ax + r * dx, ay + r * dy
    on = (ay - lat) * dx == (ax - lon) * dy
    cx, cy = np.where(on, lon, cx), np.where(on, lat, cy)
    at_b = r >= 1
    cx, cy = np.where(at_b, bx, cx), np.where(at_b, by, cy)
    at_a = (r < 0) | ((dx == 0) & (dy == 0))
    cx, cy = np.where(at_a, ax, cx), np.where(at_a, ay, cy)
    hx, hy = cx - lon, cy - lat
    return cx, cy, np.sqrt(hx * hx + hy * hy)


def geodesic_m(
    lon1: np.ndarray,
    lat1: np.ndarray,
    lon2: np.ndarray,
    lat2: np.ndarray,
    *,
    rounded: bool = True,
) -> np.ndarray:
    """Geodesic metres on WGS 84, to the last bit as PostGIS' geography gives them: the same
    geodesic (Karney's, on the spheroid built from its semi-axes), from degrees that went
    through radians and back as its points do; ``rounded`` to 10 nm as ST_Distance rounds
    (ST_Length does not)."""
    there_and_back = np.broadcast_arrays(
        *(np.asarray(v, float) * np.pi / 180.0 * 180.0 / np.pi for v in (lon1, lat1, lon2, lat2))
    )
    n = len(there_and_back[0]) if there_and_back[0].ndim == 1 else 0
    if n < SHARED_GEODESICS or not _TWO_CPUS:
        metres = _GEOD.inv(*there_and_back)[2]
    else:  # pyproj lets go of the GIL while it measures: halves on two CPUs at once
        halves = [[v[: n // 2] for v in there_and_back], [v[n // 2 :] for v in there_and_back]]
        second = _SIDE.submit(_GEOD.inv, *halves[1])
        metres = np.concatenate([_GEOD.inv(*halves[0])[2], second.result()[2]])
    return np.round(metres * 1e8) / 1e8 if rounded else metres


#: from this many geodesics on, half are measured on a second thread
SHARED_GEODESICS = 20_000


#: the second thread (started on first use); none on a one-CPU machine
_SIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodesics")
_TWO_CPUS = (os.cpu_count() or 1) > 1


def _attachment(
    net: Network, points: tuple[np.ndarray, np.ndarray, np.ndarray], max_connector_m: float
) -> Attachment:
    ids, lon, lat = points
    edge = nearest_segments(net, lon, lat)
    ends = net.ends[np.maximum(edge, 0)]
    cx, cy, _ = _closest(ends, lon, lat)
    along = geodesic_m(ends[:, 0, 0], ends[:, 0, 1], cx, cy)
    connector = geodesic_m(lon, lat, cx, cy)
    edge[~(connector <= max_connector_m)] = -1
    ok = edge >= 0
    along = np.where(ok, np.clip(np.nan_to_num(along), 0, net.length_m[np.maximum(edge, 0)]), 0)
    return Attachment(
        ids,
        edge,
        along,
        np.where(ok, connector, np.nan),
        np.where(ok, cx, np.nan),
        np.where(ok, cy, np.nan),
    )


async def elevations_at(
    conn: AsyncConnection,
    commune_id: int,
    *points: tuple[np.ndarray, np.ndarray],
    warnings: list[str],
) -> tuple[Dem | None, list[np.ndarray]]:
    """The commune's DEM and the elevation (m) of each (lon, lat) point set on it; NaN where
    unknown, everywhere when the commune has no DEM (callers say so in a warning). The DEM
    window is read off the event loop."""
    dem = await for_commune(conn, commune_id)
    if dem is None:
        return None, [np.full(len(lon), np.nan) for lon, _ in points]
    values, grid = await work.cpu(elevations, dem, *points)
    if grid is not None:
        warnings.extend(coarsened_warning(dem, grid))
    return dem, values


@dataclass(frozen=True)
class Tree:
    """Shortest-path tree from ``root``: ``dist`` (inf: unreachable), ``pred`` (-1 for the root
    and unreachable nodes) and ``via``, the input edge used to reach each node (-1: none)."""

    root: int
    dist: np.ndarray
    pred: np.ndarray
    via: np.ndarray


def shortest_tree(
    n_nodes: int, tails: np.ndarray, heads: np.ndarray, weights: np.ndarray, root: int
) -> Tree:
    """Dijkstra from ``root`` over directed edges tail -> head. Of parallel edges the lightest
    is kept (scipy would otherwise add their weights up)."""
    tails = np.asarray(tails, np.int64)
    heads = np.asarray(heads, np.int64)
    weights = np.maximum(np.asarray(weights, float), EPS)
    key = tails * n_nodes + heads
    order = np.lexsort((weights, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    keep = order[first]  # edge ids sorted by (tail, head)
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(tails[keep], minlength=n_nodes), out=indptr[1:])
    graph = csr_matrix((weights[keep], heads[keep], indptr), shape=(n_nodes, n_nodes))
    dist, pred, _ = dijkstra(
        graph, directed=True, indices=root, return_predecessors=True, min_only=True
    )
    pred = np.where(pred < 0, -1, pred).astype(np.int64)
    via = np.full(n_nodes, -1, np.int64)
    has = np.flatnonzero(pred >= 0)
    via[has] = keep[np.searchsorted(key[keep], pred[has] * n_nodes + has)]
    return Tree(root, dist, pred, via)


def _fixed_jumps(pred: np.ndarray) -> np.ndarray:
    return np.where(pred < 0, np.arange(len(pred)), pred)


def accumulate(tree: Tree, edge_values: np.ndarray) -> np.ndarray:
    """Per node, the sum of ``edge_values`` over the tree edges from it to the root (pointer
    jumping: about log2(depth) vectorised rounds)."""
    value = np.zeros(len(tree.pred))
    has = tree.via >= 0
    value[has] = np.asarray(edge_values, float)[tree.via[has]]
    jump = _fixed_jumps(tree.pred)
    while True:
        nxt = jump[jump]
        if np.array_equal(nxt, jump):
            return value
        value = value + value[jump]
        jump = nxt


def top_ancestor(tree: Tree, is_top: np.ndarray) -> np.ndarray:
    """Per node, its nearest ancestor-or-self with ``is_top`` (the root, or the node itself
    when unreachable, if there is none)."""
    up = np.where(is_top, np.arange(len(tree.pred)), _fixed_jumps(tree.pred))
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            return up
        up = nxt


def mark_paths(tree: Tree, starts: np.ndarray) -> np.ndarray:
    """Nodes whose tree edge (node -> pred) lies on the path from any of ``starts`` to the root:
    the union of those paths, each shared edge once."""
    used = np.zeros(len(tree.pred), bool)
    frontier = np.unique(np.asarray(starts, np.int64))
    frontier = frontier[tree.pred[frontier] >= 0]
    while len(frontier):
        used[frontier] = True
        up = tree.pred[frontier]
        up = np.unique(up[(tree.pred[up] >= 0) & ~used[up]])
        frontier = up
    return used
