"""Stair access: the walk from every home to the nearest road that vehicles use, or to a transit
stop, over the commune's roads, footpaths and stairways; how long it takes and how many steps
and metres of height it climbs.

Walking is timed by Tobler's hiking function on roads and footpaths, with the slope from the
commune's DEM at segment ends, and by a pace per step on stairways. Slopes make the walk
one-way: each segment is an edge in both directions with its own time. One Dijkstra, run
backwards from every destination at once, times all dwellings. docs/analyses.md
("Stair access") gives every formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from geo_comuna.analysis import dem as dems
from geo_comuna.analysis import network, registry
from geo_comuna.analysis.base import Analysis, Result
from geo_comuna.analysis.network import STAIRWAY, Attachment, Network, rounded, whole
from geo_comuna.errors import NotFound

TOBLER_KMH = 6.0  # top speed, reached walking down a 5 % slope
TOBLER_DECAY = 3.5
TOBLER_SLOPE = 0.05
MAX_SLOPE = 1.0  # steeper ground (over 45°) is walked as 45°: it is a stair, or DEM noise


def tobler_mps(slope: np.ndarray | float) -> np.ndarray:
    """Walking speed (m/s) at slope dh/dx in the walking direction (Tobler 1993):
    v = 6 exp(-3.5 |dh/dx + 0.05|) km/h; 5.04 km/h on the flat. |dh/dx| is capped at 1."""
    slope = np.clip(np.asarray(slope, float), -MAX_SLOPE, MAX_SLOPE)
    return TOBLER_KMH / 3.6 * np.exp(-TOBLER_DECAY * np.abs(slope + TOBLER_SLOPE))


class Params(BaseModel):
    """Stair-access parameters (seconds, minutes, steps, metres)."""

    model_config = ConfigDict(extra="forbid")

    step_seconds_up: float = Field(
        1.0,
        gt=0,
        le=10,
        description="seconds per step climbed on a stairway, on top of its "
        "horizontal length walked at the flat pace",
    )
    step_seconds_down: float = Field(0.7, gt=0, le=10, description="seconds per step walked down")
    max_minutes: float = Field(
        15.0, gt=0, le=600, description="flag dwellings whose walk out or back takes longer (min)"
    )
    max_steps: int = Field(
        200,
        ge=0,
        le=100_000,
        description="flag dwellings whose walk takes more steps, up or down, either way",
    )
    max_connector_m: float = Field(
        50.0,
        gt=0,
        le=500,
        description="farthest a dwelling or stop may be from the paths (m, "
        "walked straight); farther ones are unreachable",
    )
    transit_stops: bool = Field(
        True,
        description="transit stops (facilities) count as destinations, besides roads "
        "with vehicle access",
    )


#: what a walk adds up: seconds, metres, steps walked (up or down), steps climbed, metres gained
MEASURES = ("seconds", "metres", "steps", "climbed", "gain_m")


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
    road_nodes = np.unique(np.concatenate([net.a[net.vehicles], net.b[net.vehicles]]))
    on = stops.attached
    edge, along = stops.edge[on], stops.along_m[on]
    share = along / np.maximum(net.length_m[edge], 1e-9)
    from_a = legs.part(edge, share)  # a -> stop runs in the a->b direction
    from_b = legs.part(edge + net.n_edges, 1.0 - share)
    last = np.nan_to_num(stops.connector_m[on])
    for walk in (from_a, from_b):
        walk["seconds"] = walk["seconds"] + last / tobler_mps(0.0)
        walk["metres"] = walk["metres"] + last
    tail = np.concatenate([road_nodes, net.a[edge], net.b[edge]]).astype(np.int64)
    cost = {k: np.concatenate([np.zeros(len(road_nodes)), from_a[k], from_b[k]]) for k in MEASURES}
    return Legs(
        tail,
        np.full(len(tail), net.n_nodes),
        cost,
        np.concatenate([np.zeros(len(road_nodes), bool), np.ones(2 * len(edge), bool)]),
    )


@dataclass(frozen=True)
class Walks:
    """Per dwelling: each measure of its walk (NaN where unreachable), and whether it ends at
    a transit stop."""

    cost: dict[str, np.ndarray]
    to_stop: np.ndarray

    @property
    def reachable(self) -> np.ndarray:
        return np.isfinite(self.cost["seconds"])

    def subset(self, mask: np.ndarray) -> Walks:
        return Walks({k: v[mask] for k, v in self.cost.items()}, self.to_stop[mask])


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
    return Walks(cost, ok & ~on_road & ends_at_stop[entry])


async def _elevations(
    conn: AsyncConnection,
    commune_id: int,
    net: Network,
    dw: network.Dwellings,
    homes: Attachment,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DEM elevation (m) of every node, dwelling and dwelling's attachment point; NaN (walked
    as flat) where unknown."""
    dem = await dems.for_commune(conn, commune_id)
    if dem is None:
        warnings.append(
            "this commune has no DEM: every path is walked as flat and a "
            "stairway's steps all count as climbed (register a GeoTIFF DEM)"
        )
        return (
            np.full(net.n_nodes, np.nan),
            np.full(len(dw.ids), np.nan),
            np.full(len(dw.ids), np.nan),
        )
    z_node = dems.elevations(dem, net.node_lon, net.node_lat)
    z_home = dems.elevations(dem, dw.lon, dw.lat)
    z_att = dems.elevations(dem, np.nan_to_num(homes.lon), np.nan_to_num(homes.lat))
    missing = int(np.isnan(z_node).sum())
    if missing == net.n_nodes:
        warnings.append(
            f"the DEM '{dem.name}' does not cover this commune's paths: every "
            "path is walked as flat and stairway steps all count as climbed"
        )
    elif missing:
        warnings.append(
            f"{missing} of {net.n_nodes} path nodes lie outside the DEM "
            f"'{dem.name}': segments touching them are walked as flat"
        )
    return z_node, z_home, z_att


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """The walk from every dwelling to a road with vehicle access or a transit stop: metres,
    steps climbed, elevation gained and minutes; flagged over the thresholds; summarised per
    commune and sector. CSV rows are the dwellings."""
    warnings: list[str] = []
    dw = await network.load_dwellings(conn, commune_id)
    if not len(dw.ids):
        warnings.append("this commune has no dwellings mapped")
        return Result(summary={"dwellings": 0, "residents": 0}, features=[], warnings=warnings)
    srid = await network.utm_srid(conn, commune_id)
    net = await network.load(conn, commune_id, srid)
    if not net.n_edges:
        raise NotFound(
            f"commune {commune_id} has no paths mapped: stair access walks the "
            "roads, footpaths and stairways of layer paths",
            layer="paths",
        )
    stop_ids = np.zeros(0, np.int64)
    if params.transit_stops:
        cur = await conn.execute(
            "SELECT id FROM facilities WHERE commune_id = %s AND kind = 'transit_stop'",
            (commune_id,),
        )
        stop_ids = np.array([r[0] for r in await cur.fetchall()], np.int64)
    stops = await network.attach(
        conn, net, commune_id, "facilities", stop_ids, params.max_connector_m
    )
    if not net.vehicles.any() and not stops.attached.any():
        raise NotFound(
            f"commune {commune_id} has no road with vehicle access and no transit "
            "stop on its paths: there is nowhere to walk to",
            layer="paths",
        )
    homes = await network.attach(conn, net, commune_id, "dwellings", dw.ids, params.max_connector_m)
    z_node, z_home, z_att = await _elevations(conn, commune_id, net, dw, homes, warnings)
    out = walk_all(net, z_node, homes, z_home, z_att, stops, params)
    back = walk_all(net, -z_node, homes, -z_home, -z_att, stops, params)
    lost = int((~out.reachable).sum())
    if lost:
        warnings.append(
            f"{lost} dwellings reach no destination: over "
            f"{params.max_connector_m:g} m from the paths, or on paths cut off "
            "from every road and stop"
        )
    flags = _flags(out, back, params)

    features = [
        {
            "type": "Feature",
            "id": i,
            "geometry": g,
            "properties": {
                "residents": int(r),
                "sector": s,
                "reachable": ok,
                "destination": ("transit_stop" if st else "road") if ok else None,
                "minutes": mi,
                "metres": me,
                "steps": st_,
                "steps_climbed": cl,
                "elevation_gain_m": ga,
                "minutes_back": mb,
                "steps_climbed_back": cb,
                "elevation_gain_back_m": gb,
                "connector_m": co,
                "over_minutes": om,
                "over_steps": os_,
                "flagged": om or os_,
            },
        }
        for (i, g, r, s, ok, st, mi, me, st_, cl, ga, mb, cb, gb, co, om, os_) in zip(
            dw.ids.tolist(),
            dw.geometry,
            dw.residents.tolist(),
            dw.sector,
            out.reachable.tolist(),
            out.to_stop.tolist(),
            rounded(out.cost["seconds"] / 60, 2),
            rounded(out.cost["metres"]),
            whole(out.cost["steps"]),
            whole(out.cost["climbed"]),
            rounded(out.cost["gain_m"]),
            rounded(back.cost["seconds"] / 60, 2),
            whole(back.cost["climbed"]),
            rounded(back.cost["gain_m"]),
            rounded(homes.connector_m),
            flags["over_minutes"].tolist(),
            flags["over_steps"].tolist(),
            strict=True,
        )
    ]
    sectors = np.array([s or "" for s in dw.sector])
    summary = {
        **_block(dw.residents, out, back, flags),
        "destinations": {
            "road_nodes": int(
                len(np.unique(np.concatenate([net.a[net.vehicles], net.b[net.vehicles]])))
            ),
            "transit_stops": int(stops.attached.sum()),
        },
        "by_sector": [
            {
                "sector": name or None,
                **_block(
                    dw.residents[m],
                    out.subset(m),
                    back.subset(m),
                    {k: v[m] for k, v in flags.items()},
                ),
            }
            for name in sorted(set(sectors.tolist()))
            for m in [sectors == name]
        ],
        "model": {
            "flat_kmh": round(float(tobler_mps(0.0)) * 3.6, 3),
            "step_seconds_up": params.step_seconds_up,
            "step_seconds_down": params.step_seconds_down,
        },
        "csv_rows": "dwellings",
    }
    return Result(summary=summary, features=features, warnings=warnings)


