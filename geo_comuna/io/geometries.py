"""A file's geometries on their way to EPSG:4326: WKB as GDAL read it, decoded and reprojected
a piece at a time by the import's worker thread.

pyproj is loaded only for a file that needs it: most files already say EPSG:4326, and loading
PROJ costs every import ~0.25 s and ~11 MB (bench/README.md, "Import at every size").
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo_comuna.errors import InvalidGeometry, Said, UnknownCRS
from geo_comuna.io import pgcopy
from geo_comuna.io.formats import Format

if TYPE_CHECKING:
    import pyproj

#: how GDAL names WGS 84 when a file says so by its code (pyogrio's meta["crs"])
_WGS84 = "EPSG:4326"


def parse_crs(value: str) -> pyproj.CRS:
    import pyproj

    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise UnknownCRS(
            Said(
                f"unknown CRS {value!r}: {exc}",
                f"sistema de referencia (CRS) desconocido {value!r}: {exc}",
            )
        ) from None


@dataclass
class Geometries:
    """A file's geometries as WKB, decoded and reprojected to EPSG:4326 a piece at a time by
    the import's worker thread, so that work overlaps the COPY instead of preceding it."""

    wkb: pa.ChunkedArray | pa.Array | np.ndarray  # Arrow binary as GDAL read it, or bytes
    source: pyproj.CRS | None = None  # None: already EPSG:4326
    label: str = "EPSG:4326"
    file_crs: str | None = None  # what the file says, parsed by to_wgs84 unless overridden
    to_wgs84: pyproj.Transformer | None = None  # made once by to_wgs84(), used by every piece
    given: bool = False  # the CRS is the one given (--crs, ?crs=), not the file's
    #: the CRS the file declares, where the one given overrides another: the report names it
    overrode: str | None = None

    def __len__(self) -> int:
        return len(self.wkb)

    def of(self, wkb: pa.ChunkedArray | pa.Array) -> Geometries:
        """Other WKB (a streamed file's next batch) in the same CRS, with the same transformer."""
        return dataclasses.replace(self, wkb=wkb)

    def take(
        self, start: int, stop: int, labels: Sequence[int] | None = None
    ) -> tuple[np.ndarray, pgcopy.Source | None, np.ndarray]:
        """Rows start:stop in EPSG:4326, their WKB when it can be sent as it is, and which
        came with heights or measures (Z, M: reprojecting leaves them out, as the 2-D store
        does).
        ``labels``: how errors name the rows (their positions in the file)."""
        wkb = self.wkb[start:stop]
        if isinstance(wkb, pa.ChunkedArray):
            wkb = wkb.combine_chunks()  # only this piece's bytes are copied
        labels = labels or range(start + 1, stop + 1)
        refuse_deep(wkb, labels)  # before GEOS reads them
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
        _refuse_unreadable(wkb, geoms, labels)
        heights = shapely.has_z(geoms) | shapely.has_m(geoms)
        if self.to_wgs84 is None:
            return geoms, pgcopy.Source(geoms, wkb), heights
        self._refuse_degrees(geoms, labels)
        import pyproj

        transform = self.to_wgs84.transform

        def xy(coords: np.ndarray) -> np.ndarray:
            return np.column_stack(transform(coords[:, 0], coords[:, 1]))

        try:
            return shapely.transform(geoms, xy), None, heights
        except pyproj.exceptions.ProjError as exc:  # another planet's CRS, say
            raise UnknownCRS(
                Said(
                    f"cannot transform {self.label} to WGS 84: {exc}",
                    f"no se puede transformar {self.label} a WGS 84: {exc}",
                )
            ) from None

    def _refuse_degrees(self, geoms: np.ndarray, labels: Sequence[int]) -> None:
        """A feature of a projected CRS whose every coordinate is within +-180 and +-90, and
        which that CRS then puts outside its own area of use, is in degrees: the file says the
        wrong CRS (a GeoJSON declaring EPSG:2202 around lon/lat coordinates). Reprojected, it
        became a parcel of 0.0 ha on the Equator, inside the service area, and was stored.
        A local CRS whose origin lies on the site (a survey's) keeps its small coordinates:
        they fall inside its area of use, or it says none."""
        area = None if self.source is None else self.source.area_of_use
        if area is None or not self.source.is_projected or self.to_wgs84 is None:
            return
        bounds = shapely.bounds(geoms)  # NaN for a missing or empty geometry
        with np.errstate(invalid="ignore"):
            small = (np.abs(bounds[:, [0, 2]]) <= 180).all(axis=1) & (
                np.abs(bounds[:, [1, 3]]) <= 90
            ).all(axis=1)
        if not small.any():
            return
        lon, lat = self.to_wgs84.transform(bounds[small, 0], bounds[small, 1])
        outside = ~(
            (area.west <= lon) & (lon <= area.east) & (area.south <= lat) & (lat <= area.north)
        )
        if not outside.any():
            return
        i = int(np.flatnonzero(small)[np.argmax(outside)])
        x, y = bounds[i, 0], bounds[i, 1]
        # found from outside: a CRS given over the file's own was called the file's
        whose = (
            ("the CRS given", "el CRS indicado")
            if self.given
            else ("the file's CRS", "el CRS del archivo")
        )
        raise InvalidGeometry(
            Said(
                f"its coordinates ({x:g}, {y:g}) look like degrees of longitude and latitude, "
                f"but {whose[0]} is {self.label}, in metres; give the CRS they are in, "
                "e.g. --crs EPSG:4326 (?crs=EPSG:4326)",
                f"sus coordenadas ({x:g}, {y:g}) parecen grados de longitud y latitud, pero "
                f"{whose[1]} es {self.label}, en metros; indique el CRS en que están, p. "
                "ej. --crs EPSG:4326 (?crs=EPSG:4326)",
            ),
            feature=labels[i],
        )


