"""The DEM store: a commune's DEMs, registered from a single-band GeoTIFF in any CRS and kept
in PostGIS (table ``dems``, migration 0002) as a GeoTIFF that geo_comuna wrote itself.
Elevations are metres above the DEM's own vertical datum. Reading a stored DEM for an analysis
(windows, elevations at points) is analysis/toolkit/dem.py's.

An upload is hostile: it must start as a TIFF, is opened by the GTiff driver only (rasterio's
GDAL knows no other file format, geo_comuna/gdal.py), its size is checked from its header
before any cell is read (Limits: cells and uncompressed bytes), and what is stored is a copy
written block by block, never the uploaded bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio.errors
import rasterio.warp
import rasterio.windows
import shapely
from psycopg import AsyncConnection
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader, MemoryFile

from geo_comuna import gdal, work
from geo_comuna.errors import InvalidFile, Said, TooLarge, UnknownCRS
from geo_comuna.io import sniff

rasterio = gdal.raster()
#: rows copied at a time when the upload is written again
_ROWS = 256


@dataclass(frozen=True)
class Dem:
    id: int
    commune_id: int
    name: str
    crs: str
    resolution_m: float
    footprint: shapely.Geometry  # lon/lat
    tiff: bytes


@dataclass(frozen=True)
class Checked:
    """An uploaded DEM once accepted: its description and the GeoTIFF to store."""

    crs: str
    width: int
    height: int
    resolution_m: float
    footprint: shapely.Geometry  # lon/lat
    tiff: bytes


def open_geotiff(source: Path | MemoryFile, label: str) -> DatasetReader:
    try:
        if isinstance(source, MemoryFile):
            return source.open(driver="GTiff")
        return rasterio.open(source, driver="GTiff")
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidFile(
            Said(
                f"cannot read {label} as a GeoTIFF: {exc}",
                f"no se puede leer {label} como GeoTIFF: {exc}",
            )
        ) from None


def check(path: Path, limits: work.Limits) -> Checked:
    """Accept a DEM upload or refuse it (blocking: run it with work.cpu)."""
    sniff.geotiff(path)
    with open_geotiff(path, path.name) as src:
        _check_shape(src, path.name, limits)
        crs = src.crs.to_string()
        _check_bounds(src, path.name)
        outline = shapely.box(*src.bounds).segmentize(
            max(src.bounds.right - src.bounds.left, src.bounds.top - src.bounds.bottom) / 16
        )
        try:
            footprint = shapely.geometry.shape(
                rasterio.warp.transform_geom(
                    src.crs, "EPSG:4326", shapely.geometry.mapping(outline)
                )
            )
        except (rasterio.errors.RasterioError, CPLE_BaseError):  # no place its CRS can say
            footprint = shapely.box(np.inf, np.inf, np.inf, np.inf)
        _check_place(footprint, path.name)
        res = abs(src.res[0])
        if src.crs.is_geographic:  # degrees -> metres at the raster's centre
            lon, lat = footprint.centroid.x, footprint.centroid.y
            res = pyproj.Geod(ellps="WGS84").inv(lon, lat, lon + res, lat)[2]
        if res > MAX_CELL_M:
            raise InvalidFile(
                Said(
                    f"{path.name} has cells of {res:,.0f} m; a DEM for parcels has cells of at "
                    f"most {MAX_CELL_M:,} m (SRTM: 30 m)",
                    f"{path.name} tiene celdas de {res:,.0f} m; un MDE para parcelas tiene celdas "
                    f"de {MAX_CELL_M:,} m como mucho (SRTM: 30 m)".replace(",", "."),
                )
            )
        try:
            tiff, low, high = _copy(src, path.name)
        except rasterio.errors.RasterioIOError as exc:  # a truncated or corrupt cell block
            raise InvalidFile(
                Said(
                    f"cannot read the cells of {path.name}: {exc}",
                    f"no se pueden leer las celdas de {path.name}: {exc}",
                )
            ) from None
        _check_elevations(path.name, low, high)
        return Checked(crs, src.width, src.height, res, footprint, tiff)


def _check_bounds(src: DatasetReader, name: str) -> None:
    """A grid whose corners are no place: not finite numbers, the same number at the file's
    precision (an origin of 1e20 m, where 30 m cells add nothing: found from outside, a
    500), or degrees beyond the globe's (a longitude of -200 was stored as it came)."""
    left, bottom, right, top = src.bounds
    if not all(np.isfinite((left, bottom, right, top))) or left >= right or bottom >= top:
        raise InvalidFile(
            Said(
                f"{name}: its corners ({left}, {bottom}, {right}, {top}) are no place: its "
                "origin or cell size is not a number, or too far out for its cells to count",
                f"{name}: sus esquinas ({left}, {bottom}, {right}, {top}) no son un lugar: su "
                "origen o su tamaño de celda no es un número, o está tan lejos que sus celdas "
                "no cuentan",
            )
        )
    if src.crs.is_geographic and (left < -180 or right > 180 or bottom < -90 or top > 90):
        raise InvalidFile(
            Said(
                f"{name} reaches beyond the globe's degrees ({left:g}, {bottom:g}, {right:g}, "
                f"{top:g}): longitudes lie between -180 and 180, latitudes between -90 and 90",
                f"{name} pasa de los grados del globo ({left:g}, {bottom:g}, {right:g}, "
                f"{top:g}): las longitudes van de -180 a 180 y las latitudes de -90 a 90",
            )
        )


