"""Accounts, what each reader may read, and the write context: tokens (kept only as SHA-256,
each with an end date, rotated by replacing it), roles, commune scopes.

Every write runs in ``writing(conn, user)``: one transaction in which the database knows who
writes (for the audit trail) and, for API users, runs as the role geo_comuna_writer so that
row-level security (migration 0006) confines an editor to their communes. The check is in
PostgreSQL, not only here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from psycopg import AsyncConnection

from geo_comuna.errors import Conflict, InvalidInput, NotFound, Said, Unauthorized
from geo_comuna.text import unprintable

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
TOKEN_PREFIX = "gc_"


@dataclass(frozen=True)
class User:
    id: int | None
    name: str
    role: Role
    communes: tuple[int, ...] = ()

    @property
    def may_write(self) -> bool:
        return self.role in ("editor", "admin")


def expiry(
    text: str | None, default_days: int, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When a token made now ends: ``90d`` (days), ``12w`` (weeks), a date ``2027-06-30``
    (its end, UTC), ``never``; None: ``default_days`` (0 = never)."""
    now = now or dt.datetime.now(dt.UTC)
    if text is None:
        return now + dt.timedelta(days=default_days) if default_days else None
    value = text.strip().lower()
    if value == "never":
        return None
    if match := re.fullmatch(r"(\d{1,5})([dw])", value):
        days = int(match[1]) * (7 if match[2] == "w" else 1)
        if days < 1:
            raise InvalidInput(
                Said(
                    f"expiry {text!r} is not in the future",
                    f"el vencimiento {text!r} no está en el futuro",
                )
            )
        return now + dt.timedelta(days=days)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            Said(
                f"expiry {text!r}: give days (90d), weeks (12w), a date (2027-06-30) or never",
                f"vencimiento {text!r}: indique días (90d), semanas (12w), una fecha "
                "(2027-06-30) o never",
            )
        ) from None
    end = dt.datetime.combine(day, dt.time.max, dt.UTC)
    if end <= now:
        raise InvalidInput(
            Said(
                f"expiry {text!r} is not in the future",
                f"el vencimiento {text!r} no está en el futuro",
            )
        )
    return end


@dataclass(frozen=True)
class Access:
    """Whose members-only data (layers/model.py's read rules) a reader may read: every
    commune's (admins, the CLI) or those of the communes the user is bound to, any role."""

    everywhere: bool = False
    communes: tuple[int, ...] = ()

    @classmethod
    def of(cls, user: User | None) -> Access:
        if user is None:
            return PUBLIC
        if user.role == "admin":
            return EVERYWHERE
        return cls(communes=tuple(sorted(set(user.communes))))

    @property
    def anywhere(self) -> bool:
        """May read members-only data of at least one commune."""
        return self.everywhere or bool(self.communes)

    def member_of(self, commune_id: int | None) -> bool:
        return self.everywhere or (commune_id is not None and commune_id in self.communes)

    @property
    def key(self) -> tuple:
        """Tells readers apart for caches and ETags: readers with one key read the same."""
        return ("all",) if self.everywhere else self.communes


#: anyone without a token
PUBLIC = Access()
#: admins, and whoever runs the CLI on the database's machine
EVERYWHERE = Access(everywhere=True)


