"""The stair-access result: a GeoJSON feature (and CSV row) per dwelling with its walk out and
back, the flags over the thresholds, and the summary for the commune and per sector.

Minutes rounded to 0.01, metres to 0.1, steps whole; null where unreachable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geo_comuna.analysis.stair_access.legs import road_nodes, tobler_mps
from geo_comuna.analysis.stair_access.params import Params
from geo_comuna.analysis.stair_access.walks import Walks
from geo_comuna.analysis.toolkit.features import LineFeatures
from geo_comuna.analysis.toolkit.network import (
    Attachment,
    Dwellings,
    Network,
    PointFeatures,
    as_features,
    rounded,
    whole,
)
from geo_comuna.errors import Said


def walk_lines(dw: Dwellings, net: Network, homes: Attachment, out: Walks) -> LineFeatures:
    """One GeoJSON LineString per reachable dwelling: its walk out, from the home to its foot
    on the paths and along them to the road or stop (the last leg to a stop off the paths is
    left out), with its minutes. The walks are followed all at once, a step per round (a
    Python loop per node cost seconds at 50,000 homes); kept as arrays until read."""
    target = net.n_nodes
    ok = np.flatnonzero(out.reachable)
    if not len(ok):
        return LineFeatures("LineString", [], np.zeros((0, 2)), np.zeros(0), {})
    entry = out.entry[ok] if out.entry is not None else np.full(len(ok), -1)
    who, step, node = [np.arange(len(ok))] * 2, [np.full(len(ok), -2), np.full(len(ok), -1)], []
    points = [
        np.column_stack([dw.lon[ok], dw.lat[ok]]),
        np.column_stack([homes.lon, homes.lat])[ok],
    ]
    walker, at, n = np.arange(len(ok)), entry, 0
    while len(walker := walker[alive := (at >= 0) & (at < target)]):
        at = at[alive]
        who.append(walker)
        step.append(np.full(len(walker), n))
        node.append(at)
        at, n = out.next_node[at], n + 1
    nodes = np.column_stack([net.node_lon, net.node_lat])
    points += [nodes[k] for k in node]
    who_all, step_all = np.concatenate(who), np.concatenate(step)
    order = np.lexsort((step_all, who_all))
    who_all, xy = who_all[order], np.round(np.concatenate(points)[order], 7)
    repeat = np.r_[False, (who_all[1:] == who_all[:-1]) & (xy[1:] == xy[:-1]).all(axis=1)]
    who_all, xy = who_all[~repeat], xy[~repeat]
    counts = np.bincount(who_all, minlength=len(ok))
    walked = counts >= 2  # a home on its road's edge: no walk to draw
    xy = xy[walked[who_all]]
    minutes = rounded(out.cost["seconds"][ok] / 60, 2)
    return LineFeatures(
        "LineString",
        dw.ids[ok][walked].tolist(),
        xy,
        np.cumsum(counts[walked]),
        {
            "minutes": [m for m, w in zip(minutes, walked.tolist(), strict=True) if w],
            "sector": [dw.sector[k] for k in ok[walked].tolist()],
        },
    )


def flags(out: Walks, back: Walks, params: Params) -> dict[str, np.ndarray]:
    """Over the thresholds in either direction (the climb home is usually the worse), and
    with no way out at all."""
    minutes = np.fmax(out.cost["seconds"], back.cost["seconds"]) / 60.0
    steps = np.fmax(np.round(out.cost["steps"]), np.round(back.cost["steps"]))
    return {
        "over_minutes": minutes > params.max_minutes,
        "over_steps": steps > params.max_steps,
        "no_way_out": ~out.reachable,
    }


def _flagged(flagged: dict[str, np.ndarray]) -> np.ndarray:
    """A home that needs looking at: over a threshold, or with no mapped way out (found from
    outside: 241 of El Maizal's 300 homes reached no road, and the summary led with "0 homes
    flagged", its figures over the other 59)."""
    return flagged["over_minutes"] | flagged["over_steps"] | flagged["no_way_out"]


def dwelling_features(
    dw: Dwellings, homes: Attachment, out: Walks, back: Walks, flagged: dict[str, np.ndarray]
) -> PointFeatures:
    """One GeoJSON feature per dwelling: its walk out, its walk back, and its flags."""
    ok = out.reachable
    destination = np.where(out.to_stop, "transit_stop", "road").astype(object)
    destination[~ok] = None
    return as_features(
        dw,
        {
            "residents": dw.residents.astype(np.int64).tolist(),
            "sector": dw.sector,
            "reachable": ok.tolist(),
            "destination": destination.tolist(),
            "minutes": rounded(out.cost["seconds"] / 60, 2),
            "metres": rounded(out.cost["metres"]),
            "steps": whole(out.cost["steps"]),
            "steps_climbed": whole(out.cost["climbed"]),
            "elevation_gain_m": rounded(out.cost["gain_m"]),
            "minutes_back": rounded(back.cost["seconds"] / 60, 2),
            "steps_climbed_back": whole(back.cost["climbed"]),
            "elevation_gain_back_m": rounded(back.cost["gain_m"]),
            "connector_m": rounded(homes.connector_m),
            "over_minutes": flagged["over_minutes"].tolist(),
            "over_steps": flagged["over_steps"].tolist(),
            "flagged": _flagged(flagged).tolist(),
        },
    )


def summary(
    dw: Dwellings,
    net: Network,
    stops: Attachment,
    out: Walks,
    back: Walks,
    flagged: dict[str, np.ndarray],
    params: Params,
) -> dict[str, Any]:
    """The commune's block, its destinations, one block per sector, and the walking model."""
    sectors = dw.sector_names
    return {
        **_block(dw.residents, out, back, flagged),
        "destinations": {
            "road_nodes": int(len(road_nodes(net))),
            "transit_stops": int(stops.attached.sum()),
        },
        "by_sector": [
            {
                "sector": name or None,
                **_block(
                    dw.residents[m],
                    out.subset(m),
                    back.subset(m),
                    {k: v[m] for k, v in flagged.items()},
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
        "csv_rows": Said("dwellings", "viviendas"),
    }


def _block(
    residents: np.ndarray, out: Walks, back: Walks, flagged: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Counts and quantiles for a set of dwellings (quantiles over the reachable ones)."""
    ok = out.reachable

    def q(values: np.ndarray, count: bool = False) -> dict[str, float | None]:
        """Median, 90th percentile and maximum; of a ``count`` (steps), whole steps of
        whole homes (the home's own figure, as its feature gives it: "286.2 steps" read as
        a measure nobody walks)."""
        if not ok.any():
            return {"median": None, "p90": None, "max": None}
        if count:
            homes = np.round(values[ok])
            return {
                name: int(np.percentile(homes, p, method="nearest"))
                for name, p in (("median", 50), ("p90", 90), ("max", 100))
            }
        return {
            name: round(float(np.percentile(values[ok], p)), 1)
            for name, p in (("median", 50), ("p90", 90), ("max", 100))
        }

    def people(mask: np.ndarray) -> dict[str, int]:
        return {"dwellings": int(mask.sum()), "residents": int(residents[mask].sum())}

    return {
        "dwellings": len(residents),
        "residents": int(residents.sum()),
        "unreachable": int((~ok).sum()),
        "reachable": int(ok.sum()),  # what the quantiles below are of
        "minutes": q(out.cost["seconds"] / 60),
        "minutes_back": q(back.cost["seconds"] / 60),
        "steps": q(out.cost["steps"], count=True),
        "steps_climbed_back": q(back.cost["climbed"], count=True),
        "over_minutes": people(flagged["over_minutes"]),
        "over_steps": people(flagged["over_steps"]),
        "flagged": people(_flagged(flagged)),
    }
