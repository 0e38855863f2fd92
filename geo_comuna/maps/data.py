"""What maps read from PostGIS. The database builds every GeoJSON (ST_AsGeoJSON over the row,
so a feature's properties are the selected columns) or geobuf (ST_AsGeobuf) document; Python
only passes the text or bytes on to the page.

Properties come from ``features.query.property_exprs`` (the registry's references, attributes
and derived values), restricted to what the style file says a map shows and to what the page's
reader may read: a feature whose position is members-only is drawn only for the users of its
commune and admins (everyone else sees features/disclosure.py's groups instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.analysis.base import commune_code
from geo_comuna.errors import NotFound, Said
from geo_comuna.features.filters import commune_sql
from geo_comuna.features.query import Filters, located_where, property_exprs
from geo_comuna.layers import LAYERS, Layer

#: lon/lat decimals in inline GeoJSON: 6 is ~0.1 m
DECIMALS = 6
#: standalone big layers: simplified by this much and snapped to this grid (degrees, ~1.1 m
#: at the equator; ST_SnapToGrid, as ST_ReducePrecision's overlay costs ten times more for no
#: visible gain on a screen), then written as geobuf
QUANTUM_DEG = 1e-5
EMPTY = '{"type":"FeatureCollection","features":[]}'


def _sql(name: str) -> str:
    return resources.files("geo_comuna.maps").joinpath("sql", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class CommuneInfo:
    id: int
    code: str
    name: str
    status: str
    bounds: tuple[float, float, float, float]  # west, south, east, north (lon/lat)


async def commune_info(conn: AsyncConnection, commune_id: int) -> CommuneInfo:
    cur = await conn.execute(
        "SELECT id, code, name, status, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT *, ST_Extent(geom) OVER () AS e FROM communes WHERE id = %s) c",
        (commune_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(f"no commune with id {commune_id}", f"no existe la comuna con id {commune_id}")
        )
    return CommuneInfo(row[0], row[1], row[2], row[3], tuple(row[4:8]))


async def file_code(conn: AsyncConnection, commune_id: int) -> str:
    """The commune's code as a download's file name holds it: files named by the id
    (comuna-4-es.html) could not be told apart on a phone holding several communes'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", await commune_code(conn, commune_id))


def readable_names(layer: Layer, names: list[str], access: Access) -> list[str]:
    """The wanted properties the reader gets (members-only ones they may read nowhere go)."""
    exprs, _ = property_exprs(layer, access)
    given = {name for name, _ in exprs}
    return [n for n in names if n in given]


def _columns(
    layer: Layer,
    names: list[str],
    access: Access,
    *,
    scalar_only: bool = False,
    with_id: bool = True,
) -> tuple[sql.Composable, sql.Composable]:
    """``t.id, <expr> AS name, ...`` for the wanted properties, and the joins they need."""
    exprs, joins = property_exprs(layer, access)
    arrays = {d.name for d in layer.derived if d.type == "array"}
    dates = {a.name for a in layer.attributes if a.type == "date"}
    cols: list[sql.Composable] = [sql.SQL("t.id")] if with_id else []
    for name, expr in exprs:
        if name not in names or (scalar_only and name in arrays):
            continue
        if scalar_only and name in dates:  # geobuf and MVT carry no date type
            expr = sql.SQL("({})::text").format(expr)
        cols.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
    return sql.SQL(", ").join(cols), joins


async def count(conn: AsyncConnection, layer: Layer, filters: Filters, access: Access) -> int:
    where, params = located_where(layer, filters, access)
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(sql.Identifier(layer.table), where),
        params,
    )
    return (await cur.fetchone())[0]


async def vertices(conn: AsyncConnection, layer: Layer, filters: Filters, access: Access) -> int:
    """How many vertices the layer's features here have, all together."""
    where, params = located_where(layer, filters, access)
    cur = await conn.execute(
        sql.SQL("SELECT coalesce(sum(ST_NPoints(t.geom)), 0) FROM {} t WHERE {}").format(
            sql.Identifier(layer.table), where
        ),
        params,
    )
    return (await cur.fetchone())[0]