#: how deep a geometry may nest collections in collections: GDAL's own limit (OGR reads no
#: deeper). GEOS reads WKB recursively, and a GeoPackage's one parcel nested 30,000 deep (a
#: 270 KB file) overflowed the server worker's stack: a segfault, every request on that worker
#: lost with it (found from outside)
MAX_NESTING = 32
#: the least bytes of a geometry whose nesting is walked before GEOS reads it: each level takes
#: 9 at least (byte order, type, count), so a smaller one nests under 1,000 levels, which GEOS
#: reads safely (and the layer's geometry type then refuses); a parcel of ~560 vertices is
#: this big, so an import of ordinary parcels walks none
_WALKED_FROM = 9 * 1000
#: parts (members, rings) a walked geometry may have before it is refused as a bomb
_MAX_PARTS = 1_000_000
_MAX_PARTS_ES = f"{_MAX_PARTS:,}".replace(",", ".")
#: WKB types that hold other geometries: multi-, collections, curved and polyhedral ones
_CONTAINERS = frozenset({4, 5, 6, 7, 9, 10, 11, 12, 15, 16})


class _TooDeep(Exception):
    pass


class _Unwalked(Exception):
    pass


def refuse_deep(wkb: pa.Array | np.ndarray, labels: Sequence, layer: str | None = None) -> None:
    """Refuse a geometry that nests collections deeper than MAX_NESTING, or one of
    _WALKED_FROM bytes or more that is no WKB the walk knows, without GEOS."""
    if isinstance(wkb, pa.Array):
        sizes = pc.fill_null(pc.binary_length(wkb), 0).to_numpy(zero_copy_only=False)
    else:
        sizes = np.fromiter((len(w or b"") for w in wkb), dtype=np.int64, count=len(wkb))
    for i in np.flatnonzero(sizes >= _WALKED_FROM):
        blob = wkb[int(i)]
        try:
            _walk(blob.as_py() if isinstance(blob, pa.Scalar) else blob)
        except _TooDeep:
            raise InvalidGeometry(
                Said(
                    f"its geometry nests collections more than {MAX_NESTING} deep, or holds "
                    f"more than {_MAX_PARTS:,} parts: no parcel or home is drawn so",
                    f"su geometría anida colecciones a más de {MAX_NESTING} niveles, o tiene "
                    f"más de {_MAX_PARTS_ES} partes: ninguna parcela ni vivienda se dibuja así",
                ),
                feature=labels[int(i)],
                layer=layer,
            ) from None
        except _Unwalked:
            raise InvalidGeometry(UNREADABLE, feature=labels[int(i)], layer=layer) from None


