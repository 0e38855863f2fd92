"""The demo data (io/sample.py): loading it again replaces the sample communes and what the
registry says is theirs (each layer's commune_filter), and leaves everything else alone."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection, sql

from geo_comuna.features.filters import commune_sql
from geo_comuna.io.sample import DEM_COMMUNE, TERRITORIES, load_samples, loaded
from geo_comuna.layers import COMMUNES, LAYERS
from geo_comuna.settings import Settings
from tests.factories import feature

pytestmark = pytest.mark.anyio


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """Features per layer, and per layer those of the sample's DEM commune."""
    cur = await conn.execute(
        sql.SQL("SELECT id FROM {} WHERE code = %s").format(sql.Identifier(COMMUNES.table)),
        (DEM_COMMUNE,),
    )
    commune_id = (await cur.fetchone())[0]
    out = {}
    for layer in LAYERS.values():
        table = sql.Identifier(layer.table)
        cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        out[layer.name] = (await cur.fetchone())[0]
        mine = commune_sql(layer, sql.SQL("%(commune)s"))
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(table, mine),
            {"commune": commune_id},
        )
        out[f"{layer.name} of {DEM_COMMUNE}"] = (await cur.fetchone())[0]
    return out


async def test_loading_again_replaces_the_sample_and_keeps_the_rest(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    assert await loaded(conn)
    # a planner's own commune, outside the sample: it must survive the reload
    own = feature(COMMUNES, code="OTRA-COMUNA", lon=-66.0, lat=9.0)
    r = await client.post("/collections/communes/items", json=own)
    assert r.status_code == 201, r.text
    before = await counts(conn)

    loaded_counts = await load_samples(conn, settings)

    assert await counts(conn) == before
    for layer in TERRITORIES:
        assert loaded_counts[layer.name] > 0, layer.name
    for table in ("parties", "rights"):  # the land records are counted as they are loaded
        cur = await conn.execute(f"SELECT count(*) FROM {table} WHERE illustrative")  # noqa: S608
        assert loaded_counts[table] == (await cur.fetchone())[0] > 0, table
    cur = await conn.execute("SELECT count(*) FROM communes WHERE code = 'OTRA-COMUNA'")
    assert (await cur.fetchone())[0] == 1
