"""The reasons the database's own refusals give (db/functions/place_refusals.sql: a write
outside the communes an editor may edit, or outside a commune's territory), with their
Spanish: PostgreSQL raises them in English, the CLI says them in its user's language."""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg

from geo_comuna.errors import Said

#: the constraint name of a refusal raised with its reason (db/functions/editing_rights.sql)
SCOPE = "geo_comuna_scope"

_OUTSIDE = "outside the communes you may edit: "
_FUERA = "fuera de las comunas que puede editar: "
_DRAWN = r" \(leave the geometry out to have it drawn\)"
_DIBUJADA = " (omita la geometría para que se dibuje sola)"

#: each refusal of place_refusals.sql, and its Spanish from the same parts
_REFUSALS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(_OUTSIDE + r"the feature names no commune"),
        lambda m: _FUERA + "la entidad no nombra ninguna comuna",
    ),
    (
        re.compile(_OUTSIDE + r"commune (.+) is not one of them"),
        lambda m: _FUERA + f"la comuna {m[1]} no es una de ellas",
    ),
    (
        re.compile(_OUTSIDE + r"parcel (\d+) belongs to (?:commune (.+)|no commune)"),
        lambda m: (
            _FUERA
            + f"la parcela {m[1]} pertenece a "
            + (f"la comuna {m[2]}" if m[2] else "ninguna comuna")
        ),
    ),
    (
        re.compile(
            _OUTSIDE + r"an exchange is recorded by the commune it comes from, and (.+) is not "
            r"one of yours"
        ),
        lambda m: (
            _FUERA + "un intercambio lo registra la comuna de donde sale, y "
            f"{m[1]} no es una de las suyas"
        ),
    ),
    (
        re.compile(
            r"outside the territory of commune (\S+): (?:it reaches beyond its boundary|it lies "
            r"(.+) from it)(?:, inside commune (.+))? \(up to (.+) m beyond its boundary is "
            r"allowed\)"
        ),
        lambda m: (
            f"fuera del territorio de la comuna {m[1]}: "
            # "1.1 km" as Spanish writes it (found from outside)
            + (f"queda a {m[2].replace('.', ',')} de ella" if m[2] else "se sale de su límite")
            + (f", dentro de la comuna {m[3]}" if m[3] else "")
            + f" (se admite hasta {m[4]} m fuera de su límite)"
        ),
    ),
    (
        re.compile(
            r"the line must start inside commune (.+), where the exchange comes from" + _DRAWN
        ),
        lambda m: (
            f"la línea debe empezar dentro de la comuna {m[1]}, de donde sale el "
            "intercambio" + _DIBUJADA
        ),
    ),
    (
        re.compile(r"the line must end inside commune (.+), where the exchange goes" + _DRAWN),
        lambda m: (
            f"la línea debe terminar dentro de la comuna {m[1]}, adonde va el "
            "intercambio" + _DIBUJADA
        ),
    ),
    # the land records' (migration 0021): found from outside, said in English only
    (
        re.compile(r"a party of a commune you may not edit"),
        lambda m: "un sujeto de derecho de una comuna que usted no puede editar",
    ),
    (
        re.compile(r"a right on a parcel of a commune you may not edit"),
        lambda m: "un derecho sobre una parcela de una comuna que usted no puede editar",
    ),
    (
        re.compile(r"a right of a party of a commune you may not edit"),
        lambda m: "un derecho de un sujeto de derecho de una comuna que usted no puede editar",
    ),
    (
        re.compile(r"a document of a record of a commune you may not edit"),
        lambda m: "un documento de un registro de una comuna que usted no puede editar",
    ),
    (
        re.compile(r"only admins (add|delete) communes"),
        lambda m: f"solo los administradores {'agregan' if m[1] == 'add' else 'borran'} comunas",
    ),
    (
        re.compile(r"only admins change a commune's (.+)"),
        lambda m: f"solo los administradores cambian estos datos de una comuna: {m[1]}",
    ),
]


def said_by_database(message: str) -> str:
    """The database's refusal ``message`` with its Spanish when it is one of ours (a Said),
    else as the database said it."""
    for pattern, spanish in _REFUSALS:
        found = pattern.fullmatch(message)
        if found:
            return Said(message, spanish(found))
    return message


def scope_reason(exc: psycopg.Error) -> str | None:
    """The reason a refusal of editing_rights.sql gives, with its Spanish; None when the
    refusal is another (row-level security's own) or gives none."""
    if exc.diag.constraint_name == SCOPE and exc.diag.message_primary:
        return said_by_database(exc.diag.message_primary)
    return None


#: constraints whose refusal says more in words than the database's message does
_CONSTRAINTS = {
    "rights_check": Said(
        "ends_on is before starts_on: a right ends on the day it starts or later",
        "ends_on es anterior a starts_on: un derecho termina el día en que empieza o después",
    ),
}


def check_refusal(exc: psycopg.Error) -> Said:
    """Why a CHECK or NOT NULL constraint refused a write: in words where it is one of
    _CONSTRAINTS, else as the database says it."""
    known = _CONSTRAINTS.get(exc.diag.constraint_name or "")
    if known is not None:
        return known
    return Said(
        f"refused by the database: {exc.diag.message_primary}",
        f"rechazado por la base de datos: {exc.diag.message_primary}",
    )