def _flags(out: Walks, back: Walks, params: Params) -> dict[str, np.ndarray]:
    """Over the thresholds in either direction (the climb home is usually the worse)."""
    minutes = np.fmax(out.cost["seconds"], back.cost["seconds"]) / 60.0
    steps = np.fmax(np.round(out.cost["steps"]), np.round(back.cost["steps"]))
    return {"over_minutes": minutes > params.max_minutes, "over_steps": steps > params.max_steps}


def _block(
    residents: np.ndarray, out: Walks, back: Walks, flags: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Counts and quantiles for a set of dwellings (quantiles over the reachable ones)."""
    ok = out.reachable

    def q(values: np.ndarray) -> dict[str, float | None]:
        if not ok.any():
            return {"median": None, "p90": None, "max": None}
        return {
            name: round(float(np.percentile(values[ok], p)), 1)
            for name, p in (("median", 50), ("p90", 90), ("max", 100))
        }

    def people(mask: np.ndarray) -> dict[str, int]:
        return {"dwellings": int(mask.sum()), "residents": int(residents[mask].sum())}

    flagged = flags["over_minutes"] | flags["over_steps"]
    return {
        "dwellings": len(residents),
        "residents": int(residents.sum()),
        "unreachable": int((~ok).sum()),
        "minutes": q(out.cost["seconds"] / 60),
        "minutes_back": q(back.cost["seconds"] / 60),
        "steps": q(out.cost["steps"]),
        "steps_climbed_back": q(back.cost["climbed"]),
        "over_minutes": people(flags["over_minutes"]),
        "over_steps": people(flags["over_steps"]),
        "flagged": people(flagged),
    }


registry.register(
    Analysis(
        name="stair-access",
        title_es="Acceso por escaleras",
        title_en="Stair access",
        params=Params,
        run=run,
    )
)
