"""The database's refusals of a tenure record's write as typed 4xx errors naming it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geo_comuna.db.refusals import check_refusal, scope_reason
from geo_comuna.errors import OUTSIDE_COMMUNES, Conflict, Forbidden, InvalidAttribute, Said


@contextmanager
def refused(kind: str, record: int | None = None) -> Iterator[None]:
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        detail = exc.diag.message_detail or exc.diag.message_primary
        raise Conflict(
            Said(
                f"refers to a record that does not exist, or is still referred to: {detail}",
                "hace referencia a un registro que no existe, o otro registro todavía hace "
                f"referencia a él: {detail}",
            ),
            feature=record,
            layer=kind,
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise Forbidden(scope_reason(exc) or OUTSIDE_COMMUNES, feature=record, layer=kind) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise InvalidAttribute(check_refusal(exc), feature=record, layer=kind) from None
