"""Security headers: nosniff and a Referrer-Policy on every response; on HTML pages a
Content-Security-Policy that frames them in our own pages only, except ?embed=true maps.
tests/maps/test_maps_browser.py checks the same policies in Chromium."""

from __future__ import annotations

import re

import httpx
import pydantic
import pytest
from psycopg import AsyncConnection

from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio


def directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


async def test_every_response_says_nosniff(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/collections"),
        await client.get("/collections/nothing"),  # a problem+json
        await client.get("/static/geo_comuna/geo_comuna_maps.js"),
        await client.post("/collections/parcels/items", content=b"x" * (21 * 1024 * 1024)),
    ]
    assert [r.status_code for r in answers] == [200, 404, 200, 413]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.request.url
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "content-security-policy" not in r.headers  # not a page


async def test_pages_are_framed_by_our_own_pages_only(client: httpx.AsyncClient) -> None:
    for url in (
        "/maps/communes/EL-MAIZAL",
        "/maps/national",
        "/maps/communes/5-DE-MARZO/stair-access",
        "/communes/EL-MAIZAL/report",
    ):
        r = await client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), url
        policy = directives(r)
        assert policy["frame-ancestors"] == "'self'", url
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        # what the pages load: our own /static/ and /tiles/, inline map code, nothing else
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self' 'unsafe-inline'"
        assert policy["connect-src"] == "'self'"
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'self'"
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_embed_maps_may_be_framed_by_any_site(client: httpx.AsyncClient) -> None:
    for url in ("/maps/communes/EL-MAIZAL", "/maps/national", "/maps/communes/EL-MAIZAL/terrain"):
        r = await client.get(url, params={"embed": "true"})
        assert r.status_code == 200, url
        # not even "*", which leaves out a report opened from a disk (file://)
        assert "frame-ancestors" not in directives(r), url
        assert "x-frame-options" not in r.headers  # it cannot say "any site"
        assert directives(r)["script-src"] == "'self' 'unsafe-inline'"


async def test_embed_origins_and_basemap_follow_the_settings(
    conn: AsyncConnection, settings: Settings
) -> None:
    chosen = settings.model_copy(
        update={
            "embed_origins": ["https://comuna.example", "https://*.gob.ve"],
            "tile_url": "https://{s}.tiles.example:8443/{z}/{x}/{y}.png",
        }
    )
    async with api_client(conn, chosen) as c:
        embedded = await c.get("/maps/communes/EL-MAIZAL", params={"embed": "true"})
        full = await c.get("/maps/communes/EL-MAIZAL")
    policy = directives(embedded)
    # the report frames the maps too (found from outside: its maps were blocked frames)
    assert policy["frame-ancestors"] == "'self' https://comuna.example https://*.gob.ve"
    assert policy["img-src"] == "'self' data: blob: https://*.tiles.example:8443"
    assert directives(full)["img-src"] == policy["img-src"]
    assert directives(full)["frame-ancestors"] == "'self'"


@pytest.mark.parametrize(
    "origin", ["https://comuna.example; script-src *", "comuna.example", "javascript:x", ""]
)
def test_a_bad_embed_origin_is_refused_at_start(origin: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="embed_origins"):
        Settings(embed_origins=[origin])


async def test_api_docs_load_their_libraries_from_us(client: httpx.AsyncClient) -> None:
    """/docs and /redoc link Swagger UI and ReDoc under our own /static/ (package data) and
    their CSP is every other page's: no CDN, no fonts from elsewhere."""
    page_policy = directives(await client.get("/maps/national"))
    for url in ("/docs", "/redoc"):
        r = await client.get(url)
        assert r.status_code == 200
        assert directives(r) == page_policy
        assert "://" not in r.headers["content-security-policy"]
        linked = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        # the libraries from /static/; the one other link is the way back to the site
        assert [link for link in linked if not link.startswith("/static/")] == ["/?lang=es"]
        for link in linked:
            got = await client.get(link)
            assert got.status_code == 200 and got.content, link
