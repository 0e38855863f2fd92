"""Pancha Vásquez (PANCHA-VASQUEZ): what the reports say, and the size of its small
layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import SmallDetail

SPEC = CommuneSpec(
    "PANCHA-VASQUEZ", "Pancha Vásquez", "rural", "VE-C", (-67.5, 7.9), 380.0, "active", 909
)
DETAIL = SmallDetail(
    15,
    8,
    (
        ("pasture", "sabana de llano"),
        ("pasture", None),
        ("crops", "maíz"),
        ("forest", "mata de galería"),
    ),
    (
        ("Ganado de doble propósito", "beef", 8, "pasture"),
        ("Vaquería", "milk", 5, "pasture"),
        ("Queso llanero", "cheese", 4, None),
    ),
    ((0, "school", "Escuela rural"), (0, "water_tank", "Tanque australiano")),
    False,
)
