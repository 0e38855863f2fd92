"""Where each project's pipe runs: the same pieces projects.py measures, as lines to draw.

A network project's pipe is a MultiLineString of straight pieces: the tap's offset from the
main, every tree edge its homes use (shared stretches once), the longest piece of each home's
own segment the tree does not already hold, and each home's service line. A straight-line
project is the line from the main to its one home. Each piece is what projects.py adds to the
project's ``pipe_m``, so the geometry's geodesic length is the pipe's length (path segments are
straight between their vertices, which are the network's nodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geo_comuna.analysis.toolkit import network
from geo_comuna.analysis.toolkit.network import Attachment, Network, Tree
from geo_comuna.analysis.water_hookups.projects import Projects, Routes, Taps

#: lon/lat decimals in the pipe geometry: 7 is ~1 cm (6, ~0.1 m per end, adds up over pieces)
DECIMALS = 7


def network_pieces(
    net: Network,
    tree: Tree,
    taps: Taps,
    att: Attachment,
    routes: Routes,
    projects: Projects,
    homes: tuple[np.ndarray, np.ndarray],
) -> list[list[list[list[float]]]]:
    """Per network project (in ``projects.key`` order), its pipe as a list of two-point lines;
    ``homes``: the dwellings' lon, lat (aligned with ``att.ids``)."""
    pieces: list[list] = [[] for _ in range(len(projects.key))]
    if not len(projects.key):
        return pieces
    lon, lat = net.node_lon, net.node_lat
    size = tree.root + 1

    def node(i: int) -> list[float]:
        return [float(lon[i]), float(lat[i])]

    # the tap's offset from the main, once per project
    for p, tap in enumerate(projects.tap.tolist()):
        row = int(tree.via[tap]) - 2 * net.n_edges
        pieces[p].append([[float(taps.lon[row]), float(taps.lat[row])], node(tap)])

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
    for n in np.flatnonzero(used).tolist():
        p = int(np.searchsorted(projects.key, tap_of[n] * size + head[n]))
        pieces[p].append([node(n), node(int(tree.pred[n]))])

    # the longest piece of each (segment, end) not already a used tree edge
    proj = projects.of_dwelling[on]
    other = np.where(entry == net.a[edge], net.b[edge], net.a[edge])
    covered = (tree.pred[other] == entry) & used[other] & (tree.via[other] % net.n_edges == edge)
    group = edge * 2 + (entry == net.b[edge])
    partial = routes.partial_m[on]
    foot_lon, foot_lat = att.lon[on], att.lat[on]
    order = np.lexsort((-partial, group))  # per group, the longest first
    first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
    for i in first.tolist():
        if not covered[i] and partial[i] > 0:
            pieces[proj[i]].append([node(int(entry[i])), [float(foot_lon[i]), float(foot_lat[i])]])

    # every home's service line from its foot on the path
    home_lon, home_lat = homes[0][on], homes[1][on]
    for i in np.flatnonzero(np.nan_to_num(att.connector_m[on]) > 0).tolist():
        pieces[proj[i]].append(
            [[float(foot_lon[i]), float(foot_lat[i])], [float(home_lon[i]), float(home_lat[i])]]
        )
    return pieces


def geometry(pieces: list[list[list[float]]]) -> dict[str, Any]:
    """A GeoJSON MultiLineString of the pieces, rounded to DECIMALS."""
    return {
        "type": "MultiLineString",
        "coordinates": [[[round(c, DECIMALS) for c in pt] for pt in line] for line in pieces],
    }
