"""Where a sheet's holders, rights and documents come from: a provider, handed in.

The registry of parties, rights and source documents is its own part of the store; a sheet
only prints what that part lets the reader see. So the sheet takes a function
``parcel_records(conn, parcel_id, user) -> {"holders": [...], "rights": [...],
"documents": [{"title", "sha256", ...}, ...]}`` (a coroutine function or a plain one), already
filtered for ``user`` (None: an anonymous reader), and never reads those tables itself.
``registered`` is that provider over the store's registry (geo_comuna/tenure/records.py),
shaped into the sheet's columns; ``NO_RECORDS`` knows no records (a sheet then says "sin
registros" / "no records registered").
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection

from geo_comuna.accounts import User
from geo_comuna.layers.tenure import DOCUMENT_TYPES, PARTY_KIND, RIGHT_KIND, RIGHT_STATUS
from geo_comuna.maps.templating import day, number
from geo_comuna.tenure.records import parcel_records

Records = dict[str, list[dict[str, Any]]]
RecordsProvider = Callable[[AsyncConnection, int, User | None], Records | Awaitable[Records]]
SECTIONS = ("holders", "rights", "documents")


async def no_records(conn: AsyncConnection, parcel_id: int, user: User | None) -> Records:
    """No registry of holders, rights and documents: every list is empty."""
    return {section: [] for section in SECTIONS}


NO_RECORDS: RecordsProvider = no_records


async def read(
    provider: RecordsProvider, conn: AsyncConnection, parcel_id: int, user: User | None
) -> Records:
    """The provider's answer for one parcel, with every section present (a list)."""
    answer = provider(conn, parcel_id, user)
    if inspect.isawaitable(answer):
        answer = await answer
    return {section: list((answer or {}).get(section) or []) for section in SECTIONS}


async def registered(conn: AsyncConnection, parcel_id: int, user: User | None) -> Records:
    """The parcel's holders, rights and documents from the registry, as ``user`` may see
    them (PostgreSQL leaves out names and ID numbers for anyone else), in the sheet's columns;
    kinds and statuses stay codes here and are labelled in the sheet's language."""
    found = await parcel_records(conn, parcel_id, user)
    names = {h["id"]: h["name"] for h in found["holders"] if h.get("name")}
    holders = [
        {
            "name": h.get("name"),
            "kind": h["kind"],
            "id_number": h.get("id_number"),
            "party_id": h["id"],
        }
        for h in found["holders"]
    ]
    rights = [
        {
            "kind": r["kind"],
            "status": r["status"],
            # the holder by name where the reader may see it, else by its number
            **({"holder": names[r["party"]]} if r["party"] in names else {"party": r["party"]}),
            "share": r.get("share"),
            "start": r.get("starts_on"),
            "end": r.get("ends_on"),
        }
        for r in found["rights"]
    ]
    documents = [
        {"title": d["title"], "kind": d["media_type"], "sha256": d["sha256"]}
        for d in found["documents"]
    ]
    return {"holders": holders, "rights": rights, "documents": documents}


#: what PostgreSQL withholds from a reader outside the commune (tenure/records.py): said so,
#: not left blank
WITHHELD = {("holders", "name"), ("holders", "id_number")}
WITHHELD_WORDS = {"es": "(reservado a los miembros)", "en": "(members only)"}
#: the coded values a records column holds, for their labels
CODED = {
    ("holders", "kind"): PARTY_KIND,
    ("rights", "kind"): RIGHT_KIND,
    ("rights", "status"): RIGHT_STATUS,
}


#: the records columns holding a day (the registry's JSON writes it YYYY-MM-DD)
DAYS = {"start", "end", "since"}


def shown(section: str, column: str, value: Any, lang: str) -> Any:
    """A records value as a person reads it: a kind or status by its label, a document's
    type by its name, a day spelled out as the sheet's other dates, a share as a percentage,
    a name the reader may not see said so."""
    if column in DAYS and isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value  # a provider's own wording of a day: as it is
    if isinstance(value, dt.date):
        return day(lang)(value)
    domain = CODED.get((section, column))
    if domain is not None and value in domain:
        return domain.values[value].get(lang)
    if (section, column) == ("documents", "kind") and value in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[value][0].get(lang)
    if column == "share" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{number(lang)(round(100 * value, 2))} %"  # a share of the right: 50 %, not 0,5
    if isinstance(value, float):  # as the report writes numbers: 0,5 in Spanish
        return number(lang)(value)
    if value is None and (section, column) in WITHHELD:
        return WITHHELD_WORDS[lang]
    if value is None and column in DAYS:  # a right without an end, as the pages write it
        return "—"
    return value