def _check_place(footprint: shapely.Geometry, name: str) -> None:
    """The grid's outline in degrees must be a place on the globe: a projected grid far
    beyond its CRS's area comes back as no number, or beyond the globe's degrees."""
    west, south, east, north = footprint.bounds
    if not (
        np.isfinite(footprint.bounds).all()
        and -180 <= west <= east <= 180
        and -90 <= south <= north <= 90
    ):
        raise InvalidFile(
            Said(
                f"{name} lies beyond the globe in its own CRS (in degrees: {west:g}, {south:g}, "
                f"{east:g}, {north:g}): check its origin and its CRS",
                f"{name} queda fuera del globo en su propio SRC (en grados: {west:g}, "
                f"{south:g}, {east:g}, {north:g}): revise su origen y su SRC",
            )
        )


#: the coarsest cell a DEM may have (m): a 2 x 2 grid of the whole world was accepted, and
#: covering every commune, it would be the DEM each one's analyses took
MAX_CELL_M = 1000
#: elevations on Earth, with room (m): the Dead Sea's shore, -430; Everest, 8,849
LOWEST_M, HIGHEST_M = -500.0, 9000.0


def _check_elevations(name: str, low: float, high: float) -> None:
    """A DEM holds elevations in metres: none at all (every cell nodata or NaN), infinite
    ones (low and high NaN: the maps' popups showed "Infinity" as a slope), or values no
    ground has (3e38, a nodata value that is not declared as such), are refused."""
    if np.isnan(low):
        raise InvalidFile(
            Said(
                f"{name} holds infinite elevations: declare them nodata (gdal_edit.py "
                "-a_nodata inf) or write the grid again without them",
                f"{name} tiene elevaciones infinitas: declárelas nodata (gdal_edit.py "
                "-a_nodata inf) o vuelva a escribir la malla sin ellas",
            )
        )
    if not np.isfinite(low):
        raise InvalidFile(
            Said(
                f"{name} holds no elevation: every cell is nodata (or NaN)",
                f"{name} no tiene ninguna elevación: todas sus celdas son nodata (o NaN)",
            )
        )
    if low < LOWEST_M or high > HIGHEST_M:
        raise InvalidFile(
            Said(
                f"{name} holds elevations from {low:g} to {high:g}, which are not metres above "
                f"the sea on Earth ({LOWEST_M:g} to {HIGHEST_M:g}): is a nodata value "
                "undeclared (gdal_edit.py -a_nodata ...), or are they feet or centimetres?",
                f"{name} tiene elevaciones de {low:g} a {high:g}, que no son metros sobre el "
                f"mar en la Tierra ({LOWEST_M:g} a {HIGHEST_M:g}): ¿falta declarar un valor "
                "nodata (gdal_edit.py -a_nodata ...), o están en pies o centímetros?",
            )
        )


