"""A commune's path network as a graph, and shortest paths over it for every dwelling at once.

PostGIS cuts every path into its segments (geodesic metres, WGS 84) and attaches points
(dwellings, facilities) to their nearest segment; scipy solves the shortest paths. Nodes are
segment ends snapped to a ``SNAP_M`` grid in the commune's UTM zone: paths are noded where they
meet (shared end points) and snapping only absorbs coordinate rounding, so two ends in the same
0.5 m cell are one node. One Dijkstra from a virtual root linked to every source serves all
points; per-point work is numpy over arrays, never a Python loop over dwellings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyproj
from psycopg import AsyncConnection, sql
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geo_comuna import work
from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.toolkit.dem import coarsened_warning, elevations
from geo_comuna.errors import NotFound
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
        raise NotFound(f"no commune with id {commune_id}")
    return await work.cpu(_utm_code, round(row[0], 3), round(row[1], 3))


@cache
def _utm_code(lon: float, lat: float) -> int:
    """PROJ's database answers in ~0.1 s: once per place, off the event loop."""
    zones = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    return int(next(z.code for z in zones if z.code.startswith(("326", "327"))))


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
    await cur.execute(sql_text(__package__, "network_segments.sql"), {"commune": commune_id})
    return await work.cpu(_network, await cur.fetchall(), srid)


def _network(rows: list[tuple], srid: int) -> Network:
    cols = list(zip(*rows, strict=True)) if rows else [()] * 11
    path_id = np.array(cols[0], np.int64)
    seg = np.array(cols[1], np.int64)
    kind = np.searchsorted(np.array(KINDS), np.array(cols[2], str)).astype(np.int8)
    path_steps = np.array(cols[3], float)
    coords = np.array(cols[6:10], float).reshape(4, -1)
    length = np.array(cols[10], float)
    # A path's steps are spread over its segments by length.
    _, path_ix = np.unique(path_id, return_inverse=True)
    path_len = np.bincount(path_ix, weights=length) if len(length) else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(path_len[path_ix] > 0, path_steps * length / path_len[path_ix], 0.0)
    keys = snap(
        np.concatenate([coords[0], coords[2]]), np.concatenate([coords[1], coords[3]]), srid
    )
    uniq, first, node = np.unique(keys, return_index=True, return_inverse=True)
    lon = np.concatenate([coords[0], coords[2]])[first]
    lat = np.concatenate([coords[1], coords[3]])[first]
    n = len(path_id)
    return Network(
        path_id,
        seg,
        kind,
        steps,
        np.array(cols[4], bool),
        np.array(cols[5], bool),
        length,
        node[:n].astype(np.int64),
        node[n:].astype(np.int64),
        lon,
        lat,
    )


@dataclass(frozen=True)
class Dwellings:
    """A commune's dwellings sorted by id; ``geometry`` is GeoJSON from PostGIS."""

    ids: np.ndarray
    residents: np.ndarray
    water: list[str]
    sector: list[str | None]
    lon: np.ndarray
    lat: np.ndarray
    geometry: list[dict[str, Any]]

    @property
    def sector_names(self) -> np.ndarray:
        """Each dwelling's sector as a numpy string array, '' for none (to group by)."""
        return np.array([s or "" for s in self.sector])


def as_features(dw: Dwellings, properties: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """GeoJSON Features of the dwellings, in ``dw.ids`` order: one per ``properties`` dict."""
    return [
        {"type": "Feature", "id": i, "geometry": g, "properties": p}
        for i, g, p in zip(dw.ids.tolist(), dw.geometry, properties, strict=True)
    ]


async def load_dwellings(
    conn: AsyncConnection, commune_id: int, *, without_piped: bool = False
) -> Dwellings:
    """The points network analyses route from (only those without piped water if asked)."""
    cur = conn.cursor(binary=True)
    await cur.execute(
        sql_text(__package__, "dwellings.sql"),
        {"commune": commune_id, "without_piped": without_piped},
    )
    ids, residents, water, sector, lon, lat, geometry = await cur.fetchone()
    return Dwellings(
        np.array(ids, np.int64),
        np.array(residents, float),
        list(water),
        list(sector),
        np.array(lon, float),
        np.array(lat, float),
        geometry,
    )


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


async def attach(
    conn: AsyncConnection,
    net: Network,
    commune_id: int,
    table: str,
    ids: np.ndarray,
    max_connector_m: float,
) -> Attachment:
    """Attach rows ``ids`` of ``table`` (a point layer) to the network by their nearest
    segment; those farther than ``max_connector_m`` stay unattached."""
    ids = np.sort(np.asarray(ids, np.int64))
    if not len(ids) or not net.n_edges:
        nan = np.full(len(ids), np.nan)
        return Attachment(ids, np.full(len(ids), -1), np.zeros(len(ids)), nan, nan, nan)
    query = sql.SQL(sql_text(__package__, "network_attach.sql")).format(table=sql.Identifier(table))
    cur = conn.cursor(binary=True)
    await cur.execute(query, {"commune": commune_id, "ids": ids.tolist()})
    return await work.cpu(_attachment, net, await cur.fetchall(), max_connector_m)


def _attachment(net: Network, rows: list[tuple], max_connector_m: float) -> Attachment:
    cols = list(zip(*rows, strict=True))
    # None (no path at all) reads as NaN in a float array, then as "not attached"
    path_id = np.nan_to_num(np.array(cols[1], float), nan=-1).astype(np.int64)
    seg = np.nan_to_num(np.array(cols[2], float), nan=-1).astype(np.int64)
    along = np.array(cols[3], float)
    connector = np.array(cols[4], float)
    lon, lat = np.array(cols[5], float), np.array(cols[6], float)
    edge = net.edge_of(path_id, seg)
    edge[~(connector <= max_connector_m)] = -1
    ok = edge >= 0
    along = np.where(ok, np.clip(np.nan_to_num(along), 0, net.length_m[np.maximum(edge, 0)]), 0)
    return Attachment(
        np.array(cols[0], np.int64),
        edge,
        along,
        np.where(ok, connector, np.nan),
        np.where(ok, lon, np.nan),
        np.where(ok, lat, np.nan),
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
