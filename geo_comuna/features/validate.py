"""Geometry validation of incoming features, on whole arrays so one code path serves a single
API write and an import of 200,000 features (attributes: features/attributes.py).

Checks use GEOS through shapely 2 (the same library and validity rules as PostGIS'
ST_IsValid / ST_MakeValid) before anything reaches the database, so a bad feature is named
and nothing is written. Features are named by ``labels``: ids for API writes, 1-based positions
for files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from geo_comuna import work
from geo_comuna.errors import InvalidGeometry, Said, TooLarge, TooSlow, said
from geo_comuna.features import repair
from geo_comuna.layers import Layer

_PARTS = {"Point": "MultiPoint", "LineString": "MultiLineString", "MultiPolygon": "Polygon"}
#: GEOS' reasons for an invalid geometry (TopologyValidationError), as Spanish says them
_GEOS_ES = {
    "Topology Validation Error": "error de topología",
    "Repeated Point": "punto repetido",
    "Hole lies outside shell": "un hueco queda fuera del contorno",
    "Nested holes": "un hueco dentro de otro",
    "Interior is disconnected": "el interior queda partido",
    "Self-intersection": "el borde se cruza consigo mismo",
    "Ring Self-intersection": "un anillo se cruza consigo mismo",
    "Nested shells": "un contorno dentro de otro",
    "Duplicate Rings": "anillos repetidos",
    "Too few points in geometry component": "muy pocos puntos en una parte",
    "Invalid Coordinate": "coordenada no válida",
    "Ring is not closed": "un anillo no está cerrado",
}
_GEOS_REASON = re.compile(r"^(?P<what>[^\[]+?)\s*\[(?P<where>[^\]]*)\]$")


def geos_reason(text: str) -> Said:
    """GEOS' reason for an invalid geometry ('Self-intersection[-66.9 10.5]': the first
    fault and where, lon lat), in English as GEOS says it and in Spanish ('el borde se cruza
    consigo mismo en lon -66,9, lat 10,5'): a field team reads it in the sync's and the
    import's messages. A reason GEOS words otherwise keeps its English in both."""
    found = _GEOS_REASON.match(text)
    what, where = (found["what"], found["where"]) if found else (text, "")
    spanish = _GEOS_ES.get(what, what)
    point = where.split()
    if len(point) == 2:  # lon lat, written with the decimal comma
        lon, lat = (n.replace(".", ",") for n in point)
        return Said(text, f"{spanish} en lon {lon}, lat {lat}")
    return Said(text, f"{spanish} en {where}" if where else spanish)


@dataclass
class Checked:
    """Validated features: coerced attribute columns (Arrow arrays by name,
    attributes.check_attributes), 2-D geometries in EPSG:4326, repairs."""

    attributes: dict[str, pa.Array]
    geometries: np.ndarray
    repairs: list[dict[str, Any]] = field(default_factory=list)


def _fail(error: type, layer: Layer, labels: Sequence, index: int, reason: str) -> None:
    raise error(reason, feature=labels[index], layer=layer.name)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _conform_type(
    layer: Layer, geoms: np.ndarray, labels: Sequence, *, promote: bool = True
) -> np.ndarray:
    """Promote Polygon to MultiPolygon (unless ``promote`` is False: an import writes the
    promotion into the WKB it sends, io/pgcopy.ewkb), unwrap single-part multis; refuse other
    types."""
    want = layer.geometry_type
    types = shapely.get_type_id(geoms)
    names = np.array(
        [
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        ]
    )
    out = geoms.copy()
    if want == "MultiPolygon":
        polygons = types == 3
        if promote and polygons.any():  # vectorised: one part each
            out[polygons] = shapely.multipolygons(geoms[polygons][:, None])
        ok = polygons | (types == 6)
    else:
        single = names[types.clip(0)] == want
        multi = names[types.clip(0)] == _PARTS[want]
        one_part = multi & (shapely.get_num_geometries(geoms) == 1)
        out[one_part] = shapely.get_geometry(geoms[one_part], 0)
        ok = single | one_part
        bad_multi = _first(multi & ~one_part)
        if bad_multi is not None:
            _fail(
                InvalidGeometry,
                layer,
                labels,
                bad_multi,
                Said(
                    f"a {_PARTS[want]} with several parts; {layer.name} stores one {want} per "
                    "feature: split it into separate features",
                    f"un {_PARTS[want]} de varias partes; {layer.name} guarda un {want} por "
                    "entidad: sepárelo en entidades distintas",
                ),
            )
    bad = _first(~ok)
    if bad is not None:
        _fail(
            InvalidGeometry,
            layer,
            labels,
            bad,
            Said(
                f"wrong geometry type {names[types[bad]]}; {layer.name} stores {want}",
                f"tipo de geometría equivocado {names[types[bad]]}; {layer.name} guarda {want}",
            ),
        )
    return out


def _empty_parts(geoms: np.ndarray) -> np.ndarray:
    """Which geometries hold an empty part or ring: GEOS calls such a polygon valid, PostGIS
    refuses to store it ("Polygon must have at least four points in each ring"). Only
    multi-part geometries and polygons with holes are taken apart (counting holes is cheap):
    a file of 200,000 simple polygons costs next to nothing."""
    types = shapely.get_type_id(geoms)
    polygons = np.flatnonzero(types == 3)
    holed = polygons[shapely.get_num_interior_rings(geoms[polygons]) > 0]
    suspects = np.concatenate([holed, np.flatnonzero(types >= 4)])
    parts, owner = shapely.get_parts(geoms[suspects], return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    out = np.zeros(len(geoms), dtype=bool)
    out[suspects[owner[shapely.is_empty(parts)]]] = True
    out[suspects[owner[ring_owner[shapely.is_empty(rings)]]]] = True
    return out


def _check_size(
    layer: Layer, geoms: np.ndarray, labels: Sequence, *, repaired: bool = False
) -> None:
    """No geometry over Limits.max_vertices_per_geometry or max_parts_per_geometry: every later
    step (validity, repair, the audit trail's copy, each analysis) grows with them. Checked
    again after a repair, which can turn one ring crossing itself into thousands of parts."""
    limits = work.limits()
    after = Said(" once repaired", " una vez reparada") if repaired else Said("", "")
    for measure, most, what in (
        (
            shapely.get_num_coordinates,
            limits.max_vertices_per_geometry,
            Said("vertices", "vértices"),
        ),
        (shapely.get_num_geometries, limits.max_parts_per_geometry, Said("parts", "partes")),
    ):
        big = _first(measure(geoms) > most)
        if big is not None:
            count = int(measure(geoms[big]))
            raise TooLarge(
                Said(
                    f"{count:,} {what} in one geometry{after}; the limit is "
                    f"{most:,} (simplify it, e.g. QGIS Vector > Geometry Tools > Simplify)",
                    f"{count:,} {what.es} en una geometría{after.es}; el límite es "
                    f"{most:,} (simplifíquela, p. ej. QGIS Vectorial > Herramientas de "
                    "geometría > Simplificar)",
                ),
                feature=labels[big],
                layer=layer.name,
            )


def _check_coordinates(
    layer: Layer,
    geoms: np.ndarray,
    labels: Sequence,
    service_bbox: tuple[float, float, float, float],
) -> None:
    coords = shapely.get_coordinates(geoms)
    if not np.isfinite(coords).all():  # which feature: only worked out when there is one
        owner = np.repeat(np.arange(len(geoms)), shapely.get_num_coordinates(geoms))
        bad = owner[_first(~np.isfinite(coords).all(axis=1))]
        _fail(
            InvalidGeometry,
            layer,
            labels,
            bad,
            Said("a coordinate is NaN or infinite", "una coordenada es NaN o infinita"),
        )
    bounds = shapely.bounds(geoms)  # minx, miny, maxx, maxy
    out_of_range = (
        (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
    )
    w, s, e, n = service_bbox
    inside = (bounds[:, 0] >= w) & (bounds[:, 2] <= e) & (bounds[:, 1] >= s) & (bounds[:, 3] <= n)
    swapped_inside = (
        (bounds[:, 1] >= w) & (bounds[:, 3] <= e) & (bounds[:, 0] >= s) & (bounds[:, 2] <= n)
    )
    i = _first(~inside)
    if i is None:
        return
    x, y = shapely.get_coordinates(geoms[i])[0]
    if swapped_inside[i]:
        reason = Said(
            f"coordinates appear swapped: ({x:.5f}, {y:.5f}) reads as latitude, longitude; "
            "GeoJSON and EPSG:4326 here are longitude, latitude",
            f"las coordenadas parecen invertidas: ({x:.5f}, {y:.5f}) se lee como latitud, "
            "longitud; GeoJSON y EPSG:4326 aquí son longitud, latitud",
        )
    elif out_of_range[i]:
        reason = Said(
            f"coordinate ({x:.3f}, {y:.3f}) is out of range for longitude/latitude; "
            "is the data in a projected CRS (UTM metres)? give its CRS (a file: --crs or "
            "?crs=; a feature sent to the API: the Content-Crs header)",
            f"la coordenada ({x:.3f}, {y:.3f}) está fuera del rango de longitud/latitud; "
            "¿están los datos en un sistema de referencia proyectado (metros UTM)? indique "
            "su CRS (un archivo: --crs o ?crs=; una entidad enviada a la API: la cabecera "
            "Content-Crs)",
        )
    else:
        reason = Said(
            f"lies outside the service area {list(service_bbox)} (lon/lat) at "
            f"({x:.5f}, {y:.5f}); wrong CRS or wrong place?",
            f"queda fuera del área de servicio {list(service_bbox)} (lon/lat) en "
            f"({x:.5f}, {y:.5f}); ¿CRS equivocado o lugar equivocado?",
        )
    _fail(InvalidGeometry, layer, labels, i, reason)


def _repair(
    layer: Layer, geoms: np.ndarray, bad: np.ndarray, labels: Sequence, reasons: np.ndarray
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """ST_MakeValid's algorithm (GEOS MakeValid), in a process stopped at the request's
    deadline (features/repair.py); keeps only parts of the layer's dimension."""
    index = np.flatnonzero(bad)
    dim = {"Point": 0, "LineString": 1, "MultiPolygon": 2}[layer.geometry_type]
    try:
        fixed_all = work.isolated(repair.make_valid, geoms[index], dim)
    except TooSlow:
        _fail(
            InvalidGeometry,
            layer,
            labels,
            int(index[0]),
            Said(
                f"invalid geometry ({reasons[index[0]]}) whose repair took longer than "
                f"{work.limits().compute_seconds:g} s (it crosses itself too often); fix it in "
                "QGIS (Vector > Geometry Tools > Fix Geometries) and send it again",
                f"geometría no válida ({said(reasons[index[0]], 'es')}) cuya reparación tardó "
                f"más de {work.limits().compute_seconds:g} s (se cruza a sí misma demasiadas "
                "veces); corríjala en QGIS (Vectorial > Herramientas de geometría > Corregir "
                "geometrías) y envíela de nuevo",
            ),
        )
    repairs = []
    out = geoms.copy()
    for i, fixed in zip(index, fixed_all, strict=True):
        if fixed is None:
            _fail(
                InvalidGeometry,
                layer,
                labels,
                i,
                Said(
                    f"invalid geometry ({reasons[i]}) that cannot be repaired automatically",
                    f"geometría no válida ({said(reasons[i], 'es')}) que no se puede reparar "
                    "automáticamente",
                ),
            )
        repairs.append(
            {
                "feature": labels[i],
                "reason": reasons[i],  # a Said: JSON writes the English, people read theirs
                "action": "made valid (ST_MakeValid / GEOS MakeValid)",
                "area_change_pct": _area_change(geoms[i], fixed, reasons[i]),
            }
        )
        out[i] = fixed
    return out, repairs


#: faults after which the shape has no area of its own to compare (the shoelace of a ring
#: that crosses itself subtracts one lobe from the other)
_NO_AREA_BEFORE = ("Self-intersection", "Ring Self-intersection")


def _area_change(
    before: shapely.Geometry, after: shapely.Geometry, reason: str = ""
) -> float | None:
    """How much the repair changed the area, in percent of the area before; None where the
    area before means nothing: a ring that crosses itself gave +273 % for a parcel whose
    repaired shape was smaller than the one stored."""
    if str(reason).startswith(_NO_AREA_BEFORE):
        return None
    a0 = abs(shapely.area(before))
    if not a0:
        return None
    return round(100 * (shapely.area(after) - a0) / a0, 3)


#: a feature without geometry; an import asks its file why (reading.RawFile.unread_geometry)
MISSING = Said("missing geometry", "falta la geometría")


def check_geometries(
    layer: Layer,
    geoms: np.ndarray,
    labels: Sequence,
    *,
    service_bbox: tuple[float, float, float, float],
    repair: bool = False,
    promote: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Geometries in EPSG:4326 -> conformed 2-D geometries, or InvalidGeometry naming the first
    bad feature. With ``repair`` invalid ones are made valid and each change reported.

    A geometry that needs no change is returned as the same object, so a caller holding its
    WKB can send that instead of writing it again (imports, io/pgcopy.ewkb). ``promote``
    False leaves Polygons of a MultiPolygon layer as they are (ewkb promotes them)."""
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    if missing.any():
        if not layer.geometry_optional:
            _fail(
                InvalidGeometry,
                layer,
                labels,
                _first(missing),
                MISSING,
            )
        present = np.flatnonzero(~missing)
        out = geoms.copy()
        out[present], repairs = check_geometries(
            layer,
            geoms[present],
            [labels[i] for i in present],
            service_bbox=service_bbox,
            repair=repair,
            promote=promote,
        )
        return out, repairs
    _check_size(layer, geoms, labels)
    empty = _first(shapely.is_empty(geoms))
    if empty is not None:
        _fail(InvalidGeometry, layer, labels, empty, Said("empty geometry", "geometría vacía"))
    hollow = _first(_empty_parts(geoms))
    if hollow is not None:
        _fail(
            InvalidGeometry,
            layer,
            labels,
            hollow,
            Said("an empty part or ring: remove it", "una parte o anillo vacío: quítelo"),
        )
    geoms = _conform_type(layer, geoms, labels, promote=promote)
    has_z = shapely.has_z(geoms)
    if has_z.any():  # only those: the others stay the objects they were
        geoms[has_z] = shapely.force_2d(geoms[has_z])
    _check_coordinates(layer, geoms, labels, service_bbox)
    valid = shapely.is_valid(geoms)
    if valid.all():
        return geoms, []
    reasons = np.full(len(geoms), "", dtype=object)
    reasons[~valid] = [geos_reason(r) for r in shapely.is_valid_reason(geoms[~valid])]
    if not repair:
        i = _first(~valid)
        _fail(
            InvalidGeometry,
            layer,
            labels,
            i,
            Said(
                f"invalid geometry: {reasons[i]} (send ?repair=true or --repair to fix it "
                "with ST_MakeValid)",
                f"geometría no válida: {said(reasons[i], 'es')} (envíe ?repair=true o --repair "
                "para corregirla con ST_MakeValid)",
            ),
        )
    repaired, repairs = _repair(layer, geoms, ~valid, labels, reasons)
    _check_size(layer, repaired, labels, repaired=True)
    return repaired, repairs
