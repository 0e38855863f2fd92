"""Mapbox vector tiles of any registry layer, built by PostGIS (ST_AsMVT) in one statement.

Tiles are Web Mercator (EPSG:3857) z/x/y. The tile envelope is widened by the buffer so lines
and outlines continue across tile edges; features are selected with the layer's GiST index
on lon/lat (the envelope transformed to EPSG:4326 is still a rectangle), simplified by half
a cell of the tile's 4096 x 4096 grid (ST_Simplify, keeping features that would collapse),
then clipped and quantized to that grid by ST_AsMVTGeom. Simplifying first costs little and
spares ST_AsMVTGeom's clipping and validity repair every vertex finer than the grid: 100
parcels of 50,000 vertices each took 15 s for one zoom-13 tile of 1.2 MB without it, and
0.8 s for 89 KB with it. Properties: the named ones, dates as text;
array-valued ones are left out (MVT has no arrays).

A tile that would hold more than ``MAX_DETAIL`` features, or areas and lines most of which
are under ``MIN_DETAIL_PX`` pixels wide (a big commune at low zoom, where each parcel is a
pixel or two; deciding by size keeps the tiles at a commune's edge, which hold fewer features,
from being drawn in full detail beside summarised ones), is drawn as a grid of cells of 1/32
of the tile instead:
each cell carries ``gc_count`` (features whose centre lies in it) and the most frequent value
of each attribute with allowed values, so it takes the colour most of its features have.
Grouping centres on a lon/lat grid costs far less than clipping every feature.

Tiles follow the registry's read rules like every other read: a members-only property is left
out (NULL in other communes' features), and a feature whose position is members-only is not
in the tile at all, nor counted in a summary cell, unless it is of one of the reader's
communes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from psycopg import AsyncConnection, sql

from geo_comuna.accounts import Access
from geo_comuna.errors import InvalidInput, Said
from geo_comuna.features.filters import Filters, located_where
from geo_comuna.features.properties import property_exprs
from geo_comuna.layers import Layer

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
MAX_DETAIL = 4_000
#: median feature width (256-px tile pixels) under which areas and lines are summarised
MIN_DETAIL_PX = 4.0
CELLS = 32  # per tile side, in the summary grid (8 px cells)
#: the width of the Web Mercator world (ST_TileEnvelope(0, 0, 0)), metres
WORLD_M = 40_075_016.685578488


def cell_metres(z: int) -> float:
    """The side of one cell of a zoom-``z`` tile's EXTENT grid, in Web Mercator metres."""
    return WORLD_M / 2**z / EXTENT


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(
            Said(f"zoom {z} is outside 0..{MAX_ZOOM}", f"el zoom {z} está fuera de 0..{MAX_ZOOM}")
        )
    size = 1 << z
    if not (0 <= x < size and 0 <= y < size):
        raise InvalidInput(
            Said(
                f"tile {z}/{x}/{y} does not exist: x and y must be in 0..{size - 1}",
                f"la tesela {z}/{x}/{y} no existe: x e y deben estar en 0..{size - 1}",
            )
        )


def depends_on_reader(layer: Layer, names: list[str]) -> bool:
    """Do tiles of ``layer`` carrying properties ``names`` differ from reader to reader?"""
    return layer.geometry_read == "members" or any(layer.members_only(n) for n in names)


def _columns(layer: Layer, names: list[str], access: Access) -> sql.Composable:
    exprs, _ = property_exprs(layer, access)
    arrays = {d.name for d in layer.derived if d.type == "array"}
    dates = {a.name for a in layer.attributes if a.type == "date"}
    cols: list[sql.Composable] = [sql.SQL("t.id")]
    for name, expr in exprs:
        if name in names and name not in arrays:
            if name in dates:
                expr = sql.SQL("({})::text").format(expr)
            cols.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
    return sql.SQL(", ").join(cols)


async def _wants_summary(
    conn: AsyncConnection, layer: Layer, z: int, x: int, y: int, filters: Filters, access: Access
) -> bool:
    """Whether the tile is drawn as the summary grid: more than ``MAX_DETAIL`` features, or
    areas and lines whose median bounding-box width is under ``MIN_DETAIL_PX``."""
    where, params = located_where(layer, filters, access)
    params.update(z=z, x=x, y=y, limit=MAX_DETAIL + 1)
    cur = await conn.execute(
        sql.SQL("""
        SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s.w)
        FROM (SELECT ST_XMax(t.geom::box2d) - ST_XMin(t.geom::box2d) AS w FROM {table} t
            WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326)
              AND {where} LIMIT %(limit)s) s""").format(
            table=sql.Identifier(layer.table), where=where
        ),
        params,
    )
    n, width_deg = await cur.fetchone()
    if n > MAX_DETAIL:
        return True
    if not n or "Point" in layer.geometry_type:
        return False
    return width_deg / (360 / (1 << z)) * 256 < MIN_DETAIL_PX


