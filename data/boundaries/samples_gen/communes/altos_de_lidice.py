"""Altos de Lídice (ALTOS-DE-LIDICE): what the reports say, and the size of its small
layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import URBAN_USES, SmallDetail

SPEC = CommuneSpec(
    "ALTOS-DE-LIDICE",
    "Altos de Lídice",
    "urban",
    "VE-A",
    (-66.94, 10.52),
    36.0,
    "registered",
    606,
)
DETAIL = SmallDetail(
    35,
    5,
    URBAN_USES,
    (("Bodega comunal", "other", 3, "mixed"),),
    ((0, "clinic", "Consultorio comunitario"), (0, "communal_shop", "Tienda comunal")),
    True,
)