async def geojson(
    conn: AsyncConnection, layer: Layer, filters: Filters, names: list[str], access: Access
) -> str:
    """A FeatureCollection (text) of the layer's features with the named properties."""
    where, params = located_where(layer, filters, access)
    columns, joins = _columns(layer, names, access)
    query = sql.SQL("""
        SELECT '{{"type":"FeatureCollection","features":['
               || coalesce(string_agg(ST_AsGeoJSON(q.*, 'geom', {decimals}), ',' ORDER BY q.id),
                           '') || ']}}'
        FROM (SELECT {columns}, t.geom FROM {table} t {joins} WHERE {where}) q
    """).format(
        decimals=sql.Literal(DECIMALS),
        columns=columns,
        table=sql.Identifier(layer.table),
        joins=joins,
        where=where,
    )
    cur = await conn.execute(query, params)
    return (await cur.fetchone())[0]


async def exchange_commune_names(conn: AsyncConnection) -> dict[str, str]:
    """The name of every commune at either end of an exchange, by its code."""
    cur = await conn.execute("""
        SELECT c.code, c.name FROM communes c
        WHERE c.id IN (SELECT from_commune_id FROM exchanges
                       UNION SELECT to_commune_id FROM exchanges)
    """)
    return dict(await cur.fetchall())


async def geobuf(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    names: list[str],
    access: Access,
    *,
    quantum: float = QUANTUM_DEG,
) -> bytes:
    """The layer's features as geobuf (bytes), simplified and snapped to ``quantum`` degrees:
    what a standalone file carries for a layer too big to inline as GeoJSON.

    Built once per version of what its features are built from and per reader, through
    work.cache(): a package's maps and reports in two languages carry the same bytes (~0.5 s
    each for 200,000 parcels)."""
    cache = work.cache()
    if cache is None:
        return await _geobuf(conn, layer, filters, names, access, quantum)
    reader = access.key if layer.restricted else None
    key = ("geobuf", layer.name, filters.key(), reader, tuple(names), quantum)
    return await cache.get_or_compute(
        conn,
        key,
        layer.feature_tables,
        lambda: _geobuf(conn, layer, filters, names, access, quantum),
    )


async def _geobuf(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    names: list[str],
    access: Access,
    quantum: float,
) -> bytes:
    where, params = located_where(layer, filters, access)
    columns, joins = _columns(layer, names, access, scalar_only=True, with_id=False)
    params["quantum"] = quantum
    query = sql.SQL("""
        SELECT ST_AsGeobuf(q, 'geom') FROM (
            SELECT {columns},
                   ST_SnapToGrid(ST_Simplify(t.geom, %(quantum)s), %(quantum)s) AS geom
            FROM {table} t {joins} WHERE {where} ORDER BY t.id
            OFFSET 0) q  -- each shape made once: the outer filter, pushed down, made it three times
        WHERE q.geom IS NOT NULL AND NOT ST_IsEmpty(q.geom)
    """).format(columns=columns, table=sql.Identifier(layer.table), joins=joins, where=where)
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


async def layer_version(conn: AsyncConnection, layer: Layer) -> int:
    """Bumped by every write to a table the layer's features are built from (their own, and
    those whose codes they show: Layer.feature_tables; each table's version comes from
    migration 0001): tile URLs, ETags and cache keys carry it, so that no cache shows stale
    tiles. It is the sum of those tables' versions, which only grow. An exchange's tile
    shows its communes' codes: with its own table's version alone, a commune's new code
    never reached it (same ETag, 304s, the old code for a year behind ?v=)."""
    cur = await conn.execute(
        "SELECT coalesce(sum(version), 0) FROM layer_versions WHERE layer = ANY(%s)",
        (sorted(layer.feature_tables),),
    )
    return int((await cur.fetchone())[0])


async def state_lines(conn: AsyncConnection, commune_id: int) -> str:
    """The state lines around a commune (FeatureCollection text; properties code, name)."""
    cur = await conn.execute(_sql("state_lines.sql"), {"commune": commune_id, "decimals": DECIMALS})
    return (await cur.fetchone())[0] or EMPTY


async def commune_points(conn: AsyncConnection) -> str:
    """One point per commune (on its surface) with code, name, status and the state holding
    most of it: the national map's markers, visible at any zoom."""
    cur = await conn.execute(_sql("commune_points.sql"), {"decimals": DECIMALS})
    return (await cur.fetchone())[0] or EMPTY


async def state_communes(conn: AsyncConnection, tolerance: float = 0.005) -> str:
    """States simplified for country scale (``tolerance`` degrees), with their commune counts
    (properties code, name, kind, area_ha, communes, active, registered)."""
    cur = await conn.execute(_sql("state_communes.sql"), {"tolerance": tolerance, "decimals": 4})
    return (await cur.fetchone())[0] or EMPTY


