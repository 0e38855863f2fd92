"""A client reads its own writes, also when reads are served by standbys (db/replicas.py).

Each successful write answers with the primary's WAL position after it, twice: the header
``X-Geo-Comuna-LSN`` (for scripts, which send it back as ``X-Geo-Comuna-Read-After``) and the
cookie ``geo_comuna_lsn`` (browsers send it back by themselves; it is no credential, only a
position in the log). A read carrying a position is served by a standby that has replayed that
far, or by the primary. Every read says which server answered in ``X-Geo-Comuna-Read``
(``primary`` or ``standby-N``). Without standbys configured none of this happens.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_comuna.api import problems
from geo_comuna.db.replicas import LSN

SAFE = ("GET", "HEAD")
COOKIE = "geo_comuna_lsn"
#: how long a browser keeps sending its last write's position: far longer than any sane
#: replication lag, short enough that old positions do not pile up
COOKIE_MAX_AGE_S = 300
LSN_HEADER = "X-Geo-Comuna-LSN"
AFTER_HEADER = "X-Geo-Comuna-Read-After"
READ_HEADER = "X-Geo-Comuna-Read"


def read_after(scope: Scope) -> str | None:
    """The position a read must see, from the header (checked by ReadYourWrites) or the
    cookie (one that is not a position is ours from no version we know: ignored)."""
    headers = dict(scope.get("headers", []))
    value = headers.get(AFTER_HEADER.lower().encode())
    if value is not None:
        return value.decode("latin-1").strip()
    cookie = headers.get(b"cookie")
    if cookie is None:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie.decode("latin-1"))
    except CookieError:  # other sites' cookies on our host may be anything
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and LSN.fullmatch(morsel.value) else None


class ReadYourWrites:
    """Sets the position on write answers, reads it from reads (scope state ``read_after``,
    used by api/deps.get_conn) and names the server that answered each read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        databases = getattr(scope.get("app").state, "databases", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or databases is None
            or not databases.replicated
            or scope["method"] == "OPTIONS"  # writes nothing, reads nothing
        ):
            await self.app(scope, receive, send)
            return
        if scope["method"] in SAFE:
            after = read_after(scope)
            if after is not None and not LSN.fullmatch(after):
                response = problems.problem(
                    400,
                    "invalid-parameter",
                    f"{AFTER_HEADER}: {after[:40]!r} is not a WAL position like 0/16B3748 "
                    f"(send back the {LSN_HEADER} of a write answer)",
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["read_after"] = after

            async def named(message: Message) -> None:
                if message["type"] == "http.response.start":
                    server = scope.get("state", {}).get("read_from")
                    if server is not None:
                        MutableHeaders(scope=message)[READ_HEADER] = server
                await send(message)

            await self.app(scope, receive, named)
            return

        async def positioned(message: Message) -> None:
            # the write has committed by now: its handler returned the answer
            if message["type"] == "http.response.start" and message["status"] < 400:
                lsn = await databases.commit_lsn()
                headers = MutableHeaders(scope=message)
                headers[LSN_HEADER] = lsn
                headers.append(
                    "Set-Cookie",
                    f"{COOKIE}={lsn}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; HttpOnly; SameSite=Lax",
                )
            await send(message)

        await self.app(scope, receive, positioned)
