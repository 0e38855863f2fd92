"""Read queries over any registry layer. PostGIS builds the GeoJSON; Python only frames it.

A page is one SQL statement: the ids of the page first (an index-only walk, so a deep offset
does not build GeoJSON for the rows it skips), then each feature as text via ST_AsGeoJSON and
string_agg. ``numberMatched`` is exact: counted in the same statement, but only when the
layer's version (bumped by every write, see migration 0001) differs from the cached one.

Every read takes the reader's ``Access`` and applies the registry's read rules in the SQL
itself: a members-only property is absent from a feature (NULL in a column shared with
features the reader may read) and a members-only geometry is null, unless the row's commune
is one of the reader's. A filter can therefore never match on what the reader may not read.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.errors import Forbidden, InvalidInput, NotFound
from geo_comuna.features import cql
from geo_comuna.features.attributes import is_text
from geo_comuna.features.crs import CRS84, Crs, bbox_condition, output_geometry
from geo_comuna.features.output import Output, order_sql
from geo_comuna.layers import Layer

COORD_DECIMALS = 6  # ~0.1 m at the equator
#: a row's version for ETag / If-Match: the id of the transaction that last wrote it
ETAG_SQL = sql.SQL("""'"' || t.id || '.' || t.xmin::text || '"'""")


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


class CountCache:
    """Exact numberMatched per (layer, filters), valid while the layer's version is unchanged."""

    def __init__(self, size: int = 2048) -> None:
        self._entries: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
        self._size = size

    def get(self, key: tuple) -> tuple[int, int] | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: tuple, version: int, count: int) -> None:
        self._entries[key] = (version, count)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class Page:
    features: str  # comma-separated GeoJSON Feature objects
    number_returned: int
    number_matched: int


def readable(layer: Layer, access: Access) -> sql.Composable:
    """SQL truth of "this reader may read the members-only data of row ``t``": the row's
    commune is one of the reader's (admins: every row)."""
    if access.everywhere:
        return sql.SQL("true")
    if not access.communes or layer.commune_ref is None:
        return sql.SQL("false")
    return sql.SQL("t.commune_id = ANY({}::integer[])").format(sql.Literal(list(access.communes)))


def _only_readable(layer: Layer, access: Access, expr: sql.Composable) -> sql.Composable:
    if access.everywhere:
        return expr
    return sql.SQL("CASE WHEN {} THEN {} END").format(readable(layer, access), expr)


def geometry_sql(layer: Layer, access: Access, crs: Crs = CRS84) -> sql.Composable:
    """``t.geom`` in ``crs``, or NULL where the layer's positions are members-only and the
    row is not the reader's."""
    geom = output_geometry(sql.SQL("t.geom"), crs)
    if layer.geometry_read == "public":
        return geom
    return _only_readable(layer, access, geom)


def _outputs(layer: Layer) -> tuple[list[tuple[str, sql.Composable, bool]], sql.Composable]:
    """(name, SQL expression, members-only) of every output property, and the joins."""
    exprs: list[tuple[str, sql.Composable, bool]] = []
    joins: list[sql.Composable] = []
    for i, ref in enumerate(layer.references):
        column = sql.SQL("t.{}").format(sql.Identifier(ref.column))
        if ref.key == "id":
            exprs.append((ref.name, column, False))
            continue
        alias = sql.Identifier(f"r{i}")
        joins.append(
            sql.SQL("LEFT JOIN {} {} ON {}.id = {}").format(
                sql.Identifier(ref.table), alias, alias, column
            )
        )
        exprs.append((ref.name, sql.SQL("{}.{}").format(alias, sql.Identifier(ref.key)), False))
    for attr in layer.attributes:
        column = sql.SQL("t.{}").format(sql.Identifier(attr.name))
        exprs.append((attr.name, column, attr.read == "members"))
    for derived in layer.derived:
        exprs.append((derived.name, sql.SQL(derived.sql), False))  # registry constants
    return exprs, sql.SQL(" ").join(joins)


def property_exprs(
    layer: Layer, access: Access
) -> tuple[list[tuple[str, sql.Composable]], sql.Composable]:
    """(name, SQL expression) of every output property this reader gets, and the joins they
    need. References go out as the code clients write (commune code) or as the id (parcel).

    A members-only attribute is left out for a reader who may read it in no commune, and is
    NULL in other communes' rows for one who may read it in some."""
    outputs, joins = _outputs(layer)
    exprs = [
        (name, _only_readable(layer, access, expr) if members else expr)
        for name, expr, members in outputs
        if access.anywhere or not members
    ]
    return exprs, joins


