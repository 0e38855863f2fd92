"""Typed errors. Services raise these; api/problems.py maps them to application/problem+json.

Each carries an HTTP status, a short machine code, the feature concerned (index in a file or id)
and a human reason. Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

import re
from typing import Any


class Said(str):
    """A reason in English (the string itself: what the HTTP API and the logs say) that also
    knows its Spanish, for the people the CLI talks to (``GeoComunaError.said``). Reasons
    still plain strings are said in English in both languages."""

    es: str

    def __new__(cls, en: str, es: str) -> Said:
        said = super().__new__(cls, en)
        said.es = es
        return said

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return str(self), self.es  # errors cross to and from child processes by pickle


def said(text: str, lang: str) -> str:
    """``text`` in ``lang`` (es or en) when it knows its Spanish; else as it is."""
    return text.es if lang == "es" and isinstance(text, Said) else str(text)


class GeoComunaError(Exception):
    status: int = 400
    code: str = "bad-request"
    #: what went wrong, in a word or two, in Spanish (the English is ``code``)
    title_es: str = "petición no válida"

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
        return self.said("en")

    def said(self, lang: str) -> str:
        """Where (layer, feature) and why, in ``lang``: es or en."""
        return placed(self.layer, self.feature, self.reason, lang)

    def listed(self, lang: str) -> list[str]:
        """Each of the many reasons the error carries in its details (a sync's refused
        features), placed, in ``lang``; none when it carries fewer than two, which its own
        reason says."""
        reasons = [
            placed(d.get("layer"), d.get("feature"), d["reason"], lang)
            for d in self.details
            if isinstance(d, dict) and d.get("reason")
        ]
        return reasons if len(reasons) > 1 else []


def placed(layer: str | None, feature: int | str | None, reason: str, lang: str) -> str:
    """A reason with where it applies, in ``lang``: 'capa parcels, entidad 31: ...'."""
    words = {"es": ("capa", "entidad"), "en": ("layer", "feature")}[lang]
    where = []
    if layer:
        where.append(f"{words[0]} {layer}")
    if feature is not None:
        where.append(f"{words[1]} {said(feature, lang) if isinstance(feature, str) else feature}")
    text = said(reason, lang)
    return f"{', '.join(where)}: {text}" if where else text


class InvalidInput(GeoComunaError):
    """A request parameter, property or value is not acceptable."""

    status, code = 400, "invalid-input"
    title_es = "dato no válido"


class NoSuchFormat(InvalidInput):
    """``f`` names a format this resource does not come in."""

    code = "no-such-format"
    title_es = "formato que este recurso no tiene"


class InvalidGeometry(GeoComunaError):
    status, code = 422, "invalid-geometry"
    title_es = "geometría no válida"


class InvalidAttribute(GeoComunaError):
    status, code = 422, "invalid-attribute"
    title_es = "atributo no válido"


class InvalidFile(GeoComunaError):
    """Empty, corrupt or unreadable upload, or a CRS we cannot determine."""

    status, code = 422, "invalid-file"
    title_es = "archivo no válido"


class UnknownCRS(GeoComunaError):
    status, code = 422, "unknown-crs"
    title_es = "sistema de referencia desconocido"


class NotFound(GeoComunaError):
    status, code = 404, "not-found"
    title_es = "no encontrado"


class Unauthorized(GeoComunaError):
    """No (valid) token where one is needed."""

    status, code = 401, "unauthorized"
    title_es = "sin autorización"


class Forbidden(GeoComunaError):
    """A valid token that may not do this (a viewer writing, an editor outside its communes)."""

    status, code = 403, "forbidden"
    title_es = "prohibido"


#: why a write is Forbidden when the feature is outside the user's communes
OUTSIDE_COMMUNES = Said(
    "outside the communes you may edit", "fuera de las comunas que puede editar"
)


class PreconditionFailed(GeoComunaError):
    """If-Match named a version that is no longer the stored one."""

    status, code = 412, "precondition-failed"
    title_es = "versión cambiada"


class PreconditionRequired(GeoComunaError):
    """A change without If-Match where the server requires one (GEO_COMUNA_REQUIRE_IF_MATCH)."""

    status, code = 428, "precondition-required"
    title_es = "falta If-Match"


class Conflict(GeoComunaError):
    status, code = 409, "conflict"
    title_es = "conflicto"


class TooLarge(GeoComunaError):
    status, code = 413, "too-large"
    title_es = "demasiado grande"


class Unsupported(GeoComunaError):
    status, code = 415, "unsupported-media-type"
    title_es = "formato no admitido"


class NotAcceptable(GeoComunaError):
    """The client's Accept header names no format this resource comes in."""

    status, code = 406, "not-acceptable"
    title_es = "formato no disponible"


class TooSlow(GeoComunaError):
    """A request's computation did not finish within its deadline (work.py)."""

    status, code = 503, "too-slow"
    title_es = "tardó demasiado"
    #: seconds after which asking again may be answered (the Retry-After header), if known
    retry_after: int | None = None


