"""Che Guevara (CHE-GUEVARA): what the reports say, and the size of its small
layout (drawn by small.py)."""

from __future__ import annotations

from ..placement import CommuneSpec
from .small import SmallDetail

SPEC = CommuneSpec(
    "CHE-GUEVARA", "Che Guevara", "rural", "VE-L", (-71.2, 8.55), 340.0, "active", 505
)
DETAIL = SmallDetail(
    25,
    8,
    (
        ("crops", "café"),
        ("crops", "caña para panela"),
        ("forest", "cacao bajo sombra"),
        ("pasture", None),
    ),
    (
        ("Café de altura", "coffee", 9, "crops"),
        ("Trapiche comunal", "panela", 7, None),
        ("Cacao andino", "cocoa", 4, "forest"),
    ),
    (
        (0, "community_center", "Casa comunal (sede del encuentro de 2019)"),
        (0, "school", "Escuela rural"),
    ),
    False,
)
