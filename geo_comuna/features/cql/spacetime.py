"""The spatial functions (S_INTERSECTS, S_WITHIN...) between the geometry and a literal in
filter-crs, and the temporal ones (T_AFTER, T_INTERSECTS...) between a date property and a
DATE, TIMESTAMP or INTERVAL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import shapely.geometry
from psycopg import sql
from shapely.errors import GEOSException
from shapely.validation import explain_validity

from geo_comuna.errors import Said
from geo_comuna.features import crs as crs_mod
from geo_comuna.features.cql.base import Walker, as_datetime
from geo_comuna.features.cql.parse import written
from geo_comuna.features.queryables import Queryable
from geo_comuna.features.validate import geos_reason

SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_equals": "ST_Equals",
    "s_disjoint": "ST_Disjoint",
    "s_touches": "ST_Touches",
    "s_within": "ST_Within",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
    "s_contains": "ST_Contains",
}
SPATIAL_MIRROR = {"s_within": "s_contains", "s_contains": "s_within"}
TEMPORAL_INSTANT = {"t_after", "t_before", "t_disjoint", "t_equals", "t_intersects"}
TEMPORAL_MIRROR = {"t_after": "t_before", "t_before": "t_after"}
TEMPORAL_INTERVAL_ONLY = {
    "t_contains",
    "t_during",
    "t_finishedby",
    "t_finishes",
    "t_meets",
    "t_metby",
    "t_overlappedby",
    "t_overlaps",
    "t_startedby",
    "t_starts",
}


class SpaceTime(Walker):
    """The spatial and temporal functions of the walk."""

    def spatial(self, node: Any, op: str, args: list) -> sql.Composable:
        a, b = args
        prop = self.property(node, a)
        literal = b
        if prop is None:
            prop, literal = self.property(node, b), a
            op = SPATIAL_MIRROR.get(op, op)
        if prop is None or prop.type != "geometry" or self.property(node, literal) is not None:
            raise self.fail(
                node,
                Said(
                    f"{op.upper()} relates the geometry to a geometry literal",
                    f"{op.upper()} relaciona la geometría con una geometría escrita",
                ),
            )
        return sql.SQL("{}({}, {})").format(
            sql.SQL(SPATIAL[op]), prop.expr, self.geometry(node, literal)
        )

    def geometry(self, node: Any, literal: Any) -> sql.Composable:
        """A WKT / GeoJSON / BBOX literal in filter-crs, as stored geometry (EPSG:4326)."""
        if isinstance(literal, dict) and set(literal) == {"bbox"}:
            literal = self.bbox_polygon(node, literal["bbox"])
        if not isinstance(literal, dict) or "type" not in literal:
            raise self.fail(
                node,
                Said(
                    "expected a geometry (WKT, GeoJSON or BBOX)",
                    "se esperaba una geometría (WKT, GeoJSON o BBOX)",
                ),
            )
        if _open_ring(literal):  # shapely would close it quietly: another polygon than written
            raise self.fail(
                node,
                Said(
                    "a polygon's ring must end where it starts (repeat its first point)",
                    "el anillo de un polígono debe terminar donde empieza (repita su primer punto)",
                ),
            )
        try:
            shape = shapely.geometry.shape(literal)
            coordinates = shapely.get_coordinates(shape).tolist()
        except (ValueError, TypeError, KeyError, AttributeError, GEOSException) as exc:
            raise self.fail(
                node, Said(f"not a geometry: {exc}", f"no es una geometría: {exc}")
            ) from None
        if shape.is_empty:
            raise self.fail(node, Said("the geometry is empty", "la geometría está vacía"))
        crs_mod.check_coordinates(
            crs_mod.xy_order(coordinates, self.crs), self.crs, f"filter geometry in {written(node)}"
        )
        if not shape.is_valid:
            why = geos_reason(explain_validity(shape))
            raise self.fail(
                node,
                Said(f"the geometry is not valid: {why}", f"la geometría no es válida: {why.es}"),
            )
        geojson = json.dumps(shapely.geometry.mapping(shapely.force_2d(shape)))
        geom = sql.SQL("ST_GeomFromGeoJSON({})").format(self.bind(geojson, "text"))
        if self.crs.srid != 4326:  # densify, so that edges stay where they were drawn
            w, s, e, n = shape.bounds
            step = max(e - w, n - s) / 64 or 1.0
            geom = sql.SQL("ST_Segmentize({}, {})").format(geom, self.bind(step, "float8"))
        return crs_mod.to_storage(geom, self.crs)

    def bbox_polygon(self, node: Any, values: Any) -> dict:
        """A BBOX literal as a Polygon (two across the antimeridian), axes as written."""
        if not isinstance(values, list) or len(values) not in (4, 6):
            raise self.fail(node, Said("BBOX takes 4 (or 6) numbers", "BBOX toma 4 (o 6) números"))
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        if len(numbers) != len(values):
            raise self.fail(node, Said("BBOX takes numbers", "BBOX toma números"))
        w, s, e, n = crs_mod.parse_bbox_numbers(numbers, written(node), self.crs)
        boxes = [(w, s, e, n)] if w <= e else [(w, s, 180.0, n), (-180.0, s, e, n)]
        polygons = []
        for bw, bs, be, bn in boxes:
            ring = [(bw, bs), (be, bs), (be, bn), (bw, bn), (bw, bs)]
            polygons.append([[list(p) for p in crs_mod.xy_order(ring, self.crs)]])
        if len(polygons) == 1:
            return {"type": "Polygon", "coordinates": polygons[0]}
        return {"type": "MultiPolygon", "coordinates": polygons}

    def temporal(self, node: Any, op: str, args: list) -> sql.Composable:
        a, b = args
        prop, literal = self.property(node, a), b
        if prop is None:
            prop, literal = self.property(node, b), a
            op = TEMPORAL_MIRROR.get(op, op)
        if prop is None or prop.type != "date" or self.property(node, literal) is not None:
            raise self.fail(
                node,
                Said(
                    f"{op.upper()} relates a date property to a date or interval",
                    f"{op.upper()} relaciona un campo de fecha con una fecha o un intervalo",
                ),
            )
        if op in TEMPORAL_INTERVAL_ONLY:
            raise self.fail(
                node,
                Said(
                    f"{op.upper()} relates intervals and {prop.name} is an instant (a date); "
                    "use T_INTERSECTS, T_BEFORE, T_AFTER, T_EQUALS or T_DISJOINT",
                    f"{op.upper()} relaciona intervalos y {prop.name} es un instante (una fecha); "
                    "use T_INTERSECTS, T_BEFORE, T_AFTER, T_EQUALS o T_DISJOINT",
                ),
            )
        if isinstance(literal, dict) and set(literal) == {"interval"}:
            start, end = self.interval(node, prop, literal["interval"])
        else:
            start = end = self.instant(node, prop, literal)
        stamps = isinstance(start, dt.datetime) or isinstance(end, dt.datetime)
        value = self.as_timestamp(prop) if stamps else prop.expr
        cast = "timestamptz" if stamps else "date"

        def bound(v: Any, infinite: str) -> sql.Composable:
            if v is None:  # an open end ('..')
                return sql.SQL(f"'{infinite}'::{cast}")
            return self.bind(as_datetime(v) if stamps else v, cast)

        lo, hi = bound(start, "-infinity"), bound(end, "infinity")
        forms = DAY_AGAINST_TIMESTAMPS if stamps else DAYS
        return sql.SQL(forms[op]).format(v=value, lo=lo, hi=hi)

    def interval(
        self, node: Any, prop: Queryable, ends: Any
    ) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None]:
        if not isinstance(ends, list) or len(ends) != 2:
            raise self.fail(
                node, Said("INTERVAL takes a start and an end", "INTERVAL toma un inicio y un fin")
            )
        start, end = (None if v == ".." else self.instant(node, prop, _as_literal(v)) for v in ends)
        if start is not None and end is not None and as_datetime(start) > as_datetime(end):
            raise self.fail(
                node,
                Said("the interval ends before it starts", "el intervalo termina antes de empezar"),
            )
        return start, end


#: a temporal function between a date and dates: both instants of a day's granularity
DAYS = {
    "t_after": "{v} > {hi}",
    "t_before": "{v} < {lo}",
    "t_equals": "({v} = {lo} AND {v} = {hi})",
    "t_intersects": "({v} >= {lo} AND {v} <= {hi})",
    "t_disjoint": "({v} < {lo} OR {v} > {hi})",
}
#: ... and between a date and timestamps: the date is its whole day in UTC, [v, v + 1 day),
#: as ?datetime= takes it (api/temporal.py) and as cql2-rs does. As its midnight, the filter
#: T_INTERSECTS(recovered_on, TIMESTAMP('2021-09-14T12:00:00Z')) missed the parcel of that
#: day that datetime=2021-09-14T12:00:00Z found: GDAL and QGIS got two answers to one question
DAY_AGAINST_TIMESTAMPS = {
    "t_after": "{v} > {hi}",
    "t_before": "{v} + interval '1 day' <= {lo}",
    "t_equals": "({v} = {lo} AND {v} + interval '1 day' - interval '1 microsecond' = {hi})",
    "t_intersects": "({v} <= {hi} AND {v} + interval '1 day' > {lo})",
    "t_disjoint": "({v} > {hi} OR {v} + interval '1 day' <= {lo})",
}


def _as_literal(value: Any) -> Any:
    """An interval's end, written as text, as the literal it stands for."""
    if isinstance(value, str) and "T" in value.upper():
        return {"timestamp": value}
    return {"date": value} if isinstance(value, str) else value


def _open_ring(literal: dict) -> bool:
    """Does a Polygon or MultiPolygon literal hold a ring whose last point is not its first?"""
    kind, coordinates = literal.get("type"), literal.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    try:
        return any(
            len(ring) > 0 and list(ring[0]) != list(ring[-1])
            for polygon in polygons or []
            for ring in polygon
        )
    except TypeError:  # not lists of points: shapely says what is wrong with it
        return False
