"""The database's refusals of a tenure record's write as typed 4xx errors naming it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geo_comuna.errors import Conflict, Forbidden, InvalidAttribute

#: the constraint name of a refusal with its reason (db/functions/editing_rights.sql)
SCOPE = "geo_comuna_scope"


@contextmanager
def refused(kind: str, record: int | None = None) -> Iterator[None]:
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        raise Conflict(
            "refers to a record that does not exist, or is still referred to: "
            f"{exc.diag.message_detail or exc.diag.message_primary}",
            feature=record,
            layer=kind,
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        reason = "outside the communes you may edit"
        if exc.diag.constraint_name == SCOPE and exc.diag.message_primary:
            reason = exc.diag.message_primary
        raise Forbidden(reason, feature=record, layer=kind) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise InvalidAttribute(
            f"refused by the database: {exc.diag.message_primary}", feature=record, layer=kind
        ) from None
