"""Editors are held to places, not only to the commune column (migration 0014): each probe of
an editor reaching into another commune, replayed through the API and in plain SQL, and the
commune lookups that could be read two ways."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import psycopg
import pyarrow as pa
import pytest
import shapely
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo

from geo_comuna import accounts
from geo_comuna.db import migrate
from geo_comuna.db.refusals import said_by_database
from geo_comuna.errors import ClusterError, Conflict, Forbidden, Said
from geo_comuna.io.importer import write_frame
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.settings import Settings
from tests.conftest import _drop, _recreate, api_client
from tests.factories import MAIZAL, feature
from tests.test_cli_language import ENGLISH_WORDS

pytestmark = pytest.mark.anyio
PARCELS = LAYERS["parcels"]
CARACAS = (-66.9155, 10.4655)  # inside 5 de Marzo
#: every layer whose features belong to one commune
PLACED = [layer for layer in LAYERS.values() if layer.commune_ref is not None]


async def scalar(conn: AsyncConnection, query: str, params: tuple = ()) -> object:
    return (await (await conn.execute(query, params)).fetchone())[0]


async def commune_id(conn: AsyncConnection, code: str) -> int:
    return await scalar(conn, "SELECT id FROM communes WHERE code = %s", (code,))


async def a_parcel(conn: AsyncConnection, code: str) -> int:
    return await scalar(
        conn,
        "SELECT min(p.id) FROM parcels p JOIN communes c ON c.id = p.commune_id WHERE c.code = %s",
        (code,),
    )


async def written(conn: AsyncConnection) -> tuple[int, ...]:
    """Rows of every placed layer, exchanges and the audit trail: a refused write adds none."""
    tables = [layer.table for layer in PLACED] + ["exchanges", "audit_log"]
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)) for t in tables
    )
    return tuple(r[0] for r in await (await conn.execute(query)).fetchall())


@pytest.fixture
async def editor(conn: AsyncConnection, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await accounts.add_user(conn, "mesa-maizal", "editor", ["EL-MAIZAL"])
    async with api_client(conn, settings, token) as c:
        yield c


def refused(r: httpx.Response, *reason: str) -> None:
    """A 403 problem whose detail gives each part of ``reason``."""
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for part in reason:
        assert part in r.json()["detail"], r.text


@pytest.mark.parametrize("layer", PLACED, ids=[layer.name for layer in PLACED])
async def test_a_feature_claimed_for_its_commune_but_lying_in_another_is_refused(
    conn: AsyncConnection, editor: httpx.AsyncClient, layer: Layer
) -> None:
    before = await written(conn)
    body = feature(layer, "EL-MAIZAL", *CARACAS)
    r = await editor.post(f"/collections/{layer.name}/items", json=body)
    refused(r, "outside the territory of commune EL-MAIZAL", "inside commune 5-DE-MARZO")
    assert r.json()["feature"] == 1 and r.json()["layer"] == layer.name
    assert await written(conn) == before
    # the same feature inside its territory is welcome
    r = await editor.post(
        f"/collections/{layer.name}/items", json=feature(layer, "EL-MAIZAL", *MAIZAL)
    )
    assert r.status_code == 201, r.text


async def test_an_editor_may_not_move_its_feature_out_of_its_territory(
    conn: AsyncConnection, editor: httpx.AsyncClient
) -> None:
    fid = (
        await editor.post("/collections/parcels/items", json=feature(PARCELS, "EL-MAIZAL", *MAIZAL))
    ).json()["ids"][0]
    url = f"/collections/parcels/items/{fid}"
    stored = (await editor.get(url)).json()["geometry"]
    into_caracas = {"geometry": feature(PARCELS, lon=CARACAS[0], lat=CARACAS[1])["geometry"]}
    refused(await editor.patch(url, json=into_caracas), "inside commune 5-DE-MARZO")
    # 0.1 degree east: in no commune, and so said with how far
    away = {"geometry": feature(PARCELS, lon=MAIZAL[0] + 0.1, lat=MAIZAL[1])["geometry"]}
    r = await editor.patch(url, json=away)
    refused(r, "outside the territory of commune EL-MAIZAL: it lies", " km from it")
    assert r.json()["feature"] == fid
    whole = feature(PARCELS, "EL-MAIZAL", lon=CARACAS[0], lat=CARACAS[1])
    refused(await editor.put(url, json=whole), "outside the territory")
    assert (await editor.get(url)).json()["geometry"] == stored
    # a move inside its territory is its own business
    nearby = {"geometry": feature(PARCELS, lon=MAIZAL[0] + 0.005, lat=MAIZAL[1])["geometry"]}
    assert (await editor.patch(url, json=nearby)).status_code == 200


async def test_an_editor_may_change_what_a_feature_an_admin_placed_outside_says(
    conn: AsyncConnection, editor: httpx.AsyncClient, settings: Settings
) -> None:
    """Found from outside: a parcel the planner (an admin) imported 0.1 degree beyond El
    Maizal's boundary could not be changed by the commune's editors at all, not its land use
    alone, nor by an upsert of the commune's own export: each was refused as outside the
    territory. The place rule is about where an editor puts a feature; moving it stays
    refused (migration 0033)."""
    body = feature(PARCELS, "EL-MAIZAL", lon=MAIZAL[0] + 0.1, lat=MAIZAL[1])
    body["properties"] |= {"code": "EM-AFUERA", "land_use": "crops"}
    _, admin = await accounts.add_user(conn, "planner", "admin", [])
    async with api_client(conn, settings, admin) as c:
        r = await c.post("/collections/parcels/items", json=body)
    assert r.status_code == 201, r.text
    url = f"/collections/parcels/items/{r.json()['ids'][0]}"
    r = await editor.patch(url, json={"properties": {"land_use": "pasture"}})
    assert r.status_code == 200, r.text
    stored = (await editor.get(url)).json()
    stored["properties"]["tenure"] = "disputed"
    assert (await editor.put(url, json=stored)).status_code == 200
    # an upsert of the feature as exported, its notes changed
    stored["properties"]["notes"] = "lindero por revisar"
    upload = json.dumps({"type": "FeatureCollection", "features": [stored]}).encode()
    r = await editor.post(
        "/collections/parcels/import",
        params={"mode": "upsert"},
        files={"file": ("parcels.geojson", upload, "application/geo+json")},
    )
    assert r.status_code in (200, 201) and r.json()["updated"] == 1, r.text
    now = (await editor.get(url)).json()["properties"]
    assert (now["land_use"], now["tenure"], now["notes"]) == (
        "pasture",
        "disputed",
        "lindero por revisar",
    )
    # moved, even further out or into another commune, it is the editor's placing: refused
    farther = {"geometry": feature(PARCELS, lon=MAIZAL[0] + 0.11, lat=MAIZAL[1])["geometry"]}
    refused(await editor.patch(url, json=farther), "outside the territory of commune EL-MAIZAL")


async def boundary_parcel(conn: AsyncConnection, outward_m: float) -> dict:
    """A parcel of El Maizal drawn along its boundary (the part of the commune within 60 m of
    a boundary vertex), moved ``outward_m`` metres east, out of the commune, as GeoJSON."""
    text = await scalar(
        conn,
        """SELECT ST_AsGeoJSON(ST_Translate(part, %s / (111320 * cos(radians(ST_Y(v)))), 0), 6)
           FROM communes c,
                LATERAL (SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(c.geom, 1)), 1) AS v) p,
                LATERAL (SELECT ST_Intersection(c.geom,
                                                ST_Buffer(p.v::geography, 60)::geometry) AS part) q
           WHERE c.code = 'EL-MAIZAL'""",
        (outward_m,),
    )
    return {
        "type": "Feature",
        "geometry": json.loads(text),
        "properties": {"tenure": "occupied", "commune": "EL-MAIZAL"},
    }


async def test_a_parcel_on_its_communes_boundary_is_accepted(
    conn: AsyncConnection, editor: httpx.AsyncClient
) -> None:
    """The tolerance: a parcel sharing the commune's boundary, its coordinates rounded to 6
    decimals, or even 2 m out, is El Maizal's; 50 m out it reaches into what is not."""
    for outward_m in (0, 2):
        body = await boundary_parcel(conn, outward_m)
        body["properties"]["code"] = f"EM-BORDE-{outward_m}"  # two parcels, two codes
        r = await editor.post("/collections/parcels/items", json=body)
        assert r.status_code == 201, (outward_m, r.text)
    r = await editor.post("/collections/parcels/items", json=await boundary_parcel(conn, 50))
    refused(r, "outside the territory of commune EL-MAIZAL: it reaches beyond its boundary", "5 m")


