"""Mapbox vector tiles of any registry layer, built by PostGIS (ST_AsMVT) in one statement.

Tiles are Web Mercator (EPSG:3857) z/x/y. The tile envelope is widened by the buffer so lines
and outlines continue across tile edges; features are selected with the layer's GiST index
on lon/lat (the envelope transformed to EPSG:4326 is still a rectangle), then clipped and
quantized to the tile's 4096 x 4096 grid by ST_AsMVTGeom. Properties: the named ones, dates
as text; array-valued ones are left out (MVT has no arrays).

A tile that would hold more than ``MAX_DETAIL`` features (a whole big commune at low zoom,
where each parcel is a pixel or two) is drawn as a grid of cells of 1/32 of the tile instead:
each cell carries ``gc_count`` (features whose centre lies in it) and the most frequent value
of each attribute with allowed values, so it takes the colour most of its features have.
Grouping centres on a lon/lat grid costs far less than clipping every feature.
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from geo_comuna.errors import InvalidInput
from geo_comuna.features.query import Filters, property_exprs, where_sql
from geo_comuna.layers import Layer

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
MAX_DETAIL = 4_000
CELLS = 32  # per tile side, in the summary grid (8 px cells)


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"zoom {z} is outside 0..{MAX_ZOOM}")
    size = 1 << z
    if not (0 <= x < size and 0 <= y < size):
        raise InvalidInput(f"tile {z}/{x}/{y} does not exist: x and y must be in 0..{size - 1}")


def _columns(layer: Layer, names: list[str]) -> sql.Composable:
    exprs, _ = property_exprs(layer)
    arrays = {d.name for d in layer.derived if d.type == "array"}
    dates = {a.name for a in layer.attributes if a.type == "date"}
    cols: list[sql.Composable] = [sql.SQL("t.id")]
    for name, expr in exprs:
        if name in names and name not in arrays:
            if name in dates:
                expr = sql.SQL("({})::text").format(expr)
            cols.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
    return sql.SQL(", ").join(cols)


async def _count(conn: AsyncConnection, layer: Layer, z: int, x: int, y: int,
                 filters: Filters) -> int:
    where, params = where_sql(layer, filters)
    params.update(z=z, x=x, y=y, limit=MAX_DETAIL + 1)
    cur = await conn.execute(sql.SQL("""
        SELECT count(*) FROM (SELECT 1 FROM {table} t
            WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326)
              AND {where} LIMIT %(limit)s) s""").format(
        table=sql.Identifier(layer.table), where=where), params)
    return (await cur.fetchone())[0]


async def _summary_tile(conn: AsyncConnection, layer: Layer, z: int, x: int, y: int,
                        filters: Filters, names: list[str]) -> bytes:
    where, params = where_sql(layer, filters)
    modes = [sql.SQL("mode() WITHIN GROUP (ORDER BY t.{c}) AS {c}").format(
        c=sql.Identifier(a.name)) for a in layer.attributes
        if a.domain is not None and a.name in names]
    params.update(z=z, x=x, y=y, name=layer.name, cell=360 / (1 << z) / CELLS)
    query = sql.SQL("""
        WITH env AS (
            SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
                   ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326) AS lonlat
        ), cells AS (
            SELECT ST_SnapToGrid(ST_Centroid(t.geom), %(cell)s) AS centre,
                   count(*)::integer AS gc_count {modes}
            FROM env, {table} t
            WHERE t.geom && env.lonlat AND ST_Intersects(ST_Centroid(t.geom), env.lonlat)
              AND {where}
            GROUP BY 1
        )
        SELECT ST_AsMVT(q, %(name)s, {extent}, 'geom') FROM (
            SELECT cells.gc_count {names},
                   ST_AsMVTGeom(ST_Transform(ST_Expand(cells.centre, %(cell)s / 2), 3857),
                                env.tile, {extent}, 0, true) AS geom
            FROM cells, env
        ) q WHERE q.geom IS NOT NULL
    """).format(modes=sql.SQL("").join(sql.SQL(", ") + m for m in modes),
                names=sql.SQL("").join(
                    sql.SQL(", cells.{}").format(sql.Identifier(a.name)) for a in layer.attributes
                    if a.domain is not None and a.name in names),
                table=sql.Identifier(layer.table), where=where, extent=sql.Literal(EXTENT))
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


async def tile(conn: AsyncConnection, layer: Layer, z: int, x: int, y: int,
               filters: Filters, names: list[str]) -> bytes:
    """One tile (may be empty bytes) whose single MVT layer is named after ``layer``."""
    check_tile(z, x, y)
    if await _count(conn, layer, z, x, y, filters) > MAX_DETAIL:
        return await _summary_tile(conn, layer, z, x, y, filters, names)
    where, params = where_sql(layer, filters)
    _, joins = property_exprs(layer)
    params.update(z=z, x=x, y=y, name=layer.name, margin=BUFFER / EXTENT)
    query = sql.SQL("""
        WITH env AS (
            SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
                   ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s,
                                                margin => %(margin)s), 4326) AS lonlat
        )
        SELECT ST_AsMVT(q, %(name)s, {extent}, 'geom', 'id') FROM (
            SELECT {columns},
                   ST_AsMVTGeom(ST_Transform(t.geom, 3857), env.tile, {extent}, {buffer},
                                true) AS geom
            FROM env, {table} t {joins}
            WHERE t.geom && env.lonlat AND {where}
        ) q
        WHERE q.geom IS NOT NULL
    """).format(extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER),
                columns=_columns(layer, names), table=sql.Identifier(layer.table),
                joins=joins, where=where)
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
