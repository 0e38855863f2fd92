"""El Maizal: a large rural commune across the Lara-Portuguesa line, its recovered
parcels and their tenure history, production units and greenhouses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from ..collected import Samples
from ..constants import FOUNDING, LAST_DAY
from ..geometry import random_date, random_point_in, rotated_rect
from ..layout import (
    Layout,
    Plan,
    Settlement,
    add_dwellings,
    add_facilities,
    add_parcels,
    add_roads,
    add_units,
    add_utilities,
    lay_out,
)
from ..placement import CommuneSpec, Placed

EL_MAIZAL = CommuneSpec(
    "EL-MAIZAL",
    "El Maizal",
    "rural",
    "VE-K",
    (-69.16, 9.78),
    2300.0,
    "active",
    101,
    founded="2009-03-05",
    families=3500,
    population=14320,
    other_state="VE-P",
    home_share=0.65,
    roughness=0.16,
)


MAIZAL_PLAN = Plan(
    road=((-1.4, -0.12), (-0.6, -0.02), (-0.05, 0.1), (0.5, 0.02), (1.4, 0.18)),
    settlements=(
        Settlement("Caserío Central", 0.12, -0.16, 0.1, 140),
        Settlement("Caserío del lado de Lara", 0.58, 0.34, 0.085, 90),
        Settlement("Caserío del lado de Portuguesa", -0.62, 0.3, 0.08, 70),
    ),
    parcel_spacing_m=500.0,
    max_parcels=96,
    min_parcel_m2=30_000.0,
    transit=True,
)
# (name, product, workers, land use of its parcel; None = in the central settlement)
MAIZAL_UNITS = (
    ("Maíz blanco", "maize", 16, "crops"),
    ("Maíz amarillo", "maize", 14, "crops"),
    ("Semilla de maíz", "maize", 5, "crops"),
    ("Molino de maíz", "maize", 5, None),
    ("Ganado de carne", "beef", 10, "pasture"),
    ("Ganado de levante", "beef", 5, "pasture"),
    ("Cría de cerdos", "pork", 8, "mixed"),
    ("Gallinas ponedoras", "eggs", 8, "mixed"),
    ("Vaquería", "milk", 10, "pasture"),
    ("Quesera comunal", "cheese", 7, "mixed"),
    ("Café", "coffee", 7, "forest"),
    ("Hortalizas en casas de cultivo", "vegetables", 10, "greenhouse"),
    ("Hortalizas a campo abierto", "vegetables", 6, "crops"),
    ("Empresa comunal de distribución de gas", "gas_distribution", 9, None),
)
MAIZAL_FACILITIES = (
    (0, "community_center", "Sede de la Comuna El Maizal"),
    (0, "communal_shop", "Tienda comunal El Maizal"),
    (0, "other", "Depósito de gas comunal"),
    (0, "school", "Escuela comunal Caserío Central"),
    (0, "clinic", "Consultorio popular"),
    (1, "school", "Escuela comunal lado de Lara"),
    (1, "sports", "Cancha deportiva"),
    (2, "school", "Escuela comunal lado de Portuguesa"),
)
# Latest recovery date that still leaves room for the later steps of each tenure.
RECOVERED_BY = {
    "regularized": date(2018, 12, 31),
    "regularizing": date(2021, 6, 30),
    "occupied": date(2023, 6, 30),
    "disputed": date(2019, 12, 31),
}


MAIZAL_USES = (
    ("crops", 0.45),
    ("pasture", 0.3),
    ("mixed", 0.12),
    ("forest", 0.09),
    ("housing", 0.04),
)


def shares(rng: np.random.Generator, options: Sequence[tuple[str, float]], n: int) -> list[str]:
    """``n`` values in the given proportions (largest remainders), in random order."""
    want = np.array([w for _, w in options]) * n
    counts = np.floor(want).astype(int)
    counts[np.argsort(-(want - counts), kind="stable")[: n - counts.sum()]] += 1
    values = [name for (name, _), c in zip(options, counts, strict=True) for _ in range(c)]
    return [values[i] for i in rng.permutation(n)]


def maizal_roles(
    rng: np.random.Generator, parcels: list[Polygon], centres: list[Point]
) -> list[tuple[str, str]]:
    """(tenure, land_use) per parcel: idle abandoned land at the edge, greenhouses near the
    centre, most of the rest recovered and regularized or on the way."""
    n = len(parcels)
    dist = np.array([min(p.distance(c) for c in centres) for p in parcels])
    far = np.argsort(-dist, kind="stable")
    abandoned = set(rng.choice(far[:16], 6, replace=False).tolist())
    near = [int(i) for i in np.argsort(dist, kind="stable") if int(i) not in abandoned]
    greenhouse = set(near[:3])
    rest = [int(i) for i in rng.permutation(n) if int(i) not in abandoned | greenhouse]
    roles: list[tuple[str, str]] = [("", "")] * n
    for i in abandoned:
        roles[i] = ("abandoned", "idle")
    for i in greenhouse:
        roles[i] = ("regularized", "greenhouse")
    # exact shares rather than draws: maize fields must outnumber pasture in a maize commune
    uses = shares(rng, MAIZAL_USES, len(rest))
    for k, (i, use) in enumerate(zip(rest, uses, strict=True)):
        share = k / len(rest)
        tenure = (
            "disputed"
            if k < 2
            else "regularized"
            if share < 0.58
            else "regularizing"
            if share < 0.82
            else "occupied"
        )
        roles[i] = (tenure, "pasture" if tenure == "disputed" else use)
    return roles


MAIZAL_NOTES = {
    "abandoned": "Tierra ociosa; candidata a rescate",
    "disputed": "Reclamo de un antiguo propietario pendiente",
    "greenhouse": "Casas de cultivo ocupadas y puestas a producir",
}


def maizal_parcel_props(
    rng: np.random.Generator, roles: list[tuple[str, str]]
) -> list[dict[str, object]]:
    props = []
    for tenure, use in roles:
        recovered = None
        if tenure != "abandoned":
            # about a third were taken on the founding day, the rest over the following years
            recovered = (
                FOUNDING
                if rng.random() < 0.35
                else random_date(rng, FOUNDING + timedelta(days=1), RECOVERED_BY[tenure])
            )
        note = MAIZAL_NOTES.get(tenure) or MAIZAL_NOTES.get(use)
        props.append(
            {
                "tenure": tenure,
                "land_use": use,
                "recovered_on": recovered.isoformat() if recovered else None,
                "notes": note,
            }
        )
    return props


HISTORY_STEPS = {
    "occupied": (),
    "regularizing": ("regularizing",),
    "regularized": ("regularizing", "regularized"),
    "disputed": ("regularizing", "disputed"),
}
HISTORY_NOTES = {
    "regularizing": "Solicitud de regularización de la tenencia",
    "regularized": "Tenencia regularizada (carta agraria)",
    "disputed": "Reclamo de un antiguo propietario; tenencia en disputa",
}


def tenure_history(
    rng: np.random.Generator, code: str, tenure: str, recovered: str | None
) -> list[tuple[str, str, str, str, str]]:
    """Status changes of one parcel, dates ascending, ending at its current tenure."""
    if recovered is None:
        return [
            (
                code,
                "",
                "abandoned",
                FOUNDING.isoformat(),
                "Registrada como tierra ociosa en el censo fundacional",
            )
        ]
    day = date.fromisoformat(recovered)
    rows, prev = [], ""
    if day > FOUNDING:
        rows.append(
            (
                code,
                "",
                "abandoned",
                FOUNDING.isoformat(),
                "Registrada como tierra ociosa en el censo fundacional",
            )
        )
        prev = "abandoned"
    rows.append((code, prev, "occupied", recovered, "Tierra rescatada y puesta a producir"))
    prev = "occupied"
    steps = HISTORY_STEPS[tenure]
    for k, status in enumerate(steps):
        room = (LAST_DAY - day).days // (len(steps) - k)
        day += timedelta(days=int(rng.integers(min(180, room), room + 1)))
        rows.append((code, prev, status, day.isoformat(), HISTORY_NOTES[status]))
        prev = status
    return rows


def add_greenhouses(
    out: Samples,
    placed: Placed,
    rng: np.random.Generator,
    sites: Sequence[Polygon],
    specs: Sequence[tuple[str, str, str]],
) -> list[Polygon]:
    """Rotated rectangles of 400–1,800 m² inside the given parcels, 8 m apart at least."""
    done: list[Polygon] = []
    for k, (name, condition, crop) in enumerate(specs):
        room = sites[k % len(sites)].buffer(-5)
        while True:
            w, h = rng.uniform(10, 22), rng.uniform(30, 80)
            if not 400 <= w * h <= 1800:
                continue
            c = random_point_in(rng, room, 10.0)
            rect = rotated_rect(c.x, c.y, w, h, float(rng.uniform(0, 180)))
            if room.contains(rect) and all(rect.distance(o) > 8 for o in done):
                break
        done.append(rect)
        out.add("greenhouses", placed, rect, name=name, condition=condition, crop=crop)
    return done


MAIZAL_GREENHOUSES = (
    ("Casa de cultivo 1", "working", "tomate"),
    ("Casa de cultivo 2", "working", "pimentón"),
    ("Casa de cultivo 3", "working", "ají dulce"),
    ("Casa de cultivo 4", "damaged", "pepino"),
    ("Casa de cultivo 5", "working", "lechuga"),
    ("Casa de cultivo 6", "under_construction", "cilantro"),
)


def check_sides(placed: Placed, lay: Layout, states: dict[str, BaseGeometry]) -> None:
    """The settlement names promise a state: make sure the outline keeps that promise."""
    frame = placed.frame
    for s, c in zip(MAIZAL_PLAN.settlements, lay.centres, strict=True):
        for code, state in (("VE-K", "Lara"), ("VE-P", "Portuguesa")):
            if state in s.name:
                assert states[code].contains(frame.to_lonlat(c)), f"{s.name} not in {state}"


def build_el_maizal(out: Samples, placed: Placed, states: dict[str, BaseGeometry]) -> None:
    rng = np.random.default_rng([EL_MAIZAL.seed, 1])
    lay = lay_out(placed, MAIZAL_PLAN, rng)
    check_sides(placed, lay, states)
    add_roads(out, placed, lay, MAIZAL_PLAN, ("Carretera a Sarare", "Camino de caserío"))
    supply = add_utilities(out, placed, lay, ("pvc", 160, "working"), ("working", "leaking"))
    roles = maizal_roles(rng, lay.parcels, lay.centres)
    props = maizal_parcel_props(rng, roles)
    codes = add_parcels(out, placed, lay, "EM", props)
    for code, p in zip(codes, props, strict=True):
        out.history += tenure_history(rng, code, str(p["tenure"]), p["recovered_on"])  # type: ignore[arg-type]
    add_dwellings(out, placed, lay, supply, rng, 4.6)
    add_facilities(out, placed, lay, MAIZAL_FACILITIES)
    add_units(out, placed, lay, codes, props, MAIZAL_UNITS, rng)
    gh_parcels = [lay.parcels[i] for i, p in enumerate(props) if p["land_use"] == "greenhouse"]
    add_greenhouses(out, placed, rng, gh_parcels, MAIZAL_GREENHOUSES)