#: the side of the tiles a DEM is stored in (_copy)
TILE = 256


def _check_shape(src: DatasetReader, name: str, limits: work.Limits) -> None:
    """What the header says, before a cell is read: one band, a CRS that reaches lon/lat, a
    north-up grid, and a size within the limits."""
    if src.count != 1:
        raise InvalidFile(
            Said(
                f"{name} has {src.count} bands; a DEM has one",
                f"{name} tiene {src.count} bandas; un DEM tiene una sola",
            )
        )
    if src.crs is None:
        raise UnknownCRS(
            Said(
                f"{name} has no CRS; write one into the GeoTIFF (gdal_edit.py -a_srs EPSG:xxxx)",
                f"{name} no tiene sistema de referencia (CRS); escriba uno en el GeoTIFF "
                "(gdal_edit.py -a_srs EPSG:xxxx)",
            )
        )
    try:  # a local (engineering) CRS cannot be placed on the globe
        pyproj.Transformer.from_crs(src.crs.to_wkt(), 4326)
    except pyproj.exceptions.ProjError:
        raise UnknownCRS(
            Said(
                f"{name}: its CRS {src.crs.to_string()!r} cannot be transformed to lon/lat; "
                "write a geographic or projected CRS into it (gdal_edit.py -a_srs EPSG:xxxx)",
                f"{name}: su sistema de referencia (CRS) {src.crs.to_string()!r} no se puede "
                "transformar a lon/lat; escriba en él un CRS geográfico o proyectado "
                "(gdal_edit.py -a_srs EPSG:xxxx)",
            )
        ) from None
    if src.transform.b or src.transform.d:
        raise InvalidFile(
            Said(
                f"{name} has a rotated grid; warp it north-up first (gdalwarp)",
                f"{name} tiene una malla rotada; reproyéctela antes con el norte hacia arriba "
                "(gdalwarp)",
            )
        )
    if src.transform.e >= 0 or src.transform.a <= 0:
        # found from outside: a south-up grid was stored with the right bounds, and the
        # terrain analysis then found every parcel off it
        raise InvalidFile(
            Said(
                f"{name} has its rows south-up (or its columns east to west); warp it north-up "
                "first (gdalwarp)",
                f"{name} tiene sus filas de sur a norte (o sus columnas de este a oeste); "
                "reproyéctela antes con el norte hacia arriba (gdalwarp)",
            )
        )
    kind = np.dtype(src.dtypes[0])
    if kind.kind not in "iuf" or (kind.kind in "iu" and kind.itemsize > 4):
        # a complex grid was stored, and every mean of the terrain analysis was null
        raise InvalidFile(
            Said(
                f"{name} holds {kind.name} cells; elevations are integers (up to 32 bits) or "
                "floating point numbers (gdal_translate -ot Float32)",
                f"{name} tiene celdas {kind.name}; las elevaciones son enteros (hasta 32 bits) "
                "o números de coma flotante (gdal_translate -ot Float32)",
            )
        )
    cells = src.width * src.height
    # stored in tiles of TILE x TILE (_copy): a grid one cell high and 24 million long is
    # 94,000 tiles, 6 billion cells of padding to compress, minutes of a CPU past any answer
    tiles = -(-src.width // TILE) * -(-src.height // TILE)
    if tiles * TILE * TILE > 2 * max(limits.max_dem_cells, TILE * TILE):
        raise TooLarge(
            Said(
                f"{name} is {src.width} x {src.height} cells: a grid so thin would be stored as "
                f"{tiles:,} tiles of {TILE} x {TILE} cells; clip it to the commune (gdalwarp -te)",
                f"{name} tiene {src.width} x {src.height} celdas: una malla tan delgada se "
                f"guardaría en {tiles:,} teselas de {TILE} x {TILE} celdas; recórtela a la "
                "comuna (gdalwarp -te)",
            )
        )
    itemsize = kind.itemsize
    unpacked = cells * itemsize
    rows, cols = src.block_shapes[0]
    block = rows * cols * itemsize
    if block > limits.max_dem_bytes:  # GDAL decodes a whole tile or strip at a time
        raise TooLarge(
            Said(
                f"{name} declares blocks of {cols} x {rows} cells ({block // 2**20} MB each, "
                f"whatever its size), over {limits.max_dem_bytes // 2**20} MB: write it again "
                "with tiles (gdal_translate -co TILED=YES)",
                f"{name} declara bloques de {cols} x {rows} celdas ({block // 2**20} MB cada "
                f"uno, sea cual sea su tamaño), por encima de {limits.max_dem_bytes // 2**20} MB: "
                "vuelva a escribirlo en teselas (gdal_translate -co TILED=YES)",
            )
        )
    if cells > limits.max_dem_cells or unpacked > limits.max_dem_bytes:
        raise TooLarge(
            Said(
                f"{name} is {src.width} x {src.height} cells ({unpacked // 2**20} MB "
                f"uncompressed); the limits are {limits.max_dem_cells:,} cells and "
                f"{limits.max_dem_bytes // 2**20} MB: clip it to the commune or resample it "
                "(gdalwarp -te ... -tr ...)",
                f"{name} tiene {src.width} x {src.height} celdas ({unpacked // 2**20} MB sin "
                f"comprimir); los límites son {limits.max_dem_cells:,} celdas y "
                f"{limits.max_dem_bytes // 2**20} MB: recórtelo a la comuna o remuestréelo "
                "(gdalwarp -te ... -tr ...)",
            )
        )


def _copy(src: DatasetReader, name: str) -> tuple[bytes, float, float]:
    """The DEM written again as a tiled, compressed GeoTIFF: same cells, georeferencing and
    nodata, nothing else of the upload (no other metadata, no overviews); and its lowest and
    highest elevations (inf and -inf when it holds none)."""
    dtype = src.dtypes[0]
    nodata = _nodata_for_mask(src, name)
    profile = {
        "driver": "GTiff",
        "width": src.width,
        "height": src.height,
        "count": 1,
        "dtype": dtype,
        "crs": src.crs,
        "transform": src.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2,
    }
    low, high = np.inf, -np.inf
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            for top in range(0, src.height, _ROWS):
                window = rasterio.windows.Window(0, top, src.width, min(_ROWS, src.height - top))
                rows = src.read(1, window=window, masked=True)
                dst.write(
                    rows.filled(nodata) if nodata is not None else rows.data, 1, window=window
                )
                valid = rows.compressed().astype(np.float64)
                if np.isinf(valid).any():  # no ground is infinitely high or low
                    low = high = float("nan")
                    break
                valid = valid[~np.isnan(valid)]
                if valid.size:
                    low, high = min(low, valid.min()), max(high, valid.max())
        return mem.read(), float(low), float(high)


def _nodata_for_mask(src: DatasetReader, name: str) -> float | None:
    """The nodata value the stored copy marks hidden cells with. A GeoTIFF may hide cells by
    a mask of its own (an internal mask or an alpha band, as ``gdal_translate -mask`` and
    gdalwarp write) rather than by a nodata value: the cells checked were the visible ones,
    and the copy stored every cell, so -9999 under the mask became the ground's elevation.
    Hidden cells get the file's nodata value, else NaN in a float grid, else the integer
    type's far end, which no elevation reaches; a grid of 8-bit integers has no value to
    spare and is refused."""
    flags = src.mask_flag_enums[0]
    if MaskFlags.per_dataset not in flags and MaskFlags.alpha not in flags:
        return src.nodata  # every cell shown, or hidden by the nodata value alone
    if src.nodata is not None:
        return src.nodata
    kind = np.dtype(src.dtypes[0])
    if kind.kind == "f":
        return float("nan")
    limits = np.iinfo(kind)
    spare = limits.min if kind.kind == "i" else limits.max
    if LOWEST_M <= spare <= HIGHEST_M:
        raise InvalidFile(
            Said(
                f"{name} hides cells by a mask and its {kind} cells have no value to spare "
                "for them: give it a nodata value (gdal_translate -a_nodata) or 16-bit cells",
                f"{name} oculta celdas con una máscara y sus celdas {kind} no tienen un "
                "valor libre para ellas: dele un valor nodata (gdal_translate -a_nodata) o "
                "celdas de 16 bits",
            )
        )
    return float(spare)


#: what to do with a DEM its reader could not read in time, or at all
SAVE_AGAIN = Said(
    "save it again as a GeoTIFF with QGIS or gdal_translate",
    "vuelva a guardarlo como GeoTIFF con QGIS o gdal_translate",
)


async def register(
    conn: AsyncConnection,
    commune_id: int,
    path: Path,
    name: str | None = None,
    isolated: bool = False,
) -> Dem:
    """Store (or replace, by name) a commune's DEM: checked and written again off the event
    loop, within the request's limits; ``isolated`` (an upload): by GDAL in a child process
    killed when it is slow (work.in_child)."""
    await _room_for(conn, commune_id, name or path.stem)  # before the file is read
    step: tuple[Any, ...] = (check, path, work.limits())
    if isolated:
        step = (work.in_child, name or path.name, SAVE_AGAIN, path.stat().st_size, *step)
    checked = await work.cpu(*step)
    name = name or path.stem
    # one commune's DEMs are stored one at a time, the count taken again under the lock until
    # the commit: side by side, 12 uploads each found room and the commune held 13 (found
    # from outside)
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (DEM_QUEUE, commune_id))
    await _room_for(conn, commune_id, name)
    await _covers(conn, commune_id, checked.footprint, name)
    cur = await conn.execute(
        """INSERT INTO dems (commune_id, name, crs, width, height, resolution_m, footprint, tiff)
           VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326), %s)
           ON CONFLICT (commune_id, name) DO UPDATE SET crs = EXCLUDED.crs,
               width = EXCLUDED.width, height = EXCLUDED.height,
               resolution_m = EXCLUDED.resolution_m, footprint = EXCLUDED.footprint,
               tiff = EXCLUDED.tiff, added_at = now()
           RETURNING id""",
        (
            commune_id,
            name,
            checked.crs,
            checked.width,
            checked.height,
            checked.resolution_m,
            shapely.to_wkb(checked.footprint),
            checked.tiff,
        ),
    )
    dem_id = (await cur.fetchone())[0]
    return Dem(
        dem_id, commune_id, name, checked.crs, checked.resolution_m, checked.footprint, checked.tiff
    )


