"""Land recovery in a commune: where the recovered land is (by tenure, land use, year
recovered, per commune and per state), how tenure moved year by year, which abandoned or idle
parcels to recover next, where the parcel map contradicts itself, and how many parcels have
rights of each status (migration 0021; counts only, no holder).

Areas are hectares on the WGS 84 spheroid (PostGIS geography). The breakdown with the
timeline, and the conflicts, are SQL statements (sql/*.sql); the parcels that overlap are
found first in bulk (overlaps.py) and measured by shared.sql. The candidates are read in
one; Python adds their mean slope from the commune's DEM (toolkit/slope.py) and their score,
and measures their roads on the spheroid only for those that can rank (candidates.py).
Features: candidates and conflicts, told apart by ``kind``. Formulas and defaults:
docs/analyses.md#land-recovery.

params.py holds the parameters; summary.py shapes the breakdown and the timeline;
candidates.py reads and scores the candidates; this module adds the conflicts (shared.sql for
the overlaps, conflicts.sql for the rest, in the order ORDER BY kind, area_m2 DESC,
parcel_ids would give) and the answer.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import Analysis, Result, sql_text
from geo_comuna.analysis.land_recovery.candidates import best, read_candidates, shapes
from geo_comuna.analysis.land_recovery.overlaps import overlapping
from geo_comuna.analysis.land_recovery.params import Params
from geo_comuna.analysis.land_recovery.summary import (
    ha,
    summarise_breakdown,
    summarise_rights,
    summarise_timeline,
)
from geo_comuna.errors import Said

__all__ = [
    "ANALYSIS",
    "Params",
    "run",
    "summarise_breakdown",
    "summarise_timeline",
]


#: slivers are looked for per cluster of nearby parcels (conflicts.sql): the parcels are
#: clustered by distance, each cluster unioned, the union buffered twice. Each step is one
#: GEOS or liblwgeom call that neither the statement timeout nor a cancel stops, so a request
#: (work with a deadline) bounds them. It looks for slivers only while the commune's parcels
#: have at most MAX_SLIVER_VERTICES vertices in all and MAX_PARCEL_VERTICES each (the
#: distance of two parcels of 50,000 vertices is measured vertex against vertex: clustering
#: 30 such parcels had not finished after 2 minutes; 100 of them took 65 s in ST_Union alone,
#: and ran on after the request had given up).
MAX_SLIVER_VERTICES = 1_000_000
MAX_PARCEL_VERTICES = 5_000
#: ... unions a cluster of at most this many vertices (20 overlapping parcels of 50,000 wavy
#: vertices: 4.7 s)
MAX_UNIONED_VERTICES = 1_000_000
#: ... and buffers a union of at most this many (GPS-walked outlines 0.5 m apart, a vertex
#: every 10 cm: 3.4 s at 50,000, 19 s at 200,000; 1,000 such parcels took 10 minutes). A
#: command (no deadline) looks everywhere, whatever the size
MAX_BUFFERED_VERTICES = 50_000
#: why, in the warnings
CANNOT_STOP = Said(
    "(its steps cannot be stopped once started); geo-comuna analyze land-recovery looks for "
    "them whatever the size",
    "(sus pasos no se pueden detener una vez empezados); geo-comuna analyze land-recovery "
    "las busca sea cual sea el tamaño",
)
#: how the warnings of a search not made begin (the sliver count is then None)
SLIVERS_SKIPPED = Said("slivers were not looked for", "no se buscaron franjas angostas")

#: every feature's properties, in this order (CSV columns)
COLUMNS = (
    "kind",
    "rank",
    "score",
    "parcel_ids",
    "codes",
    "tenure",
    "land_use",
    "area_m2",
    "area_ha",
    "mean_slope_pct",
    "road_distance_m",
    "area_term",
    "slope_term",
    "road_term",
    "note",
)


def csv_rows(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feature properties with the lists of parcels joined by spaces (one CSV cell each)."""
    return [
        {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in f["properties"].items()}
        for f in features
    ]


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """The summary (breakdown, timeline, rights) and the overlaps run on the request's second
    connection when it has one, beside the candidates and the other conflicts on its own: two
    backends, two CPUs. For a commune of 200,000 parcels each side takes ~4.5 s."""
    async with work.spare_connection() as other:
        if other is None:
            summary, overlaps = await _summary_and_overlaps(conn, commune_id, params)
            features, candidates, conflicts, looked, warnings = await _found(
                conn, commune_id, params
            )
        else:
            async with work.beside(_summary_and_overlaps(other, commune_id, params)) as beside:
                features, candidates, conflicts, looked, warnings = await _found(
                    conn, commune_id, params
                )
                summary, overlaps = await beside
    counts: dict[str, Any] = {"overlap": 0, "outside_commune": 0, "sliver": 0}
    # as ORDER BY kind, area_m2 DESC, parcel_ids (NULLS LAST) would order them
    for kind, ids, codes, area_m2, geometry in sorted(
        overlaps + conflicts, key=lambda r: (r[0], -r[3], r[1] is None, r[1] or [])
    ):
        counts[kind] += 1
        props = {
            "kind": kind,
            "parcel_ids": ids or [],
            "codes": codes or [],
            "area_m2": round(area_m2, 2),
            "area_ha": ha(area_m2),
        }
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {k: props.get(k) for k in COLUMNS},
            }
        )
    if not looked:  # some clusters were not looked in: not a count of the commune's slivers
        counts["sliver"] = None
    if summary["parcels"] == 0:
        warnings.append(Said("the commune has no parcels", "la comuna no tiene parcelas"))
    summary["candidates"] = candidates
    summary["conflicts"] = counts
    return Result(summary, features, rows=csv_rows(features), warnings=warnings)


