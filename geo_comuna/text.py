"""What text PostgreSQL can hold: checked wherever a request's or a file's words are written
or compared (features, tenure records, filters)."""

from __future__ import annotations

import re

#: what PostgreSQL text (UTF-8) cannot hold: NUL, and lone surrogates (JSON may carry "\ud800")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def is_text(value: str) -> bool:
    """Can PostgreSQL hold (or compare with) this string? Not with a NUL or lone surrogate."""
    return _NOT_TEXT.search(value) is None
