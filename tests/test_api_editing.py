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
from tests.factories import MAIZAL, feature

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


READ = {"GET", "HEAD", "OPTIONS"}
CHANGE = {"PUT", "PATCH", "DELETE"}


async def test_options_on_items_and_an_item_per_role(
    conn: AsyncConnection, as_role: Reader
) -> None:
    maizal = "commune_id = (SELECT id FROM communes WHERE code = 'EL-MAIZAL')"
    own = await first_id(conn, "parcels", maizal)
    other = await first_id(conn, "parcels", f"NOT ({maizal})")
    assert own and other
    expected = {
        # who: (items, own commune's parcel, another commune's parcel, unknown_id)
        "anonymous": (READ, READ, READ, READ),
        "viewer": (READ, READ, READ, READ),
        "editor": (READ | {"POST"}, READ | CHANGE, READ, READ | CHANGE),
        "admin": (READ | {"POST"}, READ | CHANGE, READ | CHANGE, READ | CHANGE),
    }
    for who, (items, mine, theirs, unknown) in expected.items():
        async with as_role(who) as c:
            assert allow(await c.options(ITEMS)) == items, who
            assert allow(await c.options(f"{ITEMS}/{own}")) == mine, who
            assert allow(await c.options(f"{ITEMS}/{other}")) == theirs, who
            assert allow(await c.options(f"{ITEMS}/unknown_id")) == unknown, who
            assert "Authorization" in (await c.options(ITEMS)).headers["vary"]


