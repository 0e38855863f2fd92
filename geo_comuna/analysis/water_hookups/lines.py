"""Where each project's pipe runs: the same pieces projects.py measures, as lines to draw.

A network project's pipe is a MultiLineString of straight pieces: the tap's offset from the
main, every tree edge its homes use (shared stretches once), the longest piece of each home's
own segment the tree does not already hold, and each home's service line. A straight-line
project is the line from the main to its one home. Each piece is what projects.py adds to the
project's ``pipe_m``, so the geometry's geodesic length is the pipe's length (path segments are
straight between their vertices, which are the network's nodes). Built with numpy, a piece per
row: a Python loop per home cost seconds at 100,000 homes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.features import LineFeatures
from geo_comuna.analysis.toolkit.network import Attachment, Network, Tree
from geo_comuna.analysis.water_hookups.projects import Projects, Routes, Taps


@dataclass(frozen=True)
class Pieces:
    """Straight pieces of pipe: the project index of each and its ends, (N, 2, 2) lon/lat."""

    project: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, project: np.ndarray, a: np.ndarray, b: np.ndarray) -> Pieces:
        """Pieces from their projects and their two ends, each (N, 2)."""
        return cls(np.asarray(project, np.int64), np.stack([a, b], axis=1).reshape(-1, 2, 2))

    def __add__(self, other: Pieces) -> Pieces:
        return Pieces(
            np.concatenate([self.project, other.project]), np.concatenate([self.ends, other.ends])
        )

    def features(self, order: np.ndarray, properties: dict[str, list[Any]]) -> LineFeatures:
        """A MultiLineString feature per project, in ``order`` (project indexes), with
        ``properties`` given in that order."""
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        by = np.argsort(rank[self.project], kind="stable")
        stops = np.cumsum(np.bincount(rank[self.project], minlength=len(order)))
        ids = [f"project-{p}" for p in properties["project"]]
        return LineFeatures("MultiLineString", ids, self.ends[by], stops, properties)


def network_pieces(
    net: Network,
    tree: Tree,
    taps: Taps,
    att: Attachment,
    routes: Routes,
    projects: Projects,
    homes: tuple[np.ndarray, np.ndarray],
) -> Pieces:
    """Every network project's pipe as pieces; ``homes``: the dwellings' lon, lat (aligned
    with ``att.ids``)."""
    if not len(projects.key):
        return Pieces(np.zeros(0, np.int64), np.zeros((0, 2, 2)))
    nodes = np.column_stack([net.node_lon, net.node_lat])
    size = tree.root + 1

    # the tap's offset from the main, once per project
    row = tree.via[projects.tap] - 2 * net.n_edges
    on_main = np.column_stack([taps.lon[row], taps.lat[row]])
    pieces = Pieces.of(np.arange(len(projects.key)), on_main, nodes[projects.tap])

    # tree edges used, each once, in the project of its (tap, branch head)
    is_tap = tree.pred == tree.root
    tap_of = network.top_ancestor(tree, is_tap)
    is_head = np.zeros(size, bool)
    has_pred = tree.pred >= 0
    is_head[has_pred] = is_tap[tree.pred[has_pred]]
    head = network.top_ancestor(tree, is_head)
    on = routes.on_network
    entry, edge = routes.entry[on], att.edge[on]
    at_tap = is_tap[entry]
    used = network.mark_paths(tree, entry[~at_tap]) & ~is_tap
    n = np.flatnonzero(used)
    p = np.searchsorted(projects.key, tap_of[n] * size + head[n])
    pieces += Pieces.of(p, nodes[n], nodes[tree.pred[n]])

    # the longest piece of each (segment, end) not already a used tree edge
    proj = projects.of_dwelling[on]
    other = np.where(entry == net.a[edge], net.b[edge], net.a[edge])
    covered = (tree.pred[other] == entry) & used[other] & (tree.via[other] % net.n_edges == edge)
    group = edge * 2 + (entry == net.b[edge])
    partial = routes.partial_m[on]
    feet = np.column_stack([att.lon[on], att.lat[on]])
    order = np.lexsort((-partial, group))  # per group, the longest first
    first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
    first = first[~covered[first] & (partial[first] > 0)]
    pieces += Pieces.of(proj[first], nodes[entry[first]], feet[first])

    # every home's service line from its foot on the path
    service = np.flatnonzero(np.nan_to_num(att.connector_m[on]) > 0)
    home = np.column_stack([homes[0][on], homes[1][on]])
    return pieces + Pieces.of(proj[service], feet[service], home[service])
