"""Answers cached per version of the layers they read.

Every writing statement on a layer bumps its row of ``layer_versions`` (migration 0001; DEMs
since migration 0017), so an answer computed from some layers stays right exactly as long as
their versions are unchanged. The versions are read before the answer's own queries, so a
cached answer is never older than the versions it is filed under (a write committing in
between makes it newer, and its key is then never asked again).

One computation per key at a time: requests asking for an answer that is being computed wait
for it instead of computing it again. Right after an import bumps a layer's version, every
client of the national breakdown misses the cache at once; each computing it side by side on
2 CPUs took six at once 10 s each instead of 4 s (bench/README.md), and a dozen would all reach
the statement timeout together, a 503 for everyone without any one query going wrong.

The cache is per process (api/app.py makes one per app); with several workers each keeps its
own, which is correct, only less shared.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from psycopg import AsyncConnection

T = TypeVar("T")

Versions = tuple[tuple[str, int], ...]


async def versions(conn: AsyncConnection, tables: Iterable[str]) -> Versions:
    """(table, version) of each table, in name order (Python's, as VERSIONS_SQL keeps it);
    0 for a table never written."""
    names = sorted(set(tables))
    cur = await conn.execute(f"SELECT {VERSIONS_SQL}", {"tables": names})
    return tuple(zip(names, (await cur.fetchone())[0], strict=True))


#: the versions of the tables ``%(tables)s`` names, as an array in the same order: a column a
#: statement can carry beside its answer, so that both come from one snapshot
VERSIONS_SQL = """(SELECT coalesce(array_agg(coalesce(v.version, 0) ORDER BY n.i), '{}')
    FROM unnest(%(tables)s::text[]) WITH ORDINALITY n(t, i)
    LEFT JOIN layer_versions v ON v.layer = n.t)"""


class VersionedCache:
    """At most ``size`` answers, least recently used dropped first. ``misses`` counts the
    computations started, ``waited`` the requests that waited for one of them."""

    def __init__(self, size: int = 64) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self.size = size
        self.hits = self.misses = self.waited = 0

    async def get_or_compute(
        self,
        conn: AsyncConnection,
        key: Hashable,
        tables: Iterable[str],
        compute: Callable[[], Awaitable[T]],
        *,
        found: Versions | None = None,
    ) -> T:
        """The answer filed under ``key`` and the current versions of ``tables`` (``found``:
        those versions, when the caller has just read them, for an ETag say), computed by
        ``compute`` when missing, by this request or by one already computing it.

        A computation that fails fails every request waiting for it (the same query on the
        same data would fail again, and retrying it in turn would multiply the wait); one
        cancelled (its client went away) leaves a waiting request to compute it anew."""
        full = (key, found if found is not None else await versions(conn, tables))
        while True:
            if full in self._entries:
                self.hits += 1
                self._entries.move_to_end(full)
                return self._entries[full]
            flight = self._flights.get(full)
            if flight is None:
                break
            self.waited += 1
            try:
                # shielded: a waiter going away must not cancel the others' computation
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # this request was cancelled, not the computation
        self.misses += 1
        flight = asyncio.get_running_loop().create_future()
        self._flights[full] = flight
        try:
            value = await compute()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as error:
            flight.set_exception(error)
            flight.exception()  # retrieved: no warning when nobody was waiting
            raise
        finally:
            del self._flights[full]
        self._entries[full] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        flight.set_result(value)
        return value
