"""Indio Caricuao (INDIO-CARICUAO): what the reports say, and the size of its small
layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import URBAN_USES, SmallDetail

SPEC = CommuneSpec(
    "INDIO-CARICUAO",
    "Indio Caricuao",
    "urban",
    "VE-A",
    (-66.98, 10.44),
    62.0,
    "registered",
    707,
)
DETAIL = SmallDetail(
    40,
    6,
    URBAN_USES,
    (("Empresa textil comunal", "textiles", 18, None),),
    (
        (0, "community_center", "Sede comunal y taller textil"),
        (0, "transit_stop", "Parada Caricuao"),
    ),
    True,
)
