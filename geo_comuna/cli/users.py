"""`geo-comuna users`: accounts and their tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import Lang, die, group_lang, load_settings, run, tell
from geo_comuna.errors import GeoComunaError, Said

users_app = typer.Typer(
    help="Accounts: tokens for viewers, editors and admins.",
    no_args_is_help=True,
    callback=group_lang,
)

Expires = Annotated[
    str | None,
    typer.Option(
        help="when the token ends: 90d, 12w, a date (2027-06-30) or never; "
        "default GEO_COMUNA_TOKEN_DAYS (365) days"
    ),
]


def _expiry(text: str | None) -> Any:
    from geo_comuna import accounts

    try:
        return accounts.expiry(text, load_settings().token_days)
    except GeoComunaError as exc:
        die(exc, 2)


def _ends(expires_at: Any) -> Said:
    """When a token ends, spelled out (vence el 5 de diciembre de 2027), as pages write dates."""
    from geo_comuna.maps.templating import day

    if expires_at is None:
        return Said("never expires", "no vence")
    when = expires_at.date() if hasattr(expires_at, "date") else expires_at
    return Said(f"expires {day('en')(when)}", f"vence el {day('es')(when)}")


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
    expires: Expires = None,
    lang: Lang = None,
) -> None:
    """Create a user and print its token once (only its hash is stored)."""
    from geo_comuna import accounts

    ends = _expiry(expires)

    async def work(conn: Any) -> tuple[Any, str]:
        return await accounts.add_user(conn, name, role, commune or [], expires_at=ends)

    user, token = run(work, load_settings())
    tell(
        Said(
            f"user {user.name} ({user.role}) created, {_ends(ends)}. Its token, shown only now:",
            f"usuario {user.name} ({user.role}) creado, {_ends(ends).es}. "
            "Su token, que solo se muestra ahora:",
        )
    )
    typer.echo(token)


@users_app.command("rotate")
def users_rotate(
    name: Annotated[str, typer.Argument(help="the user's name")],
    expires: Expires = None,
    lang: Lang = None,
) -> None:
    """Give a user a new token (printed once); the old one stops working at once."""
    from geo_comuna import accounts

    ends = _expiry(expires)
    token = run(lambda conn: accounts.rotate(conn, name, expires_at=ends), load_settings())
    tell(
        Said(
            f"new token for {name}, {_ends(ends)}; the old one is revoked. Shown only now:",
            f"token nuevo para {name}, {_ends(ends).es}; el anterior queda revocado. "
            "Solo se muestra ahora:",
        )
    )
    typer.echo(token)


@users_app.command("list")
def users_list(lang: Lang = None) -> None:
    """Users, roles, communes, when their tokens expire; revoked ones too."""
    from geo_comuna import accounts

    rows = run(accounts.list_users, load_settings())
    typer.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="the user's name")],
    lang: Lang = None,
) -> None:
    """Revoke a user's token at once."""
    from geo_comuna import accounts

    run(lambda conn: accounts.revoke(conn, name), load_settings())
    tell(Said(f"revoked {name}", f"revocado {name}"))
