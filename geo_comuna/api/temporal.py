"""The ``datetime`` parameter of OGC API - Features Part 1: an instant or an interval.

``2020-05-01`` and ``2020-05-01T10:00:00Z`` are instants; ``start/end`` an interval whose
ends are instants, and ``..`` or nothing for an open end (``2019-01-01/..``). A layer's
temporal property is a date (layers/model.py), which spans its whole day: it matches an
instant that falls within that day (in UTC) and an interval that reaches into it, so every
instant is taken at its UTC day and both ends are inclusive.

QGIS writes ``0000-01-01T00:00:00Z`` and ``9999-12-31T00:00:00Z`` for "no bound" (year 0 is
not a date in Python): year 0 is read as before every date. GDAL 3.6 writes a date field's
value as ``2015-01-01T`` (a T and no time): read as that day.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from geo_comuna.errors import InvalidInput, Said
from geo_comuna.features.query import Interval

_INSTANT = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?P<frac>\.\d+)?"
    r"(?P<tz>[Zz]|[+-]\d{2}:\d{2})?|[Tt])?"
)
_OPEN = ("", "..")
_HELP = Said(
    "give a date or an RFC 3339 date-time (2020-05-01, 2020-05-01T10:00:00Z) or an interval "
    "start/end with '..' for an open end (2019-01-01/.., ../2020-12-31)",
    "dé una fecha o una fecha y hora RFC 3339 (2020-05-01, 2020-05-01T10:00:00Z) o un "
    "intervalo inicio/fin con '..' para un extremo abierto (2019-01-01/.., ../2020-12-31)",
)


def parse_datetime(value: str | None) -> Interval | None:
    """``?datetime=`` -> the days it covers (UTC); None when not given."""
    if value is None:
        return None
    text = value.strip()
    if "/" not in text:
        if text in _OPEN:
            raise InvalidInput(
                Said(
                    f"datetime {value!r}: an instant cannot be open; {_HELP}",
                    f"datetime {value!r}: un instante no puede estar abierto; {_HELP.es}",
                )
            )
        day = _day(text, value)
        return Interval(day, day)
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidInput(
            Said(
                f"datetime {value!r} has more than one '/'; {_HELP}",
                f"datetime {value!r} tiene más de una '/'; {_HELP.es}",
            )
        )
    start, end = (None if p.strip() in _OPEN else _day(p.strip(), value) for p in parts)
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            Said(
                f"datetime {value!r}: the interval ends before it starts",
                f"datetime {value!r}: el intervalo termina antes de empezar",
            )
        )
    return Interval(start, end)


def _day(text: str, value: str) -> dt.date:
    """The UTC day of one instant."""
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise InvalidInput(
            Said(
                f"datetime {value!r}: {text!r} is not a date or date-time; {_HELP}",
                f"datetime {value!r}: {text!r} no es una fecha ni una fecha y hora; {_HELP.es}",
            )
        )
    year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
    if year == 0:
        return dt.date.min
    try:
        if match["H"] is None:
            return dt.date(year, month, day)
        second = min(int(match["S"]), 59)  # a leap second belongs to its minute
        micro = int((match["frac"] or ".0")[1:7].ljust(6, "0"))
        moment = dt.datetime(
            year, month, day, int(match["H"]), int(match["M"]), second, micro, _zone(match["tz"])
        )
    except ValueError:
        why = _out_of_range(year, month, day, match)
        raise InvalidInput(
            Said(
                f"datetime {value!r}: {text!r} is not a real moment ({why})",
                f"datetime {value!r}: {text!r} no es un momento que exista ({why.es})",
            )
        ) from None
    try:
        return moment.astimezone(dt.UTC).date()
    except OverflowError:  # within a day of year 1 or 9999: the first or last date
        return dt.date.min if year == 1 else dt.date.max


def _out_of_range(year: int, month: int, day: int, match: re.Match) -> Said:
    """Which part of a date-time that matched _INSTANT has no such value (Python's own
    words, "month must be in 1..12", were English in a Spanish answer)."""
    if not 1 <= month <= 12:
        return Said(f"there is no month {month}", f"no existe el mes {month}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        return Said(f"{year}-{month:02d} has {last} days", f"{year}-{month:02d} tiene {last} días")
    if int(match["H"]) > 23:
        return Said(f"there is no hour {match['H']}", f"no existe la hora {match['H']}")
    if int(match["M"]) > 59:
        return Said(f"there is no minute {match['M']}", f"no existe el minuto {match['M']}")
    offset = match["tz"]
    return Said(f"no time zone is {offset} from UTC", f"ninguna zona horaria dista {offset} de UTC")


def _zone(tz: str | None) -> dt.tzinfo:
    """Z, +hh:mm or -hh:mm; none given: UTC."""
    if tz is None or tz in "Zz":
        return dt.UTC
    sign = -1 if tz[0] == "-" else 1
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {tz} is out of range")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
