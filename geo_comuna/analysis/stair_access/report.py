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
from geo_comuna.analysis.toolkit.network import (
    Attachment,
    Dwellings,
    Network,
    as_features,
    rounded,
    whole,
)


def flags(out: Walks, back: Walks, params: Params) -> dict[str, np.ndarray]:
    """Over the thresholds in either direction (the climb home is usually the worse)."""
    minutes = np.fmax(out.cost["seconds"], back.cost["seconds"]) / 60.0
    steps = np.fmax(np.round(out.cost["steps"]), np.round(back.cost["steps"]))
    return {"over_minutes": minutes > params.max_minutes, "over_steps": steps > params.max_steps}


def dwelling_features(
    dw: Dwellings, homes: Attachment, out: Walks, back: Walks, flagged: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """One GeoJSON feature per dwelling: its walk out, its walk back, and its flags."""
    properties = (
        {
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
        }
        for (r, s, ok, st, mi, me, st_, cl, ga, mb, cb, gb, co, om, os_) in zip(
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
            flagged["over_minutes"].tolist(),
            flagged["over_steps"].tolist(),
            strict=True,
        )
    )
    return as_features(dw, properties)


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
        "csv_rows": "dwellings",
    }


def _block(
    residents: np.ndarray, out: Walks, back: Walks, flagged: dict[str, np.ndarray]
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

    return {
        "dwellings": len(residents),
        "residents": int(residents.sum()),
        "unreachable": int((~ok).sum()),
        "minutes": q(out.cost["seconds"] / 60),
        "minutes_back": q(back.cost["seconds"] / 60),
        "steps": q(out.cost["steps"]),
        "steps_climbed_back": q(back.cost["climbed"]),
        "over_minutes": people(flagged["over_minutes"]),
        "over_steps": people(flagged["over_steps"]),
        "flagged": people(flagged["over_minutes"] | flagged["over_steps"]),
    }
