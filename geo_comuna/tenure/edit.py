"""Writes of parties and rights: POST, PATCH, DELETE bodies checked against the vocabulary
(layers/tenure.py), then one statement inside ``accounts.writing``, where row-level security
keeps an editor to their communes (migration 0021) and triggers record the audit trail and,
for rights, the parcel's tenure (db/functions/tenure_rule.sql).

Bodies are GeoJSON Features without geometry (a right is drawn as its parcel, so any geometry
sent is refused rather than silently ignored), as the layers' writes take them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna.accounts import User, writing
from geo_comuna.errors import (
    OUTSIDE_COMMUNES,
    Forbidden,
    InvalidAttribute,
    InvalidInput,
    NotFound,
    Said,
    json_refusal,
    said,
)
from geo_comuna.layers.model import Domain
from geo_comuna.layers.tenure import PARTY_KIND, RIGHT_KIND, RIGHT_STATUS
from geo_comuna.preconditions import NO_CONDITIONS, Preconditions
from geo_comuna.tenure.refusals import refused
from geo_comuna.text import is_text, iso_day

#: a share's step: rights.share is numeric(5, 4) (migration 0021)
SHARE_STEP = Decimal("0.0001")
#: a cédula (V-/E-) or a RIF (J-/G-/V-/E-/P- and its check digit), as migration 0021 checks it
ID_NUMBER = re.compile(r"^[VEJPG]-[0-9]{5,9}(-[0-9])?$")


@dataclass(frozen=True)
class Field:
    """A writable property: its column, its type and, for coded text, its domain."""

    column: str
    type: str  # text, integer, share, date, boolean, commune
    domain: Domain | None = None
    required: bool = False
    max_length: int = 300


PARTY_FIELDS: dict[str, Field] = {
    "commune": Field("commune_id", "commune", required=True),
    "kind": Field("kind", "text", PARTY_KIND, required=True),
    "name": Field("name", "text", required=True),
    "id_number": Field("id_number", "id_number", max_length=20),
    "contact": Field("contact", "text"),
    "illustrative": Field("illustrative", "boolean"),
}
RIGHT_FIELDS: dict[str, Field] = {
    "parcel": Field("parcel_id", "integer", required=True),
    "party": Field("party_id", "integer", required=True),
    "kind": Field("kind", "text", RIGHT_KIND, required=True),
    "share": Field("share", "share"),
    "starts_on": Field("starts_on", "date"),
    "ends_on": Field("ends_on", "date"),
    "status": Field("status", "text", RIGHT_STATUS, required=True),
    "note": Field("note", "text", max_length=2000),
    "illustrative": Field("illustrative", "boolean"),
}
FIELDS = {"parties": PARTY_FIELDS, "rights": RIGHT_FIELDS}


def _properties(kind: str, body: bytes, patch: bool = False) -> dict[str, Any]:
    """The properties of a body that is one Feature without geometry; a patch may also be
    ``{"properties": {...}}`` alone, as a layer's feature's may (features/edit.py)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            json_refusal(exc, Said("the body", "el cuerpo de la petición")), layer=kind
        ) from None
    if patch and isinstance(doc, dict) and "type" not in doc:
        doc = {"type": "Feature", **doc}
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise InvalidInput(
            Said(
                'send one GeoJSON Feature: {"type": "Feature", ...}',
                'envíe una sola Feature GeoJSON: {"type": "Feature", ...}',
            ),
            layer=kind,
        )
    if doc.get("geometry") is not None:
        where = "parties have no geometry" if kind == "parties" else "a right is its parcel's"
        where_es = (
            "los sujetos de derecho no tienen geometría"
            if kind == "parties"
            else "la de un derecho es la de su parcela"
        )
        raise InvalidInput(
            Said(f"geometry must be null: {where}", f"la geometría debe ser null: {where_es}"),
            layer=kind,
        )
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise InvalidInput(
            Said(
                "the Feature needs an object of properties",
                "la Feature necesita un objeto «properties»",
            ),
            layer=kind,
        )
    return props


