"""Fair under load: per-client rate limits, and a bounded number of heavy requests at once.

Cheap reads (items, tiles, collections) and heavy ones (analyses, reports, maps, the national
breakdown, hillshades, imports, exports, field packages, writes asking for repairs) are told
apart by their path. Every request takes a token from its client's bucket (a client is its
token when it sends one, else its address), heavy ones from a smaller second bucket too;
requests with a token also from their address' bucket (token_rate_per_minute), so that
made-up tokens do not each open a bucket of their own. An empty bucket is a 429 with
Retry-After. The address is the peer's, or X-Forwarded-For's only from
Settings.forwarded_allow_ips.
Heavy requests also wait for one of ``Settings.heavy_requests`` slots *before* they take a
database connection, so however many clients loop over analyses, the pool keeps
``pool_max_size - heavy_requests`` connections for everything else; one that waits longer
than ``Settings.compute_seconds`` for its slot is a 503 with Retry-After.

State is per process: with several workers each counts its own clients (limits then hold per
worker; put them in the proxy in front for exact global limits).

When the last heavy request running ends, the memory it freed goes back to the system
(work.release_memory): a worker that built the package of a 200,000-parcel commune otherwise
kept ~800 MB resident while idle, most of it freed but held by the C allocator.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_comuna import work
from geo_comuna.api import problems
from geo_comuna.settings import Settings

#: paths whose requests are heavy (method, pattern); every other request is a cheap one
HEAVY = [
    (None, re.compile(r"/communes/[^/]+/analyses/[^/]+")),
    (None, re.compile(r"/communes/[^/]+/(report|hillshade\.png|states|package)")),
    (None, re.compile(r"/states/breakdown")),
    (None, re.compile(r"/maps/(national|communes/[^/]+(/[^/]+)?)")),
    (None, re.compile(r"/collections/[^/]+/(export|import)")),
    ("POST", re.compile(r"/communes/[^/]+/dems")),
]
_REPAIR = re.compile(rb"(^|&)repair=(true|1|yes|on)(&|$)", re.I)
#: buckets of clients not seen for this long are forgotten (s)
_IDLE = 600.0
_MAX_CLIENTS = 10_000


def heavy(method: str, path: str, query: bytes = b"") -> bool:
    """An analysis, map, report, file...; or a write asking for repairs (a child process
    each, up to its whole deadline)."""
    if method in ("POST", "PUT", "PATCH") and _REPAIR.search(query):
        return True
    return any(
        (want is None or want == method) and pattern.fullmatch(path) for want, pattern in HEAVY
    )


@dataclass
class Bucket:
    tokens: float
    at: float


class Buckets:
    """Token buckets of ``per_minute`` each, refilled continuously; 0 means no limit."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, Bucket] = {}

    def take(self, client: str, now: float) -> float:
        """0 when the client may go on, else the seconds until it may."""
        if not self.per_minute:
            return 0.0
        rate = self.per_minute / 60
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= _MAX_CLIENTS:
                self._forget(now)
            bucket = self._buckets[client] = Bucket(float(self.per_minute), now)
        bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def _forget(self, now: float) -> None:
        idle = [c for c, b in self._buckets.items() if now - b.at > _IDLE]
        for client in idle or list(self._buckets)[: _MAX_CLIENTS // 10]:
            del self._buckets[client]


class Fairness:
    """The ASGI middleware: rate limits first, then a heavy request's slot."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.wait_s = settings.compute_seconds
        self.slots = asyncio.Semaphore(settings.heavy_requests)
        self.running = 0  # heavy requests holding a slot
        #: every request of an address, whatever token it sends: random tokens would each
        #: get a fresh bucket of their own
        self.addresses = Buckets(settings.token_rate_per_minute)
        self.limits = {
            (False, False): Buckets(settings.rate_per_minute),
            (False, True): Buckets(settings.heavy_rate_per_minute),
            (True, False): Buckets(settings.token_rate_per_minute),
            (True, True): Buckets(settings.token_heavy_rate_per_minute),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client, with_token = _client(scope)
        is_heavy = heavy(scope["method"], scope["path"], scope.get("query_string", b""))
        now = time.monotonic()
        wait = self.addresses.take(_address(scope), now) if with_token else 0.0
        wait = wait or self.limits[with_token, False].take(client, now)
        if not wait and is_heavy:
            wait = self.limits[with_token, True].take(client, now)
        # found from outside: these two refusals were English whatever the client asked
        spanish = b"lang=es" in scope.get("query_string", b"").split(b"&")
        if wait:
            if spanish:
                kind = (
                    "peticiones pesadas (análisis, mapas, informes, archivos)"
                    if is_heavy
                    else "peticiones"
                )
                detail = f"demasiadas {kind} de este cliente; vaya más despacio"
            else:
                kind = "heavy requests (analyses, maps, reports, files)" if is_heavy else "requests"
                detail = f"too many {kind} from this client; slow down"
            await _refuse(send, 429, "too-many-requests", detail, wait)
            return
        if not is_heavy:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["heavy"] = True  # api/deps.py get_conn: its deadline
        held = False

        async def then_a_slot() -> Message:
            """The body's messages; its last one once a slot is free. Found from outside: a
            slot taken when the headers came was held by bodies sent a byte every 2 s, and 12
            such uploads, with no token, kept every report, export and analysis at 503."""
            nonlocal held
            message = await receive()
            if not held and body_ended(message):
                await self._slot()
                held = True
            return message

        try:
            if _has_body(scope):
                await self.app(scope, then_a_slot, send)
            else:
                await self._slot()
                held = True
                await self.app(scope, receive, send)
        except _Busy:
            detail = (
                f"el servidor está ocupado con otras peticiones pesadas (esperó {self.wait_s:g} "
                "s); inténtelo de nuevo en un momento"
                if spanish
                else f"the server is busy with other heavy requests (waited {self.wait_s:g} s); "
                "try again shortly"
            )
            await _refuse(send, 503, "busy", detail, 5)
        finally:
            if held:
                self.slots.release()
                self.running -= 1
                if not self.running:
                    await asyncio.to_thread(work.release_memory)

    async def _slot(self) -> None:
        """Wait for a heavy request's slot, at most ``wait_s``; _Busy when none came."""
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait_s)
        except TimeoutError:
            raise _Busy from None
        self.running += 1


class _Busy(Exception):
    """No heavy request's slot came free in time."""


def body_ended(message: Message) -> bool:
    """Is ``message`` a request body's last (its work may start: a slot, a deadline)?"""
    return message["type"] == "http.request" and not message.get("more_body")


def _has_body(scope: Scope) -> bool:
    """Does the request send a body (its slot is then taken once the body has come)? Only a
    write's: a GET's handler never reads one, and found from outside, a heavy GET sent with a
    byte of body got no slot at all (60 national maps ran at once)."""
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return False
    headers = dict(scope.get("headers", []))
    length = headers.get(b"content-length", b"0")
    return b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)


def _client(scope: Scope) -> tuple[str, bool]:
    """Who is asking: a digest of the bearer token, else the peer's address."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return "t:" + hashlib.sha256(token.strip()).hexdigest()[:32], True
    return "a:" + _address(scope), False


def _address(scope: Scope) -> str:
    peer = scope.get("client")
    return peer[0] if peer else "unknown"


async def _refuse(send: Send, status: int, code: str, detail: str, after: float) -> None:
    response = problems.problem(status, code, detail)
    response.headers["Retry-After"] = str(max(1, math.ceil(after)))
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> dict:
    return {"type": "http.disconnect"}
