"""The quickest walk from every dwelling to a destination, all at once: one Dijkstra, run
backwards from a virtual target joined to every destination, then each dwelling through the
better end of its segment. Negated elevations give the walk back home.

Times in seconds; every measure of ``legs.MEASURES`` is summed along the chosen walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_comuna.analysis.stair_access.legs import MEASURES, connector, destinations, segment_legs
from geo_comuna.analysis.stair_access.params import Params
from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.network import Attachment, Network


@dataclass(frozen=True)
class Walks:
    """Per dwelling: each measure of its walk (NaN where unreachable), and whether it ends at
    a transit stop."""

    cost: dict[str, np.ndarray]
    to_stop: np.ndarray
    #: the network node where the walk joins the paths' tree (-1: none, or on a road already)
    entry: np.ndarray | None = None
    #: the tree each walk then follows (node -> next node; the virtual target ends it)
    next_node: np.ndarray | None = None

    @property
    def reachable(self) -> np.ndarray:
        return np.isfinite(self.cost["seconds"])

    def subset(self, mask: np.ndarray) -> Walks:
        entry = None if self.entry is None else self.entry[mask]
        return Walks(
            {k: v[mask] for k, v in self.cost.items()}, self.to_stop[mask], entry, self.next_node
        )


def walk_all(
    net: Network,
    z_node: np.ndarray,
    homes: Attachment,
    z_home: np.ndarray,
    z_att: np.ndarray,
    stops: Attachment,
    params: Params,
) -> Walks:
    """Shortest walk by time from every attached dwelling to a destination: Dijkstra from the
    virtual target over the reversed legs, then each dwelling through the better end of its
    segment (or nowhere, if its own segment carries vehicles). With elevations negated this
    gives the walk back home instead (every slope and stairway reversed)."""
    seg = segment_legs(net, z_node, params)
    legs = seg + destinations(net, seg, stops)
    target = net.n_nodes
    tree = network.shortest_tree(target + 1, legs.head, legs.tail, legs.cost["seconds"], target)
    to_target = {k: network.accumulate(tree, legs.cost[k]) for k in MEASURES}
    last = network.top_ancestor(tree, tree.pred == target)  # node whose leg ends the walk
    ends_at_stop = np.zeros(target + 1, bool)
    reached = tree.via[last] >= 0
    ends_at_stop[reached] = legs.to_stop[tree.via[last][reached]]

    edge = np.maximum(homes.edge, 0)
    a, b = net.a[edge], net.b[edge]
    share = homes.along_m / np.maximum(net.length_m[edge], 1e-9)
    start = connector(homes, z_home, z_att)
    to_a = seg.part(edge + net.n_edges, share)  # toward a runs in the b->a direction
    to_b = seg.part(edge, 1.0 - share)
    via_a = to_a["seconds"] + tree.dist[a]
    via_b = to_b["seconds"] + tree.dist[b]
    use_a = via_a <= via_b
    entry = np.where(use_a, a, b)
    on_road = net.vehicles[edge]  # reached the road where it joins its segment
    ok = homes.attached & (on_road | np.isfinite(np.minimum(via_a, via_b)))
    cost = {}
    for k in MEASURES:
        along = np.where(use_a, to_a[k], to_b[k]) + to_target[k][entry]
        cost[k] = np.where(ok, start[k] + np.where(on_road, 0.0, along), np.nan)
    walked = np.where(ok & ~on_road, entry, -1)
    return Walks(cost, ok & ~on_road & ends_at_stop[entry], walked, tree.pred)
