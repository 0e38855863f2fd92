"""Every analysis, listed once. Add a line per analysis module."""

from __future__ import annotations

from geo_comuna.analysis.base import Analysis
from geo_comuna.errors import NotFound

ANALYSES: dict[str, Analysis] = {}


def register(analysis: Analysis) -> None:
    ANALYSES[analysis.name] = analysis


def get_analysis(name: str) -> Analysis:
    _load()
    try:
        return ANALYSES[name]
    except KeyError:
        raise NotFound(f"no analysis named {name!r}; known: {', '.join(ANALYSES)}") from None


def all_analyses() -> dict[str, Analysis]:
    _load()
    return ANALYSES


def _load() -> None:
    """Import the analysis modules (each calls register() at import)."""
    import importlib

    for module in MODULES:
        importlib.import_module(f"geo_comuna.analysis.{module}")


#: analysis modules, one per line
MODULES: list[str] = [
    "water_hookups",
    "electricity",
    "stair_access",
    "terrain",
    "land_recovery",
]
