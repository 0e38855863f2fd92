"""Branch projects over the path network: where the mains meet the paths (taps), the
shortest-pipe tree from all taps at once, each dwelling's route into it, and the projects the
tree's branches form.

Lengths are geodesic metres. docs/analyses.md ("Water hookups") gives every formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psycopg import AsyncConnection

from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.network import Attachment, Network, Tree


@dataclass(frozen=True)
class Taps:
    """Where mains meet the network: tap node, pipe from the main (m), point on the main."""

    node: np.ndarray
    offset_m: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


async def load_taps(
    conn: AsyncConnection, commune_id: int, net: Network, srid: int, reach_m: float
) -> Taps:
    cur = conn.cursor(binary=True)
    await cur.execute(sql_text(__package__, "taps.sql"), {"commune": commune_id, "reach": reach_m})
    rows = await cur.fetchall()
    if not rows or not net.n_edges:
        return Taps(*(np.zeros(0, t) for t in (np.int64, float, float, float)))
    _, lon, lat, offset, mlon, mlat = (np.array(c, float) for c in zip(*rows, strict=True))
    keys = network.snap(
        np.concatenate([net.node_lon, lon]), np.concatenate([net.node_lat, lat]), srid
    )
    node_keys, vertex_keys = keys[: net.n_nodes], keys[net.n_nodes :]
    order = np.argsort(node_keys)
    pos = np.minimum(np.searchsorted(node_keys[order], vertex_keys), len(order) - 1)
    found = node_keys[order][pos] == vertex_keys  # every path vertex is a node; kept safe
    node = order[pos]
    return Taps(node[found], offset[found], mlon[found], mlat[found])


def source_tree(net: Network, taps: Taps) -> tuple[Tree, np.ndarray]:
    """Shortest pipes from a virtual root (node ``net.n_nodes``) through the taps over the
    undirected network; returns the tree and the weight of every input edge (segments a->b,
    then b->a, then root->tap)."""
    root = net.n_nodes
    tails = np.concatenate([net.a, net.b, np.full(len(taps.node), root)])
    heads = np.concatenate([net.b, net.a, taps.node])
    weights = np.concatenate([net.length_m, net.length_m, taps.offset_m])
    return network.shortest_tree(root + 1, tails, heads, weights, root), weights


@dataclass(frozen=True)
class Routes:
    """Per dwelling: network node where its pipe joins the tree (-1: none), the part of its own
    segment the pipe runs along (m), and its whole pipe length (connector included, m)."""

    entry: np.ndarray
    partial_m: np.ndarray
    length_m: np.ndarray

    @property
    def on_network(self) -> np.ndarray:
        return self.entry >= 0


def route(net: Network, att: Attachment, tree: Tree) -> Routes:
    """Each attached dwelling reaches the tree through the cheaper end of its segment."""
    if not net.n_edges:
        none = np.full(len(att.ids), -1, np.int64)
        return Routes(none, np.zeros(len(none)), np.full(len(none), np.nan))
    edge = np.maximum(att.edge, 0)
    a, b, seg_len = net.a[edge], net.b[edge], net.length_m[edge]
    via_a = tree.dist[a] + att.along_m
    via_b = tree.dist[b] + seg_len - att.along_m
    use_a = via_a <= via_b
    best = np.where(use_a, via_a, via_b)
    ok = att.attached & np.isfinite(best)
    entry = np.where(ok, np.where(use_a, a, b), -1)
    partial = np.where(ok, np.where(use_a, att.along_m, seg_len - att.along_m), 0.0)
    return Routes(entry, partial, np.where(ok, best + np.nan_to_num(att.connector_m), np.nan))


@dataclass(frozen=True)
class Projects:
    """Network projects: one per branch leaving a tap (see docs/analyses.md)."""

    key: np.ndarray  # tap * (n_nodes + 1) + first node of the branch
    tap: np.ndarray
    pipe_m: np.ndarray  # union of the tree edges used + own-segment pieces + connectors + offset
    of_dwelling: np.ndarray  # project index per dwelling (-1: not on the network)


def group_projects(
    net: Network, tree: Tree, weights: np.ndarray, att: Attachment, routes: Routes
) -> Projects:
    """Dwellings whose pipes leave the same tap by the same first edge form one project; its
    pipe is the union of the tree edges its dwellings use (shared stretches counted once)."""
    size = tree.root + 1
    is_tap = tree.pred == tree.root
    tap = network.top_ancestor(tree, is_tap)
    is_head = np.zeros(size, bool)
    has_pred = tree.pred >= 0
    is_head[has_pred] = is_tap[tree.pred[has_pred]]
    head = network.top_ancestor(tree, is_head)

    on = routes.on_network
    if not on.any():
        empty = np.zeros(0, np.int64)
        return Projects(empty, empty, np.zeros(0), np.full(len(on), -1, np.int64))
    entry, edge = routes.entry[on], att.edge[on]
    other = np.where(entry == net.a[edge], net.b[edge], net.a[edge])
    at_tap = is_tap[entry]
    # A dwelling joining right at a tap starts its own branch along its segment.
    dw_key = np.where(at_tap, entry * size + other, tap[entry] * size + head[entry])
    keys, proj = np.unique(dw_key, return_inverse=True)
    of_dwelling = np.full(len(routes.entry), -1, np.int64)
    of_dwelling[on] = proj
    pipe = np.zeros(len(keys))

    used = network.mark_paths(tree, entry[~at_tap])
    used &= ~is_tap  # a tap's own edge is the offset from the main, added per project below
    nodes = np.flatnonzero(used)
    node_proj = np.searchsorted(keys, tap[nodes] * size + head[nodes])
    np.add.at(pipe, node_proj, weights[tree.via[nodes]])

    # Pieces of dwellings' own segments: per (segment, end) the longest one, unless the whole
    # segment is already a tree edge in use.
    group = edge * 2 + (entry == net.b[edge])
    longest = np.zeros(2 * max(net.n_edges, 1))
    np.maximum.at(longest, group, routes.partial_m[on])
    covered = (tree.pred[other] == entry) & used[other] & (tree.via[other] % net.n_edges == edge)
    first = np.unique(group, return_index=True)[1]
    np.add.at(pipe, proj[first], np.where(covered[first], 0.0, longest[group[first]]))

    np.add.at(pipe, proj, np.nan_to_num(att.connector_m[on]))
    taps = keys // size
    pipe += tree.dist[taps]
    return Projects(keys, taps, pipe, of_dwelling)