class DatabaseUnavailable(GeoComunaError):
    status, code = 503, "database-unavailable"
    title_es = "base de datos no disponible"


class ClusterError(GeoComunaError):
    """The embedded PostgreSQL cluster could not be created, started or stopped."""

    status, code = 500, "cluster-error"
    title_es = "error del clúster"


#: pydantic's reasons for a bad parameter (by its error type), in Spanish; ``ctx`` fills them
_PYDANTIC_ES = {
    "missing": "falta",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "float_type": "debe ser un número",
    "finite_number": "debe ser un número finito",
    "bool_parsing": "debe ser true o false",
    "bool_type": "debe ser true o false",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "greater_than": "debe ser mayor que {gt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "less_than": "debe ser menor que {lt}",
    "string_pattern_mismatch": "no tiene la forma esperada ({pattern})",
    "string_too_long": "es demasiado largo (hasta {max_length} caracteres)",
    "too_long": "tiene demasiados valores (hasta {max_length})",
    "literal_error": "debe ser {expected}",
    "enum": "debe ser {expected}",
    "date_parsing": "debe ser una fecha (AAAA-MM-DD)",
    "date_from_datetime_parsing": "debe ser una fecha (AAAA-MM-DD)",
}


#: a pattern that is a list of words: (^(json|geojson|csv)$), ^(es|en)$
_WORDS = re.compile(r"\(?\^\(([\w.-]+(?:\|[\w.-]+)*)\)\$\)?")


def pydantic_reason(err: dict, lang: str) -> str:
    """One bad parameter as a person reads it: pydantic's words with where (query.limit: ...)
    in English, and in Spanish by its error type ('«limit» debe ser mayor o igual que 1');
    a type not known here keeps pydantic's English. A pattern that lists words is said as
    those words (found from outside: f=html on an analysis said '(^(json|geojson|csv)$)')."""
    loc = [str(p) for p in err.get("loc", ())]
    words = _WORDS.fullmatch(str((err.get("ctx") or {}).get("pattern", "")))
    if err.get("type") == "string_pattern_mismatch" and words:
        choices = ", ".join(words[1].split("|"))
        if lang == "es":
            return f"«{loc[-1] if loc else '?'}» debe ser uno de: {choices}"
        return f"{'.'.join(loc)}: must be one of {choices}"
    error = (err.get("ctx") or {}).get("error")
    if err.get("type") == "value_error" and isinstance(error, ValueError) and error.args:
        # a validator's own words (a Said when it has them in Spanish); a model's check has
        # no place: found from outside, 'parámetros no válidos: : Value error, ...' in English
        where, message = f"{'.'.join(loc)}: " if loc else "", error.args[0]
        return where + (said(message, lang) if isinstance(message, str) else str(message))
    if lang == "es" and err.get("type") in _PYDANTIC_ES:
        ctx = {k: str(v).replace("' or '", "' o '") for k, v in (err.get("ctx") or {}).items()}
        try:
            return f"«{loc[-1] if loc else '?'}» {_PYDANTIC_ES[err['type']].format(**ctx)}"
        except KeyError:  # pydantic gave no value the words need
            pass
    return f"{'.'.join(loc)}: {err.get('msg')}"


#: Python's json messages, and what they say in Spanish
_JSON_ES = {
    "Expecting value": "falta un valor",
    "Expecting property name enclosed in double quotes": (
        "se esperaba un nombre de propiedad entre comillas dobles"
    ),
    "Expecting ':' delimiter": "falta ':'",
    "Expecting ',' delimiter": "falta ','",
    "Unterminated string starting at": "un texto sin cerrar empieza",
    "Invalid control character at": "un carácter de control dentro de un texto",
    "Invalid \\escape": "un escape '\\' no válido",
    "Invalid \\uXXXX escape": "un escape \\uXXXX no válido",
    "Extra data": "sobran datos tras el JSON",
    "Illegal trailing comma before end of object": "sobra una coma antes del final del objeto",
    "Illegal trailing comma before end of array": "sobra una coma antes del final de la lista",
}


def json_refusal(exc: ValueError, what: Said) -> Said:
    """Why ``what`` (the body, a file...) is not JSON: json's message and where, in both
    languages (a UnicodeDecodeError: not UTF-8)."""
    if isinstance(exc, UnicodeDecodeError):
        return Said(
            f"{what} is not JSON: it is not UTF-8 text (byte {exc.start + 1})",
            f"{what.es} no es JSON: no es texto UTF-8 (byte {exc.start + 1})",
        )
    msg, line, column = (getattr(exc, a, None) for a in ("msg", "lineno", "colno"))
    if msg is None:
        return Said(f"{what} is not JSON: {exc}", f"{what.es} no es JSON: {exc}")
    return Said(
        f"{what} is not valid JSON: {msg} at line {line}, column {column}",
        f"{what.es} no es un JSON válido: {_JSON_ES.get(msg, msg)} en la línea {line}, "
        f"columna {column}",
    )