def _share(value: Any) -> tuple[Decimal | None, str | None]:
    """A right's share of its parcel and, when it is bad, why."""
    # a number, finite: found from outside, NaN was a 500 (Decimal('NaN') cannot be
    # compared) and the text "0.5" was taken
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        share = Decimal(str(value)) if number else Decimal(-1)
    except InvalidOperation:
        share = Decimal(-1)
    if not share.is_finite() or not Decimal(0) < share <= Decimal(1):
        return None, Said(
            f"{value!r} is not a share of the parcel above 0 and at most 1",
            f"{value!r} no es una fracción de la parcela mayor que 0 y no mayor que 1",
        )
    near = share.quantize(SHARE_STEP, ROUND_HALF_UP)  # as numeric(5, 4) rounds
    if share != near:
        # found from outside: stored as numeric(5, 4), 0.123456 was kept as 0.1235 without
        # a word, and 0.00004 was refused by the database's own message
        given = format(share, "f")
        return None, Said(
            f"{given} has more than 4 decimals: a share is kept to 4 ({near})",
            f"{given.replace('.', ',')} tiene más de 4 decimales: una fracción se guarda con "
            f"4 ({str(near).replace('.', ',')})",
        )
    return share, None


def _plain(field: Field, value: Any) -> tuple[Any, str | None]:
    """A value of a non-coded, non-reference property and, when it is bad, why."""
    if field.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31
        return value, None if ok else Said(f"{value!r} is not an id", f"{value!r} no es un id")
    if field.type == "boolean":
        return value, (
            None
            if isinstance(value, bool)
            else Said(f"{value!r} is not true or false", f"{value!r} no es true ni false")
        )
    if field.type == "date":
        day = iso_day(value) if isinstance(value, str) else None
        if day is None:
            return None, Said(
                f"{value!r} is not a date (YYYY-MM-DD)", f"{value!r} no es una fecha (AAAA-MM-DD)"
            )
        return day, None
    if field.type == "share":
        return _share(value)
    if not isinstance(value, str) or not value.strip():
        return None, Said("is not a text", "no es un texto")
    if not is_text(value):  # found from outside: PostgreSQL refused it, a 500
        return None, Said(
            "holds a NUL character (\\x00) or a lone surrogate (\\ud800-\\udfff), which text "
            "cannot",
            "contiene un carácter NUL (\\x00) o un sustituto suelto (\\ud800-\\udfff), que un "
            "texto no puede contener",
        )
    if len(value) > field.max_length:
        return None, Said(
            f"is longer than {field.max_length} characters",
            f"tiene más de {field.max_length} caracteres",
        )
    if field.type == "id_number" and not ID_NUMBER.fullmatch(value):
        return None, Said(
            "is not a cédula or RIF like V-12345678 or J-12345678-9",
            "no es una cédula o un RIF como V-12345678 o J-12345678-9",
        )
    return value, None


async def _value(conn: AsyncConnection, kind: str, name: str, field: Field, value: Any) -> Any:
    """One property's value as its column takes it; InvalidAttribute naming it otherwise."""
    why: str | None = None
    if value is None:
        why = Said("is required", "es obligatoria") if field.required else None
    elif field.domain is not None:
        code = field.domain.code(value) if isinstance(value, str) else None
        why = (
            None
            if code
            else Said(
                f"{value!r} is not one of {', '.join(field.domain.labels('en'))}",
                f"{value!r} no es ninguno de {', '.join(field.domain.labels('es'))}",
            )
        )
        value = code
    elif field.type == "commune":
        cur = await conn.execute(
            "SELECT id FROM communes WHERE code = %s OR id::text = %s", (str(value), str(value))
        )
        row = await cur.fetchone()
        why = None if row else Said(f"no commune {value!r}", f"no existe la comuna {value!r}")
        value = row[0] if row else None
    else:
        value, why = _plain(field, value)
    if why:
        raise InvalidAttribute(
            Said(f"property {name!r}: {why}", f"campo {name!r}: {said(why, 'es')}"),
            layer=kind,
        )
    return value


