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
