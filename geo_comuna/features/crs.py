"""The coordinate reference systems features are served and queried in (OGC API - Features
Part 2): CRS84 and the ones Venezuelan surveys use.

Geometry is stored in EPSG:4326 with longitude first, PostGIS' order for every geographic
CRS. PostGIS transforms (``ST_Transform``); this module only says which CRSs are offered,
reads their identifiers and puts the axes in the order each CRS's authority defines:
EPSG:4326, 4189 (REGVEN) and 4248 (PSAD56) are latitude first, CRS84 and the projected
CRSs easting first. ``tests/test_crs.py`` checks every entry against pyproj.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from geo_comuna.errors import InvalidInput, Said, said

OGC = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


#: digits after the point of coordinates in degrees, wherever features leave as they are stored
GEOGRAPHIC_DECIMALS = 9


@dataclass(frozen=True)
class Crs:
    """A CRS offered by the API. ``srid`` is PostGIS' (CRS84 is 4326 with lon/lat order)."""

    uri: str
    srid: int
    title: str
    geographic: bool
    #: the authority puts latitude (northing) first
    lat_first: bool = False

    @property
    def decimals(self) -> int:
        """Digits after the point: 9 in degrees (~0.1 mm, PostGIS' own default), 3 in metres
        (1 mm). With 6 (~0.1 m) a surveyed parcel read and written back (a PUT of what a GET
        gave) moved each vertex by up to 5 cm, and a version changed for no visible edit."""
        return GEOGRAPHIC_DECIMALS if self.geographic else 3

    @property
    def name(self) -> str:
        return "CRS84" if self.uri == OGC else f"EPSG:{self.srid}"


def _epsg(code: int, title: str, geographic: bool = False) -> Crs:
    return Crs(f"{EPSG}{code}", code, title, geographic, lat_first=geographic)


CRS84 = Crs(OGC, 4326, "WGS 84 (longitude, latitude)", geographic=True)
SUPPORTED: tuple[Crs, ...] = (
    CRS84,
    _epsg(4326, "WGS 84 (latitude, longitude)", geographic=True),
    _epsg(4189, "REGVEN (latitude, longitude)", geographic=True),
    _epsg(2201, "REGVEN / UTM zone 18N"),
    _epsg(2202, "REGVEN / UTM zone 19N"),
    _epsg(2203, "REGVEN / UTM zone 20N"),
    _epsg(4248, "PSAD56 (latitude, longitude)", geographic=True),
    *(_epsg(code, f"PSAD56 / UTM zone {code - 24800}N") for code in range(24817, 24822)),
)
URIS = [crs.uri for crs in SUPPORTED]
_BY_URI = {crs.uri: crs for crs in SUPPORTED}
_EPSG_FORMS = re.compile(
    r"(?:EPSG:|\[EPSG:|urn:ogc:def:crs:EPSG:[0-9.]*:|https?://www\.opengis\.net/def/crs/EPSG/0/)"
    r"(\d{1,6})\]?",
    re.IGNORECASE,
)
_CRS84_FORMS = {
    OGC.lower(),
    "https://www.opengis.net/def/crs/ogc/1.3/crs84",
    "ogc:crs84",
    "[ogc:crs84]",
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:ogc::crs84",
    "crs84",
}


def parse(value: str | None, param: str) -> Crs:
    """The CRS a parameter names: a URI of the list, ``EPSG:2202`` or an OGC URN; none is
    CRS84. Anything else is refused naming the supported ones (Part 2: never ignored)."""
    if value is None:
        return CRS84
    text = value.strip()
    if text.lower() in _CRS84_FORMS:
        return CRS84
    match = _EPSG_FORMS.fullmatch(text)
    found = _BY_URI.get(f"{EPSG}{int(match.group(1))}") if match else None
    if found is None:
        shown = repr(value if len(value) <= 100 else value[:100] + "…")  # the client's, echoed
        raise InvalidInput(
            Said(
                f"{param} {shown} is not a supported CRS; use one of {', '.join(URIS)} "
                "(or EPSG:<code> for the EPSG ones)",
                f"{param} {shown} no es un sistema de referencia (CRS) admitido; use uno de "
                f"{', '.join(URIS)} (o EPSG:<código> para los de EPSG)",
            )
        )
    return found


def output_geometry(expr: sql.Composable, crs: Crs) -> sql.Composable:
    """``expr`` (stored, EPSG:4326 lon/lat) in ``crs``, axes in the authority's order."""
    if crs.srid != 4326:
        expr = sql.SQL("ST_Transform({}, {})").format(expr, sql.Literal(crs.srid))
    if crs.lat_first:
        expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
    return expr


def to_storage(expr: sql.Composable, crs: Crs) -> sql.Composable:
    """A geometry written in ``crs`` (axes in its order, no SRID yet) as stored geometry."""
    if crs.lat_first:
        expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
    expr = sql.SQL("ST_SetSRID({}, {})").format(expr, sql.Literal(crs.srid))
    if crs.srid != 4326:
        expr = sql.SQL("ST_Transform({}, 4326)").format(expr)
    return expr


def xy_order(pairs: Sequence[Sequence[float]], crs: Crs) -> list[tuple[float, float]]:
    """Coordinate pairs as written in ``crs`` put x (longitude, easting) first."""
    return [(p[1], p[0]) if crs.lat_first else (p[0], p[1]) for p in pairs]


