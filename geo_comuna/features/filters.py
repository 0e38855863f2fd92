"""What a client may narrow a collection by (bbox, commune, datetime, properties, CQL2), as
one SQL WHERE clause over alias ``t``.

The clause applies the registry's read rules: a filter can never match on what the reader may
not read (features/properties.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.errors import Forbidden, InvalidInput, Said
from geo_comuna.features import cql, queryables
from geo_comuna.features.crs import CRS84, Crs, bbox_condition
from geo_comuna.features.properties import readable
from geo_comuna.layers import COMMUNES, Layer


@dataclass(frozen=True)
class Interval:
    """Days from ``start`` to ``end``, both included; None: open on that side."""

    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class Filters:
    """What a client may narrow a collection by. ``bbox`` is xmin, ymin, xmax, ymax in
    ``bbox_crs`` (lon/lat by default); ``cql`` a CQL2 filter as canonical CQL2 JSON
    (features/cql), its geometries in ``filter_crs``; ``interval`` is matched against the
    layer's temporal property (layers/model.py)."""

    bbox: tuple[float, float, float, float] | None = None
    commune_id: int | None = None
    properties: dict[str, list[Any]] = field(default_factory=dict)
    bbox_crs: Crs = CRS84
    cql: str | None = None
    filter_crs: Crs = CRS84
    interval: Interval | None = None

    def key(self) -> tuple:
        return (
            self.bbox,
            self.commune_id,
            tuple(sorted((k, tuple(map(str, v))) for k, v in self.properties.items())),
            self.bbox_crs.uri,
            self.cql,
            self.filter_crs.uri,
            self.interval,
        )


def check_filters(layer: Layer, filters: Filters, access: Access) -> None:
    """A filter on a members-only property the reader may read in no commune is refused,
    saying why, rather than matching nothing (where_sql never lets it match what the reader
    may not read)."""
    if access.anywhere:
        return
    private = sorted(name for name in filters.properties if layer.members_only(name))
    if private:
        names = ", ".join(private)
        raise Forbidden(
            Said(
                f"{names} of {layer.name} can be read, and so filtered by, only by the users "
                "of the feature's commune and admins; send such a user's token "
                "(Authorization: Bearer <token>)",
                f"{names} de {layer.name} solo lo leen, y solo filtran por ello, los usuarios "
                "de la comuna de la entidad y los admins; envíe el token de uno de ellos "
                "(Authorization: Bearer <token>)",
            ),
            layer=layer.name,
        )


def where_sql(
    layer: Layer, filters: Filters, access: Access
) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE clause of ``filters``. A filter on a members-only property or position
    matches only the rows the reader may read it in (see check_filters for the rest)."""
    check_filters(layer, filters, access)
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    private = False
    if filters.bbox is not None:
        clauses.append(bbox_condition(sql.SQL("t.geom"), filters.bbox, filters.bbox_crs, params))
        private = layer.geometry_read == "members"
    if filters.commune_id is not None:
        params["commune"] = filters.commune_id
        clauses.append(commune_sql(layer, sql.SQL("%(commune)s")))
    if filters.interval is not None:
        clauses.append(_interval_sql(layer, filters.interval, params))
    for i, (name, values) in enumerate(sorted(filters.properties.items())):
        params[f"p{i}"] = values
        ref = layer.reference(name)
        if ref is None and layer.attribute(name) is None:  # worked out by PostGIS (area_ha)
            value = queryables.find(layer, name).expr
        else:
            value = sql.SQL("t.{}").format(sql.Identifier(ref.column if ref else name))
        clauses.append(sql.SQL("{} = ANY(%({})s)").format(value, sql.SQL(f"p{i}")))
        private = private or layer.members_only(name)
    if filters.cql is not None:
        condition = cql.to_sql(layer, access, filters.cql, filters.filter_crs, params)
        clauses.append(condition.sql)
        private = private or condition.private
    if private and not access.everywhere:
        clauses.append(readable(layer, access))
    return sql.SQL(" AND ").join(clauses), params


def commune_sql(layer: Layer, commune_id: sql.Composable) -> sql.Composable:
    """Row ``t`` is the commune's, as the registry's ``commune_filter`` of the layer says:
    one of its columns holds ``commune_id`` (an SQL expression), or the commune's land lies
    in its area (interior meets interior: a state the commune only borders is not one)."""
    match = layer.commune_filter
    if match.land:
        return sql.SQL(
            "EXISTS (SELECT FROM {} c WHERE c.id = {} "
            "AND c.geom && t.geom AND ST_Relate(c.geom, t.geom, 'T********'))"
        ).format(sql.Identifier(COMMUNES.table), commune_id)
    either = sql.SQL(" OR ").join(
        sql.SQL("t.{} = {}").format(sql.Identifier(column), commune_id) for column in match.columns
    )
    return either if len(match.columns) == 1 else sql.SQL("({})").format(either)


def _interval_sql(layer: Layer, interval: Interval, params: dict[str, Any]) -> sql.Composable:
    """The layer's temporal property falls within ``interval``; a feature without a date is
    in no interval (it cannot be placed in time, so it is not shown as if it were)."""
    if layer.temporal is None:
        raise InvalidInput(
            Said(
                f"{layer.name} has no date to filter by with datetime",
                f"{layer.name} no tiene una fecha por la que filtrar con datetime",
            )
        )
    column = sql.SQL("t.{}").format(sql.Identifier(layer.temporal))
    clause = sql.SQL("{} IS NOT NULL").format(column)
    if interval.start is not None:
        params["time_start"] = interval.start
        clause = sql.SQL("{} AND {} >= %(time_start)s").format(clause, column)
    if interval.end is not None:
        params["time_end"] = interval.end
        clause = sql.SQL("{} AND {} <= %(time_end)s").format(clause, column)
    return clause


def located_where(
    layer: Layer, filters: Filters, access: Access
) -> tuple[sql.Composable, dict[str, Any]]:
    """where_sql, and only the features whose position the reader may read: what maps and
    tiles draw (a feature without a position has nothing to draw)."""
    where, params = where_sql(layer, filters, access)
    if layer.geometry_read == "members" and not access.everywhere:
        where = sql.SQL("{} AND {}").format(where, readable(layer, access))
    return where, params
