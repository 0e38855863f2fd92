"""Monte Sinaí: a rural commune across the Anzoátegui-Miranda line."""

from __future__ import annotations

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
from ..placement import CommuneSpec, Placed
from .el_maizal import add_greenhouses

MONTE_SINAI = CommuneSpec(
    "MONTE-SINAI",
    "Monte Sinaí",
    "rural",
    "VE-B",
    (-65.55, 9.91),
    950.0,
    "active",
    202,
    other_state="VE-M",
    home_share=0.6,
    roughness=0.15,
)


SINAI_PLAN = Plan(
    road=((-1.4, 0.1), (-0.45, 0.0), (0.3, -0.12), (1.4, 0.05)),
    settlements=(
        Settlement("Santa Bárbara", 0.3, 0.28, 0.12, 35),
        Settlement("Sector La Montaña", -0.55, -0.32, 0.09, 15),
    ),
    parcel_spacing_m=470.0,
    max_parcels=34,
    min_parcel_m2=20_000.0,
)
SINAI_USES: tuple[tuple[str, str | None], ...] = (
    ("crops", "café"),
    ("crops", "cacao"),
    ("crops", "caraotas negras"),
    ("crops", "tubérculos (yuca, ocumo)"),
    ("crops", "aguacate"),
    ("forest", "café bajo sombra; matas viejas por renovar"),
    ("forest", "cacao bajo sombra"),
    ("mixed", "café, cacao y conucos"),
)
SINAI_UNITS = (
    ("Café Monte Sinaí", "coffee", 12, "forest"),
    ("Cacao del valle de Guanape", "cocoa", 8, "crops"),
    ("Vivero de café", "coffee", 5, "greenhouse"),
    ("Caraotas negras y tubérculos", "other", 6, "crops"),
)


def build_monte_sinai(out: Samples, placed: Placed) -> None:
    rng = np.random.default_rng([MONTE_SINAI.seed, 1])
    lay = lay_out(placed, SINAI_PLAN, rng)
    add_roads(out, placed, lay, SINAI_PLAN, ("Carretera del valle", "Camino de Santa Bárbara"))
    supply = add_utilities(out, placed, lay, ("pvc", 110, "leaking"), ("working",))
    props = parcel_props(
        rng,
        len(lay.parcels),
        SINAI_USES,
        (("occupied", 0.4), ("regularizing", 0.4), ("regularized", 0.2)),
    )
    props[-1] = {
        "tenure": "abandoned",
        "land_use": "idle",
        "recovered_on": None,
        "notes": "Cafetal abandonado",
    }
    nursery = int(np.argmin([p.distance(lay.centres[0]) for p in lay.parcels]))
    props[nursery] = {
        "tenure": "occupied",
        "land_use": "greenhouse",
        "recovered_on": None,
        "notes": "Vivero de plántulas de café para renovar cafetales viejos",
    }
    codes = add_parcels(out, placed, lay, "MS", props)
    add_dwellings(out, placed, lay, supply, rng, 4.2)
    add_facilities(
        out,
        placed,
        lay,
        (
            (0, "community_center", "Casa del parlamento comunal"),
            (0, "school", "Escuela rural"),
            (1, "water_tank", "Tanque La Montaña"),
        ),
    )
    add_units(out, placed, lay, codes, props, SINAI_UNITS, rng)
    (house,) = add_greenhouses(
        out,
        placed,
        rng,
        [lay.parcels[nursery]],
        (("Vivero de café", "working", "coffee seedlings"),),
    )
    out.add("facilities", placed, house.centroid, kind="nursery", name="Vivero de café")