async def _columns(
    conn: AsyncConnection, kind: str, props: dict[str, Any], *, whole: bool
) -> dict[str, Any]:
    fields = FIELDS[kind]
    unknown = sorted(set(props) - set(fields))
    if unknown:
        raise InvalidAttribute(
            Said(
                f"unknown properties {', '.join(unknown)}; known: {', '.join(fields)}",
                f"campos desconocidos {', '.join(unknown)}; los conocidos son: {', '.join(fields)}",
            ),
            layer=kind,
        )
    out = {}
    for name, field in fields.items():
        if name in props or (whole and field.required):
            out[field.column] = await _value(conn, kind, name, field, props.get(name))
    return out


def _writer(user: User) -> None:
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; writing needs an editor or admin",
                f"el usuario {user.name!r} tiene el rol {user.role}; para escribir hace falta "
                "ser editor o admin",
            )
        )


async def create(
    conn: AsyncConnection, kind: str, body: bytes, user: User, *, note: str | None = None
) -> tuple[int, str]:
    """Add a party or a right; its id and row version (the new ETag). ``note``: why, as
    accounts.writing records it (a right that makes its parcel regularized: the history's
    note of that change)."""
    _writer(user)
    values = await _columns(conn, kind, _properties(kind, body), whole=True)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(kind),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in values),
    )
    async with writing(conn, user, note=note):
        with refused(kind):
            cur = await conn.execute(query, values)
            (new_id,) = await cur.fetchone()
        version = await _version(conn, kind, new_id)
    return new_id, version or ""


async def _version(conn: AsyncConnection, kind: str, record_id: int) -> str | None:
    view = "party_register" if kind == "parties" else "right_register"
    cur = await conn.execute(
        sql.SQL("SELECT version FROM {} WHERE id = %s").format(sql.Identifier(view)), (record_id,)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def _check_version(
    conn: AsyncConnection, kind: str, record_id: int, conditions: Preconditions
) -> None:
    """The stored row version against If-Match and If-None-Match (412 when someone changed it
    since). The row is locked first, so nobody changes it between this check and the write."""
    await conn.execute(
        sql.SQL("SELECT id FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(kind)),
        (record_id,),
    )
    now = await _version(conn, kind, record_id)
    if now is None:
        raise NotFound(
            Said(
                f"no {'party' if kind == 'parties' else 'right'} {record_id}",
                f"no existe {'el sujeto de derecho' if kind == 'parties' else 'el derecho'} "
                f"{record_id}",
            ),
            layer=kind,
        )
    conditions.check(now, layer=kind, feature=record_id)


async def patch(
    conn: AsyncConnection,
    kind: str,
    record_id: int,
    body: bytes,
    user: User,
    *,
    conditions: Preconditions = NO_CONDITIONS,
    note: str | None = None,
) -> str:
    """Change some properties of a party or a right; the new row version (``note``: why)."""
    _writer(user)
    values = await _columns(conn, kind, _properties(kind, body, patch=True), whole=False)
    if not values:
        raise InvalidInput(
            Said("no property to change", "no hay ningún campo que cambiar"),
            layer=kind,
            feature=record_id,
        )
    query = sql.SQL("UPDATE {} SET {} WHERE id = %(record_id)s RETURNING id").format(
        sql.Identifier(kind),
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in values
        ),
    )
    async with writing(conn, user, note=note):
        await _check_version(conn, kind, record_id, conditions)
        with refused(kind, record_id):
            cur = await conn.execute(query, {**values, "record_id": record_id})
            if await cur.fetchone() is None:
                raise Forbidden(
                    OUTSIDE_COMMUNES,
                    feature=record_id,
                    layer=kind,
                )
        version = await _version(conn, kind, record_id)
    return version or ""


async def remove(
    conn: AsyncConnection,
    kind: str,
    record_id: int,
    user: User,
    *,
    conditions: Preconditions = NO_CONDITIONS,
    note: str | None = None,
) -> None:
    _writer(user)
    query = sql.SQL("DELETE FROM {} WHERE id = %s RETURNING id").format(sql.Identifier(kind))
    async with writing(conn, user, note=note):
        await _check_version(conn, kind, record_id, conditions)
        with refused(kind, record_id):
            cur = await conn.execute(query, (record_id,))
            if await cur.fetchone() is None:
                raise Forbidden(
                    OUTSIDE_COMMUNES,
                    feature=record_id,
                    layer=kind,
                )
