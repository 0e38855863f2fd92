"""What text PostgreSQL can hold: checked wherever a request's or a file's words are written
or compared (features, tenure records, filters); and what text is a day."""

from __future__ import annotations

import datetime as dt
import re

#: what PostgreSQL text (UTF-8) cannot hold: NUL, and lone surrogates (JSON may carry "\ud800")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def is_text(value: str) -> bool:
    """Can PostgreSQL hold (or compare with) this string? Not with a NUL or lone surrogate."""
    return _NOT_TEXT.search(value) is None


#: what a person's free text (a note) should not hold: controls but tab and line breaks, and
#: the marks that reorder text (bidirectional embeddings, overrides and isolates): found from
#: outside, a note's U+202E printed reversed on a parcel's sheet, and a NUL was a 500
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def unprintable(value: str) -> str | None:
    """The first character of ``value`` free text should not hold, as U+XXXX; None if none."""
    found = _UNPRINTABLE.search(value)
    return None if found is None else f"U+{ord(found[0]):04X}"


#: a day written YYYY-MM-DD (group 1), or as its midnight (what some programs write for a date)
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")


def iso_day(text: str) -> dt.date | None:
    """The day ``text`` writes as YYYY-MM-DD or as that day's midnight; None for anything
    else (found from outside: 20100101 and 2010-W01-1 were taken, ISO forms no planner
    writes, and 2010-01-01T23:00:00-05:00 was stored as the 1st, its time dropped, though in
    UTC it is the 2nd) and for a day that does not exist."""
    found = _DAY.match(text.strip())
    if found is None:
        return None
    try:
        return dt.date.fromisoformat(found[1])
    except ValueError:
        return None
