"""Read queries over any registry layer. PostGIS builds the GeoJSON; Python only frames it.

A page is one SQL statement: the ids of the page first (an index walk, so a deep page does
not build GeoJSON for the rows it skips), then each feature as text via ST_AsGeoJSON and
string_agg. Pages in id order go on by key (``after``: ids above the last one sent), so the
thousandth page costs what the first does and a feature written or deleted between two
pages neither repeats nor hides another; ``offset`` still works, walking past the rows it
skips. One row beyond the page is looked at, to tell whether a next page exists.
``numberMatched`` is exact: counted in the same statement, but only when the layer's
version (bumped by every write, see migration 0001) differs from the cached one.

Every read takes the reader's ``Access`` and applies the registry's read rules in the SQL
itself (features/properties.py: what of a row the reader gets; features/filters.py: the
WHERE clause of a request's filters), so a filter can never match on what the reader may not
read. Both are also importable from here, where every reader of the store looks first.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.db.versions import VERSIONS_SQL, Versions
from geo_comuna.errors import InvalidInput, NotFound, Said
from geo_comuna.features.crs import CRS84, GEOGRAPHIC_DECIMALS, Crs
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
from geo_comuna.layers import COMMUNES, Layer, get_layer
from geo_comuna.text import is_text

__all__ = [
    "COORD_DECIMALS",
    "ETAG_SQL",
    "CountCache",
    "Filters",
    "Interval",
    "Item",
    "Page",
    "check_filters",
    "commune_sql",
    "extents",
    "feature_sql",
    "geometry_sql",
    "item",
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

COORD_DECIMALS = GEOGRAPHIC_DECIMALS  # ~0.1 mm at the equator
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
    #: a feature follows this page
    more: bool = False
    #: the id of the page's last feature (what ``after`` takes for the next page)
    last_id: int | None = None
    #: (table, version) of the tables page() was asked for, read in the page's own statement
    versions: Versions = ()


def kept_per_version(layer: Layer) -> bool:
    """Are ``layer``'s pages kept per version of the tables they read (work.cache)? Those
    of a layer whose derived properties read other tables (the communes' per-state
    breakdown): such a page costs what those tables hold, not what it shows."""
    return bool(layer.derived_reads)


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
    after: int | None = None,
    tables: Iterable[str] = (),
    max_bytes: int | None = None,
) -> Page:
    """One page of features, as ``access`` may read them, shaped by ``output`` (CRS, order,
    properties); kept per version where kept_per_version says.

    ``max_bytes``: the stored geometry the page may carry (Settings.max_page_geometry_bytes).
    The features past it are left to the next page, so the page may return fewer than
    ``limit``, as OGC API - Features allows, never fewer than one. A limit counts features,
    and a feature may have 50,000 vertices: 1,000 of them were 42 MB of GeoJSON, held
    whole, and 10,000 past what PostgreSQL builds in one text (1 GB).

    ``after``: only features of higher id (the id order; with ``sortby`` an ``after`` is
    refused, the order is another one). ``tables``: whose versions the page carries
    (``Page.versions``, from the page's own snapshot); not with a kept layer's pages, whose
    versions are those they were kept under."""
    output = output or Output()
    if after is not None and output.sortby:
        raise InvalidInput(
            Said(
                "after continues the id order; with sortby, page with offset (the next links do)",
                "after continúa el orden por id; con sortby, pagine con offset (como hacen los "
                "enlaces next)",
            ),
            layer=layer.name,
        )
    cache = work.cache()
    names = sorted(set(tables))
    if not kept_per_version(layer) or cache is None:
        return await _page(
            conn, layer, filters, limit, offset, counts, access, output, after, names, max_bytes
        )
    if names:
        raise ValueError(f"{layer.name}'s pages are kept per version: read their versions first")
    reader = access.key if layer.restricted else None
    return await cache.get_or_compute(
        conn,
        ("page", layer.name, filters.key(), reader, limit, offset, after, output.key(), max_bytes),
        {layer.table, *layer.derived_reads},
        lambda: _page(
            conn, layer, filters, limit, offset, counts, access, output, after, None, max_bytes
        ),
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
    after: int | None = None,
    tables: list[str] | None = None,
    max_bytes: int | None = None,
) -> Page:
    where, params = where_sql(layer, filters, access)
    order, private_order = order_sql(layer, access, output)
    if private_order and not access.everywhere:  # see features/output.py
        where = sql.SQL("{} AND {}").format(where, readable(layer, access))
    # ordered pages keep their rank; the plain id order needs none
    rank = sql.SQL("row_number() OVER (ORDER BY {})").format(order) if output.sortby else None
    # derived properties with a batch form are worked out for the page's rows at once
    feature, joins = feature_sql(
        layer, access, output.crs, output.properties, sql.SQL("ARRAY(SELECT id FROM ids)")
    )
    # what a filter matches may depend on the reader (see where_sql)
    key = (layer.name, filters.key(), access.key if layer.restricted else None, private_order)
    cached = counts.get(key)
    params.update(layer=layer.name, limit=limit, offset=offset, known=cached[0] if cached else None)
    # the key narrows the page, never what numberMatched counts
    keyed = where if after is None else sql.SQL("{} AND t.id > %(after)s").format(where)
    params.update(after=after, tables=tables or [], max_bytes=max_bytes)
    table = sql.Identifier(layer.table)
    # The page ends before the feature whose geometry would take it past max_bytes, as stored
    # (pg_column_size: the row's size of it; the geometry is not read), its first feature
    # always in (a feature past it is NULL, and not built). The sizes are read where the
    # page's rows are joined to be built, and in the same query level as the other joins: no
    # row is read twice, no skipped row at all (an offset's skipped rows stay an index-only
    # scan), and the planner keeps its plan for the joins (a subquery around the window made
    # it hash every commune for their codes, 1.3 ms a page).
    query = sql.SQL("""
        WITH probe AS (SELECT t.id, {rank} AS n FROM {table} t WHERE {keyed}
                       ORDER BY {order} LIMIT %(limit)s + 1 OFFSET %(offset)s),
             ids AS (SELECT id, n FROM probe ORDER BY n LIMIT %(limit)s),
             v AS (SELECT version FROM layer_versions WHERE layer = %(layer)s)
        SELECT (SELECT version FROM v),
               CASE WHEN (SELECT version FROM v) IS NOT DISTINCT FROM %(known)s::bigint
                    THEN NULL ELSE (SELECT count(*) FROM {table} t WHERE {where}) END,
               page.returned,
               (SELECT count(*) FROM probe) > page.returned,
               page.last_id,
               page.features,
               {versions}
        FROM (SELECT count(f.feature) AS returned,
                     (array_agg(f.id ORDER BY f.n DESC) FILTER (WHERE f.feature IS NOT NULL))[1]
                         AS last_id,
                     string_agg(f.feature, ',' ORDER BY f.n) AS features
              FROM (SELECT ids.n, t.id,
                           CASE WHEN %(max_bytes)s::bigint IS NULL OR row_number() OVER w = 1
                                     OR sum(coalesce(pg_column_size(t.geom), 0)) OVER w
                                        <= %(max_bytes)s
                                THEN {feature} END AS feature
                    FROM ids JOIN {table} t ON t.id = ids.id {joins}
                    WINDOW w AS (ORDER BY ids.n ROWS UNBOUNDED PRECEDING)) f) page
    """).format(
        versions=sql.SQL(VERSIONS_SQL if tables else "NULL"),
        table=table,
        where=where,
        keyed=keyed,
        feature=feature,
        joins=joins,
        order=order,
        rank=rank or sql.SQL("t.id"),
    )
    cur = await conn.execute(query, params)
    version, count, returned, more, last_id, text, found = await cur.fetchone()
    if count is None:
        count = cached[1]
    else:
        counts.put(key, version, count)
    found = tuple(zip(tables, found, strict=True)) if tables else ()
    return Page(text or "", returned, count, more, last_id, found)


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


@dataclass(frozen=True)
class Item:
    """One feature as the item route sends it: its ETag, and its GeoJSON Feature text
    (without the closing brace, so that links can follow), or None when the client's copy
    is current (``If-None-Match`` matched: the Feature was never built)."""

    etag: str
    text: str | None


async def item(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    access: Access,
    crs: Crs = CRS84,
    *,
    salt: str | None = None,
    tables: tuple[str, ...] = (),
    held: tuple[str, ...] = (),
) -> Item | None:
    """One feature by id in one statement, ETag first: the row version ``"id.xmin"``, and
    where what the feature shows also depends on other tables or on the reader, a digest of
    ``salt`` (who reads, which code) and of those ``tables``' versions (api/etags.py says
    why); ``salt`` None: the row version alone. When the ETag is one of ``held`` (the
    client's If-None-Match, ``*`` for any) the Feature is not built: CASE evaluates only the
    branch it takes.

    The statement is composed once per (layer, reader, CRS) and prepared by the driver after
    a few uses on a connection, so a request pays one round trip and no SQL composing."""
    query = _item_sql(layer.name, access if layer.restricted else None, crs, salt, tables)
    # one text parameter, not an array: ETags hold no commas (digits, dots, hex digits)
    tags = "*" if "*" in held else ",".join(held)
    cur = await conn.execute(query, {"id": feature_id, "held": tags})
    row = await cur.fetchone()
    return Item(row[0], row[1]) if row else None


#: the digest ``api/etags.py`` also computes in Python for the same inputs
ITEM_DIGEST_SQL = """left(encode(sha256(convert_to({salt} || '|' || (
        SELECT coalesce(string_agg(n || '=' || coalesce(v.version, 0), ',' ORDER BY n), '')
        FROM unnest({tables}::text[]) n LEFT JOIN layer_versions v ON v.layer = n),
    'UTF8')), 'hex'), 20)"""


@functools.lru_cache(maxsize=256)
def _item_sql(
    layer_name: str, access: Access | None, crs: Crs, salt: str | None, tables: tuple[str, ...]
) -> str:
    """The item statement as text (``access`` None: the layer reads alike for everyone).
    Salt and tables are fixed per layer and reader, so they are part of the text: a request
    binds only the id and If-None-Match."""
    layer = get_layer(layer_name)
    feature, joins = feature_sql(layer, access or Access(), crs)
    version = sql.SQL("""t.id || '.' || t.xmin::text""")
    if salt is not None:
        digest = sql.SQL(ITEM_DIGEST_SQL).format(
            salt=sql.Literal(salt), tables=sql.Literal(list(tables))
        )
        version = sql.SQL("{} || '.' || {}").format(version, digest)
    query = sql.SQL("""
        SELECT x.etag,
               CASE WHEN %(held)s = '*' OR x.etag = ANY(string_to_array(%(held)s, ','))
                    THEN NULL ELSE left({feature}, -1) END
        FROM {table} t {joins}
        CROSS JOIN LATERAL (SELECT '"' || {version} || '"' AS etag) x
        WHERE t.id = %(id)s
    """).format(feature=feature, table=sql.Identifier(layer.table), joins=joins, version=version)
    return query.as_string()


async def extents(conn: AsyncConnection, layers: list[Layer]) -> dict[str, list[float] | None]:
    """Lon/lat bounding box per layer, exact: the box of its stored shapes. A layer whose
    positions are members-only gives its communes' box: the corners of its own would be
    coordinates of its outermost features.

    Not PostGIS' estimate (ST_EstimatedExtent): it reads the box at the top of the spatial
    index, which only ever grows. The index keeps room for every shape ever written, deleted
    or rolled back alike, so one parcel put 900 km off by mistake and deleted, or an import
    rolled back, left the layer's extent reaching there for good, and every client zooming
    to the layer went there (the bench database, after its imports and deletes: 13.3 x 11.5
    degrees against 3.6 x 1.2). Exact takes a pass over the stored boxes (~90 ms for 400,000
    parcels), so a request keeps the answer per version of the tables it read (work.cache)."""

    def source(layer: Layer) -> str:
        ref = layer.commune_ref
        return ref.table if layer.geometry_read == "members" and ref else layer.table

    async def compute() -> dict[str, list[float] | None]:
        parts = [
            sql.SQL("SELECT {name}, (SELECT ST_Extent(geom) FROM {table})::geometry").format(
                name=sql.Literal(layer.table), table=sql.Identifier(source(layer))
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

    cache = work.cache()
    if cache is None:
        return await compute()
    key = ("extents", tuple(layer.name for layer in layers))
    return await cache.get_or_compute(conn, key, {source(layer) for layer in layers}, compute)


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
    commune whose id is 1, whatever the codes say. A code typed in another case than the
    registry's (el-maizal) names the commune it alone matches: a person types a URL."""
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
    if row is None and column == "code":  # typed in another case (el-maizal): one match only
        cur = await conn.execute(
            sql.SQL("SELECT id FROM {} WHERE upper(code) = upper(%s) LIMIT 2").format(
                sql.Identifier(COMMUNES.table)
            ),
            (key,),
        )
        rows = await cur.fetchall()
        return rows[0][0] if len(rows) == 1 else None
    return row[0] if row else None


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit()


async def require_commune(conn: AsyncConnection, value: str) -> int:
    """Like resolve_commune, but a commune that is not there is a NotFound naming the value."""
    commune_id = await resolve_commune(conn, value)
    if commune_id is None:
        raise NotFound(
            Said(
                f"no commune with {'id' if _is_id(value) else 'code'} {value!r}",
                f"no existe ninguna comuna con {'el id' if _is_id(value) else 'el código'} "
                f"{value!r}",
            )
        )
    return commune_id
