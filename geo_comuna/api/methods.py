"""HTTP methods as HTTP defines them, on every route: HEAD wherever GET is, OPTIONS, and the
``Allow`` header on a 405.

FastAPI routes answer only the methods they declare, one route per method: HEAD was a 405,
OPTIONS a 405, and a 405 named no method. This middleware knows every route of the app:

* ``HEAD`` is answered as ``GET`` without the body (same status and headers, Content-Length
  and ETag included; a conditional HEAD gets its 304 like a GET). It costs what the GET costs.
* ``OPTIONS`` on a path whose routes do not answer it themselves is ``204`` with ``Allow``:
  the methods its routes declare. Items and an item answer it themselves (api/editing.py):
  there ``Allow`` lists what the caller's token may do, which QGIS reads to offer editing.
* a ``405`` carries ``Allow``: every method of every route on that path (Starlette names only
  the methods of the first route it tried).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def declared(router: Router, scope: Scope) -> set[str]:
    """Methods the app's routes answer at the path of ``scope``: empty when no route has that
    path. Asked of the routes themselves (``matches``), whatever way they were included."""
    found = set()
    for method in ORDER:
        probe = {**scope, "method": method}
        for route in router.routes:
            if isinstance(route, Mount) and method not in ("GET", "HEAD"):
                continue  # the map libraries under /static/ are files to read
            if route.matches(probe)[0] is Match.FULL:
                found.add(method)
                break
    return found


def allow(methods: set[str]) -> str:
    """The Allow header of a path whose routes declare ``methods``: HEAD with every GET,
    OPTIONS always."""
    found = set(methods) | {"OPTIONS"}
    if "GET" in found:
        found.add("HEAD")
    return ", ".join(m for m in ORDER if m in found)


class Methods:
    """The ASGI middleware; ``router`` is the app's (read at each request: routes added after
    the middleware count)."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            methods = declared(self.router, scope)
            if methods and "OPTIONS" not in methods:
                answer = Response(status_code=204, headers={"Allow": allow(methods)})
                await answer(scope, receive, send)
                return
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 405:
                    allowed = allow(declared(self.router, scope))
                    MutableHeaders(scope=message)["Allow"] = allowed
            elif message["type"] == "http.response.body" and head:
                if message.get("more_body", False):
                    return  # the GET's body, dropped; the last message ends the answer
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, answered)
