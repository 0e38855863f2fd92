"""The tenure rule on the calendar: a right counts from its start date through its end date,
so a parcel's tenure changes on those days too, not only when a right is written (found from
outside: a lease that had ended kept its parcel regularized). tenure_follow_calendar
(db/functions/tenure_rule.sql) applies the days passed since its last run; the server runs it
as it starts and every CALENDAR_SECONDS after."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg import AsyncConnection

#: how often the server applies the days passed: a lease's end shows within this of midnight
CALENDAR_SECONDS = 600.0

log = logging.getLogger(__name__)


async def follow(conn: AsyncConnection) -> int:
    """Apply the rule to the parcels whose rights started or ended since the last run; how
    many changed."""
    cur = await conn.execute("SELECT tenure_follow_calendar()")
    return int((await cur.fetchone())[0])


async def keep_following(pool: Any, every: float = CALENDAR_SECONDS) -> None:
    """``follow`` now and every ``every`` seconds, on a connection of ``pool`` (the primary),
    until cancelled. A failed run is logged and tried again at the next."""
    while True:
        try:
            async with pool.connection() as conn:
                changed = await follow(conn)
            if changed:
                log.info("tenure rule on the calendar: %d parcels changed", changed)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 the server goes on; the next run tries again
            log.exception("tenure rule on the calendar failed")
        await asyncio.sleep(every)
