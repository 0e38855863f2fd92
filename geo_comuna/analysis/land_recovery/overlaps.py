"""Which of a commune's parcels overlap: the pairs shared.sql measures.

Looked up in PostgreSQL, each parcel was one probe of the GiST index (~30-40 µs), and every
pair of neighbours that share a border went on to ST_Relate: 13.8 s for 200,000 parcels
that share their borders. Here the commune's outlines are read once and GEOS (Shapely) joins
them in bulk: an STRtree query for the pairs that intersect, then the interior test of the
same DE-9IM pattern, both in C over whole arrays (3 s for the same parcels). shared.sql
tests each pair again with PostGIS' own ST_Relate, so no pair is reported that PostGIS would
not report; the two differ only in GEOS versions' rounding, on overlaps of no area.
"""

from __future__ import annotations

import numpy as np
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import sql_text

#: the interiors of the two polygons intersect (in 2-D: polygons' interiors are open)
INTERIORS_MEET = "2********"


async def overlapping(conn: AsyncConnection, commune_id: int) -> tuple[list[int], list[int]]:
    """The pairs of the commune's parcels whose interiors intersect, as two lists of ids
    (the first the lower of each pair)."""
    cur = await conn.execute(sql_text(__package__, "outlines.sql"), {"commune": commune_id})
    return await work.cpu(_pairs, await work.fetched(cur))


def _pairs(rows: list[tuple[int, bytes]]) -> tuple[list[int], list[int]]:
    """overlapping() for outlines.sql's rows: (id, WKB) in the order of their ids."""
    ids = [r[0] for r in rows]
    shapes = shapely.from_wkb([r[1] for r in rows])
    first, second = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    once = first < second  # each pair once, the lower id first (ids are in order)
    first, second = first[once], second[once]
    inner = shapely.relate_pattern(shapes[first], shapes[second], INTERIORS_MEET)
    order = np.asarray(ids)
    return order[first[inner]].tolist(), order[second[inner]].tolist()
