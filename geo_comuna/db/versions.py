"""Answers cached per version of the layers they read.

Every writing statement on a layer bumps its row of ``layer_versions`` (migration 0001; DEMs
since migration 0017), so an answer computed from some layers stays right exactly as long as
their versions are unchanged. The versions are read before the answer's own queries, so a
cached answer is never older than the versions it is filed under (a write committing in
between makes it newer, and its key is then never asked again).

The cache is per process (api/app.py makes one per app); with several workers each keeps its
own, which is correct, only less shared.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from psycopg import AsyncConnection

T = TypeVar("T")


async def versions(conn: AsyncConnection, tables: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """(table, version) of each table, in name order; 0 for a table never written."""
    names = sorted(set(tables))
    cur = await conn.execute(
        "SELECT t, coalesce(v.version, 0) FROM unnest(%s::text[]) t "
        "LEFT JOIN layer_versions v ON v.layer = t ORDER BY t",
        (names,),
    )
    return tuple(await cur.fetchall())


class VersionedCache:
    """At most ``size`` answers, least recently used dropped first."""

    def __init__(self, size: int = 64) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.size = size
        self.hits = self.misses = 0

    async def get_or_compute(
        self,
        conn: AsyncConnection,
        key: Hashable,
        tables: Iterable[str],
        compute: Callable[[], Awaitable[T]],
    ) -> T:
        full = (key, await versions(conn, tables))
        if full in self._entries:
            self.hits += 1
            self._entries.move_to_end(full)
            return self._entries[full]
        self.misses += 1
        value = await compute()
        self._entries[full] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value