def check_coordinates(xy: Sequence[tuple[float, float]], crs: Crs, what: str) -> None:
    """Refuse coordinates ``crs`` has no place for (x first), before PostGIS is asked to
    transform them: non-finite numbers, latitudes beyond the poles, projected coordinates
    PROJ cannot take back to longitude/latitude."""
    if not all(math.isfinite(v) for p in xy for v in p):
        raise InvalidInput(
            Said(
                f"{what}: coordinates must be finite numbers",
                f"{said(what, 'es')}: las coordenadas deben ser números finitos",
            )
        )
    if crs.geographic:
        order = "latitude, longitude" if crs.lat_first else "longitude, latitude"
        order_es = "latitud, longitud" if crs.lat_first else "longitud, latitud"
        if not all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in xy):
            raise InvalidInput(
                Said(
                    f"{what}: not {order} in {crs.name} "
                    "(longitude within ±180, latitude within ±90)",
                    f"{said(what, 'es')}: no es {order_es} en {crs.name} (longitud dentro de ±180, "
                    "latitud dentro de ±90)",
                )
            )
        return
    import pyproj  # only for a projected CRS: an import's modules need no PROJ otherwise

    # a transformer per call: pyproj's are not to be shared between threads
    back = pyproj.Transformer.from_crs(crs.srid, 4326, always_xy=True)
    lon, lat = back.transform([x for x, _ in xy], [y for _, y in xy], errcheck=False)
    if not all(
        math.isfinite(x) and math.isfinite(y) and abs(x) <= 180 and abs(y) <= 90
        for x, y in zip(lon, lat, strict=True)
    ):
        raise InvalidInput(
            Said(
                f"{what}: coordinates outside what {crs.name} can express",
                f"{said(what, 'es')}: coordenadas fuera de lo que {crs.name} puede expresar",
            )
        )


def bbox_condition(
    column: sql.Composable, bbox: tuple[float, float, float, float], crs: Crs, params: dict
) -> sql.Composable:
    """``column`` intersects ``bbox`` (xmin, ymin, xmax, ymax: x first, in ``crs``), its
    values bound into ``params``. A geographic box whose west edge is east of its east edge
    crosses the antimeridian: it is the two boxes either side of it. A box in another CRS
    is densified before PostGIS transforms it, so that its edges stay where they were."""
    w, s, e, n = bbox
    boxes = [(w, s, e, n)] if w <= e else [(w, s, 180.0, n), (-180.0, s, e, n)]
    parts = []
    for i, box in enumerate(boxes):
        names = [f"bbox{i}{c}" for c in "wsen"]
        params.update(zip(names, box, strict=True))
        env = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
            *(sql.Placeholder(n) for n in names), sql.Literal(crs.srid)
        )
        if crs.srid != 4326:
            params[f"bbox{i}step"] = max(box[2] - box[0], box[3] - box[1]) / 64 or 1.0
            env = sql.SQL("ST_Transform(ST_Segmentize({}, {}), 4326)").format(
                env, sql.Placeholder(f"bbox{i}step")
            )
        parts.append(sql.SQL("ST_Intersects({}, {})").format(column, env))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def parse_bbox_numbers(numbers: list[float], value: str, crs: Crs) -> tuple[float, ...]:
    """bbox (Part 1: 4 or 6 numbers in ``crs``'s axis order) as xmin, ymin, xmax, ymax.
    A geographic box may cross the antimeridian (west > east); south must not exceed north."""
    if len(numbers) == 6:  # 3-D bbox: drop the heights
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise InvalidInput(
            Said(
                f"bbox {value!r} must be 4 finite numbers in {crs.name}",
                f"bbox {value!r} debe tener 4 números finitos en {crs.name}",
            )
        )
    (w, s), (e, n) = xy_order([numbers[:2], numbers[2:]], crs)
    order = "south,west,north,east" if crs.lat_first else "west,south,east,north"
    order_es = "sur,oeste,norte,este" if crs.lat_first else "oeste,sur,este,norte"
    if crs.geographic:
        if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
            raise InvalidInput(  # found from outside: -1e300 was told "south <= north"
                Said(
                    f"bbox {value!r} is not {order} in {crs.name}: degrees, longitudes from "
                    "-180 to 180 and latitudes from -90 to 90",
                    f"bbox {value!r} no es {order_es} en {crs.name}: grados, longitudes de "
                    "-180 a 180 y latitudes de -90 a 90",
                )
            )
        if s > n:
            raise InvalidInput(
                Said(
                    f"bbox {value!r} is not {order} in {crs.name}: its south lies north of "
                    "its north",
                    f"bbox {value!r} no es {order_es} en {crs.name}: su sur queda al norte de "
                    "su norte",
                )
            )
    elif not (w <= e and s <= n):
        raise InvalidInput(
            Said(
                f"bbox {value!r} must be {order} in {crs.name}, lower corner first",
                f"bbox {value!r} debe ser {order_es} en {crs.name}, primero la esquina inferior",
            )
        )
    check_coordinates([(w, s), (e, n), (w, n), (e, s)], crs, f"bbox {value!r}")
    return w, s, e, n
