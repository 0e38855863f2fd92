"""Commune views: the breakdown of a commune across the states it touches, and the national
view of every commune at once.

Both answers are kept encoded per version of the layers they read (db/versions.py), per
reader (the residents some readers may not see) and per encoding: a repeat is the stored
bytes, plain or gzipped, never the 1 MB national body built and compressed again (that took
40-90 ms a request under load; bench/README.md). Their ETag is a digest of the same key, read
before anything is built, so a client holding the answer gets a 304 for one small query.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection

from geo_comuna import __version__, work
from geo_comuna.accounts import Access
from geo_comuna.api import etags
from geo_comuna.api.compression import LEVEL, MINIMUM_SIZE
from geo_comuna.api.deps import Commune, Conn, ReaderAccess, SettingsDep
from geo_comuna.api.hosts import base_url
from geo_comuna.api.pages import PageLang
from geo_comuna.db.versions import Versions, versions
from geo_comuna.features import breakdown
from geo_comuna.layers import get_layer

router = APIRouter(tags=["communes"])


@dataclass(frozen=True)
class Encoded:
    """One answer as it goes out: its ETag, its JSON, and the same gzipped (None when too
    small to gain from it)."""

    etag: str
    plain: bytes
    gzipped: bytes | None

    def response(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Vary": "Accept-Encoding"}
        if self.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"  # Compression then leaves it as it is
            return Response(self.gzipped, media_type="application/json", headers=headers)
        return Response(self.plain, media_type="application/json", headers=headers)


def _encode(etag: str, answer: dict[str, Any]) -> Encoded:
    """CPU work (~30 ms for the national 1 MB): run off the event loop."""
    plain = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
    small = len(plain) < MINIMUM_SIZE
    return Encoded(etag, plain, None if small else gzip.compress(plain, LEVEL, mtime=0))


async def _answer(
    request: Request, conn: AsyncConnection, ids: list[int] | None, access: Access
) -> Response:
    """The breakdown of ``ids`` (None: every commune, with the per-state view), a 304 when
    the client already has it."""
    found: Versions = await versions(conn, breakdown.READS)
    reader = access.key if get_layer("dwellings").members_only("residents") else None
    key = ("breakdown-body", None if ids is None else tuple(ids), reader)
    digest = hashlib.sha256(repr((__version__, key, found)).encode()).hexdigest()[:20]
    etag = f'W/"{digest}"'
    if etags.fresh(request, etag):
        return etags.not_modified(etag)  # nothing built, nothing looked up

    async def compute() -> Encoded:
        rows = await breakdown.communes(conn, ids, access)
        answer = rows[0] if ids else {"communes": rows, "states": breakdown.by_state(rows)}
        return await work.cpu(_encode, etag, answer)

    cache = work.cache()
    if cache is None:
        return (await compute()).response(request)
    encoded = await cache.get_or_compute(conn, key, breakdown.READS, compute, found=found)
    return encoded.response(request)


@router.get(
    "/communes/{commune}",
    summary="A commune",
    status_code=307,
    responses={307: {"description": "the commune's feature: /collections/communes/items/{id}"}},
)
async def commune(
    request: Request,
    settings: SettingsDep,
    commune: Commune,
    f: Annotated[
        str | None,
        Query(
            pattern="^(json|html)$",
            description="the format to be sent on to: json (its Feature) or html (its page)",
        ),
    ] = None,
    lang: PageLang = None,
) -> RedirectResponse:
    """The commune by its registry code or id (/communes/EL-MAIZAL): a browser is sent on to
    the commune's page, with its map, report, field package and states; a program to its
    GeoJSON Feature."""
    target = f"{base_url(request, settings)}/collections/communes/items/{commune}"
    kept = {k: v for k, v in (("f", f), ("lang", lang)) if v is not None}
    return RedirectResponse(target + (f"?{urlencode(kept)}" if kept else ""), status_code=307)


@router.get("/communes/{commune}/states", summary="A commune across state lines")
async def commune_states(
    request: Request, conn: Conn, commune: Commune, access: ReaderAccess
) -> Response:
    """For every state the commune touches: area (ha, geodesic), share of the commune (%),
    and the parcels (by a point on their surface), dwellings and residents inside it
    (for a reader outside the commune, residents are null where a part has too few homes
    to show them: docs/security.md, "What is public")."""
    return await _answer(request, conn, [commune], access)


@router.get("/states/breakdown", summary="Every commune across state lines")
async def national_breakdown(request: Request, conn: Conn, access: ReaderAccess) -> Response:
    """The same breakdown for all communes, and per state the communes it hosts."""
    return await _answer(request, conn, None, access)
