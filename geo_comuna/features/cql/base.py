"""What every step of the walk over a CQL2 tree uses: resolving a property through the
registry, binding a value as a typed parameter, reading an instant, saying where it failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.errors import InvalidInput, Said, said
from geo_comuna.features import crs as crs_mod
from geo_comuna.features.cql.parse import written
from geo_comuna.features.queryables import Queryable, resolve
from geo_comuna.layers import Layer


class Walker:
    """Walks one filter for one layer and reader; ``private`` turns true once a members-only
    property or geometry is named."""

    def __init__(self, layer: Layer, access: Access, filter_crs: crs_mod.Crs, params: dict) -> None:
        self.layer, self.access, self.crs, self.params = layer, access, filter_crs, params
        self.private = False
        self.bound = 0

    def fail(self, node: Any, reason: str | Said) -> InvalidInput:
        """A 400 saying why ``node`` cannot be, and where: in English and Spanish."""
        where = written(node)
        return InvalidInput(
            Said(f"filter: {reason}, in {where}", f"filtro: {said(reason, 'es')}, en {where}"),
            layer=self.layer.name,
        )

    def bind(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"cql{self.bound}"
        self.bound += 1
        self.params[name] = value
        placeholder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(placeholder, sql.SQL(cast)) if cast else placeholder

    def property(self, node: Any, arg: Any) -> Queryable | None:
        if isinstance(arg, dict) and set(arg) == {"property"}:
            if not isinstance(arg["property"], str):
                raise self.fail(
                    node, Said("a property name must be text", "un nombre de campo debe ser texto")
                )
            try:
                found = resolve(self.layer, self.access, arg["property"], "filter")
            except InvalidInput as exc:
                raise self.fail(node, _after_filter(exc.reason)) from None
            self.private = self.private or found.members
            return found
        return None

    def arity(self, node: Any, args: list, n: int) -> None:
        if len(args) != n:
            raise self.fail(
                node,
                Said(
                    f"{node['op']} takes {n} argument{'s' if n > 1 else ''}",
                    f"{node['op']} toma {n} argumento{'s' if n > 1 else ''}",
                ),
            )

    def as_timestamp(self, prop: Queryable) -> sql.Composable:
        return sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(prop.expr)

    def instant(self, node: Any, prop: Queryable, literal: Any) -> dt.date | dt.datetime:
        """DATE('2020-01-31'), TIMESTAMP('2020-01-31T12:00:00Z'), or plain '2020-01-31'."""
        if isinstance(literal, dict) and set(literal) == {"date"}:
            text, parse = literal["date"], dt.date.fromisoformat
        elif isinstance(literal, dict) and set(literal) == {"timestamp"}:
            text, parse = literal["timestamp"], timestamp
        elif isinstance(literal, str):
            text, parse = literal, dt.date.fromisoformat
        else:
            raise self.fail(
                node,
                Said(
                    f"{prop.name} is a date; write DATE('2020-01-31')",
                    f"{prop.name} es una fecha; escriba DATE('2020-01-31')",
                ),
            )
        try:
            return parse(text)
        except (ValueError, TypeError):
            raise self.fail(
                node,
                Said(
                    f"{text!r} is not a date (YYYY-MM-DD) or timestamp",
                    f"{text!r} no es una fecha (AAAA-MM-DD) ni un instante (TIMESTAMP)",
                ),
            ) from None


def timestamp(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    """A date as its midnight in UTC; a timestamp as itself."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _after_filter(reason: str) -> str | Said:
    """A refusal of queryables.resolve without its leading "filter: " in both languages."""
    if isinstance(reason, Said):
        return Said(reason.removeprefix("filter: "), reason.es.removeprefix("filtro: "))
    return reason.removeprefix("filter: ")
