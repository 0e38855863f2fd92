"""Where a sheet's holders, rights and documents come from: a provider, handed in.

The registry of parties, rights and source documents is its own part of the store; a sheet
only prints what that part lets the reader see. So the sheet takes a function
``parcel_records(conn, parcel_id, user) -> {"holders": [...], "rights": [...],
"documents": [{"title", "sha256", ...}, ...]}`` (a coroutine function or a plain one), already
filtered for ``user`` (None: an anonymous reader), and never reads those tables itself.
``NO_RECORDS`` stands in until that registry is wired in: it knows no records, and a sheet
says so ("sin registros" / "no records registered").
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection

from geo_comuna.accounts import User

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
