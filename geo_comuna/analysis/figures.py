"""The words of the analyses' summaries: one catalogue, in Spanish and English, of every figure
a person reads in a report or in `geo-comuna analyze` (nested keys joined by dots, as
``minutes.median``), with its unit.

A summary's keys are the API's (JSON, English, stable); people read these labels instead. A
key that is not a figure for people (what a CSV row is, the DEM's id) is in NOT_SHOWN; a new
key in neither fails tests/test_figures.py, so no raw key ever reaches a page. A figure that
does not apply (None: no budget was given, no DEM to tell) is left out, never shown as None;
one whose None means something else says what (``Figure.unknown``: slivers not looked for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


class Figure(NamedTuple):
    es: str
    en: str
    unit: str = ""  # the same in both languages (ha, m, min, %, km/h, s)
    #: what None says (Spanish, English) where it does not mean "does not apply"
    unknown: tuple[str, str] | None = None


#: (analysis, key) -> its label; the order is the order people read them in
FIGURES: dict[str, dict[str, Figure]] = {
    "land-recovery": {
        "parcels": Figure("Parcelas", "Parcels"),
        "area_ha": Figure("Superficie de las parcelas", "Area of the parcels", "ha"),
        "recovered_parcels": Figure("Parcelas recuperadas", "Recovered parcels"),
        "recovered_area_ha": Figure("Superficie recuperada", "Recovered area", "ha"),
        "candidates": Figure("Candidatas a recuperar", "Candidates for recovery"),
        "parcels_without_rights": Figure(
            "Parcelas sin derechos registrados", "Parcels with no recorded right"
        ),
        "crosses_state_line": Figure("Atraviesa un límite estatal", "Crosses a state line"),
        "conflicts.overlap": Figure("Parcelas superpuestas", "Overlapping parcels"),
        "conflicts.outside_commune": Figure(
            "Parcelas fuera de la comuna", "Parcels outside the commune"
        ),
        "conflicts.sliver": Figure(
            "Franjas angostas entre parcelas",
            "Slivers between parcels",
            unknown=(
                "no buscadas: demasiados vértices para una petición (geo-comuna analyze las busca)",
                "not looked for: too many vertices for a request (geo-comuna analyze looks "
                "for them)",
            ),
        ),
    },
    "water-hookups": {
        "dwellings_without_piped_water": Figure(
            "Viviendas sin agua por tubería", "Dwellings without piped water"
        ),
        "residents": Figure("Habitantes de esas viviendas", "Their residents"),
        "on_network": Figure("Conectables por las veredas", "Reachable along the paths"),
        "straight_line": Figure("Solo en línea recta", "Only in a straight line"),
        "taps": Figure("Tomas de donde parten los proyectos", "Taps the projects start from"),
        "projects": Figure("Proyectos de acometida", "Hookup projects"),
        "pipe_m_all_projects": Figure("Tubería de todos los proyectos", "Pipe, all projects", "m"),
        "median_length_m": Figure("Mediana de tubería por vivienda", "Median pipe per home", "m"),
        "needs_pumping.dwellings": Figure("Viviendas que necesitan bombeo", "Homes needing pumps"),
        "needs_pumping.residents": Figure(
            "Habitantes que necesitan bombeo", "People needing pumps"
        ),
        "budget.budget_m": Figure("Presupuesto en tubería", "Budget in pipe", "m"),
        "budget.cost_per_m": Figure("Costo por metro", "Cost per metre"),
        "budget.greedy.projects": Figure("Proyectos elegidos", "Projects chosen"),
        "budget.greedy.pipe_m": Figure("Tubería elegida", "Pipe chosen", "m"),
        "budget.greedy.residents": Figure("Habitantes servidos", "Residents served"),
        "budget.greedy.cost": Figure("Costo de lo elegido", "Cost of the choice"),
        "budget.upper_bound_residents": Figure(
            "Cota superior de habitantes", "Upper bound of residents"
        ),
        "budget.optimum.projects": Figure("Proyectos del óptimo", "Projects of the optimum"),
        "budget.optimum.pipe_m": Figure("Tubería del óptimo", "Pipe of the optimum", "m"),
        "budget.optimum.residents": Figure("Habitantes del óptimo", "Residents of the optimum"),
        "budget.gap_residents": Figure("Diferencia con el óptimo", "Gap to the optimum"),
        "budget.gap_pct": Figure("Diferencia con el óptimo", "Gap to the optimum", "%"),
    },
    "electricity-gaps": {
        "dwellings": Figure("Viviendas sin electricidad segura", "Homes without safe power"),
        "residents": Figure("Sus habitantes", "Their residents"),
        "precarious": Figure("Con conexión precaria", "With a precarious connection"),
        "none": Figure("Sin electricidad", "Without electricity"),
        "clusters": Figure("Sitios de transformador propuestos", "Transformer sites proposed"),
        "clustered_dwellings": Figure("Viviendas servidas por ellos", "Homes they serve"),
        "clustered_residents": Figure("Habitantes servidos por ellos", "People they serve"),
        "isolated_dwellings": Figure("Viviendas aisladas", "Isolated homes"),
        "line_distance_m.median": Figure(
            "Mediana de distancia a la red en buen estado",
            "Median distance to a line in good condition",
            "m",
        ),
        "line_distance_m.max": Figure(
            "Máxima distancia a la red en buen estado",
            "Longest distance to a line in good condition",
            "m",
        ),
    },
    "stair-access": {
        "dwellings": Figure("Viviendas", "Dwellings"),
        "residents": Figure("Habitantes", "Residents"),
        "unreachable": Figure(
            "Viviendas sin camino trazado a una vía", "Homes with no mapped path to a road"
        ),
        "reachable": Figure(
            "Viviendas con camino (las cifras de abajo son de ellas)",
            "Homes with a way out (the figures below are theirs)",
        ),
        "minutes.median": Figure(
            "Mediana de minutos a pie hasta la vía", "Median walk to a road", "min"
        ),
        "minutes.p90": Figure("Minutos a pie, percentil 90", "Walk, 90th percentile", "min"),
        "minutes.max": Figure("Máximo de minutos a pie", "Longest walk", "min"),
        "minutes_back.median": Figure("Mediana de minutos de regreso", "Median walk back", "min"),
        "minutes_back.p90": Figure(
            "Minutos de regreso, percentil 90", "Walk back, 90th pct.", "min"
        ),
        "minutes_back.max": Figure("Máximo de minutos de regreso", "Longest walk back", "min"),
        "steps.median": Figure("Mediana de escalones", "Median steps"),
        "steps.p90": Figure("Escalones, percentil 90", "Steps, 90th percentile"),
        "steps.max": Figure("Máximo de escalones", "Most steps"),
        "steps_climbed_back.median": Figure(
            "Mediana de escalones subidos de regreso", "Median steps climbed back"
        ),
        "steps_climbed_back.p90": Figure(
            "Escalones subidos de regreso, percentil 90", "Steps climbed back, 90th pct."
        ),
        "steps_climbed_back.max": Figure("Máximo de escalones subidos de regreso", "Most climbed"),
        "over_minutes.dwellings": Figure(
            "Viviendas sobre el límite de minutos", "Homes over the minutes limit"
        ),
        "over_minutes.residents": Figure(
            "Habitantes sobre el límite de minutos", "People over the minutes limit"
        ),
        "over_steps.dwellings": Figure(
            "Viviendas sobre el límite de escalones", "Homes over the steps limit"
        ),
        "over_steps.residents": Figure(
            "Habitantes sobre el límite de escalones", "People over the steps limit"
        ),
        "flagged.dwellings": Figure(
            "Viviendas señaladas (sobre un límite o sin camino trazado)",
            "Homes flagged (over a limit or with no mapped path)",
        ),
        "flagged.residents": Figure("Habitantes señalados", "People flagged"),
        "destinations.road_nodes": Figure("Accesos a la vía", "Road access points"),
        "destinations.transit_stops": Figure("Paradas de transporte", "Transit stops"),
        "model.flat_kmh": Figure("Modelo: marcha en plano", "Model: walking on the flat", "km/h"),
        "model.step_seconds_up": Figure("Modelo: subir un escalón", "Model: one step up", "s"),
        "model.step_seconds_down": Figure("Modelo: bajar un escalón", "Model: one step down", "s"),
    },
    "terrain": {
        "dem.name": Figure("Modelo de elevación", "Elevation model"),
        "dem.crs": Figure("Su sistema de referencia", "Its reference system"),
        "dem.resolution_m": Figure("Su resolución", "Its resolution", "m"),
        "parcels": Figure("Parcelas", "Parcels"),
        "parcels_with_statistics": Figure("Parcelas con estadísticas", "Parcels with statistics"),
        "commune.mean_elevation_m": Figure("Elevación media", "Mean elevation", "m"),
        "commune.min_elevation_m": Figure("Elevación mínima", "Lowest elevation", "m"),
        "commune.max_elevation_m": Figure("Elevación máxima", "Highest elevation", "m"),
        "commune.mean_slope_pct": Figure("Pendiente media", "Mean slope", "%"),
        "commune.mean_slope_deg": Figure("Pendiente media en grados", "Mean slope in degrees", "°"),
        "commune.steep_share_pct": Figure("Superficie empinada", "Steep share", "%"),
        "commune.uncovered_pct": Figure(
            "Sin cubrir por el modelo", "Not covered by the model", "%"
        ),
    },
}
#: keys that are not figures for people
NOT_SHOWN = frozenset({"csv_rows", "dem.id", "budget.optimum_note"})
YES_NO = {"es": ("sí", "no"), "en": ("yes", "no")}


def scalars(summary: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every number, word and yes/no of a summary, nested keys joined by dots (lists, such as
    the per-sector tables, are tables of their own, not figures)."""
    for key, value in summary.items():
        if isinstance(value, dict):
            yield from scalars(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def unlabelled(analysis: str, summary: dict[str, Any]) -> list[str]:
    """Keys of ``summary`` with a value and no label, and not declared NOT_SHOWN."""
    known = FIGURES.get(analysis, {})
    return [
        k for k, v in scalars(summary) if v is not None and k not in known and k not in NOT_SHOWN
    ]


#: a residents figure withheld from the reader (analysis/disclosure.py), as the report's
#: tables write it, with their footnote
WITHHELD = "—"


def _withheld(key: str, values: dict[str, Any]) -> bool:
    """Is ``key`` a residents figure withheld from this reader: None beside a count of homes
    that is not 0? (Found from outside: the report left such rows out, as if they did not
    apply.)"""
    if "residents" not in key:
        return False
    return any(values.get(key.replace("residents", count)) for count in ("dwellings", "homes"))


#: the decimals a unit's figures are always written with, as the report's tables write them
#: (found from outside: "1.921 ha" beside "2.051,78 ha", both of El Maizal's parcels; "296 m"
#: beside "118,3 m")
PLACES = {"ha": 2, "m": 1}


def figures(
    analysis: str, summary: dict[str, Any], lang: str, num: Callable[..., str]
) -> list[tuple[str, str]]:
    """(label, value with its unit) of every figure of ``summary`` that applies, in the
    catalogue's order; ``num`` writes numbers in the reader's language."""
    values = dict(scalars(summary))
    out = []
    for key, figure in FIGURES.get(analysis, {}).items():
        value = values.get(key)
        if value is None and _withheld(key, values):
            text = WITHHELD
        elif value is None and (key not in values or figure.unknown is None):
            continue
        elif value is None:
            text = figure.unknown[0 if lang == "es" else 1]
        elif isinstance(value, bool):
            text = YES_NO[lang][0 if value else 1]
        elif isinstance(value, int | float) and figure.unit in PLACES:
            text = f"{num(value, PLACES[figure.unit])} {figure.unit}"
        elif isinstance(value, int | float):
            text = f"{num(value)} {figure.unit}".rstrip()
        else:
            text = str(value)
        out.append((figure.es if lang == "es" else figure.en, text))
    return out
