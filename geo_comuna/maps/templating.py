"""The one Jinja2 environment of the HTML we write (report, pages for people) and the number
and date formats of each language.

Autoescaping is on for every .html template: every value a page shows (a commune's name, a
feature's property) comes from the database, which anyone with an editor's token fills.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("geo_comuna.maps", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def number(lang: str) -> Callable[[Any], str]:
    """How a page writes a number: es-VE 1.234,5; en 1,234.5; "—" for none."""

    def num(value: Any, places: int | None = None) -> str:
        """``places``: that many decimals, always (a column's figures aligned: 11,2 beside
        36 and 2.299,99 did not line up); else as few as the value needs, at most two."""
        if value is None:
            return "—"
        if places is not None and isinstance(value, int | float):
            text = f"{value:,.{places}f}"
        elif isinstance(value, float):
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
        else:
            text = f"{value:,}"
        if lang == "es":  # 1.234,5
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    return num


MONTHS = {
    "es": (
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    ).split(),
    "en": (
        "January February March April May June July August September October November December"
    ).split(),
}


def day(lang: str) -> Callable[[Any], str]:
    """How a page writes a date: es 4 de diciembre de 2026, en 4 December 2026; a moment
    also gets its time of day in UTC (", 04:38 UTC"); "—" for none. Spelled out, not
    04/12/2026: an English reader takes that for April 12th."""

    def write(value: Any) -> str:
        if value is None:
            return "—"
        month = MONTHS[lang][value.month - 1]
        text = (
            f"{value.day} de {month} de {value.year}"
            if lang == "es"
            else f"{value.day} {month} {value.year}"
        )
        if isinstance(value, dt.datetime):
            text += f", {value.astimezone(dt.UTC):%H:%M} UTC"
        return text

    return write
