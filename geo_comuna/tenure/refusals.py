"""The database's refusals of a tenure record's write as typed 4xx errors naming it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geo_comuna.db.refusals import check_refusal, scope_reason
from geo_comuna.errors import (
    OUTSIDE_COMMUNES,
    Conflict,
    Forbidden,
    GeoComunaError,
    InvalidAttribute,
    Said,
)

#: a record a reference column names: (Spanish, English), the Spanish with its article
_NAMED = {
    "party_id": ("el sujeto de derecho", "party"),
    "parcel_id": ("la parcela", "parcel"),
    "right_id": ("el derecho", "right"),
    "commune_id": ("la comuna", "commune"),
}
#: the records that keep another from being deleted (ON DELETE RESTRICT: a party's rights)
_HOLDERS = {"rights": ("derechos", "rights")}
#: the list parameter of those records that names the one kept
_SINGULAR = {"parties": "party"}


def _reference(
    exc: psycopg.errors.ForeignKeyViolation, kind: str, record: int | None
) -> GeoComunaError:
    """What a reference's refusal says: the record named that does not exist (by its property:
    under row-level security PostgreSQL gives no values), or the records still naming this
    one and where they are listed. Found from outside: the answer was PostgreSQL's English
    detail, in Spanish too, naming neither."""
    table = exc.diag.table_name or ""
    column = (exc.diag.constraint_name or "").removeprefix(f"{table}_").removesuffix("_fkey")
    if table == kind and column in _NAMED:
        es, en = _NAMED[column]
        prop = column.removesuffix("_id")
        return InvalidAttribute(
            Said(
                f"property '{prop}': there is no such {en}",
                f"propiedad '{prop}': no existe {es} que nombra",
            ),
            feature=record,
            layer=kind,
        )
    if table in _HOLDERS and kind in _SINGULAR:
        es, en = _HOLDERS[table]
        listed = f"GET /collections/{table}/items?{_SINGULAR[kind]}={record}"
        return Conflict(
            Said(
                f"{en} still name it: delete them or change them first; {listed} lists them",
                f"hay {es} que todavía lo nombran: bórrelos o cámbielos antes; {listed} los lista",
            ),
            feature=record,
            layer=kind,
        )
    return Conflict(
        Said(
            "refers to a record that does not exist, or is still referred to",
            "hace referencia a un registro que no existe, o otro registro todavía hace "
            "referencia a él",
        ),
        feature=record,
        layer=kind,
    )


@contextmanager
def refused(kind: str, record: int | None = None) -> Iterator[None]:
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        raise _reference(exc, kind, record) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise Forbidden(scope_reason(exc) or OUTSIDE_COMMUNES, feature=record, layer=kind) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise InvalidAttribute(check_refusal(exc), feature=record, layer=kind) from None
