"""Exchanges between communes (monthly, illustrative volumes)."""

from __future__ import annotations

EXCHANGES = (
    ("CHE-GUEVARA", "5-DE-MARZO", "coffee", 400, "kg"),
    ("CHE-GUEVARA", "5-DE-MARZO", "panela", 600, "kg"),
    ("CHE-GUEVARA", "5-DE-MARZO", "cocoa", 150, "kg"),
    ("CHE-GUEVARA", "ALTOS-DE-LIDICE", "coffee", 120, "kg"),
    ("MONTE-SINAI", "5-DE-MARZO", "coffee", 300, "kg"),
    ("MONTE-SINAI", "5-DE-MARZO", "cocoa", 120, "kg"),
    ("EL-MAIZAL", "5-DE-MARZO", "maize", 2.5, "t"),
    ("EL-MAIZAL", "5-DE-MARZO", "cheese", 300, "kg"),
    ("EL-MAIZAL", "ALTOS-DE-LIDICE", "maize", 1.2, "t"),
    ("EL-MAIZAL", "INDIO-CARICUAO", "cheese", 150, "kg"),
    ("EL-MAIZAL", "CHE-GUEVARA", "maize", 1, "t"),
    ("EL-MAIZAL", "SECTORES-UNIDOS", "gas_distribution", 400, "cylinders"),
    ("PANCHA-VASQUEZ", "SECTORES-UNIDOS", "milk", 3000, "l"),
    ("PANCHA-VASQUEZ", "5-DE-MARZO", "cheese", 200, "kg"),
    ("INDIO-CARICUAO", "5-DE-MARZO", "textiles", 300, "units"),
    ("INDIO-CARICUAO", "EL-MAIZAL", "textiles", 200, "units"),
    ("LUISA-CACERES-DE-ARISMENDI", "5-DE-MARZO", "recycling", 3, "t"),
    ("5-DE-MARZO", "ALTOS-DE-LIDICE", "bakery", 2000, "units"),
    ("SECTORES-UNIDOS", "5-DE-MARZO", "vegetables", 800, "kg"),
)