#: DEMs a commune may hold (one replaced by name is not one more): found from outside, an
#: editor's uploads of 83-88 MB each under new names grew the data directory without end
MAX_DEMS_PER_COMMUNE = 10


#: advisory lock class of a commune's DEMs being stored; the other key is the commune's id
DEM_QUEUE = 0x6763_646D


async def _room_for(conn: AsyncConnection, commune_id: int, name: str) -> None:
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE name <> %s) FROM dems WHERE commune_id = %s",
        (name, commune_id),
    )
    held = (await cur.fetchone())[0]
    if held >= MAX_DEMS_PER_COMMUNE:
        raise TooLarge(
            Said(
                f"the commune holds {held} DEMs, the most it may: remove one (DELETE "
                "/communes/{commune}/dems/{id}, or geo-comuna dem remove) or replace one by "
                "giving its name",
                f"la comuna tiene {held} MDE, lo máximo que puede tener: quite uno (DELETE "
                "/communes/{commune}/dems/{id}, o geo-comuna dem remove) o reemplace uno "
                "dando su nombre",
            )
        )


async def _covers(
    conn: AsyncConnection, commune_id: int, footprint: shapely.Geometry, name: str
) -> None:
    """A DEM must reach the commune it is added to. One in a CRS its file misstates (ETOPO
    given EPSG:2202) landed on the Equator, was stored, and being the finest, was the one
    the terrain analysis took, which then refused every request."""
    cur = await conn.execute(
        "SELECT code, ST_Intersects(geom, ST_SetSRID(ST_GeomFromWKB(%s), 4326)), "
        "ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM communes WHERE id = %s",
        (shapely.to_wkb(footprint), commune_id),
    )
    row = await cur.fetchone()
    if row is None or row[1]:
        return
    code, _, *box = row
    dem = [round(v, 4) for v in footprint.bounds]
    near = [round(v, 4) for v in box]
    raise InvalidFile(
        Said(
            f"DEM {name!r} covers lon/lat {dem}, which misses commune {code} ({near}); is the "
            "file's CRS right?",
            f"el MDE {name!r} cubre lon/lat {dem}, que no alcanza a la comuna {code} ({near}); "
            "¿es correcto el CRS del archivo?",
        )
    )


