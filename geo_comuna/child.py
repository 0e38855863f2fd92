"""The child process of work.isolated and work.Streaming: imports the modules its command
line names, waits for ``(function, arguments)`` pickled on stdin (a spare started ahead waits
at most IDLE_SECONDS, then ends), runs it, and writes ``(True, result)`` or
``(False, exception)`` pickled on stdout. A function that returns ``Pieces`` answers in
pieces: ``(True, first)``, then ``("piece", item)`` for each next item as it is made, and
``("end", None)`` or ``("error", exception)``. A plain interpreter started for the one call
(no fork of the server, whose threads hold locks), so the server can kill it at the deadline.
Only geo_comuna itself ever writes its stdin."""

from __future__ import annotations

import importlib
import os
import pickle
import resource
import select
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO


@dataclass
class Pieces:
    """What a function run in the child returns to answer in pieces: ``first`` at once, then
    each item of ``rest`` as it is made (the parent asks for none: the pipe's size paces it)."""

    first: Any
    rest: Iterator[Any]


#: how long a child started ahead of its work waits for it (work.Spares takes only younger ones)
IDLE_SECONDS = 120.0


def _send(out: BinaryIO, frame: tuple[Any, Any]) -> None:
    pickle.dump(frame, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _orphaned(parent: int) -> None:
    """Ends the process once its parent is gone (a server that died before it could kill it)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


#: the address space a child may take (bytes): found from outside, a zip listing 3,000,000
#: names took a reader to 1.7 GB, and a server runs several readers at once
MEMORY_BYTES = 2 * 2**30


def _bounded() -> None:
    """At most MEMORY_BYTES: past it an allocation fails (MemoryError, raised in the parent,
    which says so) instead of the machine swapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > MEMORY_BYTES:
        limit = MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> None:
    _bounded()
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
    for module in sys.argv[1:]:  # what its work will need, imported while it waits
        importlib.import_module(module)
    if not select.select([sys.stdin], [], [], IDLE_SECONDS)[0]:
        return
    fn, args = pickle.load(sys.stdin.buffer)
    # the answers get stdout's pipe to themselves: what a library prints goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        answer = (True, fn(*args))
    except BaseException as exc:  # noqa: BLE001 (handed to the parent, raised there)
        answer = (False, exc)
    ok, value = answer
    if not (ok and isinstance(value, Pieces)):
        _send(out, answer)
        return
    _send(out, (True, value.first))
    try:
        for item in value.rest:
            _send(out, ("piece", item))
    except BaseException as exc:  # noqa: BLE001 (handed to the parent, raised there)
        _send(out, ("error", exc))
        return
    _send(out, ("end", None))


if __name__ == "__main__":
    # main() of the module imported by name, whose Pieces is the one the functions return
    from geo_comuna.child import main as imported

    imported()