def local_admin() -> User:
    """Whoever runs the CLI on the database's machine: they hold the database itself."""
    return User(None, f"cli:{getpass.getuser()}", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _commune_ids(conn: AsyncConnection, codes: list[str]) -> list[int]:
    cur = await conn.execute("SELECT code, id FROM communes WHERE code = ANY(%s)", (codes,))
    found = dict(await cur.fetchall())
    missing = sorted(set(codes) - set(found))
    if missing:
        raise NotFound(
            Said(f"no communes with codes {missing}", f"no hay comunas con los códigos {missing}")
        )
    return [found[c] for c in codes]


def _new_token() -> tuple[str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


async def add_user(
    conn: AsyncConnection,
    name: str,
    role: str,
    communes: list[str],
    *,
    expires_at: dt.datetime | None = None,
) -> tuple[User, str]:
    """Create a user whose token ends at ``expires_at`` (None: never); returns it and its
    token, which is never stored nor shown again."""
    if role not in ROLES:
        raise InvalidInput(
            Said(
                f"unknown role {role!r}; use one of {', '.join(ROLES)}",
                f"rol desconocido {role!r}; use uno de {', '.join(ROLES)}",
            )
        )
    if role == "editor" and not communes:
        raise InvalidInput(
            Said(
                "an editor needs at least one commune (--commune CODE)",
                "un editor necesita al menos una comuna (--commune CODE)",
            )
        )
    token, hashed = _new_token()
    async with conn.transaction():
        ids = await _commune_ids(conn, communes)
        cur = await conn.execute(
            "INSERT INTO users (name, role, token_hash, expires_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            (name, role, hashed, expires_at),
        )
        row = await cur.fetchone()
        if row is None:
            raise Conflict(
                Said(
                    f"a user named {name!r} exists; revoke it or choose another name",
                    f"ya existe un usuario llamado {name!r}; revóquelo o elija otro nombre",
                )
            )
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO user_communes (user_id, commune_id) VALUES (%s, %s)",
                [(row[0], i) for i in ids],
            )
    return User(row[0], name, role, tuple(ids)), token  # type: ignore[arg-type]


async def rotate(conn: AsyncConnection, name: str, *, expires_at: dt.datetime | None = None) -> str:
    """Give an active user (expired or not) a new token ending at ``expires_at``; the old one
    stops working at once and is kept in revoked_tokens. Returns the new token."""
    token, hashed = _new_token()
    async with conn.transaction():
        cur = await conn.execute(
            """WITH old AS (SELECT id, token_hash FROM users
                            WHERE name = %(name)s AND revoked_at IS NULL FOR UPDATE),
                    kept AS (INSERT INTO revoked_tokens (token_hash, user_name)
                             SELECT token_hash, %(name)s FROM old)
               UPDATE users u SET token_hash = %(hash)s, expires_at = %(expires)s
               FROM old WHERE u.id = old.id RETURNING u.id""",
            {"name": name, "hash": hashed, "expires": expires_at},
        )
        if await cur.fetchone() is None:
            raise NotFound(
                Said(
                    f"no active user named {name!r} (a revoked user gets no new token)",
                    f"no hay ningún usuario activo llamado {name!r} (un usuario revocado no "
                    "recibe un token nuevo)",
                )
            )
    return token


async def list_users(conn: AsyncConnection) -> list[dict]:
    cur = await conn.execute(
        """SELECT u.name, u.role, u.created_at, u.expires_at, u.expires_at <= now(),
                  u.revoked_at,
                  coalesce(array_agg(c.code ORDER BY c.code) FILTER (WHERE c.code IS NOT NULL),
                           '{}')
           FROM users u LEFT JOIN user_communes uc ON uc.user_id = u.id
           LEFT JOIN communes c ON c.id = uc.commune_id
           GROUP BY u.id ORDER BY u.name"""
    )
    return [
        {
            "name": n,
            "role": r,
            "created_at": c,
            "expires_at": ex,
            "expired": bool(gone),
            "revoked_at": rv,
            "communes": list(cs),
        }
        for n, r, c, ex, gone, rv, cs in await cur.fetchall()
    ]


async def revoke(conn: AsyncConnection, name: str) -> None:
    cur = await conn.execute(
        "UPDATE users SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
    )
    if cur.rowcount == 0:
        raise NotFound(
            Said(
                f"no active user named {name!r}",
                f"no hay ningún usuario activo llamado {name!r}",
            )
        )


async def authenticate(conn: AsyncConnection, token: str) -> User | None:
    """The user of an active token; None for an unknown or revoked one. An expired token is
    refused here, saying so (the holder learns whom to ask, nothing else)."""
    cur = await conn.execute(
        """SELECT u.id, u.name, u.role, coalesce(array_agg(uc.commune_id)
                  FILTER (WHERE uc.commune_id IS NOT NULL), '{}'), u.expires_at,
                  u.expires_at <= now()
           FROM users u LEFT JOIN user_communes uc ON uc.user_id = u.id
           WHERE u.token_hash = %s AND u.revoked_at IS NULL GROUP BY u.id""",
        (hash_token(token),),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    if row[5]:
        ended = row[4].astimezone(dt.UTC)
        raise Unauthorized(
            Said(
                f"the token of {row[1]!r} expired on {ended:%Y-%m-%d %H:%M} UTC; an admin gives "
                f"a new one with: geo-comuna users rotate {row[1]!r}",
                f"el token de {row[1]!r} venció el {ended:%Y-%m-%d %H:%M} UTC; un admin le da "
                f"uno nuevo con: geo-comuna users rotate {row[1]!r}",
            )
        )
    return User(row[0], row[1], row[2], tuple(row[3]))


@asynccontextmanager
async def writing(
    conn: AsyncConnection, user: User, *, row_security: bool = True, note: str | None = None
) -> AsyncIterator[None]:
    """A write transaction that the database attributes to ``user``. With ``row_security``
    (every API write) it runs as geo_comuna_writer under row-level security; without, as the
    connection's owner role (bulk COPY by an admin, which RLS cannot serve). ``note``: why
    the change is made, which a parcel's tenure history and the audit record (found from
    outside: the history's note, which the README promised, no write could fill), without
    its surrounding blanks; a blank one is none."""
    note = (note or "").strip() or None
    async with conn.transaction():
        if row_security:
            await conn.execute("SET LOCAL ROLE geo_comuna_writer")
        await _identify_user(conn, user)
        if note:
            await _noted(conn, note)
        yield
        # Inside an enclosing transaction (a savepoint) SET LOCAL would outlive this block.
        await conn.execute("SET LOCAL ROLE NONE")
        await _identify(conn, "", "", "", "")
        if note:
            await _noted(conn, "")


#: characters a write's note may hold (the API's ?note= says so too: api/deps.py)
MAX_NOTE = 500


async def _noted(conn: AsyncConnection, note: str) -> None:
    if len(note) > MAX_NOTE:  # the CLI's --note (found from outside: 5,000 were stored)
        raise InvalidInput(
            Said(
                f"note: {len(note):,} characters, over the limit of {MAX_NOTE}",
                f"note: {len(note):,} caracteres, más que el límite de {MAX_NOTE}",
            )
        )
    if (bad := unprintable(note)) is not None:
        raise InvalidInput(
            Said(
                f"note: holds a control character ({bad}); write it as plain text",
                f"note: contiene un carácter de control ({bad}); escríbala como texto simple",
            )
        )
    await conn.execute(
        "SELECT set_config('geo_comuna.change_note', %s, true), "
        "set_config('geo_comuna.reason', %s, true)",
        (note, note),
    )


@asynccontextmanager
async def reading(conn: AsyncConnection, user: User | None) -> AsyncIterator[None]:
    """A read transaction as the role geo_comuna_reader, the database knowing who reads: the
    tenure records' personal data (names, ID numbers, documents) are read through views that
    show them only to editors and admins of the record's commune (migration 0021), so what
    reaches a reader is decided by PostgreSQL, not by the caller remembering a filter."""
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE geo_comuna_reader")
        await _identify_user(conn, user)
        yield
        # Inside an enclosing transaction (a savepoint) SET LOCAL would outlive this block.
        await conn.execute("SET LOCAL ROLE NONE")
        await _identify(conn, "", "", "", "")


async def _identify_user(conn: AsyncConnection, user: User | None) -> None:
    """Tell the database who this transaction runs for (None: nobody, an anonymous reader)."""
    if user is None:
        await _identify(conn, "", "", "", "")
        return
    await _identify(
        conn,
        "" if user.id is None else str(user.id),
        user.name,
        user.role,
        ",".join(map(str, user.communes)),
    )


async def _identify(
    conn: AsyncConnection, user_id: str, name: str, role: str, communes: str
) -> None:
    await conn.execute(
        "SELECT set_config('geo_comuna.user_id', %s, true), "
        "set_config('geo_comuna.user_name', %s, true), "
        "set_config('geo_comuna.role', %s, true), "
        "set_config('geo_comuna.communes', %s, true)",
        (user_id, name, role, communes),
    )
