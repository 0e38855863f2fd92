"""A pre-drawn picture of a very big layer for standalone files: one RGBA PNG per theme, each
feature filled with its value's colour, placed on the map with L.imageOverlay.

A browser needs ~25 s to decode and tile 100,000 parcels of inline geobuf before it shows
anything; the picture shows at once, and the vector features are only decoded once the map is
zoomed in to where they are big enough to tell apart (``detail_zoom``).

The picture is drawn in Web Mercator (EPSG:3857) metres, which is the space Leaflet stretches
an image overlay in, so it lines up with the vector features at every zoom. PostGIS projects
the geometries and measures the extent; rasterio burns them into the grid and writes the PNG.
"""

from __future__ import annotations

import base64
import math
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection, sql
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

from geo_comuna import gdal, work
from geo_comuna.accounts import Access
from geo_comuna.features.query import Filters, located_where
from geo_comuna.features.tiles import MIN_DETAIL_PX
from geo_comuna.layers import Layer

gdal.raster()  # rasterio writes the PNGs: only with the drivers geo_comuna allows
#: pixels along the picture's longer side
MAX_PX = 2048
#: shapes handed to rasterio at a time
CHUNK = 10_000


@dataclass(frozen=True)
class Overview:
    #: theme attribute -> data: URI of its PNG
    images: dict[str, str]
    #: south-west and north-east corners (lat, lon), as Leaflet takes them
    bounds: tuple[tuple[float, float], tuple[float, float]]
    #: first zoom where the median feature is MIN_DETAIL_PX wide: vector features from there
    detail_zoom: int


def _hex_rgba(colour: str, opacity: float) -> tuple[int, int, int, int]:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    return (int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16), round(255 * opacity))


def _png(codes: np.ndarray, palette: list[tuple[int, int, int, int]]) -> str:
    """A paletted PNG (a third the size of RGBA) as a data: URI; entry 0 is transparent."""
    height, width = codes.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # placed by Leaflet, not GDAL
        with MemoryFile() as memory:
            with memory.open(
                driver="PNG", width=width, height=height, count=1, dtype="uint8"
            ) as png:
                png.write(codes, 1)
                png.write_colormap(1, dict(enumerate(palette)))
            body = memory.read()
    return "data:image/png;base64," + base64.b64encode(body).decode("ascii")


def _burn(burned: np.ndarray, wkb: list[bytes], start: int, transform: Any) -> None:
    """The shapes ``wkb`` burned into ``burned`` with the row numbers from ``start`` on. A
    shape simplified away at the picture's scale (none, or empty) is left out: rasterio
    warned once per such shape, ~20,000 lines for a commune of 60,000 small parcels."""
    shapes = shapely.from_wkb(wkb)
    numbers = np.arange(start, start + len(shapes))
    kept = ~(shapely.is_missing(shapes) | shapely.is_empty(shapes))
    if kept.any():
        pairs = zip(shapes[kept], numbers[kept].tolist(), strict=True)
        rasterize(pairs, out=burned, transform=transform)


def _coloured(
    burned: np.ndarray,
    values: list[tuple],
    themes: dict[str, dict[str, str]],
    fallback: str,
    opacity: float,
) -> dict[str, str]:
    """The PNG of each theme: the row numbers ``burned`` coloured by each row's ``values``
    (one per theme, in the themes' order)."""
    images: dict[str, str] = {}
    for i, (attribute, colours) in enumerate(themes.items()):
        names = list(colours)
        codes = {v: n for n, v in enumerate(names, start=1)}
        row_codes = np.array([0] + [codes.get(r[i], len(names) + 1) for r in values], dtype="uint8")
        palette = (
            [(0, 0, 0, 0)]
            + [_hex_rgba(colours[v], opacity) for v in names]
            + [_hex_rgba(fallback, opacity)]
        )
        images[attribute] = _png(row_codes[burned], palette)
    return images