async def value_range(
    conn: AsyncConnection, layer: Layer, attribute: str
) -> tuple[float, float] | None:
    """Smallest and largest value of a public numeric attribute (for line widths)."""
    if layer.attribute(attribute) is None or layer.members_only(attribute):
        return None
    cur = await conn.execute(
        sql.SQL("SELECT min({a}), max({a}) FROM {t}").format(
            a=sql.Identifier(attribute), t=sql.Identifier(layer.table)
        )
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else (float(row[0]), float(row[1]))


async def state_labels(conn: AsyncConnection, commune_id: int) -> str:
    """Names for a commune's map: the commune's (at the top of its outline) and each state
    on it or around it: on its side of the commune where a state line crosses it, else beside
    the commune (FeatureCollection text; label, kind, rank)."""
    cur = await conn.execute(
        _sql("state_labels.sql"), {"commune": commune_id, "decimals": DECIMALS}
    )
    return (await cur.fetchone())[0] or EMPTY


async def national_labels(conn: AsyncConnection, tolerance: float = 0.01) -> str:
    """Names for the national map: states, then communes (label, kind, rank)."""
    cur = await conn.execute(_sql("national_labels.sql"), {"tolerance": tolerance, "decimals": 4})
    return (await cur.fetchone())[0] or EMPTY


async def values_present(
    conn: AsyncConnection, layer: Layer, attribute: str, commune_id: int | None = None
) -> set[str] | None:
    """The values of a public attribute that some feature has, of one commune's features
    when given (None for a members-only one: its legend keeps every value, telling nothing
    about who has which)."""
    if layer.attribute(attribute) is None or layer.members_only(attribute):
        return None
    where = sql.SQL("")
    if commune_id is not None:
        where = sql.SQL(" AND {}").format(commune_sql(layer, sql.Literal(commune_id)))
    cur = await conn.execute(
        sql.SQL("SELECT DISTINCT t.{a}::text FROM {t} t WHERE t.{a} IS NOT NULL{w}").format(
            a=sql.Identifier(attribute), t=sql.Identifier(layer.table), w=where
        )
    )
    return {row[0] for row in await cur.fetchall()}


async def national_bounds(conn: AsyncConnection) -> tuple[float, float, float, float] | None:
    """The states' extent, leaving out parts under 1 km² (Isla de Aves, 500 km out in the
    Caribbean, would otherwise shrink the country to a corner of the frame)."""
    cur = await conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM state_parts "
        "WHERE ST_Area(geom::geography) >= 1e6) s"
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else tuple(row)


def _codes(layer: str, attribute: str) -> list[str]:
    """A coded attribute's values in its domain's order, the legend's (found from outside:
    the report's tenure table was in the codes' alphabetical order, English's)."""
    domain = LAYERS[layer].attribute(attribute).domain
    return list(domain.values) if domain is not None else []


async def tenure_summary(conn: AsyncConnection, commune_id: int) -> list[dict[str, Any]]:
    """Parcels per tenure status: count and area (ha, geodesic)."""
    cur = await conn.execute(
        "SELECT tenure, count(*), round((sum(ST_Area(geom::geography)) / 10000)::numeric, 2)"
        "::float, "
        "count(recovered_on) FROM parcels WHERE commune_id = %s GROUP BY tenure "
        "ORDER BY array_position(%s::text[], tenure), tenure",
        (commune_id, _codes("parcels", "tenure")),
    )
    return [
        {"tenure": r[0], "parcels": r[1], "area_ha": r[2], "recovered": r[3]}
        for r in await cur.fetchall()
    ]


async def utility_summary(conn: AsyncConnection, commune_id: int) -> dict[str, list[dict]]:
    """Dwellings and residents by water and by electricity situation."""
    out: dict[str, list[dict]] = {}
    for column in ("water", "electricity"):
        cur = await conn.execute(
            sql.SQL(
                "SELECT {c}, count(*), coalesce(sum(residents), 0) FROM dwellings "
                "WHERE commune_id = %s GROUP BY {c} ORDER BY array_position(%s::text[], {c}), {c}"
            ).format(c=sql.Identifier(column)),
            (commune_id, _codes("dwellings", column)),
        )
        out[column] = [
            {"value": r[0], "dwellings": r[1], "residents": int(r[2])} for r in await cur.fetchall()
        ]
    return out
