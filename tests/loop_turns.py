"""How often the event loop turned to other tasks while a block ran: a test that work stays off
the loop (or lets it go between pieces) counts the turns instead of timing them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def loop_turns(pause: float = 0) -> AsyncIterator[list[int]]:
    """Within the block, a task takes a turn every ``pause`` s (0: whenever the loop is free)
    and counts it in the one-item list yielded."""
    turns = [0]

    async def turning() -> None:
        while True:
            await asyncio.sleep(pause)
            turns[0] += 1

    task = asyncio.create_task(turning())
    try:
        yield turns
    finally:
        task.cancel()
