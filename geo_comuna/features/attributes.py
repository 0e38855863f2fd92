"""Attribute validation of incoming features: types, allowed values, bounds, required ones.

One table format: Arrow. A file's columns arrive as GDAL read them, a request body's as
features/geojson.py typed them (a column whose JSON values are not all of one kind is kept as
JSON text, ``python_values`` gives them back). Whole columns are taken at once with Arrow's
kernels when plainly fine (the fast path that keeps a 200,000-row import well under a
second); otherwise values are checked one by one, which names the first bad feature.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from geo_comuna.errors import InvalidAttribute, Said
from geo_comuna.layers import Attribute, Layer
from geo_comuna.text import is_text, iso_day

#: each attribute type as Arrow holds it once checked (and io/pgcopy.copy_rows encodes it)
ARROW_TYPES = {
    "text": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}

_TRUE = {"true", "t", "1", "yes", "y", "si", "sí", "s"}
_FALSE = {"false", "f", "0", "no", "n"}


def _coerce_bool(value: Any) -> bool | None | object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return _BAD


_BAD = object()


#: a date written YYYY-MM-DD, whether or not the day exists
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _coerce_date(value: Any) -> dt.date | object:
    """A date: a day as text.iso_day reads it, or a date or midnight as a reader gave it."""
    if isinstance(value, dt.datetime):
        return value.date() if value.timetz().replace(tzinfo=None) == dt.time() else _BAD
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        day = iso_day(value)
        return _BAD if day is None else day
    return _BAD


def _coerce_number(value: Any, integer: bool) -> int | float | object:
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", ".")) if value.strip() else _BAD
        except ValueError:
            return _BAD
        if value is _BAD:
            return _BAD
    if not isinstance(value, int | float) or not math.isfinite(value):
        return _BAD
    if integer:
        return int(value) if float(value).is_integer() else _BAD
    return float(value)


def coerce_value(attr: Attribute, value: Any) -> Any:
    """One value to the attribute's type; ``_BAD`` when it cannot be."""
    if attr.type == "text":
        return value if isinstance(value, str) else _BAD
    if attr.type in ("integer", "number"):
        return _coerce_number(value, attr.type == "integer")
    if attr.type == "date":
        return _coerce_date(value)
    return _coerce_bool(value)


#: what a value of each type must be, in both languages
_TYPE_WORDS = {
    "text": Said("text", "texto"),
    "integer": Said("a whole number", "un número entero"),
    "number": Said("a number", "un número"),
    "date": Said("a date (YYYY-MM-DD)", "una fecha (AAAA-MM-DD)"),
    "boolean": Said("true or false", "sí o no (true o false)"),
}


def titled(item: Any) -> str:
    """A field (an attribute or a reference) as a Spanish message names it: its title, and
    the name files and programs use: «Recuperada el» (recovered_on)."""
    return f"«{item.title.es}» ({item.name})"


def _describe(attr: Attribute) -> Said:
    if attr.domain:
        codes = ", ".join(attr.domain.values)
        return Said(f"one of {codes}", f"uno de {codes}")
    return _TYPE_WORDS[attr.type]