async def _summary_and_overlaps(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[dict[str, Any], list[tuple]]:
    """The breakdown and the timeline (one statement), the rights; then the overlaps as
    shared.sql's rows."""
    cur = await conn.execute(sql_text(__package__, "breakdown.sql"), {"commune": commune_id})
    rows = await cur.fetchall()  # the timeline in the last column of each, the same in all
    summary = summarise_breakdown([row[:-1] for row in rows])
    summary["timeline"] = summarise_timeline(rows[0][-1] if rows else [])
    cur = await conn.execute(sql_text(__package__, "rights.sql"), {"commune": commune_id})
    summary.update(summarise_rights(await cur.fetchall(), summary["parcels"]))
    first, second = await overlapping(conn, commune_id)
    cur = await conn.execute(
        sql_text(__package__, "shared.sql"),
        {
            "commune": commune_id,
            "first": first,
            "second": second,
            "min_m2": params.min_conflict_area_m2,
        },
    )
    return summary, await cur.fetchall()


async def _found(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[list[dict[str, Any]], int, list[tuple], bool, list[str]]:
    """(the ranked candidates as features, how many candidates there were, the other
    conflicts as conflicts.sql's rows, whether slivers were looked for, warnings)."""
    candidates, roads, warnings = await read_candidates(conn, commune_id, params)
    ranked, _ = await best(conn, candidates, roads, params)
    outlines = await shapes(conn, ranked)
    features = [
        {
            "type": "Feature",
            "geometry": outlines[c["parcel_ids"][0]],
            "properties": {k: c.get(k) for k in COLUMNS},
        }
        for c in ranked
        if c["parcel_ids"][0] in outlines  # not deleted since
    ]
    bounded = work.remaining() is not None  # a request: each GEOS call bounded
    slivers = not bounded or await _few_vertices(conn, commune_id, warnings)
    cur = await conn.execute(
        sql_text(__package__, "conflicts.sql"),
        {
            "commune": commune_id,
            "width": params.sliver_width_m,
            "min_m2": params.min_conflict_area_m2,
            "slivers": slivers,
            "most_unioned": MAX_UNIONED_VERTICES if bounded else None,
            "most_buffered": MAX_BUFFERED_VERTICES if bounded else None,
        },
    )
    conflicts, unchecked = [], []
    for row in await cur.fetchall():
        (unchecked if row[0] == "unchecked" else conflicts).append(row)
    if unchecked:
        parcels = sum(len(r[1]) for r in unchecked)
        warnings.append(
            Said(
                f"{SLIVERS_SKIPPED} among {parcels:,} parcels: their outlines have too many "
                f"vertices for a request {CANNOT_STOP}",
                f"{SLIVERS_SKIPPED.es} entre {_es(parcels)} parcelas: sus contornos tienen "
                f"demasiados vértices para una petición {CANNOT_STOP.es}",
            )
        )
    return features, len(candidates), conflicts, slivers and not unchecked, warnings


async def _few_vertices(conn: AsyncConnection, commune_id: int, warnings: list[str]) -> bool:
    """Are the commune's parcels few enough in vertices for a request to look for slivers
    (MAX_SLIVER_VERTICES in all, MAX_PARCEL_VERTICES each)? When not, a warning says why."""
    cur = await conn.execute(
        "SELECT coalesce(sum(ST_NPoints(geom)), 0), coalesce(max(ST_NPoints(geom)), 0) "
        "FROM parcels WHERE commune_id = %s",
        (commune_id,),
    )
    total, most = await cur.fetchone()
    if total <= MAX_SLIVER_VERTICES and most <= MAX_PARCEL_VERTICES:
        return True
    warnings.append(
        Said(
            f"{SLIVERS_SKIPPED}: the commune's parcels have {total:,} vertices, at most "
            f"{most:,} in one, past the {MAX_SLIVER_VERTICES:,} in all and "
            f"{MAX_PARCEL_VERTICES:,} in one a request may take {CANNOT_STOP}",
            f"{SLIVERS_SKIPPED.es}: las parcelas de la comuna tienen {_es(total)} vértices, "
            f"hasta {_es(most)} en una, más de los {_es(MAX_SLIVER_VERTICES)} en total y "
            f"{_es(MAX_PARCEL_VERTICES)} en una que puede tomar una petición {CANNOT_STOP.es}",
        )
    )
    return False


def _es(count: int) -> str:
    """A count as Spanish writes it (12.345)."""
    return f"{count:,}".replace(",", ".")


#: this analysis' entry in analysis/registry.py
ANALYSIS = Analysis(
    name="land-recovery",
    title_es="Recuperación de tierras",
    title_en="Land recovery",
    params=Params,
    run=run,
    reads=("parcels", "communes", "states", "paths", "dems", "rights"),
    grows_with="parcels",
)
