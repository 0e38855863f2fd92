"""Editing from QGIS (OGC API - Features Part 4): OPTIONS per token, the feature schema, and
QGIS' own sequence of requests replayed; writes that name nothing or another id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
ITEMS = "/collections/parcels/items"
Reader = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def as_role(conn: AsyncConnection, settings: Settings, admin_token: str) -> Reader:
    """A client for: anonymous, viewer, editor (both of EL-MAIZAL), admin."""
    tokens = {"anonymous": None, "admin": admin_token}
    for role in ("viewer", "editor"):
        _, tokens[role] = await accounts.add_user(conn, f"t-{role}", role, ["EL-MAIZAL"])

    @asynccontextmanager
    async def client(who: str) -> AsyncIterator[httpx.AsyncClient]:
        async with api_client(conn, settings, tokens[who]) as c:
            yield c

    return client


async def first_id(conn: AsyncConnection, table: str, where: str) -> int:
    cur = await conn.execute(f"SELECT min(t.id) FROM {table} t WHERE {where}")  # noqa: S608
    return (await cur.fetchone())[0]


def row(etag: str) -> str:
    """The row version of a feature's ETag (api/etags.py)."""
    return ".".join(etag.strip('W/"').split(".")[:2])


def allow(r: httpx.Response) -> set[str]:
    assert r.status_code == 204, r.text
    return {m.strip() for m in r.headers["allow"].split(",")}


# ---------------------------------------------------------------- the feature schema


async def test_the_schema_types_every_property(as_role: Reader) -> None:
    async with as_role("anonymous") as c:
        collection = (await c.get("/collections/parcels")).json()
        link = next(
            x
            for x in collection["links"]
            if x["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/schema"
        )
        assert link["type"] == "application/schema+json"
        conformance = (await c.get("/conformance")).json()["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas" in conformance
        r = await c.get(urlsplit(link["href"]).path, headers={"Accept": "application/schema+json"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
        public = r.json()
        dwellings = (await c.get("/collections/dwellings/schema", params={"lang": "en"})).json()
    props = public["properties"]
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert (
        props["geometry"]["format"] == "geometry-multipolygon" and "type" not in props["geometry"]
    )
    assert props["recovered_on"]["type"] == "string" and props["recovered_on"]["format"] == "date"
    assert props["recovered_on"]["x-ogc-role"] == "primary-instant"
    assert props["tenure"]["enum"] == list(LAYERS["parcels"].attribute("tenure").domain.values)
    assert props["commune"]["type"] == "string"
    assert props["area_ha"] == {**props["area_ha"], "type": "number", "readOnly": True}
    assert props["area_ha"]["x-ogc-unit"] == "ha"
    assert "notes" not in props  # members-only: not for anonymous readers
    seqs = [v["x-ogc-propertySeq"] for k, v in props.items() if k != "geometry"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert set(public["required"]) == {"tenure"}
    assert dwellings["properties"]["geometry"]["format"] == "geometry-point"
    assert dwellings["properties"]["water"]["x-labels"]["piped"] == "Piped"
    assert "residents" not in dwellings["properties"]
    async with as_role("viewer") as c:
        member = (await c.get("/collections/parcels/schema")).json()["properties"]
        homes = (await c.get("/collections/dwellings/schema")).json()["properties"]
    assert member["notes"]["x-members-only"] is True and member["notes"]["type"] == "string"
    assert homes["residents"]["type"] == "integer" and homes["residents"]["minimum"] == 0