def _is_null(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _not_a_value(attr: Attribute, value: Any, lang: str, hint: bool) -> Said:
    """Why a value is not one of the domain's, listing its labels in the request's language;
    an import's message also says how to map it (``--map``), with the closest value."""
    assert attr.domain is not None
    labels = ", ".join(label.get(lang) for label in attr.domain.values.values())
    codes = ", ".join(attr.domain.values)
    en = (
        f"property {attr.name!r}: {value!r} is not one of {codes} "
        f"(or their labels, in any case: {labels})"
    )
    es = (
        f"campo {titled(attr)}: {value!r} no es ninguno de {codes} "
        f"(ni una de sus etiquetas, con mayúsculas o minúsculas: {labels})"
    )
    if hint and isinstance(value, str):
        close = attr.domain.closest(value)
        option = f"{attr.name}:{value}={close or 'CODE'}"
        option_es = f"{attr.name}:{value}={close or 'CÓDIGO'}"
        en += f"; import it with --map {option}? (HTTP: map={option})"
        es += f"; ¿importarlo con --map {option_es}? (HTTP: map={option_es})"
    return Said(en, es)


def _holds_invisible(data: pa.Array) -> bool:
    """Does a text column hold a format character (\\p{Cf}: zero-width space, word joiner)?"""
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return False
    return bool(pc.any(pc.match_substring_regex(data, r"\p{Cf}")).as_py())


def _key_trimmed(layer: Layer, attr: Attribute, value: Any, label: Any) -> Any:
    """A natural key's text without its surrounding blanks (see arrow_attributes); one
    holding an invisible character (zero-width space, word joiner, soft hyphen: Unicode's
    format characters) is refused, naming the feature: found from outside, 'EM-P003' with a
    zero-width space read as the stored EM-P003 and was stored beside it."""
    if not isinstance(value, str) or attr.name not in layer.natural_key:
        return value
    hidden = [f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cf"]
    if hidden:
        raise InvalidAttribute(
            Said(
                f"property {attr.name!r}: {value!r} holds an invisible character "
                f"({', '.join(hidden)}): write the code without it",
                f"campo {titled(attr)}: {value!r} contiene un carácter invisible "
                f"({', '.join(hidden)}): escriba el código sin él",
            ),
            feature=label,
            layer=layer.name,
        )
    return value.strip()


def check_value(
    layer: Layer, attr: Attribute, value: Any, label: Any, *, lang: str = "es", hint: bool = False
) -> Any:
    """Validate one value (None allowed unless required); raises InvalidAttribute. A coded
    attribute takes its codes and their Spanish and English labels in any case or accents
    (Domain.code), and gives the code. ``lang``: the language of the labels an unknown value's
    message lists; ``hint``: the message suggests an import's ``--map``."""
    if _is_null(value):
        if attr.required:
            raise InvalidAttribute(
                Said(
                    f"property {attr.name!r} is required",
                    f"el campo {titled(attr)} es obligatorio",
                ),
                feature=label,
                layer=layer.name,
            )
        return None
    if attr.domain is not None and isinstance(value, str) and is_text(value):
        code = attr.domain.code(value)
        if code is None:
            raise InvalidAttribute(
                _not_a_value(attr, value, lang, hint), feature=label, layer=layer.name
            )
        value = code
    coerced = _key_trimmed(layer, attr, coerce_value(attr, value), label)
    if attr.domain and coerced is not _BAD and coerced not in attr.domain:
        raise InvalidAttribute(
            _not_a_value(attr, value, lang, hint), feature=label, layer=layer.name
        )
    if coerced is _BAD:
        reason = Said(
            f"property {attr.name!r}: {value!r} is not {_describe(attr)}",
            f"campo {titled(attr)}: {value!r} no es {_describe(attr).es}",
        )
        if attr.type == "date" and isinstance(value, str) and _ISO_DAY.match(value.strip()):
            # written as asked, and no such day: it was told to write it as it had
            reason = Said(
                f"property {attr.name!r}: {value!r} is no day of the calendar",
                f"campo {titled(attr)}: {value!r} no es un día del calendario",
            )
        raise InvalidAttribute(reason, feature=label, layer=layer.name)
    if attr.past and coerced > _latest_day():
        raise InvalidAttribute(
            Said(
                f"property {attr.name!r}: {coerced.isoformat()} is a day still to come",
                f"campo {titled(attr)}: {coerced.isoformat()} es un día que aún no llega",
            ),
            feature=label,
            layer=layer.name,
        )
    if attr.type == "text" and not is_text(coerced):
        raise InvalidAttribute(
            Said(
                f"property {attr.name!r} holds a NUL character (\\x00) or a lone "
                "surrogate (\\ud800-\\udfff), which text cannot",
                f"el campo {titled(attr)} contiene un carácter NUL (\\x00) o un sustituto "
                "suelto (\\ud800-\\udfff), que un texto no puede contener",
            ),
            feature=label,
            layer=layer.name,
        )
    if attr.type == "text" and len(coerced) > attr.max_length:
        raise InvalidAttribute(
            Said(
                f"property {attr.name!r} is longer than {attr.max_length} characters",
                f"el campo {titled(attr)} tiene más de {attr.max_length} caracteres",
            ),
            feature=label,
            layer=layer.name,
        )
    if (
        attr.minimum is not None
        and coerced < attr.minimum
        or (attr.maximum is not None and coerced > attr.maximum)
    ):
        raise InvalidAttribute(
            Said(
                f"property {attr.name!r}: {coerced} is outside [{attr.minimum}, {attr.maximum}]",
                f"campo {titled(attr)}: {coerced} está fuera de [{attr.minimum}, {attr.maximum}]",
            ),
            feature=label,
            layer=layer.name,
        )
    return coerced


def _arrow_text(attr: Attribute, data: pa.Array) -> pa.Array | None:
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(data)), 0)  # NULL where NULL
    if attr.required and (data.null_count or pc.any(blank).as_py()):
        return None
    if pc.any(pc.match_substring(data, "\x00")).as_py():  # files hold valid UTF-8: no surrogates
        return None
    if attr.domain is not None:
        known = pc.is_in(data, value_set=pa.array(list(attr.domain.values), data.type))
        if not pc.all(pc.or_(known, blank)).as_py():
            data = _labels_to_codes(attr, data)
            if data is None:
                return None
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(data)), 0)
    elif (pc.max(pc.utf8_length(data)).as_py() or 0) > attr.max_length:
        return None
    return pc.if_else(blank, pa.scalar(None, data.type), data).cast(pa.string())


