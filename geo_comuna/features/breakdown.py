"""Communes across state lines: the breakdown computed by commune_state_breakdown() in SQL
(db/functions/commune_state_breakdown.sql), shaped for the API.

Residents are a members-only property of dwellings: a reader outside a commune gets the
residents of a state's part of it only when that part holds at least MIN_GROUP homes
(features/disclosure.py's rule), and a state's total only when none of its parts is withheld.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.features.disclosure import withhold
from geo_comuna.layers import get_layer

#: what commune_state_breakdown() reads (state_parts follows states and communes)
READS = ("communes", "states", "parcels", "dwellings")


async def communes(
    conn: AsyncConnection, ids: list[int] | None, access: Access
) -> list[dict[str, Any]]:
    """One entry per commune: its totals and a list of per-state rows (largest area first),
    as ``access`` may read them. Computed from the app's cache while none of READS has been
    written since (work.cache)."""
    cache = work.cache()
    if cache is None:
        rows = await _communes(conn, ids)
    else:
        key = ("breakdown", None if ids is None else tuple(ids))
        rows = await cache.get_or_compute(conn, key, READS, lambda: _communes(conn, ids))
    if not get_layer("dwellings").members_only("residents"):
        return rows
    out = []
    for entry in rows:
        if not access.member_of(entry["id"]):  # a copy: the cached rows are everyone's
            entry = {**entry, "states": [dict(s) for s in entry["states"]]}
            withhold(entry["states"], "dwellings", ["residents"])
        out.append(entry)
    return out


async def _communes(conn: AsyncConnection, ids: list[int] | None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT c.id, c.code, c.name, b.code AS state_code, b.name AS state_name,
                      b.area_ha AS state_area_ha,
                      b.share_pct, b.parcels, b.dwellings, b.residents
               FROM communes c
               JOIN commune_state_breakdown(%s) b ON b.commune_id = c.id
               ORDER BY c.id, b.area_ha DESC""",
            (ids,),
        )
        rows = await cur.fetchall()
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(
            r["id"],
            {"id": r["id"], "code": r["code"], "name": r["name"], "area_ha": 0.0, "states": []},
        )
        entry["states"].append(
            {
                "code": r["state_code"],
                "name": r["state_name"] or "outside state polygons",
                "area_ha": r["state_area_ha"],
                "share_pct": r["share_pct"],
                "parcels": r["parcels"],
                "dwellings": r["dwellings"],
                "residents": r["residents"],
            }
        )
    for entry in out.values():
        # the pieces add up to the commune (the function's area is geodesic, computed once)
        entry["area_ha"] = round(sum(s["area_ha"] for s in entry["states"]), 4)
        entry["crosses_state_line"] = sum(1 for s in entry["states"] if s["code"]) > 1
    return list(out.values())


def by_state(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per state: how many communes touch it and the commune area inside it (ha)."""
    states: dict[str | None, dict[str, Any]] = {}
    for commune in rows:
        for s in commune["states"]:
            entry = states.setdefault(
                s["code"],
                {
                    "code": s["code"],
                    "name": s["name"],
                    "communes": 0,
                    "area_ha": 0.0,
                    "dwellings": 0,
                    "residents": 0,
                },
            )
            entry["communes"] += 1
            entry["area_ha"] = round(entry["area_ha"] + s["area_ha"], 4)
            entry["dwellings"] += s["dwellings"]
            withheld = entry["residents"] is None or s["residents"] is None
            entry["residents"] = None if withheld else entry["residents"] + s["residents"]
    return sorted(states.values(), key=lambda s: (s["code"] is None, s["code"] or ""))
