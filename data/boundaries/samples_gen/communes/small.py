"""What the six small communes share: a road, one settlement, a handful of parcels.
Each commune's module gives its SPEC and DETAIL."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..collected import Samples
from ..layout import (
    Plan,
    Settlement,
    add_dwellings,
    add_facilities,
    add_parcels,
    add_roads,
    add_units,
    add_utilities,
    lay_out,
    parcel_props,
)
from ..placement import Placed


@dataclass(frozen=True)
class SmallDetail:
    dwellings: int
    parcels: int
    uses: tuple[tuple[str, str | None], ...]
    units: tuple[tuple[str, str, int, str | None], ...]
    facilities: tuple[tuple[int, str, str], ...]
    transit: bool


URBAN_USES: tuple[tuple[str, str | None], ...] = (
    ("housing", None),
    ("housing", None),
    ("mixed", "vivienda y taller"),
    ("idle", "terreno baldío"),
)


def small_plan(placed: Placed, detail: SmallDetail) -> Plan:
    area_m2 = placed.spec.area_ha * 1e4
    urban = placed.spec.kind == "urban"
    return Plan(
        road=((-1.4, -0.1), (0.0, 0.05), (1.4, -0.05)),
        settlements=(
            Settlement("Sector Centro", 0.3, 0.35, 0.35 if urban else 0.22, detail.dwellings),
        ),
        parcel_spacing_m=math.sqrt(area_m2 / (detail.parcels + 4)),
        max_parcels=detail.parcels,
        min_parcel_m2=area_m2 / (detail.parcels * 6),
        dwelling_spacing_m=8.0 if urban else 12.0,
        transit=detail.transit,
    )


def build_small(out: Samples, placed: Placed, detail: SmallDetail) -> None:
    spec = placed.spec
    rng = np.random.default_rng([spec.seed, 1])
    plan = small_plan(placed, detail)
    lay = lay_out(placed, plan, rng)
    add_roads(out, placed, lay, plan, ("Calle principal", "Calle del sector"))
    supply = add_utilities(out, placed, lay, ("pvc", 110, "working"), ("leaking", "working"))
    props = parcel_props(
        rng,
        len(lay.parcels),
        detail.uses,
        (("occupied", 0.4), ("regularizing", 0.35), ("regularized", 0.25)),
    )
    for use in {u for *_, u in detail.units if u} - {p["land_use"] for p in props}:
        props[0] = {**props[0], "land_use": use}  # every unit needs a parcel of its use
    prefix = "".join(w[0] for w in spec.code.split("-") if w.upper() not in ("DE",))[:2]
    codes = add_parcels(out, placed, lay, prefix, props)
    add_dwellings(out, placed, lay, supply, rng, 4.3)
    add_facilities(out, placed, lay, detail.facilities)
    add_units(out, placed, lay, codes, props, detail.units, rng)
