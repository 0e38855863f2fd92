"""CQL2 filters (OGC API - Features Part 3) to parameterised SQL.

The ``cql2`` library parses both encodings, text and JSON, into one JSON tree; the
``Translator`` here walks that tree and writes psycopg ``sql`` Composables over alias ``t``:
property names resolve only through the registry (features/queryables.py) and every value
is bound as a parameter, typed (dates as dates, timestamps as timestamptz, numbers as
numeric). Nothing of the filter's text reaches the SQL.

Supported: and, or, not; =, <>, <, <=, >, >=, IS NULL; LIKE, BETWEEN, IN; CASEI; the eight
spatial functions (S_INTERSECTS, S_WITHIN...) between the geometry and a literal (WKT or
GeoJSON, or BBOX) in ``filter-crs``; the temporal functions between a date property and a
DATE, TIMESTAMP or INTERVAL literal. A date compared with a timestamp is its midnight in UTC.

Read rules: a filter naming a members-only property is refused (403) for a reader who may
read it in no commune; otherwise, like one naming a members-only geometry, it matches only
the rows whose members-only data the reader may read (``Condition.private``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import cql2
import shapely.geometry
from psycopg import sql
from shapely.errors import GEOSException
from shapely.validation import explain_validity

from geo_comuna.accounts import Access
from geo_comuna.errors import InvalidInput
from geo_comuna.features import crs as crs_mod
from geo_comuna.features.attributes import is_text
from geo_comuna.features.queryables import Queryable, resolve
from geo_comuna.layers import Layer

LANGS = ("cql2-text", "cql2-json")
#: longer filters are refused; it also bounds the nesting the parser walks
MAX_CHARS = 20_000
#: deeper trees are refused before anything walks them
MAX_DEPTH = 64
#: the parser recurses once per nesting level on its thread's stack: 20,000 characters
#: nest at most 10,000 levels, well within this (reserved, not committed, memory)
PARSER_STACK = 256 * 1024 * 1024

COMPARE = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
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
SQL_TYPES = {"text": "text", "integer": "numeric", "number": "numeric", "boolean": "boolean"}


def parse(text: str, lang: str | None) -> str:
    """A filter as canonical CQL2 JSON text (what ``Filters`` keeps), or a 400 saying
    where it is malformed."""
    lang = lang or "cql2-text"
    if lang not in LANGS:
        raise InvalidInput(f"filter-lang {lang!r} is not supported; use {' or '.join(LANGS)}")
    if len(text) > MAX_CHARS:
        raise InvalidInput(f"filter is longer than {MAX_CHARS:,} characters")
    if not is_text(text):
        raise InvalidInput("filter holds a character text cannot (NUL or a lone surrogate)")
    reader = cql2.parse_text if lang == "cql2-text" else cql2.parse_json
    tree = _on_big_stack(lambda: reader(text).to_json())
    if _depth(tree) > MAX_DEPTH:
        raise InvalidInput(f"filter nests deeper than {MAX_DEPTH} levels")
    return json.dumps(tree, sort_keys=True, separators=(",", ":"))


def _on_big_stack(work: Any) -> Any:
    """Run the parser on a thread of its own with room for deep nesting: on a normal
    thread's stack a few thousand nested parentheses crash the process."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["tree"] = work()
        except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
            out["error"] = str(exc)

    previous = threading.stack_size(PARSER_STACK)
    try:
        thread = threading.Thread(target=run, name="cql2-parse")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in out:
        raise InvalidInput(f"filter is not valid CQL2: {_one_line(out['error'])}")
    return out["tree"]


def _one_line(message: str) -> str:
    """The parser's message, its caret drawing folded onto one line."""
    lines = [line.strip() for line in message.strip().splitlines()]
    where = next((line[4:] for line in lines if line.startswith("--> ")), None)
    expected = next((line[2:] for line in lines if line.startswith("= ")), None)
    if where and expected:
        line, _, column = where.partition(":")
        return f"at line {line}, column {column}: {expected}"
    return " ".join(line for line in lines if line and not set(line) <= {"|", "^", "-"})