async def overview(
    conn: AsyncConnection,
    layer: Layer,
    filters: Filters,
    themes: dict[str, dict[str, str]],
    access: Access,
    *,
    fallback: str,
    opacity: float,
) -> Overview | None:
    """Pictures of ``layer`` coloured by each theme (attribute -> {value: colour}), of the
    features whose position ``access`` may read; None when there is nothing to draw.

    Drawn once per layer version and reader through work.cache(): a package draws the same
    pictures for its map, its report and its analysis maps in two languages, six times
    ~3 s for 200,000 parcels."""

    where, params = located_where(layer, filters, access)

    def draw() -> Awaitable[Overview | None]:
        return _drawn(conn, sql.Identifier(layer.table), where, params, themes, fallback, opacity)

    cache = work.cache()
    if cache is None:
        return await draw()
    drawn = tuple((attribute, tuple(colours.items())) for attribute, colours in themes.items())
    reader = access.key if layer.restricted else None
    key = ("overview", layer.name, filters.key(), reader, drawn, fallback, opacity)
    return await cache.get_or_compute(conn, key, (layer.table,), draw)


async def _drawn(
    conn: AsyncConnection,
    table: sql.Identifier,
    where: sql.Composable,
    params: dict[str, Any],
    themes: dict[str, dict[str, str]],
    fallback: str,
    opacity: float,
) -> Overview | None:
    """overview() for the rows of ``table`` that ``where`` keeps."""
    cur = await conn.execute(
        sql.SQL("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e),
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMin(e), ST_YMin(e)), 3857), 4326)),
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMin(e), ST_YMin(e)), 3857), 4326)),
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMax(e), ST_YMax(e)), 3857), 4326)),
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMax(e), ST_YMax(e)), 3857), 4326)),
               w
        FROM (SELECT ST_Extent(ST_Transform(t.geom, 3857)) AS e,
                     percentile_cont(0.5) WITHIN GROUP (
                         ORDER BY ST_XMax(t.geom::box2d) - ST_XMin(t.geom::box2d)) AS w
              FROM {table} t WHERE {where}) s""").format(table=table, where=where),
        params,
    )
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    west, south, east, north = row[0:4]
    scale = MAX_PX / max(east - west, north - south, 1e-9)
    width, height = (
        max(1, math.ceil((east - west) * scale)),
        max(1, math.ceil((north - south) * scale)),
    )
    transform = from_bounds(west, south, east, north, width, height)
    pixel_m = 1 / scale
    columns = sql.SQL("").join(sql.SQL(", t.{}::text").format(sql.Identifier(a)) for a in themes)
    # burned once with row numbers (1-based), then coloured per theme by lookup; the rows are
    # read and burned CHUNK at a time (a server-side cursor), as rasterio holds a GeoJSON-like
    # copy of every shape it is given: only their themes' values are kept
    burned = np.zeros((height, width), dtype="uint32")
    values: list[tuple] = []
    async with conn.transaction(), conn.cursor(name="overview") as cur:
        # simplified to half a pixel: detail finer than the picture only costs time
        await cur.execute(
            sql.SQL("""
            SELECT ST_AsBinary(ST_Simplify(ST_Transform(t.geom, 3857), %(tolerance)s)) {columns}
            FROM {table} t WHERE {where}""").format(columns=columns, table=table, where=where),
            {**params, "tolerance": pixel_m / 2},
        )
        rows = await cur.fetchmany(CHUNK)
        while rows:  # the next chunk read while this one burns
            async with work.beside(cur.fetchmany(CHUNK)) as following:
                await work.cpu(_burn, burned, [r[0] for r in rows], len(values) + 1, transform)
                values += (r[1:] for r in rows)
                rows = await following
    images = await work.cpu(_coloured, burned, values, themes, fallback, opacity)
    median_deg = row[8] or 0
    detail = math.ceil(math.log2(MIN_DETAIL_PX * 360 / (256 * median_deg))) if median_deg > 0 else 0
    return Overview(images, ((row[4], row[5]), (row[6], row[7])), max(0, min(detail, 22)))