async def _summary_tile(
    conn: AsyncConnection,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: Filters,
    names: list[str],
    access: Access,
) -> bytes:
    where, params = located_where(layer, filters, access)
    # a cell mixes communes: a members-only value is summarised for admins only
    themed = [
        a
        for a in layer.attributes
        if a.domain is not None and a.name in names and (a.read == "public" or access.everywhere)
    ]
    modes = [
        sql.SQL("mode() WITHIN GROUP (ORDER BY t.{c}) AS {c}").format(c=sql.Identifier(a.name))
        for a in themed
    ]
    params.update(z=z, x=x, y=y, name=layer.name, cell=360 / (1 << z) / CELLS)
    query = sql.SQL("""
        WITH env AS MATERIALIZED (
            SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile, lonlat,
                   ST_XMin(lonlat) AS x0, ST_XMax(lonlat) AS x1,
                   ST_YMin(lonlat) AS y0, ST_YMax(lonlat) AS y1
            FROM ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326) AS lonlat
        ), cells AS (
            SELECT round(t.cx / %(cell)s) AS i, round(t.cy / %(cell)s) AS j,
                   count(*)::integer AS gc_count {modes}
            FROM env, (
                -- the centre of each geometry's bounding box, each step worked out once per
                -- feature: OFFSET 0 keeps PostgreSQL from copying an expression into every
                -- place that uses it (the box was found again from the coordinates twelve
                -- times per feature)
                SELECT (ST_XMin(s.box) + ST_XMax(s.box)) / 2 AS cx,
                       (ST_YMin(s.box) + ST_YMax(s.box)) / 2 AS cy, s.*
                FROM (
                    SELECT t.geom::box2d AS box, t.*
                    FROM env, {table} t
                    WHERE t.geom && env.lonlat AND {where} OFFSET 0
                ) s OFFSET 0
            ) t
            WHERE t.cx >= env.x0 AND t.cx < env.x1 AND t.cy >= env.y0 AND t.cy < env.y1
            GROUP BY 1, 2
        )
        SELECT ST_AsMVT(q, %(name)s, {extent}, 'geom') FROM (
            SELECT cells.gc_count {names},
                   ST_AsMVTGeom(ST_Transform(ST_MakeEnvelope(
                       (cells.i - 0.5) * %(cell)s, (cells.j - 0.5) * %(cell)s,
                       (cells.i + 0.5) * %(cell)s, (cells.j + 0.5) * %(cell)s, 4326), 3857),
                                env.tile, {extent}, 0, true) AS geom
            FROM cells, env
            OFFSET 0  -- each cell made once: merged into the outer query, twice
        ) q WHERE q.geom IS NOT NULL
    """).format(
        modes=sql.SQL("").join(sql.SQL(", ") + m for m in modes),
        names=sql.SQL("").join(
            sql.SQL(", cells.{}").format(sql.Identifier(a.name)) for a in themed
        ),
        table=sql.Identifier(layer.table),
        where=where,
        extent=sql.Literal(EXTENT),
    )
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


async def tile(
    conn: AsyncConnection,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: Filters,
    names: list[str],
    access: Access,
) -> bytes:
    """One tile (may be empty bytes) whose single MVT layer is named after ``layer``, as this
    reader may read it."""
    check_tile(z, x, y)
    if await _wants_summary(conn, layer, z, x, y, filters, access):
        return await _summary_tile(conn, layer, z, x, y, filters, names, access)
    where, params = located_where(layer, filters, access)
    _, joins = property_exprs(layer, access)
    params.update(
        z=z, x=x, y=y, name=layer.name, margin=BUFFER / EXTENT, half_cell=cell_metres(z) / 2
    )
    query = sql.SQL("""
        WITH env AS (
            -- the buffer cut at 180 degrees: past it, lon/lat would wrap to the other side
            -- of the world and the tiles at x = 0 and x = 2^z - 1 would look there
            SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
                   ST_Transform(ST_ClipByBox2D(
                       ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s),
                       ST_TileEnvelope(0, 0, 0)), 4326) AS lonlat
        )
        SELECT ST_AsMVT(q, %(name)s, {extent}, 'geom', 'id') FROM (
            SELECT {columns},
                   ST_AsMVTGeom(ST_Simplify(ST_Transform(t.geom, 3857), %(half_cell)s, true),
                                env.tile, {extent}, {buffer}, true) AS geom
            FROM env, {table} t {joins}
            WHERE t.geom && env.lonlat AND {where}
            OFFSET 0  -- each shape made once: merged into the outer query, twice
        ) q
        WHERE q.geom IS NOT NULL
    """).format(
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        columns=_columns(layer, names, access),
        table=sql.Identifier(layer.table),
        joins=joins,
        where=where,
    )
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


#: what the tile cache of a server holds at most: 64 MiB of tile bodies
TILE_CACHE_BYTES = 64 * 2**20


class TileCache:
    """Recently built tiles, least recently used dropped first once they pass ``max_bytes``.

    Keys hold the layer's version (bumped by every write), so an edit makes its old tiles
    unreachable instead of stale; they age out. One per app, made by ``create_app`` (api/app.py)
    and handed to the tile route by a dependency (api/deps.py)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._tiles: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        body = self._tiles.get(key)
        if body is not None:
            self._tiles.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        old = self._tiles.pop(key, None)
        self.size += len(body) - (len(old) if old is not None else 0)
        self._tiles[key] = body
        while self.size > self.max_bytes:
            _, dropped = self._tiles.popitem(last=False)
            self.size -= len(dropped)

    def clear(self) -> None:
        """Forget every tile (bench/bench_maps.py times a cold cache)."""
        self._tiles.clear()
        self.size = 0
