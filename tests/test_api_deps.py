"""The shared dependencies of api/deps.py: every route naming a commune looks it up the same
way, once (an id or a registry code; a 404 naming the value when there is none), and the
app's tile cache is the one create_app made, with its bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api.app import create_app
from geo_comuna.api.deps import get_conn, unless_gone
from geo_comuna.api.openapi import document
from geo_comuna.errors import InvalidInput
from geo_comuna.features.tiles import TILE_CACHE_BYTES
from geo_comuna.settings import Settings

pytestmark = pytest.mark.anyio
MISSING = "NO-SUCH-COMMUNE"


def commune_paths(settings: Settings) -> list[str]:
    """Every documented GET route whose path names a commune, filled in with an unknown one
    (and the first analysis where a path names one too)."""
    analysis = next(iter(all_analyses()))
    paths = []
    for path, item in document(create_app(settings), settings)["paths"].items():
        if "get" in item and "{commune}" in path and path != "/communes/{commune}/analyses":
            paths.append(path.replace("{commune}", MISSING).replace("{analysis}", analysis))
    return paths


async def test_every_route_naming_a_commune_answers_404_naming_it(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    paths = commune_paths(settings)
    assert len(paths) >= 8, paths  # states, analyses, DEMs, hillshade, maps, snippets, report
    for path in paths:
        r = await client.get(path)
        assert r.status_code == 404, (path, r.text[:200])
        assert f"no commune with code '{MISSING}'" in r.json()["detail"], path
    for path in ("/tiles/parcels/13/0/0.pbf", "/collections/parcels/export"):
        r = await client.get(path, params={"commune": MISSING})
        assert r.status_code == 404 and MISSING in r.json()["detail"], (path, r.text[:200])


async def test_a_commune_is_the_same_by_id_and_by_code(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    cur = await conn.execute("SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    maizal = (await cur.fetchone())[0]
    for path in ("/communes/{}/states", "/maps/communes/{}/embed-snippet"):
        by_code = await client.get(path.format("EL-MAIZAL"))
        by_id = await client.get(path.format(maizal))
        assert by_code.status_code == 200, by_code.text[:200]
        assert by_code.json() == by_id.json()


async def test_a_code_typed_in_another_case_names_the_commune_it_alone_matches(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """A person types /communes/el-maizal/sync: it was a 404. A code in another case names
    the commune whose code it matches, and none when two codes differ only in case."""
    registry = (await client.get("/communes/EL-MAIZAL/states")).json()
    typed = await client.get("/communes/el-maizal/states")
    assert typed.status_code == 200 and typed.json() == registry
    assert (await client.get("/communes/El-Maizal/sync")).status_code == 200
    await conn.execute(
        "INSERT INTO communes (code, name, kind, status, geom) SELECT 'el-maizal', "
        "name || ' (otra)', kind, status, geom FROM communes WHERE code = 'EL-MAIZAL'"
    )
    assert (await client.get("/communes/El-Maizal/states")).status_code == 404  # which one?
    assert (await client.get("/communes/el-maizal/states")).status_code == 200  # exactly it


async def test_the_tile_cache_is_made_with_the_app_and_bounded(
    conn: AsyncConnection, settings: Settings
) -> None:
    """create_app makes the cache (not the first tile request), and the tile route fills
    that very one."""
    app = create_app(settings)
    cache = app.state.tiles
    assert cache.max_bytes == TILE_CACHE_BYTES and cache.size == 0

    async def same_conn() -> AsyncIterator[AsyncConnection]:
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        tile = await c.get("/tiles/parcels/0/0/0.pbf")
    assert tile.status_code == 200 and tile.content
    assert app.state.tiles is cache and cache.size == len(tile.content)
    assert create_app(settings).state.tiles.size == 0  # one per app


async def test_an_upload_whose_client_left_is_cancelled_and_says_so() -> None:
    """A DEM whose uploader had left was stored all the same (found from outside): imports
    and DEMs now run under unless_gone, which cancels the work once the client has gone."""

    class Left:  # a request whose client went away: what Starlette's tells
        async def is_disconnected(self) -> bool:
            return True

    cancelled = asyncio.Event()

    async def storing() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(InvalidInput) as refused:
        await unless_gone(Left(), storing())  # type: ignore[arg-type]
    assert cancelled.is_set()
    assert "the client went away before its upload was stored" in str(refused.value)
    assert "no se escribió nada" in refused.value.said("es")