def _depth(tree: Any) -> int:
    """Nesting depth of a JSON tree, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


@dataclass(frozen=True)
class Condition:
    sql: sql.Composable
    #: names a members-only property or geometry: match only rows the reader may read
    private: bool


def to_sql(
    layer: Layer, access: Access, canonical: str, filter_crs: crs_mod.Crs, params: dict
) -> Condition:
    """The WHERE condition of a parsed filter, its values added to ``params``."""
    translator = Translator(layer, access, filter_crs, params)
    return Condition(translator.predicate(json.loads(canonical)), translator.private)


def _text(node: Any) -> str:
    """A node written back as CQL2 text, to say where in the filter something is wrong."""
    try:
        return cql2.parse_json(json.dumps(node)).to_text()
    except (cql2.ParseError, ValueError, TypeError):
        return json.dumps(node)


class Translator:
    def __init__(self, layer: Layer, access: Access, filter_crs: crs_mod.Crs, params: dict) -> None:
        self.layer, self.access, self.crs, self.params = layer, access, filter_crs, params
        self.private = False
        self.bound = 0

    # -- helpers ----------------------------------------------------------------------------

    def fail(self, node: Any, reason: str) -> InvalidInput:
        return InvalidInput(f"filter: {reason}, in {_text(node)}", layer=self.layer.name)

    def bind(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"cql{self.bound}"
        self.bound += 1
        self.params[name] = value
        placeholder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(placeholder, sql.SQL(cast)) if cast else placeholder

    def property(self, node: Any, arg: Any) -> Queryable | None:
        if isinstance(arg, dict) and set(arg) == {"property"}:
            if not isinstance(arg["property"], str):
                raise self.fail(node, "a property name must be text")
            try:
                found = resolve(self.layer, self.access, arg["property"], "filter")
            except InvalidInput as exc:
                raise self.fail(node, exc.reason.removeprefix("filter: ")) from None
            self.private = self.private or found.members
            return found
        return None

    # -- predicates -------------------------------------------------------------------------

    def predicate(self, node: Any) -> sql.Composable:
        if isinstance(node, bool):
            return sql.SQL("true" if node else "false")
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise self.fail(node, "expected a predicate (a comparison, LIKE, S_INTERSECTS...)")
        op, args = node["op"], node.get("args", [])
        if not isinstance(args, list):
            raise self.fail(node, f"{op} needs a list of arguments")
        if op in ("and", "or"):
            if len(args) < 2:
                raise self.fail(node, f"{op.upper()} needs two or more predicates")
            joined = sql.SQL(f" {op.upper()} ").join(self.predicate(a) for a in args)
            return sql.SQL("({})").format(joined)
        if op == "not":
            self.arity(node, args, 1)
            return sql.SQL("(NOT {})").format(self.predicate(args[0]))
        if op in COMPARE:
            self.arity(node, args, 2)
            return self.compare(node, op, args[0], args[1])
        handlers = {
            "like": self.like,
            "between": self.between,
            "in": self.in_list,
            "isNull": self.is_null,
        }
        if op in handlers:
            return handlers[op](node, args)
        if op in SPATIAL:
            self.arity(node, args, 2)
            return self.spatial(node, op, args)
        if op in TEMPORAL_INSTANT or op in TEMPORAL_INTERVAL_ONLY:
            self.arity(node, args, 2)
            return self.temporal(node, op, args)
        raise self.fail(node, f"{op} is not supported here")

    def arity(self, node: Any, args: list, n: int) -> None:
        if len(args) != n:
            raise self.fail(node, f"{node['op']} takes {n} argument{'s' if n > 1 else ''}")

    def sides(self, node: Any, a: Any, b: Any) -> tuple[Queryable, bool, Any, bool]:
        """(property, under CASEI, the other side, property was on the right)."""
        left, left_casei = self.unwrap_casei(a)
        right, right_casei = self.unwrap_casei(b)
        prop = self.property(node, left)
        if prop is not None and self.property(node, right) is None:
            return prop, left_casei or right_casei, right, False
        prop = self.property(node, right)
        if prop is not None and self.property(node, left) is None:
            return prop, left_casei or right_casei, left, True
        raise self.fail(node, "compare one property with a value")

    def unwrap_casei(self, arg: Any) -> tuple[Any, bool]:
        if isinstance(arg, dict) and arg.get("op") == "casei":
            inner = arg.get("args")
            if not isinstance(inner, list) or len(inner) != 1:
                raise self.fail(arg, "CASEI takes one argument")
            return inner[0], True
        if isinstance(arg, dict) and isinstance(arg.get("op"), str):
            # ACCENTI, arithmetic and other functions
            raise self.fail(arg, f"{arg['op'].upper()} is not supported here")
        return arg, False

    def compare(self, node: Any, op: str, a: Any, b: Any) -> sql.Composable:
        prop, casei, literal, swapped = self.sides(node, a, b)
        if swapped:
            op = MIRROR[op]
        if prop.type == "geometry":
            raise self.fail(node, "compare geometries with S_INTERSECTS, S_WITHIN...")
        if prop.code_of and op == "=" and not casei:
            return self.code_in(prop, [self.scalar(node, prop, literal, check_domain=True)])
        left, right = self.operands(node, prop, casei, literal, check_domain=op in ("=", "<>"))
        return sql.SQL("{} {} {}").format(left, sql.SQL(COMPARE[op]), right)

    def operands(
        self, node: Any, prop: Queryable, casei: bool, literal: Any, check_domain: bool = False
    ) -> tuple[sql.Composable, sql.Composable]:
        if casei and prop.type != "text":
            raise self.fail(node, f"CASEI compares text; {prop.name} is {prop.type}")
        value = self.scalar(node, prop, literal, check_domain=check_domain and not casei)
        if isinstance(value, dt.datetime):  # a date property against a timestamp
            return self.as_timestamp(prop), self.bind(value, "timestamptz")
        right = self.bind(value, self.cast(prop))
        if casei:
            return sql.SQL("lower({})").format(prop.expr), sql.SQL("lower({})").format(right)
        return prop.expr, right

    def cast(self, prop: Queryable) -> str:
        return "date" if prop.type == "date" else SQL_TYPES[prop.type]

    def as_timestamp(self, prop: Queryable) -> sql.Composable:
        return sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(prop.expr)

    def code_in(self, prop: Queryable, codes: list[str]) -> sql.Composable:
        """A code reference matched through its table's index, not a subquery per row."""
        assert prop.code_of is not None
        column, table, key = prop.code_of
        return sql.SQL("t.{} = ANY(ARRAY(SELECT r.id FROM {} r WHERE r.{} = ANY({})))").format(
            sql.Identifier(column),
            sql.Identifier(table),
            sql.Identifier(key),
            self.bind(codes, "text[]"),
        )

    def scalar(self, node: Any, prop: Queryable, literal: Any, check_domain: bool = False) -> Any:
        """``literal`` as a value of ``prop``'s type, or a 400 saying what was expected."""
        kind = prop.type
        if kind == "text":
            if not isinstance(literal, str):
                raise self.fail(node, f"{prop.name} is text; compare it with 'quoted text'")
            if not is_text(literal):
                raise self.fail(node, "text holds a NUL or a lone surrogate")
            if check_domain and prop.domain and literal not in prop.domain:
                allowed = ", ".join(prop.domain.values)
                raise self.fail(node, f"{prop.name} has no value {literal!r}; it takes {allowed}")
            return literal
        if kind in ("integer", "number"):
            if isinstance(literal, bool) or not isinstance(literal, int | float):
                raise self.fail(node, f"{prop.name} is a number")
            if not math.isfinite(literal):
                raise self.fail(node, "numbers must be finite")
            return literal
        if kind == "boolean":
            if not isinstance(literal, bool):
                raise self.fail(node, f"{prop.name} is true or false")
            return literal
        if kind == "date":
            return self.instant(node, prop, literal)
        raise self.fail(node, f"{prop.name} cannot be compared so")

    def instant(self, node: Any, prop: Queryable, literal: Any) -> dt.date | dt.datetime:
        """DATE('2020-01-31'), TIMESTAMP('2020-01-31T12:00:00Z'), or plain '2020-01-31'."""
        if isinstance(literal, dict) and set(literal) == {"date"}:
            text, parse = literal["date"], dt.date.fromisoformat
        elif isinstance(literal, dict) and set(literal) == {"timestamp"}:
            text, parse = literal["timestamp"], _timestamp
        elif isinstance(literal, str):
            text, parse = literal, dt.date.fromisoformat
        else:
            raise self.fail(node, f"{prop.name} is a date; write DATE('2020-01-31')")
        try:
            return parse(text)
        except (ValueError, TypeError):
            raise self.fail(node, f"{text!r} is not a date (YYYY-MM-DD) or timestamp") from None

    def like(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 2)
        prop, casei, pattern, swapped = self.sides(node, args[0], args[1])
        if swapped or prop.type != "text":
            raise self.fail(node, "LIKE matches a text property against a 'pattern'")
        left, right = self.operands(node, prop, casei, pattern)
        return sql.SQL("{} LIKE {}").format(left, right)

    def between(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 3)
        prop = self.property(node, args[0])
        if prop is None or prop.type not in ("integer", "number", "date", "text"):
            raise self.fail(node, "BETWEEN takes a number, date or text property first")
        low, high = (self.scalar(node, prop, v) for v in args[1:])
        if isinstance(low, dt.datetime) or isinstance(high, dt.datetime):
            low, high = (_as_datetime(v) for v in (low, high))
            return sql.SQL("{} BETWEEN {} AND {}").format(
                self.as_timestamp(prop),
                self.bind(low, "timestamptz"),
                self.bind(high, "timestamptz"),
            )
        cast = self.cast(prop)
        return sql.SQL("{} BETWEEN {} AND {}").format(
            prop.expr, self.bind(low, cast), self.bind(high, cast)
        )

    def in_list(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 2)
        prop = self.property(node, args[0])
        values = args[1]
        if prop is None or prop.type == "geometry" or not isinstance(values, list):
            raise self.fail(node, "IN takes a property and a list of values")
        if not values:
            raise self.fail(node, "IN needs at least one value")
        checked = [self.scalar(node, prop, v, check_domain=True) for v in values]
        if prop.code_of:
            return self.code_in(prop, checked)
        if any(isinstance(v, dt.datetime) for v in checked):
            stamps = [_as_datetime(v) for v in checked]
            return sql.SQL("{} = ANY({})").format(
                self.as_timestamp(prop), self.bind(stamps, "timestamptz[]")
            )
        return sql.SQL("{} = ANY({})").format(prop.expr, self.bind(checked, f"{self.cast(prop)}[]"))

    def is_null(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 1)
        prop = self.property(node, args[0])
        if prop is None:
            raise self.fail(node, "IS NULL takes a property")
        return sql.SQL("({} IS NULL)").format(prop.expr)

    # -- space and time -----------------------------------------------------------------------

    def spatial(self, node: Any, op: str, args: list) -> sql.Composable:
        a, b = args
        prop = self.property(node, a)
        literal = b
        if prop is None:
            prop, literal = self.property(node, b), a
            op = SPATIAL_MIRROR.get(op, op)
        if prop is None or prop.type != "geometry" or self.property(node, literal) is not None:
            raise self.fail(node, f"{op.upper()} relates the geometry to a geometry literal")
        return sql.SQL("{}({}, {})").format(
            sql.SQL(SPATIAL[op]), prop.expr, self.geometry(node, literal)
        )

    def geometry(self, node: Any, literal: Any) -> sql.Composable:
        """A WKT / GeoJSON / BBOX literal in filter-crs, as stored geometry (EPSG:4326)."""
        if isinstance(literal, dict) and set(literal) == {"bbox"}:
            literal = self.bbox_polygon(node, literal["bbox"])
        if not isinstance(literal, dict) or "type" not in literal:
            raise self.fail(node, "expected a geometry (WKT, GeoJSON or BBOX)")
        try:
            shape = shapely.geometry.shape(literal)
            coordinates = shapely.get_coordinates(shape).tolist()
        except (ValueError, TypeError, KeyError, AttributeError, GEOSException) as exc:
            raise self.fail(node, f"not a geometry: {exc}") from None
        if shape.is_empty:
            raise self.fail(node, "the geometry is empty")
        crs_mod.check_coordinates(
            crs_mod.xy_order(coordinates, self.crs), self.crs, f"filter geometry in {_text(node)}"
        )
        if not shape.is_valid:
            raise self.fail(node, f"the geometry is not valid: {explain_validity(shape)}")
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
            raise self.fail(node, "BBOX takes 4 (or 6) numbers")
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        if len(numbers) != len(values):
            raise self.fail(node, "BBOX takes numbers")
        w, s, e, n = crs_mod.parse_bbox_numbers(numbers, _text(node), self.crs)
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
            raise self.fail(node, f"{op.upper()} relates a date property to a date or interval")
        if op in TEMPORAL_INTERVAL_ONLY:
            raise self.fail(
                node,
                f"{op.upper()} relates intervals and {prop.name} is an instant (a date); "
                "use T_INTERSECTS, T_BEFORE, T_AFTER, T_EQUALS or T_DISJOINT",
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
            return self.bind(_as_datetime(v) if stamps else v, cast)

        lo, hi = bound(start, "-infinity"), bound(end, "infinity")
        forms = {
            "t_after": "{v} > {hi}",
            "t_before": "{v} < {lo}",
            "t_equals": "({v} = {lo} AND {v} = {hi})",
            "t_intersects": "({v} >= {lo} AND {v} <= {hi})",
            "t_disjoint": "({v} < {lo} OR {v} > {hi})",
        }
        return sql.SQL(forms[op]).format(v=value, lo=lo, hi=hi)

    def interval(
        self, node: Any, prop: Queryable, ends: Any
    ) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None]:
        if not isinstance(ends, list) or len(ends) != 2:
            raise self.fail(node, "INTERVAL takes a start and an end")
        start, end = (None if v == ".." else self.instant(node, prop, _as_literal(v)) for v in ends)
        if start is not None and end is not None and _as_datetime(start) > _as_datetime(end):
            raise self.fail(node, "the interval ends before it starts")
        return start, end


def _as_literal(value: Any) -> Any:
    """An interval's end, written as text, as the literal it stands for."""
    if isinstance(value, str) and "T" in value.upper():
        return {"timestamp": value}
    return {"date": value} if isinstance(value, str) else value


def _timestamp(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    """A date as its midnight in UTC; a timestamp as itself."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
