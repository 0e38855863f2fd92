"""Attribute validation of incoming features: types, allowed values, bounds, required ones.

Whole columns are taken at once when plainly fine (the fast path that keeps a 200,000-row import
well under a second); otherwise values are checked one by one, which names the first bad
feature.

A file's columns arrive as Arrow data and are checked without pandas (``check_attributes`` of
a pyarrow Table): the import command does not load pandas at all (~0.2 s of its start-up).
Only a DataFrame (API bodies, tests) brings pandas in, so it is imported where one is handled.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo_comuna.errors import InvalidAttribute
from geo_comuna.layers import Attribute, Layer

if TYPE_CHECKING:
    import pandas as pd

#: each attribute type as Arrow holds it once checked (and write.copy_rows encodes it)
ARROW_TYPES = {
    "text": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}

_TRUE = {"true", "t", "1", "yes", "y", "si", "sí", "s"}
_FALSE = {"false", "f", "0", "no", "n"}
#: what PostgreSQL text (UTF-8) cannot hold: NUL, and lone surrogates (JSON may carry "\ud800")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _coerce_bool(value: Any) -> bool | None | object:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return _BAD


_BAD = object()


def _coerce_date(value: Any) -> dt.date | object:
    if isinstance(value, dt.datetime):  # pandas' Timestamp is one
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return _BAD
    return _BAD


def _coerce_number(value: Any, integer: bool) -> int | float | object:
    if isinstance(value, bool | np.bool_):
        return _BAD
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", ".")) if value.strip() else _BAD
        except ValueError:
            return _BAD
        if value is _BAD:
            return _BAD
    if not isinstance(value, int | float | np.integer | np.floating) or not math.isfinite(value):
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


def _describe(attr: Attribute) -> str:
    if attr.domain:
        return "one of " + ", ".join(attr.domain.values)
    return {
        "text": "text",
        "integer": "a whole number",
        "number": "a number",
        "date": "a date (YYYY-MM-DD)",
        "boolean": "true or false",
    }[attr.type]


def pandas_missing(value: Any) -> bool:
    """pandas' NA or NaT: only a process that loaded pandas can hold them, so one that did not
    (the import command) does not load it to ask."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def _is_null(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
        or pandas_missing(value)
    )


def check_value(layer: Layer, attr: Attribute, value: Any, label: Any) -> Any:
    """Validate one value (None allowed unless required); raises InvalidAttribute."""
    if _is_null(value):
        if attr.required:
            raise InvalidAttribute(
                f"property {attr.name!r} is required", feature=label, layer=layer.name
            )
        return None
    coerced = coerce_value(attr, value)
    if coerced is _BAD or (attr.domain and coerced not in attr.domain):
        raise InvalidAttribute(
            f"property {attr.name!r}: {value!r} is not {_describe(attr)}",
            feature=label,
            layer=layer.name,
        )
    if attr.type == "text" and not is_text(coerced):
        raise InvalidAttribute(
            f"property {attr.name!r} holds a NUL character (\\x00) or a lone "
            "surrogate (\\ud800-\\udfff), which text cannot",
            feature=label,
            layer=layer.name,
        )
    if attr.type == "text" and len(coerced) > attr.max_length:
        raise InvalidAttribute(
            f"property {attr.name!r} is longer than {attr.max_length} characters",
            feature=label,
            layer=layer.name,
        )
    if (
        attr.minimum is not None
        and coerced < attr.minimum
        or (attr.maximum is not None and coerced > attr.maximum)
    ):
        raise InvalidAttribute(
            f"property {attr.name!r}: {coerced} is outside [{attr.minimum}, {attr.maximum}]",
            feature=label,
            layer=layer.name,
        )
    return coerced


def is_text(value: str) -> bool:
    """Can PostgreSQL hold (or compare with) this string? Not with a NUL or lone surrogate."""
    return _NOT_TEXT.search(value) is None


def _holds_non_text(column: pd.Series) -> bool:
    """Only Python strings (from JSON) can carry lone surrogates; Arrow strings (files) are
    valid UTF-8 already, so they are only searched for NUL."""
    if column.dtype == object:
        return any(isinstance(v, str) and _NOT_TEXT.search(v) for v in column.to_numpy())
    return bool(column.str.contains("\x00", regex=False).any())


def _fast_text(attr: Attribute, column: pd.Series, null: np.ndarray) -> np.ndarray | None:
    values = column.to_numpy(dtype=object)
    strings = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    if not (strings | null).all():
        return None
    text = column.where(strings, "")
    blank = strings & (text.str.strip().str.len() == 0).to_numpy()
    if (attr.required and blank.any()) or _holds_non_text(column):
        return None
    if attr.domain is not None:
        if not (column.isin(list(attr.domain.values)).to_numpy() | null | blank).all():
            return None
    elif (text.str.len().to_numpy() > attr.max_length).any():
        return None
    return np.where(null | blank, None, values)


