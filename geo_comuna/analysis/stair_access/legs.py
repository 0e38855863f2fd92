"""What each piece of a walk costs: Tobler's hiking function on roads and footpaths, a pace per
step on stairways, the straight walk from a point to the paths, and the free last leg onto a
road with vehicle access or the walk along a segment to a transit stop.

Seconds, metres, steps and metres of height; slopes from the commune's DEM at segment ends
(unknown elevations count as flat). docs/analyses.md ("Stair access") gives every formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_comuna.analysis.stair_access.params import Params
from geo_comuna.analysis.toolkit.network import STAIRWAY, Attachment, Network

TOBLER_KMH = 6.0  # top speed, reached walking down a 5 % slope
TOBLER_DECAY = 3.5
TOBLER_SLOPE = 0.05
MAX_SLOPE = 1.0  # steeper ground (over 45°) is walked as 45°: it is a stair, or DEM noise

#: what a walk adds up: seconds, metres, steps walked (up or down), steps climbed, metres gained
MEASURES = ("seconds", "metres", "steps", "climbed", "gain_m")


def tobler_mps(slope: np.ndarray | float) -> np.ndarray:
    """Walking speed (m/s) at slope dh/dx in the walking direction (Tobler 1993):
    v = 6 exp(-3.5 |dh/dx + 0.05|) km/h; 5.04 km/h on the flat. |dh/dx| is capped at 1."""
    slope = np.clip(np.asarray(slope, float), -MAX_SLOPE, MAX_SLOPE)
    return TOBLER_KMH / 3.6 * np.exp(-TOBLER_DECAY * np.abs(slope + TOBLER_SLOPE))


def road_nodes(net: Network) -> np.ndarray:
    """Nodes on a road with vehicle access: a walk reaching one is over."""
    return np.unique(np.concatenate([net.a[net.vehicles], net.b[net.vehicles]]))


@dataclass(frozen=True)
class Legs:
    """Directed walking legs, each with every measure in ``cost``."""

    tail: np.ndarray
    head: np.ndarray
    cost: dict[str, np.ndarray]
    to_stop: np.ndarray  # bool: a terminal leg ending at a transit stop

    def part(self, leg: np.ndarray, fraction: np.ndarray) -> dict[str, np.ndarray]:
        """A fraction of legs: a straight segment has one slope, so every measure is
        proportional to the part walked."""
        return {k: v[leg] * fraction for k, v in self.cost.items()}

    def __add__(self, other: Legs) -> Legs:
        return Legs(
            np.concatenate([self.tail, other.tail]),
            np.concatenate([self.head, other.head]),
            {k: np.concatenate([v, other.cost[k]]) for k, v in self.cost.items()},
            np.concatenate([self.to_stop, other.to_stop]),
        )


def segment_legs(net: Network, z: np.ndarray, params: Params) -> Legs:
    """Every segment a->b (edge ids 0..E-1), then b->a (E..2E-1). Unknown elevations count as
    flat; a stairway with no known rise is costed and counted as climbed both ways."""
    dz = np.nan_to_num(z[net.b] - z[net.a])
    length = net.length_m
    slope = dz / np.maximum(length, 1e-9)
    flat_s = length / tobler_mps(0.0)
    stair = net.kind == STAIRWAY

    def one_way(up: np.ndarray, rise: np.ndarray) -> dict[str, np.ndarray]:
        pace = np.where(up, params.step_seconds_up, params.step_seconds_down)
        return {
            "seconds": np.where(
                stair,
                flat_s + net.steps * pace,
                length / tobler_mps(rise / np.maximum(length, 1e-9)),
            ),
            "metres": length,
            "steps": np.where(stair, net.steps, 0.0),
            "climbed": np.where(up, net.steps, 0.0),
            "gain_m": np.maximum(rise, 0.0),
        }

    ab = one_way(stair & (dz >= 0), slope * length)  # dz == 0 (no DEM too): "up" both ways
    ba = one_way(stair & (dz <= 0), -slope * length)
    return Legs(
        np.concatenate([net.a, net.b]),
        np.concatenate([net.b, net.a]),
        {k: np.concatenate([ab[k], ba[k]]) for k in MEASURES},
        np.zeros(2 * net.n_edges, bool),
    )


def connector(att: Attachment, z_point: np.ndarray, z_att: np.ndarray) -> dict[str, np.ndarray]:
    """The straight walk from each point to its attachment on a segment (Tobler, slope from
    the DEM at both ends; unknown elevations: flat)."""
    metres = np.nan_to_num(att.connector_m)
    dz = np.nan_to_num(z_att - z_point)
    slope = np.where(metres > 0, dz / np.maximum(metres, 1e-9), 0.0)
    zero = np.zeros(len(metres))
    return {
        "seconds": metres / tobler_mps(slope),
        "metres": metres,
        "steps": zero,
        "climbed": zero,
        "gain_m": np.maximum(dz, 0.0),
    }


def destinations(net: Network, legs: Legs, stops: Attachment) -> Legs:
    """Terminal legs to the virtual target ``net.n_nodes``: free from every node of a road with
    vehicle access; from both ends of a stop's segment, the walk along it, then straight to
    the stop at the flat pace."""
    roads = road_nodes(net)
    on = stops.attached
    edge, along = stops.edge[on], stops.along_m[on]
    share = along / np.maximum(net.length_m[edge], 1e-9)
    from_a = legs.part(edge, share)  # a -> stop runs in the a->b direction
    from_b = legs.part(edge + net.n_edges, 1.0 - share)
    last = np.nan_to_num(stops.connector_m[on])
    for walk in (from_a, from_b):
        walk["seconds"] = walk["seconds"] + last / tobler_mps(0.0)
        walk["metres"] = walk["metres"] + last
    tail = np.concatenate([roads, net.a[edge], net.b[edge]]).astype(np.int64)
    cost = {k: np.concatenate([np.zeros(len(roads)), from_a[k], from_b[k]]) for k in MEASURES}
    return Legs(
        tail,
        np.full(len(tail), net.n_nodes),
        cost,
        np.concatenate([np.zeros(len(roads), bool), np.ones(2 * len(edge), bool)]),
    )
