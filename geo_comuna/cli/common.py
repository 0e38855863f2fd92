"""What every command shares: settings, errors as messages and exit codes, progress, and one
database connection per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer

from geo_comuna.errors import GeoComunaError
from geo_comuna.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        die(f"invalid settings: {exc}")


def die(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def progress(message: str) -> None:
    typer.secho(f"  … {message}", err=True, fg=typer.colors.BLUE)


def run(work: Callable[[Any], Awaitable[T]], settings: Settings) -> T:
    """Run ``work(conn)`` on one connection; typed errors become a message and exit 2."""
    from geo_comuna.db import migrate
    from geo_comuna.db.pool import connect

    async def main() -> T:
        conn = await connect(settings)
        try:
            await migrate.upgrade(conn)
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except GeoComunaError as exc:
        die(exc.message, 2)
