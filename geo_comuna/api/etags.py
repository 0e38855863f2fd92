"""ETags of feature pages and features, and ``If-None-Match`` -> ``304 Not Modified``.

A page is a function of the request (layer, every query parameter, the address links start
from), of the versions of the tables its features are read from (the layer, the tables its
references name, the tables its derived properties read; every write bumps its table's
version, migration 0001) and, where the registry's read rules keep something from some
readers, of who reads (``Access.key``: readers with one key read the same). Its ETag is a
digest of all that, computed before the page: a client that has the page gets a 304 without
the page being built. The versions are read before the page, so a page is never older than
its ETag says (a write in between makes it newer, and its ETag then never matches again).

A feature's ETag is its row version, ``"id.xmin"``, which PUT, PATCH and DELETE compare with
``If-Match``; where the feature's content also depends on the reader or on other tables
(a parcel's commune is shown by its code), a digest of those follows: ``"id.xmin.digest"``.
``If-Match`` compares the row version only (preconditions.py). The database
computes a feature's ETag and compares it with If-None-Match in the statement that reads the
feature, and builds the Feature only when they differ: a 304 costs one index lookup.

Page ETags are weak (``W/``): a page compressed for transfer (api/compression.py) is the
same page. Comparison for If-None-Match is weak too (RFC 9110).
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from psycopg import AsyncConnection

from geo_comuna import __version__
from geo_comuna.accounts import Access
from geo_comuna.api.negotiation import page_lang, wants_html
from geo_comuna.db.versions import Versions, versions
from geo_comuna.layers import Layer


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


async def page(
    conn: AsyncConnection, layer: Layer, request: Request, base: str, access: Access
) -> str:
    """The ETag of a page of features, before it is built (``base``: where its links start)."""
    return page_etag(layer, request, base, access, await versions(conn, layer.feature_tables))


def page_etag(layer: Layer, request: Request, base: str, access: Access, found: Versions) -> str:
    """The ETag of a page of features from the versions of the tables its features are built
    from (Layer.feature_tables), ``found`` before
    the page or in the page's own statement (features/query.py page)."""
    reader = access.key if layer.restricted else None
    query = sorted(request.query_params.multi_items())
    shown = shown_as(request)
    return f'W/"{_digest(__version__, layer.name, base, query, found, reader, shown)}"'


def shown_as(request: Request) -> str:
    """What else a response's bytes depend on: a page for a person (asked by Accept as much
    as by f=html) is another representation, in its language; "" for the JSON."""
    return f"html:{page_lang(request)}" if wants_html(request) else ""


def feature_page(etag: str, request: Request, access: Access) -> str:
    """The ETag of a feature's page for a person: its Feature's, the page's language and who
    reads it (a parcel's history shows its notes to some readers only). Found from outside:
    pages had none, and every visit on a slow line took the whole page again."""
    version = etag.removeprefix("W/").strip('"')
    return f'W/"{version}.{_digest(__version__, shown_as(request), access.key)[:12]}"'


def feature_inputs(layer: Layer, access: Access) -> tuple[str | None, tuple[str, ...]]:
    """What a feature's ETag digests besides its row version: a salt (this code's version and
    who reads, where that matters) and the tables the feature is also built from. (None, ())
    when the row version alone tells a feature's versions apart. The digest itself is
    computed in the database, in the statement that reads the feature (features/query.py
    item), so that a current copy is known before any of it is built."""
    tables = layer.other_reads
    if not tables and not layer.restricted:
        return None, ()
    reader = access.key if layer.restricted else None
    return f"{__version__}|{reader!r}", tuple(sorted(tables))


def feature_digest(salt: str, found: tuple[tuple[str, int], ...]) -> str:
    """The digest of item's SQL (query.ITEM_DIGEST_SQL) for ``found`` (table, version) pairs,
    in Python: what a test checks the database's against."""
    versions = ",".join(f"{name}={version}" for name, version in found)
    return hashlib.sha256(f"{salt}|{versions}".encode()).hexdigest()[:20]


def held(request: Request) -> tuple[str, ...]:
    """The entity tags of If-None-Match, weak or not (compared weakly); ``("*",)`` when it
    names any version."""
    header = request.headers.get("if-none-match")
    if header is None:
        return ()
    tags = tuple(tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip())
    return ("*",) if "*" in tags else tags


def fresh(request: Request, etag: str) -> bool:
    """Does the request's If-None-Match name ``etag`` (weak comparison), or ``*``?"""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    ours = etag.removeprefix("W/")
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == ours:
            return True
    return False


def not_modified(etag: str, request: Request | None = None) -> Response:
    """304 with the ETag (and, for a request that may be a person's, Vary as its page)."""
    headers = {"ETag": etag}
    if request is not None and wants_html(request):
        headers["Vary"] = "Accept, Accept-Language"
    return Response(status_code=304, headers=headers)