def feature_sql(
    layer: Layer, access: Access, crs: Crs = CRS84, properties: tuple[str, ...] | None = None
) -> tuple[sql.Composable, sql.Composable]:
    """A text expression building one GeoJSON Feature from alias ``t``, and its joins:
    coordinates in ``crs``, only ``properties`` when given. Members-only properties are
    absent from the rows the reader may not read them in."""
    outputs, joins = _outputs(layer)
    if properties is not None:
        outputs = [o for o in outputs if o[0] in properties]

    def props(names: list[tuple[str, sql.Composable, bool]]) -> sql.Composable:
        if not names:
            return sql.SQL("'{}'::json")
        return sql.SQL("json_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr, _ in names
            )
        )

    public = [o for o in outputs if not o[2]]
    if access.everywhere or len(public) == len(outputs):
        properties = props(outputs)
    elif not access.anywhere:
        properties = props(public)
    else:
        properties = sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(
            readable(layer, access), props(outputs), props(public)
        )
    feature = sql.SQL(
        """'{{"type":"Feature","id":' || t.id || ',"geometry":' """
        """|| coalesce(ST_AsGeoJSON({}, {}, 0), 'null') || ',"properties":' """
        """|| {}::text || '}}'"""
    ).format(geometry_sql(layer, access, crs), sql.Literal(crs.decimals), properties)
    return feature, joins


