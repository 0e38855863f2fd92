"""The breakdown and the timeline: rows of breakdown.sql (the timeline in their last column)
shaped into the summary's figures (areas in ha)."""

from __future__ import annotations

from typing import Any

from geo_comuna.layers.territory import TENURE


def ha(m2: float | None) -> float:
    """m² as hectares to 4 places; an unknown area (None) counts 0."""
    return round((m2 or 0.0) / 10_000, 4)


def summarise_breakdown(rows: list[tuple]) -> dict[str, Any]:
    """Rows of breakdown.sql -> the commune's totals and lists by tenure, land
    use and year recovered, and the same per state."""

    def blank() -> dict[str, Any]:
        return {"by_tenure": [], "by_land_use": [], "by_year_recovered": []}

    commune: dict[str, Any] = {
        "parcels": 0,
        "area_ha": 0.0,
        "recovered_parcels": 0,
        "recovered_area_ha": 0.0,
        **blank(),
    }
    states: dict[str | None, dict[str, Any]] = {}
    for dimension, value, per_state, code, name, parcels, area, rec_parcels, rec_area in rows:
        target = commune
        if per_state:
            target = states.setdefault(code, {"state": code, "name": name, **blank()})
        figures = {
            "parcels": parcels,
            "area_ha": ha(area),
            "recovered_parcels": rec_parcels,
            "recovered_area_ha": ha(rec_area),
        }
        if dimension == "all":
            target.update(figures)
            continue
        key = {"year_recovered": "year"}.get(dimension, dimension)
        if dimension == "year_recovered" and value is not None:
            value = int(value)
        target[f"by_{dimension}"].append({key: value, "parcels": parcels, "area_ha": ha(area)})
    return {
        **commune,
        "by_state": list(states.values()),
        "crosses_state_line": sum(1 for code in states if code is not None) > 1,
    }


def summarise_timeline(rows: list[tuple]) -> list[dict[str, Any]]:
    """Rows (year, status, transitions, area m²) -> one entry per year: transitions into each
    tenure status (0 when none) and the area (ha) that entered it."""
    years: dict[int, dict[str, Any]] = {}
    for year, status, transitions, area in rows:
        entry = years.setdefault(
            year,
            {
                "year": year,
                **{s: 0 for s in TENURE.values},
                "area_ha": {s: 0.0 for s in TENURE.values},
            },
        )
        entry[status] = transitions
        entry["area_ha"][status] = ha(area)
    return list(years.values())


def summarise_rights(rows: list[tuple], parcels: int) -> dict[str, Any]:
    """Rows (status, parcels having a right of it) of rights.sql, and the commune's parcel
    count -> parcels per right status (a parcel with a granted right and a claim counts in
    both) and the parcels with no right at all: the land nobody holds on record."""
    by_status = [{"status": s, "parcels": n} for s, n in rows if s is not None]
    having = next((n for s, n in rows if s is None), 0)
    return {"by_right_status": by_status, "parcels_without_rights": parcels - having}