def _labels_to_codes(attr: Attribute, data: pa.Array) -> pa.Array | None:
    """A coded column given by labels ("Ocupada", "OCCUPIED"), as codes: each distinct value
    looked up once. None when some value is neither (checked one by one, to name it)."""
    assert attr.domain is not None
    distinct = pc.unique(data)
    codes = []
    for value in distinct.to_pylist():
        if value is None or not value.strip():
            codes.append(value)
            continue
        code = attr.domain.code(value) if is_text(value) else None
        if code is None:
            return None
        codes.append(code)
    return pc.take(pa.array(codes, data.type), pc.index_in(data, value_set=distinct))


def _arrow_number(attr: Attribute, data: pa.Array) -> pa.Array | None:
    kind = data.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return None
    if attr.required and data.null_count:
        return None
    if pa.types.is_floating(kind):
        if not pc.all(pc.is_finite(data)).as_py():
            return None
        if attr.type == "integer" and not pc.all(pc.equal(pc.trunc(data), data)).as_py():
            return None
    bounds = pc.min_max(data)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is not None and (
        (attr.minimum is not None and low < attr.minimum)
        or (attr.maximum is not None and high > attr.maximum)
    ):
        return None
    return data.cast(pa.int64() if attr.type == "integer" else pa.float64())


def _fast_arrow(attr: Attribute, data: pa.Array) -> pa.Array | None:
    """A whole column checked with Arrow's compute kernels and kept as Arrow, which
    io/pgcopy.copy_rows encodes without a Python object per value. None sends it value by
    value."""
    kind = data.type
    if attr.type == "text" and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return _arrow_text(attr, data)
    if attr.type in ("integer", "number"):
        return _arrow_number(attr, data)
    if attr.required and data.null_count:
        return None
    if attr.type == "date" and pa.types.is_date32(kind):
        latest = pc.max(data).as_py()
        if attr.past and latest is not None and latest > _latest_day():
            return None  # one by one, to name the feature
        return data
    if attr.type == "boolean" and pa.types.is_boolean(kind):
        return data
    return None