def check_filters(layer: Layer, filters: Filters, access: Access) -> None:
    """A filter on a members-only property the reader may read in no commune is refused,
    saying why, rather than matching nothing (where_sql never lets it match what the reader
    may not read)."""
    if access.anywhere:
        return
    private = sorted(name for name in filters.properties if layer.members_only(name))
    if private:
        raise Forbidden(
            f"{', '.join(private)} of {layer.name} can be read, and so filtered by, only "
            "by the users of the feature's commune and admins; send such a user's token "
            "(Authorization: Bearer <token>)",
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
        if layer.commune_ref is not None:
            clauses.append(sql.SQL("t.commune_id = %(commune)s"))
        elif layer.name == "communes":
            clauses.append(sql.SQL("t.id = %(commune)s"))
        elif layer.reference("from_commune") is not None:  # exchanges: either end
            clauses.append(
                sql.SQL("(t.from_commune_id = %(commune)s OR t.to_commune_id = %(commune)s)")
            )
        else:  # states: the ones the commune's land lies in, not those it only borders
            clauses.append(
                sql.SQL(
                    "EXISTS (SELECT FROM communes c WHERE c.id = %(commune)s "
                    "AND c.geom && t.geom AND ST_Relate(c.geom, t.geom, 'T********'))"
                )
            )
    if filters.interval is not None:
        clauses.append(_interval_sql(layer, filters.interval, params))
    for i, (name, values) in enumerate(sorted(filters.properties.items())):
        params[f"p{i}"] = values
        ref = layer.reference(name)
        column = ref.column if ref else name
        clauses.append(
            sql.SQL("t.{} = ANY(%({})s)").format(sql.Identifier(column), sql.SQL(f"p{i}"))
        )
        private = private or layer.members_only(name)
    if filters.cql is not None:
        condition = cql.to_sql(layer, access, filters.cql, filters.filter_crs, params)
        clauses.append(condition.sql)
        private = private or condition.private
    if private and not access.everywhere:
        clauses.append(readable(layer, access))
    return sql.SQL(" AND ").join(clauses), params


def _interval_sql(layer: Layer, interval: Interval, params: dict[str, Any]) -> sql.Composable:
    """The layer's temporal property falls within ``interval``; a feature without a date is
    in no interval (it cannot be placed in time, so it is not shown as if it were)."""
    if layer.temporal is None:
        raise InvalidInput(f"{layer.name} has no date to filter by with datetime")
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


async def page(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    *,
    limit: int,
    offset: int,
    counts: CountCache,
    access: Access,
    output: Output | None = None,
) -> Page:
    """One page of features, as ``access`` may read them, shaped by ``output`` (CRS, order,
    properties). A layer whose derived properties read other tables (the communes'
    per-state breakdown) is kept per version of them all (work.cache), since its page costs
    what those tables hold, not what it shows."""
    output = output or Output()
    reads = {table for d in layer.derived for table in d.reads}
    cache = work.cache()
    if not reads or cache is None:
        return await _page(conn, layer, filters, limit, offset, counts, access, output)
    reader = access.key if layer.restricted else None
    return await cache.get_or_compute(
        conn,
        ("page", layer.name, filters.key(), reader, limit, offset, output.key()),
        {layer.table, *reads},
        lambda: _page(conn, layer, filters, limit, offset, counts, access, output),
    )


async def _page(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    limit: int,
    offset: int,
    counts: CountCache,
    access: Access,
    output: Output,
) -> Page:
    where, params = where_sql(layer, filters, access)
    order, private_order = order_sql(layer, access, output)
    if private_order and not access.everywhere:  # see features/output.py
        where = sql.SQL("{} AND {}").format(where, readable(layer, access))
    # ordered pages keep their rank; the plain id order needs none
    rank = sql.SQL("row_number() OVER (ORDER BY {})").format(order) if output.sortby else None
    feature, joins = feature_sql(layer, access, output.crs, output.properties)
    # what a filter matches may depend on the reader (see where_sql)
    key = (layer.name, filters.key(), access.key if layer.restricted else None, private_order)
    cached = counts.get(key)
    params.update(layer=layer.name, limit=limit, offset=offset, known=cached[0] if cached else None)
    table = sql.Identifier(layer.table)
    query = sql.SQL("""
        WITH ids AS (SELECT t.id, {rank} AS n FROM {table} t WHERE {where}
                     ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s),
             v AS (SELECT version FROM layer_versions WHERE layer = %(layer)s)
        SELECT (SELECT version FROM v),
               CASE WHEN (SELECT version FROM v) IS NOT DISTINCT FROM %(known)s::bigint
                    THEN NULL ELSE (SELECT count(*) FROM {table} t WHERE {where}) END,
               (SELECT count(*) FROM ids),
               (SELECT string_agg(f.feature, ',' ORDER BY f.n) FROM
                   (SELECT ids.n, {feature} AS feature
                    FROM ids JOIN {table} t ON t.id = ids.id {joins}) f)
    """).format(
        table=table,
        where=where,
        feature=feature,
        joins=joins,
        order=order,
        rank=rank or sql.SQL("t.id"),
    )
    cur = await conn.execute(query, params)
    version, count, returned, text = await cur.fetchone()
    if count is None:
        count = cached[1]
    else:
        counts.put(key, version, count)
    return Page(text or "", returned, count)


async def one(
    conn: AsyncConnection, layer: Layer, feature_id: int, access: Access, crs: Crs = CRS84
) -> tuple[str, str] | None:
    """One Feature as GeoJSON text, coordinates in ``crs``, and its version (the ETag)."""
    feature, joins = feature_sql(layer, access, crs)
    cur = await conn.execute(
        sql.SQL("SELECT {}, {} FROM {} t {} WHERE t.id = %s").format(
            feature, ETAG_SQL, sql.Identifier(layer.table), joins
        ),
        (feature_id,),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row else None


async def extents(conn: AsyncConnection, layers: list[Layer]) -> dict[str, list[float] | None]:
    """Lon/lat bounding box per layer: planner estimate when statistics exist, else exact.
    A layer whose positions are members-only gives its communes' box: the corners of its own
    would be coordinates of its outermost features."""

    def source(layer: Layer) -> str:
        ref = layer.commune_ref
        return ref.table if layer.geometry_read == "members" and ref else layer.table

    parts = [
        sql.SQL(
            "SELECT {name}, coalesce(ST_EstimatedExtent({source}, 'geom'), "
            "(SELECT ST_Extent(geom) FROM {table}))::geometry"
        ).format(
            name=sql.Literal(layer.table),
            source=sql.Literal(source(layer)),
            table=sql.Identifier(source(layer)),
        )
        for layer in layers
    ]
    cur = await conn.execute(
        sql.SQL(
            "SELECT name, ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM ({}) e(name, g)"
        ).format(sql.SQL(" UNION ALL ").join(parts))
    )
    return {
        name: None if xmin is None else [round(v, 6) for v in (xmin, ymin, xmax, ymax)]
        for name, xmin, ymin, xmax, ymax in await cur.fetchall()
    }


async def temporal_extents(
    conn: AsyncConnection, layers: list[Layer]
) -> dict[str, tuple[dt.date, dt.date]]:
    """First and last date of each layer's temporal property, for layers that have one and
    hold dated features (each an index lookup: migration 0018)."""
    dated = [layer for layer in layers if layer.temporal is not None]
    if not dated:
        return {}
    parts = [
        sql.SQL("SELECT {name}, min({column}), max({column}) FROM {table}").format(
            name=sql.Literal(layer.name),
            column=sql.Identifier(layer.temporal),  # type: ignore[arg-type]
            table=sql.Identifier(layer.table),
        )
        for layer in dated
    ]
    cur = await conn.execute(sql.SQL(" UNION ALL ").join(parts))
    return {name: (first, last) for name, first, last in await cur.fetchall() if first}


async def resolve_commune(conn: AsyncConnection, value: str) -> int | None:
    """A commune given by id (ASCII digits only) or by registry code (anything else). The
    two never overlap: a code is never made of digits only (migration 0014), so "1" is the
    commune whose id is 1, whatever the codes say."""
    if not is_text(value):  # a NUL or lone surrogate: no code has one
        return None
    if _is_id(value):
        if len(value) > 9:  # beyond PostgreSQL's integer, so beyond every id
            return None
        cur = await conn.execute("SELECT id FROM communes WHERE id = %s", (int(value),))
    else:
        cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (value,))
    row = await cur.fetchone()
    return row[0] if row else None


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit()


async def require_commune(conn: AsyncConnection, value: str) -> int:
    """Like resolve_commune, but a commune that is not there is a NotFound naming the value."""
    commune_id = await resolve_commune(conn, value)
    if commune_id is None:
        raise NotFound(f"no commune with {'id' if _is_id(value) else 'code'} {value!r}")
    return commune_id
