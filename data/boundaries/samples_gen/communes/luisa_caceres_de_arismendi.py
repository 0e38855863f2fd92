"""Luisa Cáceres de Arismendi (LUISA-CACERES-DE-ARISMENDI): what the reports say, and the
size of its small layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import URBAN_USES, SmallDetail

SPEC = CommuneSpec(
    "LUISA-CACERES-DE-ARISMENDI",
    "Luisa Cáceres de Arismendi",
    "urban",
    "VE-B",
    (-64.69, 10.13),
    48.0,
    "registered",
    404,
)
DETAIL = SmallDetail(
    40,
    6,
    URBAN_USES,
    (
        ("Recolección de desechos", "recycling", 14, "mixed"),
        ("Clasificación de plástico y cartón", "recycling", 6, None),
    ),
    (
        (0, "recycling_center", "Centro de acopio de reciclaje"),
        (0, "community_center", "Casa comunal"),
    ),
    True,
)