async def test_options_follow_what_each_layer_lets_editors_do(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """Editors change their own commune's figures but add or delete no commune, and never
    write states: OPTIONS says so, and the database refuses the rest alike."""
    maizal = await first_id(conn, "communes", "code = 'EL-MAIZAL'")
    marzo = await first_id(conn, "communes", "code = '5-DE-MARZO'")
    state = await first_id(conn, "states", "true")
    async with as_role("editor") as c:
        assert allow(await c.options("/collections/communes/items")) == READ
        assert allow(await c.options(f"/collections/communes/items/{maizal}")) == READ | {
            "PUT",
            "PATCH",
        }
        assert allow(await c.options(f"/collections/communes/items/{marzo}")) == READ
        assert allow(await c.options("/collections/states/items")) == READ
        assert allow(await c.options(f"/collections/states/items/{state}")) == READ
        for name, layer in LAYERS.items():
            may_post = "POST" in allow(await c.options(f"/collections/{name}/items"))
            assert may_post == ("create" in layer.editors_may), name
        # what OPTIONS refuses, the database refuses
        body = feature(LAYERS["communes"], code="NEW-ONE", lon=MAIZAL[0], lat=MAIZAL[1])
        assert (await c.post("/collections/communes/items", json=body)).status_code == 403
        assert (await c.delete(f"/collections/communes/items/{maizal}")).status_code == 403
        figures = {"properties": {"families": 321}}
        assert (await c.patch(f"/collections/communes/items/{maizal}", json=figures)).is_success


async def test_options_need_a_token_where_reads_do(
    conn: AsyncConnection, settings: Settings
) -> None:
    closed = settings.model_copy(update={"reads": "token"})
    async with api_client(conn, closed) as anonymous:
        assert (await anonymous.options(ITEMS)).status_code == 401


async def test_a_write_without_a_token_says_so_in_the_language_asked(
    conn: AsyncConnection, settings: Settings
) -> None:
    """Found from outside: the 401 was English with ?lang=es."""
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.delete(f"{ITEMS}/1", params={"lang": "es"})
        assert r.status_code == 401
        assert "para escribir hace falta un token" in r.json()["detail"]
        r = await anonymous.delete(f"{ITEMS}/1")
        assert r.status_code == 401 and "writing needs a token" in r.json()["detail"]
        # a read that needs a token (the audit) was told writing did
        r = await anonymous.get("/audit", params={"lang": "es"})
        assert r.status_code == 401 and "esto necesita un token" in r.json()["detail"]


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


# ---------------------------------------------------------------- QGIS, replayed


async def test_qgis_edits_a_layer_with_a_bearer_token(
    conn: AsyncConnection, settings: Settings
) -> None:
    """What QGIS 3.32+ (its OAPIF provider) sends to load a layer and edit it, in order, as
    an editor of El Maizal who connected with ?commune=EL-MAIZAL: the connection URL's query
    goes with the landing page, the collection, the items and an item, never with OPTIONS or
    writes."""
    _, token = await accounts.add_user(conn, "qgis-editor", "editor", ["EL-MAIZAL"])
    extra = {"commune": "EL-MAIZAL"}
    async with api_client(conn, settings, token) as qgis:
        landing = await qgis.get("/", params=extra, headers={"Accept": "application/json"})
        assert landing.status_code == 200, landing.text
        links = {x["rel"]: urlsplit(x["href"]).path for x in landing.json()["links"]}
        api = await qgis.get(
            links["service-desc"],
            params=extra,
            headers={
                "Accept": "application/vnd.oai.openapi+json;version=3.0, "
                "application/openapi+json;version=3.0, application/json"
            },
        )
        assert api.status_code == 200
        collection = await qgis.get(
            f"{links['data']}/parcels", params=extra, headers={"Accept": "application/json"}
        )
        assert collection.status_code == 200, collection.text
        conformance = (await qgis.get(links["conformance"])).json()["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in (
            conformance
        )
        first = await qgis.get(
            ITEMS,
            params={"limit": 10, **extra},
            headers={"Accept": "application/geo+json, application/json"},
        )
        assert first.status_code == 200, first.text
        schema_href = next(
            x["href"] for x in collection.json()["links"] if x["rel"].endswith("/schema")
        )
        schema = await qgis.get(
            urlsplit(schema_href).path, headers={"Accept": "application/schema+json"}
        )
        fields = [k for k, v in schema.json()["properties"].items() if "type" in v]
        # OPTIONS: POST on items; PUT, DELETE (and PATCH) on the first feature read
        assert "POST" in allow(await qgis.options(ITEMS))
        test_id = str(first.json()["features"][0]["id"])
        assert {"PUT", "DELETE", "PATCH"} <= allow(await qgis.options(f"{ITEMS}/{test_id}"))

        # add a feature: every field, null when not set, no id; Location gives the new id
        ring = [
            [MAIZAL[0] + dx, MAIZAL[1] + dy]
            for dx, dy in ((0, 0), (0.002, 0), (0.002, 0.002), (0, 0.002), (0, 0))
        ]
        new = {
            "type": "Feature",
            "geometry": {"type": "MultiPolygon", "coordinates": [[ring]]},
            "properties": dict.fromkeys(fields)
            | {"commune": "EL-MAIZAL", "tenure": "occupied", "recovered_on": "2024-03-08"},
        }
        created = await qgis.post(
            ITEMS, content=httpx_json(new), headers={"Content-Type": "application/geo+json"}
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        fid = location[location.rindex("/items/") + len("/items/") :]
        refreshed = await qgis.get(f"{ITEMS}/{fid}", params=extra)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["properties"]["recovered_on"] == "2024-03-08"

        # change attributes, then the geometry: merge-patch bodies, one member each
        merge = {"Content-Type": "application/merge-patch+json"}
        patched = await qgis.patch(
            f"{ITEMS}/{fid}",
            content=httpx_json({"properties": {"tenure": "regularized"}}),
            headers=merge,
        )
        assert patched.status_code == 200, patched.text
        moved = [[x + 0.001, y] for x, y in ring]
        patched = await qgis.patch(
            f"{ITEMS}/{fid}",
            content=httpx_json({"geometry": {"type": "MultiPolygon", "coordinates": [[moved]]}}),
            headers=merge,
        )
        assert patched.status_code == 200, patched.text
        after = (await qgis.get(f"{ITEMS}/{fid}")).json()
        assert after["properties"]["tenure"] == "regularized"
        assert after["geometry"]["coordinates"][0][0][0] == moved[0]
        # a server without PATCH would get PUT: the whole feature, its id as text
        whole = {**after, "id": fid}
        whole.pop("links")
        put = await qgis.put(
            f"{ITEMS}/{fid}",
            content=httpx_json(whole),
            headers={"Content-Type": "application/geo+json"},
        )
        assert put.status_code == 200, put.text

        assert (await qgis.delete(f"{ITEMS}/{fid}")).status_code == 204
        assert (await qgis.get(f"{ITEMS}/{fid}")).status_code == 404


def httpx_json(doc: object) -> bytes:
    import json

    return json.dumps(doc).encode()


async def test_a_viewer_gets_a_read_only_layer_in_qgis(as_role: Reader) -> None:
    async with as_role("viewer") as qgis:
        assert "POST" not in allow(await qgis.options(ITEMS))


# ---------------------------------------------------------------- defects


async def test_a_patch_member_that_is_no_features_is_refused(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """Found from outside: {"propertis": {...}} was answered 200 and changed nothing."""
    fid = await first_id(conn, "parcels", "true")
    async with as_role("admin") as c:
        before = await c.get(f"{ITEMS}/{fid}")
        r = await c.patch(f"{ITEMS}/{fid}", json={"propertis": {"land_use": "crops"}})
        assert r.status_code == 400, r.text
        assert "unknown member 'propertis'" in r.json()["detail"], r.text
        r = await c.patch(
            f"{ITEMS}/{fid}?lang=es", json={"type": "Feature", "geometria": None, "properties": {}}
        )
        assert r.status_code == 400 and "miembro desconocido 'geometria'" in r.json()["detail"]
        assert (await c.get(f"{ITEMS}/{fid}")).headers["etag"] == before.headers["etag"]
        # what a feature read from here holds may come back with it
        doc = before.json()
        r = await c.patch(f"{ITEMS}/{fid}", json={**doc, "properties": {"notes": "x"}})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2010-01-01", "2010-01-01"),
        ("2010-01-01T00:00:00Z", "2010-01-01"),  # a day as some programs write it
        ("2010-01-01 00:00:00", "2010-01-01"),
        # found from outside: each was stored, the first with its time dropped (in UTC it is
        # the 2nd), the others read in ISO forms no planner writes
        ("2010-01-01T23:00:00-05:00", None),
        ("20100101", None),
        ("2010-W01-1", None),
        ("2010-001", None),
    ],
)
async def test_a_date_is_a_day(
    conn: AsyncConnection, as_role: Reader, given: str, stored: str | None
) -> None:
    fid = await first_id(conn, "parcels", "true")
    async with as_role("admin") as c:
        r = await c.patch(f"{ITEMS}/{fid}", json={"properties": {"recovered_on": given}})
        if stored is None:
            assert r.status_code == 422, r.text
            assert "recovered_on" in r.json()["detail"] and "YYYY-MM-DD" in r.json()["detail"]
        else:
            assert r.status_code == 200, r.text
            now = (await c.get(f"{ITEMS}/{fid}")).json()["properties"]["recovered_on"]
            assert now == stored


async def test_a_write_that_changes_nothing_keeps_the_version(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """Found from outside: a PUT of a feature exactly as it was read made a new version, and
    a client holding the old ETag then got a 412 for no change. Nothing written, nothing
    audited; the version stays, as an import's upsert keeps it."""
    fid = await first_id(conn, "parcels", "true")
    cur = await conn.execute("SELECT count(*) FROM audit_log")
    audited = (await cur.fetchone())[0]
    async with as_role("admin") as c:
        read = await c.get(f"{ITEMS}/{fid}")
        doc = read.json()
        doc.pop("links")
        r = await c.put(f"{ITEMS}/{fid}", json=doc, headers={"If-Match": read.headers["etag"]})
        assert r.status_code == 200, r.text
        assert row(r.headers["etag"]) == row(read.headers["etag"])
        same = {"properties": {"tenure": doc["properties"]["tenure"]}}
        r = await c.patch(f"{ITEMS}/{fid}", json=same, headers={"If-Match": read.headers["etag"]})
        assert r.status_code == 200 and row(r.headers["etag"]) == row(read.headers["etag"])
        cur = await conn.execute("SELECT count(*) FROM audit_log")
        assert (await cur.fetchone())[0] == audited
        doc["properties"]["notes"] = (doc["properties"].get("notes") or "") + " (revisada)"
        r = await c.put(f"{ITEMS}/{fid}", json=doc, headers={"If-Match": read.headers["etag"]})
        assert r.status_code == 200 and row(r.headers["etag"]) != row(read.headers["etag"])
        assert (await c.get(f"{ITEMS}/{fid}")).json()["properties"]["notes"].endswith("(revisada)")
    async with as_role("editor") as c:  # not its commune: still a 403, changed or not
        other = await first_id(
            conn, "parcels", "commune_id <> (SELECT id FROM communes WHERE code = 'EL-MAIZAL')"
        )
        theirs = (await c.get(f"{ITEMS}/{other}")).json()
        theirs.pop("links")
        assert (await c.put(f"{ITEMS}/{other}", json=theirs)).status_code == 403


async def test_an_empty_patch_changes_nothing_and_is_not_forbidden(
    conn: AsyncConnection, as_role: Reader
) -> None:
    maizal = "commune_id = (SELECT id FROM communes WHERE code = 'EL-MAIZAL')"
    own = await first_id(conn, "parcels", maizal)
    other = await first_id(conn, "parcels", f"NOT ({maizal})")
    cur = await conn.execute("SELECT count(*) FROM audit_log")
    audited = (await cur.fetchone())[0]
    for who, fid, status in [
        ("admin", own, 200),
        ("admin", other, 200),
        ("editor", own, 200),
        ("editor", other, 403),  # not its commune: an empty change is still not its to make
        ("viewer", own, 403),
    ]:
        async with as_role(who) as c:
            before = await c.get(f"{ITEMS}/{fid}")
            for body in ({}, {"properties": {}}, {"type": "Feature", "properties": {}}):
                r = await c.patch(f"{ITEMS}/{fid}", json=body)
                assert r.status_code == status, (who, body, r.text)
                if status == 200:
                    assert r.json()["ids"] == [fid]
                    assert row(r.headers["etag"]) == row(before.headers["etag"])
            after = await c.get(f"{ITEMS}/{fid}")
            assert after.json() == before.json()
    cur = await conn.execute("SELECT count(*) FROM audit_log")
    assert (await cur.fetchone())[0] == audited  # nothing written, nothing recorded
    async with as_role("admin") as c:
        assert (await c.patch(f"{ITEMS}/999999999", json={})).status_code == 404
        stale = await c.patch(f"{ITEMS}/{own}", json={}, headers={"If-Match": '"1.1"'})
        assert stale.status_code == 412


async def test_if_none_match_on_a_change_refuses_what_is_stored(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """If-None-Match on PUT, PATCH and DELETE (RFC 9110 13.1.2): a change is refused (412)
    when the stored version is one the client names, or with * since the feature exists; a
    stale tag lets it through. Ignored, it let a client that wrote only what it had not seen
    overwrite the feature."""
    fid = await first_id(conn, "parcels", "true")
    async with as_role("admin") as c:
        read = await c.get(f"{ITEMS}/{fid}")
        etag, doc = read.headers["etag"], read.json()
        doc.pop("links")
        doc["properties"]["notes"] = "cambiada"
        weak = "W/" + etag.removeprefix("W/")
        for method, kwargs in (
            ("PUT", {"json": doc}),
            ("PATCH", {"json": {"properties": {"notes": "cambiada"}}}),
            ("PATCH", {"json": {}}),
            ("DELETE", {}),
        ):
            for tags in ("*", etag, weak, f'"1.1", {etag}'):
                r = await c.request(
                    method, f"{ITEMS}/{fid}", headers={"If-None-Match": tags}, **kwargs
                )
                assert r.status_code == 412, (method, tags, r.text)
                assert "If-None-Match" in r.json()["detail"], r.text
        assert (await c.get(f"{ITEMS}/{fid}")).json()["properties"] == read.json()["properties"]
        r = await c.request(
            "PATCH",
            f"{ITEMS}/{fid}",
            headers={"If-None-Match": '"1.1"'},
            json={"properties": {"notes": "cambiada"}},
        )
        assert r.status_code == 200, r.text
        now = await c.get(f"{ITEMS}/{fid}")
        assert now.json()["properties"]["notes"] == "cambiada"
        # both headers: If-Match holds, If-None-Match names the same version: refused
        both = {"If-Match": now.headers["etag"], "If-None-Match": now.headers["etag"]}
        r = await c.patch(f"{ITEMS}/{fid}", headers=both, json={"properties": {"notes": "otra"}})
        assert r.status_code == 412, r.text
        es = await c.delete(f"{ITEMS}/{fid}?lang=es", headers={"If-None-Match": "*"})
        assert es.status_code == 412 and "no se cambió nada" in es.json()["detail"], es.text


@pytest.mark.parametrize("big", [2**63, 2**64, -(2**63) - 1, str(2**63)])
async def test_an_id_of_2_63_or_more_is_a_4xx(
    as_role: Reader, conn: AsyncConnection, big: object
) -> None:
    own = await first_id(conn, "parcels", "true")
    async with as_role("admin") as c:
        current = (await c.get(f"{ITEMS}/{own}")).json()
        current.pop("links")
        for method, body in (
            ("PATCH", {"id": big, "properties": {"tenure": "occupied"}}),
            ("PUT", {**current, "id": big}),
        ):
            r = await c.request(method, f"{ITEMS}/{own}", json=body)
            assert r.status_code == 400 and "id" in r.json()["detail"], (method, r.text)
        for method in ("GET", "PATCH", "DELETE"):
            kwargs = {} if method in ("GET", "DELETE") else {"json": {"properties": {}}}
            r = await c.request(method, f"{ITEMS}/{big}", **kwargs)
            assert r.status_code in (400, 404), (method, r.status_code)
        unit = feature(LAYERS["production_units"], commune="EL-MAIZAL", parcel=big)
        r = await c.post("/collections/production_units/items", json=unit)
        assert r.status_code == 422 and "parcel" in r.json()["detail"]
        # a POST's id is the server's to give: one sent is ignored, whatever its size
        sent = feature(LAYERS["parcels"], commune="EL-MAIZAL") | {"id": big}
        r = await c.post(ITEMS, json=sent)
        assert r.status_code == 201 and r.json()["ids"][0] < 2**31


async def test_a_number_too_long_to_read_is_400(client: httpx.AsyncClient) -> None:
    body = b'{"type": "Feature", "id": 1' + b"0" * 5000 + b', "properties": {}}'
    r = await client.patch(f"{ITEMS}/1", content=body)
    assert r.status_code == 400 and "too long" in r.json()["detail"]


async def test_the_connections_commune_gives_a_new_feature_its_commune(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """Found from outside: the README has an editor connect QGIS with ?commune=EL-MAIZAL,
    and QGIS sends that query with its writes too; it was taken and ignored, so a new
    production unit without a commune was refused as naming none, and a body naming another
    commune than the connection's passed. The connection's commune is now a feature's when
    it names none, and one naming another is refused (400), nothing written."""
    layer = LAYERS["production_units"]
    body = feature(layer, lon=MAIZAL[0], lat=MAIZAL[1])
    body["properties"].pop("commune", None)
    body["properties"].pop("parcel", None)
    units = "/collections/production_units/items"
    async with as_role("editor") as c:
        r = await c.post(units, params={"commune": "EL-MAIZAL"}, json=body)
        assert r.status_code == 201, r.text
        (made,) = r.json()["ids"]
        stored = await c.get(f"{units}/{made}")
        assert stored.json()["properties"]["commune"] == "EL-MAIZAL"
        cur = await conn.execute("SELECT count(*) FROM production_units")
        before = (await cur.fetchone())[0]
        body["properties"]["commune"] = "EL-MAIZAL"
        r = await c.post(units, params={"commune": "5-DE-MARZO", "lang": "es"}, json=body)
        assert r.status_code == 400 and "commune=5-DE-MARZO" in r.json()["detail"], r.text
        assert "es de la comuna EL-MAIZAL y la petición dice" in r.json()["detail"]
        cur = await conn.execute("SELECT count(*) FROM production_units")
        assert (await cur.fetchone())[0] == before
        # a PATCH through the same connection: the feature is of its commune
        r = await c.patch(
            f"{units}/{made}", params={"commune": "EL-MAIZAL"}, json={"properties": {"workers": 9}}
        )
        assert r.status_code == 200, r.text
        r = await c.post(units, params={"commune": "NO-SUCH"}, json=body)
        assert r.status_code == 404 and "NO-SUCH" in r.json()["detail"], r.text


async def test_a_parcel_code_without_its_parcel_is_refused_not_dropped(
    conn: AsyncConnection, as_role: Reader
) -> None:
    """Found from outside: a new production unit naming its parcel by parcel_code, which
    the server works out from parcel, was written without a parcel and said nothing. It is
    refused (400) naming parcel; read back and sent again, parcel beside it, it is taken."""
    layer = LAYERS["production_units"]
    body = feature(layer, commune="EL-MAIZAL", lon=MAIZAL[0], lat=MAIZAL[1])
    body["properties"].pop("parcel", None)
    body["properties"]["parcel_code"] = "EM-P002"
    units = "/collections/production_units/items"
    cur = await conn.execute("SELECT count(*) FROM production_units")
    (before,) = await cur.fetchone()
    async with as_role("editor") as c:
        r = await c.post(units, json=body, params={"lang": "es"})
        assert r.status_code == 400, r.text
        assert "parcel_code se calcula a partir de parcel" in r.json()["detail"]
        cur = await conn.execute("SELECT count(*) FROM production_units")
        assert (await cur.fetchone())[0] == before
        cur = await conn.execute("SELECT id FROM parcels WHERE code = 'EM-P002'")
        (parcel,) = await cur.fetchone()
        body["properties"]["parcel"] = parcel
        r = await c.post(units, json=body)
        assert r.status_code == 201, r.text
        made = await c.get(f"{units}/{r.json()['ids'][0]}")
        assert made.json()["properties"]["parcel_code"] == "EM-P002"
        # a feature as read, its parcel cleared by a PUT: its stale code is not held against it
        doc = made.json()
        etag = made.headers["etag"]
        doc["properties"]["parcel"] = None
        r = await c.put(f"{units}/{doc['id']}", json=doc, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        # a PUT naming no parcel at all but a code: refused as a POST is (found from outside:
        # the unit lost its parcel without a word)
        del doc["properties"]["parcel"]
        r = await c.put(f"{units}/{doc['id']}", json=doc)
        assert r.status_code == 400 and "parcel_code is worked out from parcel" in r.text