def _walk(blob: bytes) -> None:
    """Walk WKB's structure (headers and counts, never its coordinates), raising _TooDeep
    past MAX_NESTING levels or _MAX_PARTS parts, and _Unwalked where it cannot walk it: a
    geometry this big that is no WKB it knows does not go to GEOS at all."""
    at, left, parts = 0, [], 0
    try:
        while True:
            endian, kind, dims, at = _header(blob, at)
            if kind in _CONTAINERS:
                (count,) = struct.unpack_from(endian + "I", blob, at)
                at += 4
                left.append(count)
                parts += count
                if len(left) > MAX_NESTING or parts > _MAX_PARTS:
                    raise _TooDeep
            else:
                at, rings = _skip(blob, at, endian, kind, dims)
                parts += rings
                if parts > _MAX_PARTS:
                    raise _TooDeep
                if not left:
                    return
                left[-1] -= 1
            while left and left[-1] == 0:  # containers read whole
                left.pop()
                if not left:
                    return
                left[-1] -= 1
    except (struct.error, ValueError, IndexError):
        raise _Unwalked from None


def _header(blob: bytes, at: int) -> tuple[str, int, int, int]:
    """(struct's byte order, the geometry type, coordinates per vertex, where its body
    starts) of the WKB or EWKB header at ``at``."""
    order = blob[at]
    if order not in (0, 1):
        raise ValueError("no byte order")
    endian = "<" if order == 1 else ">"
    (code,) = struct.unpack_from(endian + "I", blob, at + 1)
    at += 5
    # decoded as GEOS decodes it (WKBReader::readGeometry): found from outside, a collection
    # typed 0x00010007, which another reading took for no type at all, went to GEOS unwalked
    # and, nested 100,000 deep under it, killed the worker
    low = code & 0xFFFF
    iso = low // 1000  # ISO's Z (1000s), M (2000s), ZM (3000s)
    dims = (
        2 + (bool(code & 0x80000000) or iso in (1, 3)) + (bool(code & 0x40000000) or iso in (2, 3))
    )
    if code & 0x20000000:  # EWKB's SRID
        at += 4
    return endian, low % 1000, dims, at


def _skip(blob: bytes, at: int, endian: str, kind: int, dims: int) -> tuple[int, int]:
    """Where a point, line or polygon that starts at ``at`` ends, and how many rings it has."""
    if kind == 1:
        return at + 8 * dims, 0
    (count,) = struct.unpack_from(endian + "I", blob, at)
    at += 4
    if kind in (2, 8):  # LineString, CircularString
        return at + 8 * dims * count, 0
    if kind not in (3, 17):  # Polygon, Triangle; any other type is GEOS's to refuse
        raise ValueError("not a simple geometry")
    for _ in range(min(count, _MAX_PARTS + 1)):
        (points,) = struct.unpack_from(endian + "I", blob, at)
        at += 4 + 8 * dims * points
        if at > len(blob):
            raise ValueError("cut short")
    return at, count


def _refuse_unreadable(wkb: pa.Array | np.ndarray, geoms: np.ndarray, labels: Sequence) -> None:
    """Bytes that are no geometry (WKB) were taken for a missing one: GDAL hands on what
    follows a GeoPackage geometry's header as it is."""
    missing = shapely.is_missing(geoms)
    if not missing.any():
        return
    if isinstance(wkb, pa.Array):
        given = pc.fill_null(pc.binary_length(wkb), 0).to_numpy(zero_copy_only=False) > 0
    else:
        given = np.array([bool(w) for w in wkb])
    hits = np.flatnonzero(missing & given)
    if hits.size:
        raise InvalidGeometry(UNREADABLE, feature=labels[int(hits[0])])


