"""OGC API - Features Part 1 Core as clients use it: paging limits, the parameters every
route takes, formats, HTTP methods, caching validators, compression and CORS."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
ITEMS = "/collections/parcels/items"


async def test_a_limit_above_the_maximum_gets_the_maximum(
    conn: AsyncConnection, settings: Settings
) -> None:
    """ogr2ogr -oo PAGE_SIZE=20000 on a server whose pages hold at most 50 items."""
    small = settings.model_copy(update={"max_limit": 50, "default_limit": 10})
    async with api_client(conn, small) as c:
        page = (await c.get(ITEMS, params={"limit": 20_000})).json()
        assert page["numberReturned"] == len(page["features"]) == 50
        assert page["numberMatched"] > 50
        nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
        assert "limit=50" in nxt and "offset=50" in nxt
        seen = len(page["features"])
        while nxt:
            page = (await c.get(nxt.replace("http://testserver", ""))).json()
            seen += page["numberReturned"]
            nxt = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
        assert seen == page["numberMatched"]
        huge = await c.get(ITEMS, params={"limit": 10**30})
        assert huge.status_code == 200 and huge.json()["numberReturned"] == 50


@pytest.mark.parametrize("limit", ["0", "-1", "1.5", "many"])
async def test_a_limit_below_one_or_not_a_number_is_400(
    client: httpx.AsyncClient, limit: str
) -> None:
    r = await client.get(ITEMS, params={"limit": limit})
    assert r.status_code == 400 and "limit" in r.json()["detail"]
