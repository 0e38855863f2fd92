"""Typed errors. Services raise these; api/problems.py maps them to application/problem+json.

Each carries an HTTP status, a short machine code, the feature concerned (index in a file or id)
and a human reason. Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

from typing import Any


class GeoComunaError(Exception):
    status: int = 400
    code: str = "bad-request"

    def __init__(
        self,
        reason: str,
        *,
        feature: int | str | None = None,
        layer: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.reason = reason
        self.feature = feature
        self.layer = layer
        self.details = details or []
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.layer:
            where.append(f"layer {self.layer}")
        if self.feature is not None:
            where.append(f"feature {self.feature}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class InvalidInput(GeoComunaError):
    """A request parameter, property or value is not acceptable."""

    status, code = 400, "invalid-input"


class InvalidGeometry(GeoComunaError):
    status, code = 422, "invalid-geometry"


class InvalidAttribute(GeoComunaError):
    status, code = 422, "invalid-attribute"


class InvalidFile(GeoComunaError):
    """Empty, corrupt or unreadable upload, or a CRS we cannot determine."""

    status, code = 422, "invalid-file"


class UnknownCRS(GeoComunaError):
    status, code = 422, "unknown-crs"


class NotFound(GeoComunaError):
    status, code = 404, "not-found"


class Unauthorized(GeoComunaError):
    """No (valid) token where one is needed."""

    status, code = 401, "unauthorized"


class Forbidden(GeoComunaError):
    """A valid token that may not do this (a viewer writing, an editor outside its communes)."""

    status, code = 403, "forbidden"


class PreconditionFailed(GeoComunaError):
    """If-Match named a version that is no longer the stored one."""

    status, code = 412, "precondition-failed"


class PreconditionRequired(GeoComunaError):
    """A change without If-Match where the server requires one (GEO_COMUNA_REQUIRE_IF_MATCH)."""

    status, code = 428, "precondition-required"


class Conflict(GeoComunaError):
    status, code = 409, "conflict"


class TooLarge(GeoComunaError):
    status, code = 413, "too-large"


class Unsupported(GeoComunaError):
    status, code = 415, "unsupported-media-type"


class NotAcceptable(GeoComunaError):
    """The client's Accept header names no format this resource comes in."""

    status, code = 406, "not-acceptable"


class TooSlow(GeoComunaError):
    """A request's computation did not finish within its deadline (work.py)."""

    status, code = 503, "too-slow"


class DatabaseUnavailable(GeoComunaError):
    status, code = 503, "database-unavailable"


class ClusterError(GeoComunaError):
    """The embedded PostgreSQL cluster could not be created, started or stopped."""

    status, code = 500, "cluster-error"