def _latest_day() -> dt.date:
    """The last day a date of the past may be: today where the server is, and one more for
    a writer a time zone ahead of it."""
    return dt.date.today() + dt.timedelta(days=1)


def python_values(data: pa.Array) -> list[Any]:
    """A column's values as Python objects, for checking one by one: a JSON column (a request
    body's values of mixed kinds, features/geojson.py) gives back the values it was sent.
    GDAL's JSON column (a GeoJSON file's property that is a number in one feature and text
    in another) holds its texts unquoted: what is not JSON is that text (found from outside:
    ``"workers": "muchos"`` beside ``"workers": 3`` was a 500)."""
    if isinstance(data.type, pa.JsonType):
        return [None if v is None else _json_or_text(v) for v in data.storage.to_pylist()]
    return data.to_pylist()


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


#: the days Python (and so every check and write here) knows: years 1 to 9999
_CALENDAR = (pa.scalar(dt.date.min, pa.date32()), pa.scalar(dt.date.max, pa.date32()))


def _refuse_outside_the_calendar(
    layer: Layer, attr: Attribute, data: pa.Array, labels: Sequence
) -> None:
    """A file's date of year 0000 (or past 9999), which GDAL reads and Python cannot hold:
    refused naming its feature, as the API refuses it (found from outside: a 500)."""
    outside = pc.or_kleene(pc.less(data, _CALENDAR[0]), pc.greater(data, _CALENDAR[1]))
    if not pc.any(outside).as_py():
        return
    i = pc.index(outside, True).as_py()
    raise InvalidAttribute(
        Said(
            f"property {attr.name!r}: a date of the year 0 or before, or after 9999, is no "
            "day of the calendar (years 1 to 9999)",
            f"campo {titled(attr)}: una fecha del año 0 o anterior, o posterior a 9999, no es "
            "un día del calendario (años 1 a 9999)",
        ),
        feature=labels[i],
        layer=layer.name,
    )


def check_attributes(
    layer: Layer, table: pa.Table, labels: Sequence, *, lang: str = "es", hint: bool = False
) -> dict[str, pa.Array]:
    """Coerce every registry attribute column of ``table`` (missing columns become NULL) to
    its Arrow type (ARROW_TYPES), by name; coded values given by their labels become codes.
    ``lang`` and ``hint``: check_value's.

    A column that is plainly fine is taken whole (fast path); otherwise it is checked value by
    value, which names the first bad feature. 200,000 rows stay well under a second."""
    out = {}
    for attr in layer.attributes:
        kind = ARROW_TYPES[attr.type]
        if attr.name in table.column_names:
            data = table.column(attr.name).combine_chunks()
        else:
            data = pa.nulls(table.num_rows, kind)
        if data.null_count == len(data) and not attr.required:
            out[attr.name] = pa.nulls(len(data), kind)
            continue
        if pa.types.is_date32(data.type):
            _refuse_outside_the_calendar(layer, attr, data, labels)
        if attr.name in layer.natural_key and (
            pa.types.is_string(data.type) or pa.types.is_large_string(data.type)
        ):
            # a key's surrounding blanks are no part of it (found from outside: 'EM-P007 '
            # beside 'EM-P007' passed the key's uniqueness, by sync, PATCH and POST alike);
            # one holding an invisible character goes value by value, to be named
            data = pc.utf8_trim_whitespace(data)
        hidden = attr.name in layer.natural_key and _holds_invisible(data)
        fast = None if hidden else _fast_arrow(attr, data)
        if fast is None:
            values = python_values(data)
            fast = pa.array(
                [
                    check_value(layer, attr, v, labels[i], lang=lang, hint=hint)
                    for i, v in enumerate(values)
                ],
                kind,
            )
        out[attr.name] = fast
    return out
