"""Read queries over any registry layer. PostGIS builds the GeoJSON; Python only frames it.

A page is one SQL statement: the ids of the page first (an index-only walk, so a deep offset
does not build GeoJSON for the rows it skips), then each feature as text via ST_AsGeoJSON and
string_agg. ``numberMatched`` is exact: counted in the same statement, but only when the
layer's version (bumped by every write, see migration 0001) differs from the cached one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.errors import NotFound
from geo_comuna.features.attributes import is_text
from geo_comuna.layers import Layer

COORD_DECIMALS = 6  # ~0.1 m at the equator
#: a row's version for ETag / If-Match: the id of the transaction that last wrote it
ETAG_SQL = sql.SQL("""'"' || t.id || '.' || t.xmin::text || '"'""")


@dataclass(frozen=True)
class Filters:
    """What a client may narrow a collection by. ``bbox`` is lon/lat (EPSG:4326)."""

    bbox: tuple[float, float, float, float] | None = None
    commune_id: int | None = None
    properties: dict[str, list[Any]] = field(default_factory=dict)

    def key(self) -> tuple:
        return (
            self.bbox,
            self.commune_id,
            tuple(sorted((k, tuple(map(str, v))) for k, v in self.properties.items())),
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


def property_exprs(layer: Layer) -> tuple[list[tuple[str, sql.Composable]], sql.Composable]:
    """(name, SQL expression) of every output property, and the joins they need.

    References go out as the code clients write (commune code) or as the id (parcel)."""
    exprs: list[tuple[str, sql.Composable]] = []
    joins: list[sql.Composable] = []
    for i, ref in enumerate(layer.references):
        column = sql.SQL("t.{}").format(sql.Identifier(ref.column))
        if ref.key == "id":
            exprs.append((ref.name, column))
            continue
        alias = sql.Identifier(f"r{i}")
        joins.append(
            sql.SQL("LEFT JOIN {} {} ON {}.id = {}").format(
                sql.Identifier(ref.table), alias, alias, column
            )
        )
        exprs.append((ref.name, sql.SQL("{}.{}").format(alias, sql.Identifier(ref.key))))
    for attr in layer.attributes:
        exprs.append((attr.name, sql.SQL("t.{}").format(sql.Identifier(attr.name))))
    for derived in layer.derived:
        exprs.append((derived.name, sql.SQL(derived.sql)))  # registry constants, not input
    return exprs, sql.SQL(" ").join(joins)


def feature_sql(layer: Layer) -> tuple[sql.Composable, sql.Composable]:
    """A text expression building one GeoJSON Feature from alias ``t``, and its joins."""
    exprs, joins = property_exprs(layer)
    props = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr in exprs
    )
    feature = sql.SQL(
        """'{{"type":"Feature","id":' || t.id || ',"geometry":' """
        """|| coalesce(ST_AsGeoJSON(t.geom, {}), 'null') || ',"properties":' """
        """|| json_build_object({})::text || '}}'"""
    ).format(sql.Literal(COORD_DECIMALS), props)
    return feature, joins


def where_sql(layer: Layer, filters: Filters) -> tuple[sql.Composable, dict[str, Any]]:
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    if filters.bbox is not None:
        params.update(zip(("w", "s", "e", "n"), filters.bbox, strict=True))
        clauses.append(
            sql.SQL("ST_Intersects(t.geom, ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326))")
        )
    if filters.commune_id is not None:
        params["commune"] = filters.commune_id
        if layer.commune_ref is not None:
            clauses.append(sql.SQL("t.commune_id = %(commune)s"))
        elif layer.name == "communes":
            clauses.append(sql.SQL("t.id = %(commune)s"))
        else:  # exchanges: either end
            clauses.append(
                sql.SQL("(t.from_commune_id = %(commune)s OR t.to_commune_id = %(commune)s)")
            )
    for i, (name, values) in enumerate(sorted(filters.properties.items())):
        params[f"p{i}"] = values
        ref = layer.reference(name)
        column = ref.column if ref else name
        clauses.append(
            sql.SQL("t.{} = ANY(%({})s)").format(sql.Identifier(column), sql.SQL(f"p{i}"))
        )
    return sql.SQL(" AND ").join(clauses), params


async def page(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    *,
    limit: int,
    offset: int,
    counts: CountCache,
) -> Page:
    """One page of features. A layer whose derived properties read other tables (the
    communes' per-state breakdown) is kept per version of them all (work.cache), since its
    page costs what those tables hold, not what it shows."""
    reads = {table for d in layer.derived for table in d.reads}
    cache = work.cache()
    if not reads or cache is None:
        return await _page(conn, layer, filters, limit=limit, offset=offset, counts=counts)
    return await cache.get_or_compute(
        conn,
        ("page", layer.name, filters.key(), limit, offset),
        {layer.table, *reads},
        lambda: _page(conn, layer, filters, limit=limit, offset=offset, counts=counts),
    )


async def _page(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    *,
    limit: int,
    offset: int,
    counts: CountCache,
) -> Page:
    where, params = where_sql(layer, filters)
    feature, joins = feature_sql(layer)
    key = (layer.name, filters.key())
    cached = counts.get(key)
    params.update(layer=layer.name, limit=limit, offset=offset, known=cached[0] if cached else None)
    table = sql.Identifier(layer.table)
    query = sql.SQL("""
        WITH ids AS (SELECT t.id FROM {table} t WHERE {where}
                     ORDER BY t.id LIMIT %(limit)s OFFSET %(offset)s),
             v AS (SELECT version FROM layer_versions WHERE layer = %(layer)s)
        SELECT (SELECT version FROM v),
               CASE WHEN (SELECT version FROM v) IS NOT DISTINCT FROM %(known)s::bigint
                    THEN NULL ELSE (SELECT count(*) FROM {table} t WHERE {where}) END,
               (SELECT count(*) FROM ids),
               (SELECT string_agg(f.feature, ',' ORDER BY f.id) FROM
                   (SELECT t.id, {feature} AS feature
                    FROM ids JOIN {table} t ON t.id = ids.id {joins}) f)
    """).format(table=table, where=where, feature=feature, joins=joins)
    cur = await conn.execute(query, params)
    version, count, returned, text = await cur.fetchone()
    if count is None:
        count = cached[1]
    else:
        counts.put(key, version, count)
    return Page(text or "", returned, count)


async def one(conn: AsyncConnection, layer: Layer, feature_id: int) -> tuple[str, str] | None:
    """One Feature as GeoJSON text, and its version (the ETag)."""
    feature, joins = feature_sql(layer)
    cur = await conn.execute(
        sql.SQL("SELECT {}, {} FROM {} t {} WHERE t.id = %s").format(
            feature, ETAG_SQL, sql.Identifier(layer.table), joins
        ),
        (feature_id,),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row else None


async def extents(conn: AsyncConnection, layers: list[Layer]) -> dict[str, list[float] | None]:
    """Lon/lat bounding box per layer: planner estimate when statistics exist, else exact."""
    parts = [
        sql.SQL(
            "SELECT {name}, coalesce(ST_EstimatedExtent({name}, 'geom'), "
            "(SELECT ST_Extent(geom) FROM {table}))::geometry"
        ).format(name=sql.Literal(layer.table), table=sql.Identifier(layer.table))
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