def _fast_number(attr: Attribute, column: pd.Series, null: np.ndarray) -> np.ndarray | None:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None
    numbers = column.to_numpy(dtype=float)
    present = numbers[~null]
    if not np.isfinite(present).all() or (attr.type == "integer" and (present % 1 != 0).any()):
        return None
    if (attr.minimum is not None and (present < attr.minimum).any()) or (
        attr.maximum is not None and (present > attr.maximum).any()
    ):
        return None
    cast = int if attr.type == "integer" else float
    return np.array(
        [None if n else cast(v) for v, n in zip(numbers, null, strict=True)], dtype=object
    )


def _arrow_text(attr: Attribute, data: pa.Array) -> pa.Array | None:
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(data)), 0)  # NULL where NULL
    if attr.required and (data.null_count or pc.any(blank).as_py()):
        return None
    if pc.any(pc.match_substring(data, "\x00")).as_py():  # files hold valid UTF-8: no surrogates
        return None
    if attr.domain is not None:
        known = pc.is_in(data, value_set=pa.array(list(attr.domain.values), data.type))
        if not pc.all(pc.or_(known, blank)).as_py():
            return None
    elif (pc.max(pc.utf8_length(data)).as_py() or 0) > attr.max_length:
        return None
    return pc.if_else(blank, pa.scalar(None, data.type), data).cast(pa.string())


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
    """A column read from a file is Arrow data (importer.read): checked with Arrow's compute
    kernels and kept as Arrow, which write.copy_rows encodes without a Python object per
    value. None sends it value by value, as for any other input."""
    kind = data.type
    if attr.type == "text" and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return _arrow_text(attr, data)
    if attr.type in ("integer", "number"):
        return _arrow_number(attr, data)
    if attr.required and data.null_count:
        return None
    if attr.type == "date" and pa.types.is_date32(kind):
        return data
    if attr.type == "boolean" and pa.types.is_boolean(kind):
        return data
    return None


def _fast_column(attr: Attribute, column: pd.Series) -> np.ndarray | pa.Array | None:
    """The whole column coerced at once when it is plainly fine; None sends it value by value
    (which also finds and names the first bad value)."""
    import pandas as pd

    if isinstance(column.dtype, pd.ArrowDtype):
        data = pa.array(column)  # the Arrow data itself, not a copy
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
        return _fast_arrow(attr, data)
    null = pd.isna(column).to_numpy()
    if attr.required and null.any():
        return None
    if null.all():
        return np.full(len(column), None, dtype=object)
    if attr.type == "text":
        return _fast_text(attr, column, null)
    if attr.type in ("integer", "number"):
        return _fast_number(attr, column, null)
    if attr.type == "date" and pd.api.types.is_datetime64_any_dtype(column):
        return np.where(null, None, column.dt.date.to_numpy(dtype=object))
    if attr.type == "date":  # GeoPackage dates arrive as datetime.date objects
        values = column.to_numpy(dtype=object)
        dates = np.fromiter((type(v) is dt.date for v in values), bool, len(values))
        if (dates | null).all():
            return np.where(null, None, values)
    if attr.type == "boolean" and pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=object)
    return None


def _check_table(layer: Layer, table: pa.Table, labels: Sequence) -> dict[str, pa.Array]:
    """check_attributes for a file's columns as GDAL read them: each stays Arrow data."""
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
        fast = _fast_arrow(attr, data)
        if fast is None:
            values = data.to_pylist()
            fast = pa.array(
                [check_value(layer, attr, v, labels[i]) for i, v in enumerate(values)], kind
            )
        out[attr.name] = fast
    return out


def check_attributes(
    layer: Layer, frame: pd.DataFrame | pa.Table, labels: Sequence
) -> pd.DataFrame | dict[str, pa.Array]:
    """Coerce every registry attribute column of ``frame`` (missing columns become NULL).

    A column that is plainly fine is taken whole (fast path); otherwise it is checked value by
    value, which names the first bad feature. 200,000 rows stay well under a second. A pyarrow
    Table (a file's columns) gives Arrow columns by name, without pandas; a DataFrame gives a
    DataFrame.
    """
    if isinstance(frame, pa.Table):
        return _check_table(layer, frame, labels)
    import pandas as pd

    out = {}
    for attr in layer.attributes:
        column = (
            frame[attr.name].reset_index(drop=True)
            if attr.name in frame
            else pd.Series([None] * len(frame), dtype=object)
        )
        fast = _fast_column(attr, column)
        if isinstance(fast, pa.Array):
            out[attr.name] = pd.Series(pd.arrays.ArrowExtensionArray(fast))
            continue
        if fast is not None:
            out[attr.name] = fast
            continue
        out[attr.name] = [
            check_value(layer, attr, v, labels[i])
            for i, v in enumerate(column.to_numpy(dtype=object))
        ]
    return pd.DataFrame(out, index=range(len(frame)))