UNREADABLE = Said(
    "its geometry could not be read: its bytes are not a geometry (WKB)",
    "no se pudo leer su geometría: sus bytes no son una geometría (WKB)",
)


def to_wgs84(geometries: Geometries, fmt: Format, crs: str | None) -> Geometries:
    """Say how to reach EPSG:4326. ``crs`` overrides what the file says (and the answer's
    ``overrode`` names what that was, if another CRS); CSV, GeoJSON and KML without one are
    lon/lat WGS 84; any other file without a CRS is refused."""
    reached = _to_wgs84(geometries, fmt, crs)
    return dataclasses.replace(reached, overrode=_overridden(geometries.file_crs, crs))


def _overridden(declared: str | None, crs: str | None) -> str | None:
    """The file's own CRS, as a label, when ``crs`` (given) is another one (found from
    outside: a file of EPSG:2202 read as 2203, all of El Maizal 6 degrees east, and the
    report said 2203 only)."""
    if not crs or not declared:
        return None
    import pyproj

    try:
        said = pyproj.CRS.from_user_input(declared)
    except pyproj.exceptions.CRSError:
        return declared[:80]  # one that cannot be read: as the file writes it
    if said.equals(parse_crs(crs), ignore_axis_order=True):
        return None
    return said.to_string() if said.to_epsg() is None else f"EPSG:{said.to_epsg()}"


def _to_wgs84(geometries: Geometries, fmt: Format, crs: str | None) -> Geometries:
    said = crs or geometries.file_crs
    if said == _WGS84 or (said is None and fmt.name in ("csv", "geojson", "kml")):
        return Geometries(geometries.wkb, None, "EPSG:4326")
    import pyproj

    if crs:  # overrides what the file says, even what cannot be read
        source = parse_crs(crs)
    elif geometries.file_crs:
        try:
            source = pyproj.CRS.from_user_input(geometries.file_crs)
        except pyproj.exceptions.CRSError:
            raise UnknownCRS(
                Said(
                    f"the {fmt.driver} file's CRS cannot be read ({geometries.file_crs[:80]!r}); "
                    "give it, e.g. --crs EPSG:2202",
                    f"el sistema de referencia (CRS) del archivo {fmt.driver} no se puede leer "
                    f"({geometries.file_crs[:80]!r}); indíquelo, p. ej. --crs EPSG:2202",
                )
            ) from None
    else:
        raise UnknownCRS(
            Said(
                f"the {fmt.driver} file says nothing about its CRS (a Shapefile "
                "without .prj?); give it, e.g. --crs EPSG:2202",
                f"el archivo {fmt.driver} no indica su sistema de referencia (CRS) (¿un "
                "Shapefile sin .prj?); indíquelo, p. ej. --crs EPSG:2202",
            )
        )
    label = source.to_string() if source.to_epsg() is None else f"EPSG:{source.to_epsg()}"
    if source.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        return Geometries(geometries.wkb, None, label)
    try:  # refuse a CRS that cannot reach WGS 84 before anything is written
        transformer = pyproj.Transformer.from_crs(source, 4326, always_xy=True)
    except pyproj.exceptions.ProjError as exc:  # a local grid, another planet's CRS
        raise UnknownCRS(
            Said(
                f"cannot transform {label} to WGS 84: {exc}; if the coordinates are in a CRS "
                "of the Earth, give it with --crs / ?crs= (e.g. EPSG:2202)",
                f"no se puede transformar {label} a WGS 84: {exc}; si las coordenadas están "
                "en un CRS de la Tierra, indíquelo con --crs / ?crs= (p. ej. EPSG:2202)",
            )
        ) from None
    return Geometries(geometries.wkb, source, label, to_wgs84=transformer, given=bool(crs))
