"""uvicorn's access log written once the response has been sent (api/access_log.py): the
same lines, in the same order, after the request's step rather than before its head."""

from __future__ import annotations

import asyncio
import logging

import pytest

from geo_comuna.api import access_log

pytestmark = pytest.mark.anyio


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_lines_come_after_the_step_in_order() -> None:
    logger = logging.getLogger("geo_comuna.test.access")
    logger.propagate = False
    kept = Kept()
    kept.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers = [kept]
    logger.setLevel(logging.INFO)
    deferred = access_log.after_responses(logger.name)
    assert logger.handlers == [deferred]
    try:
        for n in range(3):
            logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/x/{n}", "1.1", 200)
        assert kept.lines == []  # the request's step is not over: nothing written yet
        await asyncio.sleep(0)
        assert kept.lines == [f'INFO 127.0.0.1:5 - "GET /x/{n} HTTP/1.1" 200' for n in range(3)]
        kept.setLevel(logging.WARNING)  # a handler's own level still applies
        logger.info("quiet")
        await asyncio.sleep(0)
        assert len(kept.lines) == 3
    finally:
        access_log.as_before(deferred, logger.name)
    assert logger.handlers == [kept]
    kept.setLevel(logging.NOTSET)
    logger.info("now")  # written at once again
    assert kept.lines[-1] == "INFO now"


async def test_a_logger_without_handlers_is_left_alone() -> None:
    logger = logging.getLogger("geo_comuna.test.nothing")
    logger.handlers = []
    assert access_log.after_responses(logger.name) is None
    assert logger.handlers == []
    access_log.as_before(None, logger.name)
