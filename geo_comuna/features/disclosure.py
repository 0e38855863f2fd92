"""What readers outside a commune see of its members-only data: the layer's Aggregate (one
point per sector with its figures, built by PostGIS), and the rule that withholds small groups.

A group of fewer than MIN_GROUP features is withheld. When exactly one group is, the next
smallest is withheld with it: the commune's totals are public (the report, an analysis'
summary), and subtracting the other groups from them would give the withheld one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna.errors import InvalidInput, Said
from geo_comuna.layers import MIN_GROUP, Layer

#: lon/lat decimals of a group's point: ~1 m
CENTRE_DECIMALS = 5
#: how closely a group's outline follows its features (PostGIS ST_ConcaveHull: 0 tightest,
#: 1 the convex hull); the point goes inside it, so a ring of homes round a hill gets its
#: point on the ring, not on the hilltop
HULL_CONCAVITY = 0.3


def withheld(counts: Sequence[int], minimum: int = MIN_GROUP) -> list[bool]:
    """Which groups (by their feature counts) must not be shown: those under ``minimum``,
    and the smallest other one when only one is under it."""
    out = [n < minimum for n in counts]
    if sum(out) == 1:
        others = [i for i, hidden in enumerate(out) if not hidden]
        if others:
            out[min(others, key=lambda i: counts[i])] = True
    return out


def withhold(rows: list[dict[str, Any]], count: str, values: Sequence[str]) -> None:
    """Set ``values`` of the rows (each a group of ``count`` features) to None where
    ``withheld`` says so; rows of no feature give nothing away and are left alone."""
    counted = [r for r in rows if r[count]]
    for row, hidden in zip(counted, withheld([r[count] for r in counted]), strict=True):
        if hidden:
            for name in values:
                row[name] = None


@dataclass(frozen=True)
class Groups:
    """A commune's public groups of a layer: a GeoJSON FeatureCollection (text, as PostGIS
    built it), their features as dicts by group value, and how many groups were withheld."""

    collection: str
    by_value: dict[Any, dict[str, Any]]
    shown: int
    withheld: int


async def groups(conn: AsyncConnection, layer: Layer, commune_id: int) -> Groups:
    """The layer's Aggregate for one commune: a Point feature per value of ``by``, inside
    the area its features cover, with the count and measures; small groups withheld."""
    aggregate = layer.aggregate
    if aggregate is None or layer.commune_ref is None:
        raise InvalidInput(
            Said(
                f"layer {layer.name} has no public aggregate",
                f"la capa {layer.name} no tiene un agregado público",
            ),
            layer=layer.name,
        )
    by = sql.SQL("t.{}").format(sql.Identifier(aggregate.by))
    figures = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(m.name), sql.SQL(m.sql))  # registry constants
        for m in aggregate.figures
    )
    # the point: inside the group's outline (never one of its features: an outline's
    # interior point is not a vertex), or the mean of its features when they make no area
    query = sql.SQL("""
        SELECT g.value, g.n,
               json_build_object(
                   'type', 'Feature',
                   'geometry', ST_AsGeoJSON(
                       CASE WHEN ST_Dimension(g.hull) = 2 THEN ST_PointOnSurface(g.hull)
                            ELSE ST_Centroid(g.features) END, {decimals})::json,
                   'properties', g.properties)::text
        FROM (SELECT {by} AS value, count(*) AS n, ST_Collect(t.geom) AS features,
                     ST_ConcaveHull(ST_Collect(t.geom), {concavity}, true) AS hull,
                     json_build_object({name}, {by}, {figures}) AS properties
              FROM {table} t WHERE t.commune_id = %(commune)s GROUP BY {by}) g
        ORDER BY g.value NULLS LAST""").format(
        by=by,
        decimals=sql.Literal(CENTRE_DECIMALS),
        concavity=sql.Literal(HULL_CONCAVITY),
        name=sql.Literal(aggregate.by),
        figures=figures,
        table=sql.Identifier(layer.table),
    )
    cur = await conn.execute(query, {"commune": commune_id})
    rows = await cur.fetchall()
    hidden = withheld([n for _, n, _ in rows])
    shown = [(value, text) for (value, _, text), h in zip(rows, hidden, strict=True) if not h]
    return Groups(
        collection='{"type":"FeatureCollection","features":['
        + ",".join(text for _, text in shown)
        + "]}",
        by_value={value: json.loads(text) for value, text in shown},
        shown=len(shown),
        withheld=sum(hidden),
    )
