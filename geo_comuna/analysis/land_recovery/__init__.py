"""Land recovery in a commune: where the recovered land is (by tenure, land use, year
recovered, per commune and per state), how tenure moved year by year, which abandoned or idle
parcels to recover next, where the parcel map contradicts itself, and how many parcels have
rights of each status (migration 0021; counts only, no holder).

Areas are hectares on the WGS 84 spheroid (PostGIS geography). The breakdown, timeline and
conflicts are SQL statements (sql/*.sql); the parcels that overlap are found first in bulk
(overlaps.py) and measured by shared.sql. The candidates are read in one; Python adds their
mean slope from the commune's DEM (toolkit/slope.py) and their score, and measures their
roads on the spheroid only for those that can rank (candidates.py).
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

__all__ = [
    "ANALYSIS",
    "Params",
    "run",
    "summarise_breakdown",
    "summarise_timeline",
]


#: the most vertices a commune's parcels may have for a request (work with a deadline) to
#: look for slivers. The search unions each cluster of parcels and buffers the union twice,
#: each one GEOS call that neither the statement timeout nor a cancel stops: 100 overlapping
#: parcels of 50,000 vertices took 65 s in ST_Union alone, and went on after the request had
#: given up. A million such vertices take ~5 s; the bench's commune of 200,000 parcels has a
#: million. A command (no deadline) looks for them whatever the size.
MAX_SLIVER_VERTICES = 1_000_000
#: how the warning of a commune past MAX_SLIVER_VERTICES begins
SLIVERS_SKIPPED = "slivers were not looked for"

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
    counts = {"overlap": 0, "outside_commune": 0, "sliver": 0 if looked else None}
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
    if summary["parcels"] == 0:
        warnings.append("the commune has no parcels")
    summary["candidates"] = candidates
    summary["conflicts"] = counts
    return Result(summary, features, rows=csv_rows(features), warnings=warnings)


async def _summary_and_overlaps(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[dict[str, Any], list[tuple]]:
    """The breakdown, the timeline and the rights; then the overlaps as shared.sql's rows."""
    cur = await conn.execute(sql_text(__package__, "breakdown.sql"), {"commune": commune_id})
    summary = summarise_breakdown(await cur.fetchall())
    cur = await conn.execute(sql_text(__package__, "timeline.sql"), {"commune": commune_id})
    summary["timeline"] = summarise_timeline(await cur.fetchall())
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
    slivers = True
    if work.remaining() is not None:  # a request: the search bounded (MAX_SLIVER_VERTICES)
        cur = await conn.execute(
            "SELECT coalesce(sum(ST_NPoints(geom)), 0) FROM parcels WHERE commune_id = %s",
            (commune_id,),
        )
        vertices = (await cur.fetchone())[0]
        slivers = vertices <= MAX_SLIVER_VERTICES
        if not slivers:
            warnings.append(
                f"{SLIVERS_SKIPPED}: the commune's parcels have {vertices:,} vertices, more "
                f"than the {MAX_SLIVER_VERTICES:,} a request's search may take (it unions them "
                "in steps that cannot be stopped); geo-comuna analyze land-recovery looks for "
                "them whatever the size"
            )
    cur = await conn.execute(
        sql_text(__package__, "conflicts.sql"),
        {
            "commune": commune_id,
            "width": params.sliver_width_m,
            "min_m2": params.min_conflict_area_m2,
            "slivers": slivers,
        },
    )
    return features, len(candidates), await cur.fetchall(), slivers, warnings


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