#: the DEM analyses take: the one covering most of the commune (to the percent), then the
#: finest. Finest first alone, a 1 cm² patch that touched the commune took the place of the
#: DEM that covered it
_CHOSEN_FIRST = """
    ORDER BY round((ST_Area(ST_Intersection(d.footprint, c.geom))
                    / NULLIF(ST_Area(c.geom), 0))::numeric, 2) DESC NULLS LAST,
             d.resolution_m, d.id"""


async def for_commune(conn: AsyncConnection, commune_id: int) -> Dem | None:
    """The commune's DEM for analyses and hillshades (_CHOSEN_FIRST), or None when it has
    none."""
    cur = await conn.execute(
        "SELECT d.id, d.commune_id, d.name, d.crs, d.resolution_m, ST_AsBinary(d.footprint), "
        "d.tiff FROM dems d JOIN communes c ON c.id = d.commune_id WHERE d.commune_id = %s"
        + _CHOSEN_FIRST
        + " LIMIT 1",
        (commune_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Dem(row[0], row[1], row[2], row[3], row[4], shapely.from_wkb(row[5]), bytes(row[6]))


async def listing(conn: AsyncConnection, commune_id: int | None = None) -> list[dict]:
    """Every DEM (of one commune, or all) without its bytes: id, commune, name, CRS, size,
    cell (m), when added, lon/lat bounds [west, south, east, north], size in bytes."""
    cur = await conn.execute(
        """SELECT json_build_object('id', d.id, 'commune', c.code, 'name', d.name,
                  'crs', d.crs, 'width', d.width, 'height', d.height,
                  'resolution_m', round(d.resolution_m::numeric, 3), 'added_at', d.added_at,
                  'bounds', json_build_array(ST_XMin(d.footprint), ST_YMin(d.footprint),
                                             ST_XMax(d.footprint), ST_YMax(d.footprint)),
                  'bytes', octet_length(d.tiff))
           FROM dems d JOIN communes c ON c.id = d.commune_id
           WHERE %(commune)s::integer IS NULL OR d.commune_id = %(commune)s
           """
        + _CHOSEN_FIRST.replace("ORDER BY", "ORDER BY c.code,"),
        {"commune": commune_id},
    )
    return [row[0] for row in await cur.fetchall()]


async def remove(conn: AsyncConnection, commune_id: int, dem_id: int) -> bool:
    """Delete one of the commune's DEMs; False when it has none of that id. (A DEM could
    not be removed: a wrong one stayed the commune's for good.)"""
    cur = await conn.execute(
        "DELETE FROM dems WHERE id = %s AND commune_id = %s", (dem_id, commune_id)
    )
    return cur.rowcount == 1
