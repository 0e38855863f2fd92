"""The child process of work.isolated: reads ``(function, arguments)`` pickled on stdin, runs
it, and writes ``(True, result)`` or ``(False, exception)`` pickled on stdout. A plain
interpreter started for the one call (no fork of the server, whose threads hold locks), so
the server can kill it at the deadline. Only geo_comuna itself ever writes its stdin."""

from __future__ import annotations

import pickle
import sys


def main() -> None:
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        answer = (True, fn(*args))
    except BaseException as exc:  # noqa: BLE001 (handed to the parent, raised there)
        answer = (False, exc)
    pickle.dump(answer, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    main()
