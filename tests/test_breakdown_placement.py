"""One placement rule: the national breakdown (GET /states/breakdown) and the land-recovery
analysis count a parcel in the same state, both through commune_state_placement().

Two hand-built states meet on the meridian -40° (open Atlantic, far from every real state):
West (the larger id, written first) and East. Coordinates are binary fractions, so the
parcel on the line is split exactly in two and its point on surface lies exactly on the line:
the rule's tie, which goes to the smaller id (East). The second parcel belongs to a commune
wholly inside West but reaches into East, where its point lies: the rule counts it with its
commune, in West.
"""

from __future__ import annotations

import httpx
import pytest
import shapely
from psycopg import AsyncConnection

pytestmark = pytest.mark.anyio
LINE = -40.0
WEST_ID, EAST_ID = 990_002, 990_001


async def add(conn: AsyncConnection, table: str, values: dict, geom: shapely.Geometry) -> int:
    cols = ", ".join(values)
    cur = await conn.execute(
        f"INSERT INTO {table} ({cols}, geom) "
        f"VALUES ({', '.join(['%s'] * len(values))}, ST_Multi(ST_GeomFromWKB(%s, 4326))) "
        "RETURNING id",
        (*values.values(), shapely.to_wkb(geom)),
    )
    return (await cur.fetchone())[0]


@pytest.fixture
async def two_states(conn: AsyncConnection) -> None:
    for sid, code, x0, x1 in (
        (WEST_ID, "ZZ-W", LINE - 0.25, LINE),
        (EAST_ID, "ZZ-E", LINE, LINE + 0.25),
    ):
        await add(
            conn,
            "states",
            {"id": sid, "code": code, "name": code, "kind": "state"},
            shapely.box(x0, 4.75, x1, 5.25),
        )


async def national_parcels(client: httpx.AsyncClient, code: str) -> dict[str | None, int]:
    national = (await client.get("/states/breakdown")).json()
    mine = next(c for c in national["communes"] if c["code"] == code)
    return {s["code"]: s["parcels"] for s in mine["states"] if s["parcels"]}


async def land_recovery_parcels(client: httpx.AsyncClient, code: str) -> dict[str | None, int]:
    got = (await client.get(f"/communes/{code}/analyses/land-recovery")).json()
    return {s["state"]: s["parcels"] for s in got["summary"]["by_state"] if s["parcels"]}


async def test_a_parcel_on_the_state_line(
    conn: AsyncConnection, client: httpx.AsyncClient, two_states: None
) -> None:
    half = 2**-10  # degrees: the parcel spans LINE - half .. LINE + half
    commune = await add(
        conn,
        "communes",
        {"code": "ZZ-LINE", "name": "On the line", "kind": "rural", "status": "active"},
        shapely.box(LINE - 2**-7, 5.0, LINE + 2**-7, 5.0 + 2**-6),
    )
    parcel = await add(
        conn,
        "parcels",
        {"commune_id": commune, "tenure": "occupied"},
        shapely.box(LINE - half, 5.0 + 2**-8, LINE + half, 5.0 + 2**-7),
    )
    cur = await conn.execute(
        "SELECT ST_X(ST_PointOnSurface(p.geom)), "
        "array_agg(DISTINCT sp.state_id ORDER BY sp.state_id) "
        "FROM parcels p JOIN state_parts sp ON ST_Intersects(sp.geom, ST_PointOnSurface(p.geom)) "
        "WHERE p.id = %s GROUP BY p.geom",
        (parcel,),
    )
    assert await cur.fetchone() == (LINE, [EAST_ID, WEST_ID])  # the tie, as built

    assert await national_parcels(client, "ZZ-LINE") == {"ZZ-E": 1}
    assert await land_recovery_parcels(client, "ZZ-LINE") == {"ZZ-E": 1}
    # its area is split in equal halves between the states
    got = (await client.get("/communes/ZZ-LINE/analyses/land-recovery")).json()
    areas = {s["state"]: s["area_ha"] for s in got["summary"]["by_state"]}
    assert areas["ZZ-W"] == pytest.approx(areas["ZZ-E"], rel=1e-9) and areas["ZZ-W"] > 0


async def test_a_parcel_reaching_out_of_a_one_state_commune(
    conn: AsyncConnection, client: httpx.AsyncClient, two_states: None
) -> None:
    commune = await add(
        conn,
        "communes",
        {"code": "ZZ-WEST", "name": "All West", "kind": "rural", "status": "active"},
        shapely.box(LINE - 2**-7, 5.0, LINE - 2**-8, 5.0 + 2**-6),
    )
    parcel = shapely.box(LINE - 2**-8 - 2**-10, 5.0 + 2**-8, LINE + 2**-7, 5.0 + 2**-7)
    await add(conn, "parcels", {"commune_id": commune, "tenure": "occupied"}, parcel)
    assert parcel.point_on_surface().x > LINE  # its point lies in East

    assert await national_parcels(client, "ZZ-WEST") == {"ZZ-W": 1}
    assert await land_recovery_parcels(client, "ZZ-WEST") == {"ZZ-W": 1}
