"""Every analysis, listed once: its name (URL and CLI) -> its Analysis. A new analysis is a
package exporting ``ANALYSIS`` and one line here; the API route, the CLI command, the maps
and the OpenAPI document all derive from this dict. Order is the order of listings."""

from __future__ import annotations

from geo_comuna.analysis import electricity, land_recovery, stair_access, terrain, water_hookups
from geo_comuna.analysis.base import Analysis
from geo_comuna.errors import NotFound, Said

ANALYSES: dict[str, Analysis] = {
    analysis.name: analysis
    for analysis in (
        water_hookups.ANALYSIS,
        electricity.ANALYSIS,
        stair_access.ANALYSIS,
        terrain.ANALYSIS,
        land_recovery.ANALYSIS,
    )
}


def get_analysis(name: str) -> Analysis:
    """The analysis called ``name``, or NotFound listing the known ones."""
    try:
        return ANALYSES[name]
    except KeyError:
        raise NotFound(no_such_analysis(name)) from None


def no_such_analysis(name: str) -> Said:
    """Why there is no analysis ``name``, naming the known ones."""
    known = ", ".join(ANALYSES)
    return Said(
        f"no analysis named {name!r}; known: {known}",
        f"no hay ningún análisis llamado {name!r}; se conocen: {known}",
    )


def all_analyses() -> dict[str, Analysis]:
    return ANALYSES
