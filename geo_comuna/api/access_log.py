"""uvicorn's access log, written once the response has been sent.

uvicorn logs a response as its head is sent, on the request's own path: the formatting,
then the write and flush to the terminal, were ~9 % of a one-feature request's busy time
(py-spy, bench/README.md). Here the request only schedules the record on the event loop,
which writes it with the handlers uvicorn configured once the request's step is done:
after its body has gone out, before the next thing the loop does. The lines and their
order are the same, and nothing waits on a thread (a thread writing them cost more than it
saved: it took the interpreter's lock from the request being answered).
"""

from __future__ import annotations

import asyncio
import logging
import threading

ACCESS = "uvicorn.access"


class _AfterTheStep(logging.Handler):
    """Hands each record to ``handlers`` from the event loop's next round."""

    def __init__(self, handlers: list[logging.Handler], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.handlers = handlers
        self.loop = loop
        self.thread = threading.get_ident()

    def handle(self, record: logging.LogRecord) -> bool:
        if self.loop.is_closed():  # the server has stopped: nothing left to wait for
            self._write(record)
        elif threading.get_ident() == self.thread:
            self.loop.call_soon(self._write, record)
        else:  # a record from another thread (none of uvicorn's are)
            self.loop.call_soon_threadsafe(self._write, record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # handle() does it
        self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        for handler in self.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def after_responses(name: str = ACCESS) -> _AfterTheStep | None:
    """Puts ``name``'s handlers behind the event loop's next round (call it on the loop);
    None when it has none (the app run without uvicorn's logging, as by the tests'
    clients)."""
    logger = logging.getLogger(name)
    handlers = [h for h in logger.handlers if not isinstance(h, _AfterTheStep)]
    if not handlers:
        return None
    deferred = _AfterTheStep(handlers, asyncio.get_running_loop())
    logger.handlers = [deferred]
    return deferred


def as_before(deferred: _AfterTheStep | None, name: str = ACCESS) -> None:
    """Gives ``name`` its own handlers back (what is scheduled is still written)."""
    if deferred is not None:
        logging.getLogger(name).handlers = list(deferred.handlers)
