"""Read queries over any registry layer. PostGIS builds the GeoJSON; Python only frames it.

A page is one SQL statement: the ids of the page first (an index-only walk, so a deep offset
does not build GeoJSON for the rows it skips), then each feature as text via ST_AsGeoJSON and
string_agg. ``numberMatched`` is exact: counted in the same statement, but only when the
layer's version (bumped by every write, see migration 0001) differs from the cached one.

Every read takes the reader's ``Access`` and applies the registry's read rules in the SQL
itself (features/properties.py: what of a row the reader gets; features/filters.py: the
WHERE clause of a request's filters), so a filter can never match on what the reader may not
read. Both are also importable from here, where every reader of the store looks first.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.errors import NotFound
from geo_comuna.features.attributes import is_text
from geo_comuna.features.crs import CRS84, Crs
from geo_comuna.features.filters import (
    Filters,
    Interval,
    check_filters,
    commune_sql,
    located_where,
    where_sql,
)
from geo_comuna.features.output import Output, order_sql
from geo_comuna.features.properties import feature_sql, geometry_sql, property_exprs, readable
from geo_comuna.layers import COMMUNES, Layer

__all__ = [
    "COORD_DECIMALS",
    "ETAG_SQL",
    "CountCache",
    "Filters",
    "Interval",
    "Page",
    "check_filters",
    "commune_sql",
    "extents",
    "feature_sql",
    "geometry_sql",
    "located_where",
    "one",
    "page",
    "property_exprs",
    "readable",
    "require_commune",
    "resolve_commune",
    "temporal_extents",
    "where_sql",
]

COORD_DECIMALS = 6  # ~0.1 m at the equator
#: a row's version for ETag / If-Match: the id of the transaction that last wrote it
ETAG_SQL = sql.SQL("""'"' || t.id || '.' || t.xmin::text || '"'""")


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
        column, key = "id", int(value)
    else:
        column, key = "code", value
    cur = await conn.execute(
        sql.SQL("SELECT id FROM {} WHERE {} = %s").format(
            sql.Identifier(COMMUNES.table), sql.Identifier(column)
        ),
        (key,),
    )
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
