"""`geo-comuna users`: accounts and their tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import load_settings, run

users_app = typer.Typer(
    help="Accounts: tokens for viewers, editors and admins.", no_args_is_help=True
)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="a name people recognise")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin")] = "editor",
    commune: Annotated[
        list[str] | None,
        typer.Option(
            help="commune code (repeatable) whose features an editor may change and whose "
            "members-only data (each home, residents, notes) the user may read"
        ),
    ] = None,
) -> None:
    """Create a user and print its token once (only its hash is stored)."""
    from geo_comuna import accounts

    async def work(conn: Any) -> tuple[Any, str]:
        return await accounts.add_user(conn, name, role, commune or [])

    user, token = run(work, load_settings())
    typer.echo(f"user {user.name} ({user.role}) created. Its token, shown only now:")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """Users, roles, communes; revoked ones too."""
    from geo_comuna import accounts

    rows = run(accounts.list_users, load_settings())
    typer.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
    """Revoke a user's token at once."""
    from geo_comuna import accounts

    run(lambda conn: accounts.revoke(conn, name), load_settings())
    typer.echo(f"revoked {name}")