async def test_an_editor_changes_its_communes_figures_not_what_it_is(
    conn: AsyncConnection, editor: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    maizal = await commune_id(conn, "EL-MAIZAL")
    url = f"/collections/communes/items/{maizal}"
    before = (await editor.get(url)).json()
    r = await editor.patch(url, json={"properties": {"population": 4321, "families": 1100}})
    assert r.status_code == 200, r.text
    after = (await editor.get(url)).json()["properties"]
    assert (after["population"], after["families"]) == (4321, 1100)

    refused(
        await editor.patch(url, json={"properties": {"code": "1"}}),
        "only admins change a commune's code",
    )
    refused(await editor.patch(url, json={"properties": {"code": "MAIZAL-NUEVO"}}), "code")
    refused(await editor.patch(url, json={"properties": {"status": "registered"}}), "status")
    # the probe's 9.7 million ha over Caracas
    huge = shapely.box(-69.2, 9.6, -66.5, 10.6)
    r = await editor.patch(url, json={"geometry": shapely.geometry.mapping(huge)})
    refused(r, "only admins change a commune's boundary")
    assert r.json()["feature"] == maizal
    refused(await editor.delete(url), "only admins delete communes")
    new = feature(LAYERS["communes"], code="OTRA-COMUNA", lon=MAIZAL[0], lat=MAIZAL[1])
    refused(await editor.post("/collections/communes/items", json=new), "only admins add communes")
    other = await commune_id(conn, "5-DE-MARZO")
    r = await editor.patch(
        f"/collections/communes/items/{other}", json={"properties": {"population": 1}}
    )
    refused(r, "outside the communes you may edit")

    now = (await editor.get(url)).json()
    for kept in ("code", "name", "status", "area_ha"):
        assert now["properties"][kept] == before["properties"][kept], kept
    assert now["geometry"] == before["geometry"]
    # an admin may rename it, though never to an id
    assert (await client.patch(url, json={"properties": {"code": "MAIZAL-2"}})).status_code == 200
    r = await client.patch(url, json={"properties": {"code": "1"}})
    assert r.status_code == 422 and "communes_code_not_an_id" in r.json()["detail"], r.text


async def test_commune_lookups_read_ids_and_codes_apart(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """Digits are an id, anything else a code, and no code is digits: ?commune=1 and
    /communes/1/states are the commune whose id is 1, whatever anyone renames."""
    first = await scalar(conn, "SELECT code FROM communes WHERE id = 1")
    maizal = await commune_id(conn, "EL-MAIZAL")
    for code in ("1", "007", "12"):
        r = await client.patch(
            f"/collections/communes/items/{maizal}", json={"properties": {"code": code}}
        )
        assert r.status_code == 422, (code, r.text)
    with pytest.raises(psycopg.errors.CheckViolation):
        async with conn.transaction():
            await conn.execute("UPDATE communes SET code = '1' WHERE id = %s", (maizal,))

    states = (await client.get("/communes/1/states")).json()
    assert (states["id"], states["code"]) == (1, first)
    assert (await client.get("/communes/EL-MAIZAL/states")).json()["id"] == maizal
    page = (await client.get("/collections/parcels/items", params={"commune": "1"})).json()
    assert page["numberMatched"] > 0
    assert {f["properties"]["commune"] for f in page["features"]} == {first}
    # digits that are not ASCII are no id, and no code either: 404, never a 500
    for value, says in (("١", "code"), ("²", "code"), ("99999999999", "id")):
        r = await client.get(f"/communes/{value}/states")
        assert r.status_code == 404, (value, r.text)
        assert f"no commune with {says} '{value}'" in r.json()["detail"]


async def test_an_exchange_is_recorded_by_the_commune_it_comes_from(
    conn: AsyncConnection, editor: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    exchanges = LAYERS["exchanges"]
    before = await written(conn)
    into_mine = feature(exchanges, from_commune="5-DE-MARZO", to_commune="EL-MAIZAL")
    into_mine["geometry"] = None  # drawn between the two communes
    r = await editor.post("/collections/exchanges/items", json=into_mine)
    refused(r, "recorded by the commune it comes from", "5-DE-MARZO is not one of yours")
    assert await written(conn) == before

    out_of_mine = feature(exchanges, from_commune="EL-MAIZAL", to_commune="5-DE-MARZO")
    out_of_mine["geometry"] = None
    r = await editor.post("/collections/exchanges/items", json=out_of_mine)
    assert r.status_code == 201, r.text
    # a line drawn by hand must join the two communes
    out_of_mine["geometry"] = {"type": "LineString", "coordinates": [list(CARACAS), list(MAIZAL)]}
    refused(
        await editor.post("/collections/exchanges/items", json=out_of_mine),
        "must start inside commune EL-MAIZAL",
    )

    # one recorded by 5 de Marzo (an admin wrote it) is not El Maizal's to change
    into_mine["geometry"] = None
    theirs = (await client.post("/collections/exchanges/items", json=into_mine)).json()["ids"][0]
    url = f"/collections/exchanges/items/{theirs}"
    refused(
        await editor.patch(url, json={"properties": {"volume_per_month": 1}}),
        "outside the communes",
    )
    refused(await editor.delete(url), "outside the communes")


async def test_a_production_unit_links_only_to_a_parcel_of_its_editors_communes(
    conn: AsyncConnection, editor: httpx.AsyncClient
) -> None:
    units = LAYERS["production_units"]
    theirs, mine = await a_parcel(conn, "5-DE-MARZO"), await a_parcel(conn, "EL-MAIZAL")
    before = await written(conn)
    body = feature(units, "EL-MAIZAL", *MAIZAL, parcel=theirs)
    r = await editor.post("/collections/production_units/items", json=body)
    refused(r, f"parcel {theirs} belongs to commune 5-DE-MARZO")
    assert await written(conn) == before

    body["properties"]["parcel"] = mine
    r = await editor.post("/collections/production_units/items", json=body)
    assert r.status_code == 201, r.text
    url = f"/collections/production_units/items/{r.json()['ids'][0]}"
    refused(await editor.patch(url, json={"properties": {"parcel": theirs}}), "5-DE-MARZO")
    assert (await editor.get(url)).json()["properties"]["parcel"] == mine


async def test_the_places_hold_in_plain_sql(conn: AsyncConnection) -> None:
    """The rules live in PostgreSQL: SQL run as geo_comuna_writer for an editor is held to
    them, each refusal saying why."""
    maizal, marzo = await commune_id(conn, "EL-MAIZAL"), await commune_id(conn, "5-DE-MARZO")
    user = accounts.User(None, "sql-editor", "editor", (maizal,))
    square = "ST_Multi(ST_Expand(ST_SetSRID(ST_Point(%s, %s), 4326), 0.0005))"

    async def refusal(query: str, params: tuple) -> str:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
            async with conn.transaction():
                await conn.execute(query, params)
        assert raised.value.diag.constraint_name == "geo_comuna_scope"
        said = raised.value.diag.message_primary
        # and the CLI can say it in Spanish (db/refusals.py)
        spanish = said_by_database(said)
        assert isinstance(spanish, Said) and not ENGLISH_WORDS.search(spanish.es), said
        return said

    async with accounts.writing(conn, user):
        insert = f"INSERT INTO parcels (commune_id, tenure, geom) VALUES (%s, 'occupied', {square})"
        said = await refusal(insert, (maizal, *CARACAS))
        assert "outside the territory of commune EL-MAIZAL" in said and "5-DE-MARZO" in said
        # km as Spanish writes them (found from outside: "queda a 1.1 km de ella")
        km = re.search(r"it lies (\d+)\.(\d) km from it", said)
        assert km and f"queda a {km[1]},{km[2]} km de ella" in said_by_database(said).es, said
        await conn.execute(insert, (maizal, *MAIZAL))  # in its own territory: fine
        said = await refusal(
            f"UPDATE parcels SET geom = {square} WHERE commune_id = %s", (*CARACAS, maizal)
        )
        assert "outside the territory" in said
        for change in (
            "code = 'X-1'",
            "status = 'registered'",
            "geom = ST_Multi(ST_Buffer(geom, 1))",
        ):
            said = await refusal(f"UPDATE communes SET {change} WHERE id = %s", (maizal,))  # noqa: S608
            assert said.startswith("only admins change a commune's"), said
        cur = await conn.execute("UPDATE communes SET population = 7 WHERE id = %s", (maizal,))
        assert cur.rowcount == 1
        said = await refusal("DELETE FROM communes WHERE id = %s", (maizal,))
        assert said == "only admins delete communes"
        said = await refusal(
            "INSERT INTO exchanges (from_commune_id, to_commune_id, product, volume_per_month, "
            "unit) VALUES (%s, %s, 'maize', 1, 'kg')",
            (marzo, maizal),
        )
        assert "recorded by the commune it comes from" in said
        said = await refusal(
            "INSERT INTO production_units (commune_id, parcel_id, name, product, geom) "
            "VALUES (%s, %s, 'u', 'maize', ST_SetSRID(ST_Point(%s, %s), 4326))",
            (maizal, await a_parcel(conn, "5-DE-MARZO"), *MAIZAL),
        )
        assert "belongs to commune 5-DE-MARZO" in said


async def test_an_editors_import_names_the_feature_lying_elsewhere(
    conn: AsyncConnection, settings: Settings
) -> None:
    """An import goes through one INSERT that the policies check row by row; the refused row
    is named by its position in the file, and nothing of the file stays."""
    user = accounts.User(None, "mesa-maizal", "editor", (await commune_id(conn, "EL-MAIZAL"),))
    lon, lat = MAIZAL
    geoms = [
        shapely.box(lon + i * 0.001, lat, lon + i * 0.001 + 0.0005, lat + 0.0005) for i in range(6)
    ]
    geoms[3] = shapely.box(CARACAS[0], CARACAS[1], CARACAS[0] + 0.0005, CARACAS[1] + 0.0005)
    frame = pa.table({"commune": ["EL-MAIZAL"] * 6, "tenure": ["occupied"] * 6})
    before = await written(conn)
    with pytest.raises(Forbidden) as raised:
        await write_frame(conn, PARCELS, frame, geoms, settings, user=user)
    assert raised.value.feature == 4
    assert "inside commune 5-DE-MARZO" in raised.value.reason
    assert await written(conn) == before
    geoms[3] = shapely.box(lon, lat + 0.002, lon + 0.0005, lat + 0.0025)
    assert (await write_frame(conn, PARCELS, frame, geoms, settings, user=user)).features == 6
    # the position is the import's alone: a later write names no stale feature
    assert await scalar(conn, "SELECT current_setting('geo_comuna.feature', true)") in ("", None)


async def test_an_editors_import_into_another_commune_is_refused_before_its_keys(
    conn: AsyncConnection, settings: Settings
) -> None:
    """A feature of a commune the editor may not edit is refused as such (403) before its
    natural key is looked up: a conflict (409) would tell the editor which codes another
    commune stores, and under which ids."""
    user = accounts.User(None, "mesa-maizal", "editor", (await commune_id(conn, "EL-MAIZAL"),))
    stored = await a_parcel(conn, "5-DE-MARZO")
    code = await scalar(conn, "SELECT code FROM parcels WHERE id = %s", (stored,))
    lon, lat = MAIZAL
    geoms = [
        shapely.box(lon, lat, lon + 0.0005, lat + 0.0005),
        shapely.box(*CARACAS, -66.915, 10.466),
    ]
    frame = pa.table(
        {
            "commune": ["EL-MAIZAL", "5-DE-MARZO"],
            "code": ["M-NEW-1", code],
            "tenure": ["occupied"] * 2,
        }
    )
    before = await written(conn)
    for mode in ("insert", "upsert"):
        with pytest.raises(Forbidden) as raised:
            await write_frame(conn, PARCELS, frame, geoms, settings, user=user, mode=mode)
        assert raised.value.feature == 2
        assert "commune 5-DE-MARZO is not one of them" in raised.value.reason
        assert str(stored) not in raised.value.reason
        assert "no es una de ellas" in raised.value.reason.es
    assert await written(conn) == before
    # a layer only admins change (the states) refuses an editor's import at once: an upsert
    # of a package's clipped states said "unchanged" (row-level security hid every row)
    states = LAYERS["states"]
    for mode in ("insert", "upsert"):
        with pytest.raises(Forbidden) as raised:
            await write_frame(
                conn, states, pa.table({"code": ["VE-K"], "name": ["Lara"]}), [geoms[0]],
                settings, user=user, mode=mode,
            )  # fmt: skip
        assert "only admins change states" in raised.value.reason
    # an admin's import of the same file meets the stored key: the conflict is theirs to see
    admin = accounts.User(None, "admin", "admin", ())
    with pytest.raises(Conflict) as conflict:
        await write_frame(conn, PARCELS, frame, geoms, settings, user=admin)
    assert f"feature {stored}" in conflict.value.reason


async def test_an_all_digit_code_stops_the_upgrade_with_what_to_do(
    admin_conninfo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database whose commune has the code "123" is not upgraded silently (renamed, or left
    to be read as id 123): the upgrade stops, names the code and says how to fix it."""
    name = f"geo_comuna_t_{uuid.uuid4().hex[:10]}"
    _recreate(admin_conninfo, name)
    every = migrate.available()
    try:
        async with await AsyncConnection.connect(
            make_conninfo(admin_conninfo, dbname=name), autocommit=True
        ) as db:
            monkeypatch.setattr(migrate, "available", lambda: [m for m in every if m.version < 14])
            await migrate.upgrade(db)
            # a database at version 13 made from today's files has today's SQL functions
            # (db/functions/, applied after any upgrade), whose audit trigger writes a column
            # of a later migration: the old rows change without triggers (the audit's fire in
            # replica mode too), as they once did
            await db.execute("ALTER TABLE communes DISABLE TRIGGER USER")
            await db.execute(
                "INSERT INTO communes (code, name, kind, status, geom) VALUES ('123', 'Digits', "
                "'rural', 'active', ST_Multi(ST_Expand(ST_SetSRID(ST_Point(-69.15, 9.69), 4326), "
                "0.01)))"
            )
            monkeypatch.setattr(migrate, "available", lambda: every)
            with pytest.raises(ClusterError) as raised:
                await migrate.upgrade(db)
            assert "0014_scope_by_place cannot be applied" in raised.value.message
            assert (
                "'123' (id 1)" in raised.value.message and "UPDATE communes" in raised.value.message
            )
            assert await migrate.current_version(db) == 13  # nothing of it applied
            await db.execute("UPDATE communes SET code = 'C-123' WHERE code = '123'")
            await db.execute("ALTER TABLE communes ENABLE TRIGGER USER")
            applied = [m.version for m in await migrate.upgrade(db)]
            assert applied == [m.version for m in every if m.version >= 14]
            assert await scalar(db, "SELECT count(*) FROM commune_reach") == 1
    finally:
        _drop(admin_conninfo, name)


async def test_the_reach_follows_the_boundary(
    conn: AsyncConnection, client: httpx.AsyncClient
) -> None:
    """An admin's new boundary is the editors' new territory at once (the reach is kept by a
    trigger): a feature outside the old boundary and inside the new one becomes theirs."""
    maizal = await commune_id(conn, "EL-MAIZAL")
    user = accounts.User(None, "sql-editor", "editor", (maizal,))
    far = (MAIZAL[0] + 0.1, MAIZAL[1])
    insert = (
        "INSERT INTO parcels (commune_id, tenure, geom) VALUES "
        "(%s, 'occupied', ST_Multi(ST_Expand(ST_SetSRID(ST_Point(%s, %s), 4326), 0.0005)))"
    )
    async with accounts.writing(conn, user):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute(insert, (maizal, *far))
    grown = shapely.box(MAIZAL[0] - 0.05, MAIZAL[1] - 0.05, far[0] + 0.05, far[1] + 0.05)
    r = await client.patch(
        f"/collections/communes/items/{maizal}",
        json={"geometry": shapely.geometry.mapping(shapely.MultiPolygon([grown]))},
    )
    assert r.status_code == 200, r.text
    async with accounts.writing(conn, user):
        await conn.execute(insert, (maizal, *far))
    assert await scalar(
        conn,
        "SELECT ST_Covers(geom, ST_SetSRID(ST_Point(%s, %s), 4326)) FROM commune_reach "
        "WHERE commune_id = %s",
        (*far, maizal),
    )
