"""A real `geo-comuna serve` for tests that need one: its own process, a free loopback port,
killed in ``finally``. Also a token made straight in a test database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from psycopg import AsyncConnection

from geo_comuna import accounts

CLI = [sys.executable, "-m", "geo_comuna.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process' environment without any GEO_COMUNA_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_COMUNA_")}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_user(dsn: str, name: str, role: str = "admin", communes: list[str] | None = None) -> str:
    """A user committed in the database at ``dsn``; returns its token."""

    async def add() -> str:
        conn = await AsyncConnection.connect(dsn, autocommit=True)
        try:
            return (await accounts.add_user(conn, name, role, communes or []))[1]
        finally:
            await conn.close()

    return asyncio.run(add())


@contextmanager
def serving(
    dsn: str,
    log: Path,
    cli: list[str] = CLI,
    cwd: Path | None = None,
    workers: int = 1,
    **env: str,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`geo-comuna serve --workers N` (default one: the tests share few CPUs) on the database
    ``dsn``; yields the process and its base URL and kills its process group (SIGKILL) at the
    end if it is still up, worker processes included. Run by root, it stays root unless
    ``env`` says otherwise: this Python may live where no other user can read it (pyenv under
    /root); tests/test_serve.py checks the drop to an unprivileged user itself. ``cwd``: where
    it runs (``python -m`` puts it first on the path, before PYTHONPATH)."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(GEO_COMUNA_DATABASE_URL=dsn, **{"GEO_COMUNA_RUN_AS": "root", **env}),
            cwd=cwd,
            start_new_session=True,  # its workers too are killed with its group at the end
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # each worker imports the app on its own: slow on a busy machine
        deadline = time.monotonic() + 90 * workers
        while True:
            assert proc.poll() is None, f"serve exited {proc.returncode}: {log.read_text()}"
            try:
                answered = httpx.get(f"{base}/conformance", timeout=1).status_code == 200
                # every worker, not only the first one up, is serving
                if answered and log.read_text().count("startup complete") >= workers:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer: {log.read_text()}"
            time.sleep(0.1)
        yield proc, base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
