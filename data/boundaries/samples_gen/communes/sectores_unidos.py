"""Sectores Unidos (SECTORES-UNIDOS): what the reports say, and the size of its small
layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import SmallDetail

SPEC = CommuneSpec(
    "SECTORES-UNIDOS", "Sectores Unidos", "mixed", "VE-K", (-69.35, 10.0), 160.0, "active", 808
)
DETAIL = SmallDetail(
    30,
    7,
    (
        ("housing", None),
        ("crops", "hortalizas"),
        ("mixed", "vivienda y conuco"),
        ("idle", "terreno sin uso"),
    ),
    (
        ("Hortalizas Sectores Unidos", "vegetables", 8, "crops"),
        ("Panadería comunal", "bakery", 5, None),
    ),
    ((0, "communal_shop", "Tienda comunal"), (0, "school", "Escuela")),
    True,
)
