"""The walk over a CQL2 tree that writes the WHERE condition: logic, comparisons, LIKE,
BETWEEN, IN, IS NULL, CASEI; spatial and temporal functions come from spacetime.py."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.errors import Said
from geo_comuna.features import crs as crs_mod
from geo_comuna.features.cql.base import as_datetime
from geo_comuna.features.cql.spacetime import (
    SPATIAL,
    TEMPORAL_INSTANT,
    TEMPORAL_INTERVAL_ONLY,
    SpaceTime,
)
from geo_comuna.features.queryables import Queryable
from geo_comuna.layers import Layer
from geo_comuna.text import is_text

COMPARE = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
SQL_TYPES = {"text": "text", "integer": "numeric", "number": "numeric", "boolean": "boolean"}


#: a queryable's kind, in Spanish
KINDS_ES = {
    "integer": "un entero",
    "number": "un número",
    "date": "una fecha",
    "boolean": "un booleano",
}


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


class Translator(SpaceTime):
    """The walk: each predicate becomes a Composable, each value a bound parameter."""

    def predicate(self, node: Any) -> sql.Composable:
        if isinstance(node, bool):
            return sql.SQL("true" if node else "false")
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise self.fail(
                node,
                Said(
                    "expected a predicate (a comparison, LIKE, S_INTERSECTS...)",
                    "se esperaba una condición (una comparación, LIKE, S_INTERSECTS...)",
                ),
            )
        op, args = node["op"], node.get("args", [])
        if not isinstance(args, list):
            raise self.fail(
                node,
                Said(f"{op} needs a list of arguments", f"{op} necesita una lista de argumentos"),
            )
        if op in ("and", "or"):
            if len(args) < 2:
                raise self.fail(
                    node,
                    Said(
                        f"{op.upper()} needs two or more predicates",
                        f"{op.upper()} necesita dos condiciones o más",
                    ),
                )
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
        raise self.fail(node, Said(f"{op} is not supported here", f"{op} no se admite aquí"))

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
        raise self.fail(
            node, Said("compare one property with a value", "compare un campo con un valor")
        )

    def unwrap_casei(self, arg: Any) -> tuple[Any, bool]:
        if isinstance(arg, dict) and arg.get("op") == "casei":
            inner = arg.get("args")
            if not isinstance(inner, list) or len(inner) != 1:
                raise self.fail(arg, Said("CASEI takes one argument", "CASEI toma un argumento"))
            return inner[0], True
        if isinstance(arg, dict) and isinstance(arg.get("op"), str):
            # ACCENTI, arithmetic and other functions
            raise self.fail(
                arg,
                Said(
                    f"{arg['op'].upper()} is not supported here",
                    f"{arg['op'].upper()} no se admite aquí",
                ),
            )
        return arg, False

    def compare(self, node: Any, op: str, a: Any, b: Any) -> sql.Composable:
        prop, casei, literal, swapped = self.sides(node, a, b)
        if swapped:
            op = MIRROR[op]
        if prop.type == "geometry":
            raise self.fail(
                node,
                Said(
                    "compare geometries with S_INTERSECTS, S_WITHIN...",
                    "compare geometrías con S_INTERSECTS, S_WITHIN...",
                ),
            )
        if prop.code_of and op == "=" and not casei:
            return self.code_in(prop, [self.scalar(node, prop, literal, check_domain=True)])
        left, right = self.operands(node, prop, casei, literal, check_domain=op in ("=", "<>"))
        return sql.SQL("{} {} {}").format(left, sql.SQL(COMPARE[op]), right)

    def operands(
        self, node: Any, prop: Queryable, casei: bool, literal: Any, check_domain: bool = False
    ) -> tuple[sql.Composable, sql.Composable]:
        if casei and prop.type != "text":
            raise self.fail(
                node,
                Said(
                    f"CASEI compares text; {prop.name} is {prop.type}",
                    f"CASEI compara texto; {prop.name} es {KINDS_ES.get(prop.type, prop.type)}",
                ),
            )
        value = self.scalar(node, prop, literal, check_domain=check_domain and not casei)
        if isinstance(value, dt.datetime):  # a date property against a timestamp
            return self.as_timestamp(prop), self.bind(value, "timestamptz")
        right = self.bind(value, self.cast(prop))
        if casei:
            return sql.SQL("lower({})").format(prop.expr), sql.SQL("lower({})").format(right)
        return prop.expr, right

    def cast(self, prop: Queryable) -> str:
        return "date" if prop.type == "date" else SQL_TYPES[prop.type]

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
        if literal is None:  # "= NULL" was told to write DATE('2020-01-31')
            raise self.fail(
                node,
                Said(
                    f"nothing equals NULL: features without {prop.name} are {prop.name} IS NULL",
                    f"nada es igual a NULL: las entidades sin {prop.name} son {prop.name} IS NULL",
                ),
            )
        kind = prop.type
        if kind == "text":
            return self.text(node, prop, literal, check_domain)
        if kind in ("integer", "number"):
            if isinstance(literal, bool) or not isinstance(literal, int | float):
                raise self.fail(node, Said(f"{prop.name} is a number", f"{prop.name} es un número"))
            if not math.isfinite(literal):
                raise self.fail(
                    node, Said("numbers must be finite", "los números deben ser finitos")
                )
            return literal
        if kind == "boolean":
            if not isinstance(literal, bool):
                raise self.fail(
                    node, Said(f"{prop.name} is true or false", f"{prop.name} es true o false")
                )
            return literal
        if kind == "date":
            return self.instant(node, prop, literal)
        raise self.fail(
            node,
            Said(f"{prop.name} cannot be compared so", f"{prop.name} no se puede comparar así"),
        )

    def text(self, node: Any, prop: Queryable, literal: Any, check_domain: bool) -> str:
        """``literal`` as a value of the text ``prop``: a coded one's code when ``check_domain``
        (its label taken too)."""
        if not isinstance(literal, str):
            raise self.fail(
                node,
                Said(
                    f"{prop.name} is text; compare it with 'quoted text'",
                    f"{prop.name} es texto; compárelo con 'texto entre comillas'",
                ),
            )
        if not is_text(literal):
            raise self.fail(
                node,
                Said(
                    "text holds a NUL or a lone surrogate",
                    "el texto tiene un NUL o un sustituto suelto",
                ),
            )
        if check_domain and prop.domain:
            # a code, or its Spanish or English label, as ?tenure= and writes take them
            code = prop.domain.code(literal)
            if code is None:
                allowed = ", ".join(prop.domain.values)
                raise self.fail(
                    node,
                    Said(
                        f"{prop.name} has no value {literal!r}; it takes {allowed}",
                        f"{prop.name} no tiene el valor {literal!r}; toma {allowed}",
                    ),
                )
            return code
        return literal

    def like(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 2)
        prop, casei, pattern, swapped = self.sides(node, args[0], args[1])
        if swapped or prop.type != "text":
            raise self.fail(
                node,
                Said(
                    "LIKE matches a text property against a 'pattern'",
                    "LIKE compara un campo de texto con un 'patrón'",
                ),
            )
        left, right = self.operands(node, prop, casei, pattern)
        return sql.SQL("{} LIKE {}").format(left, right)

    def between(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 3)
        prop = self.property(node, args[0])
        if prop is None or prop.type not in ("integer", "number", "date", "text"):
            raise self.fail(
                node,
                Said(
                    "BETWEEN takes a number, date or text property first",
                    "BETWEEN toma primero un campo de número, fecha o texto",
                ),
            )
        low, high = (self.scalar(node, prop, v) for v in args[1:])
        if isinstance(low, dt.datetime) or isinstance(high, dt.datetime):
            low, high = (as_datetime(v) for v in (low, high))
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
            raise self.fail(
                node,
                Said(
                    "IN takes a property and a list of values",
                    "IN toma un campo y una lista de valores",
                ),
            )
        if not values:
            raise self.fail(
                node, Said("IN needs at least one value", "IN necesita al menos un valor")
            )
        checked = [self.scalar(node, prop, v, check_domain=True) for v in values]
        if prop.code_of:
            return self.code_in(prop, checked)
        if any(isinstance(v, dt.datetime) for v in checked):
            stamps = [as_datetime(v) for v in checked]
            return sql.SQL("{} = ANY({})").format(
                self.as_timestamp(prop), self.bind(stamps, "timestamptz[]")
            )
        return sql.SQL("{} = ANY({})").format(prop.expr, self.bind(checked, f"{self.cast(prop)}[]"))

    def is_null(self, node: Any, args: list) -> sql.Composable:
        self.arity(node, args, 1)
        prop = self.property(node, args[0])
        if prop is None:
            raise self.fail(node, Said("IS NULL takes a property", "IS NULL toma un campo"))
        return sql.SQL("({} IS NULL)").format(prop.expr)
