"""OGC API - Features over every layer: discovery, CRUD (Part 4), paging, filters."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from geo_comuna.layers.tenure import COLLECTIONS as RECORDS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import LAT, LON, feature

pytestmark = pytest.mark.anyio
GEOJSON = "application/geo+json"


async def make_commune(
    client: httpx.AsyncClient, code: str, lon: float = LON, lat: float = LAT, size: float = 0.01
) -> int:
    body = feature(LAYERS["communes"], code=code, name=f"Comuna {code}", lon=lon, lat=lat)
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    body["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    r = await client.post("/collections/communes/items", json=body)
    assert r.status_code == 201, r.text
    return r.json()["ids"][0]


async def test_landing_conformance_and_collections(client: httpx.AsyncClient) -> None:
    landing = (await client.get("/")).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    conf = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    cols = (await client.get("/collections")).json()["collections"]
    assert [c["id"] for c in cols] == [*LAYERS, *RECORDS]  # the land records after the layers
    parcels = next(c for c in cols if c["id"] == "parcels")
    w, s, e, n = parcels["extent"]["spatial"]["bbox"][0]
    assert -75 < w < e < -58 and -1 < s < n < 17
    assert (await client.get("/openapi.json")).status_code == 200


async def test_the_extent_is_the_stored_shapes_box(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """A parcel put ~900 km off by mistake (its latitude typed as 0) and deleted leaves the
    layer's extent where it was: the spatial index keeps room for it (its top box only
    grows), the extent does not. The extent is the box of the stored shapes, worked out here
    from their corners."""

    async def listed() -> list[float]:
        doc = (await client.get("/collections/parcels")).json()
        return doc["extent"]["spatial"]["bbox"][0]

    cur = await conn.execute(
        "SELECT min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)), max(ST_YMax(geom)) "
        "FROM parcels"
    )
    stored = [round(v, 6) for v in await cur.fetchone()]
    assert await listed() == pytest.approx(stored, abs=1e-6)
    commune = await make_commune(client, "FAR-OFF", lon=-59.0, lat=0.0)
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, tenure, geom) VALUES (%s, 'occupied', "
        "ST_Multi(ST_MakeEnvelope(-59.0, 0.0, -58.999, 0.001, 4326))) RETURNING id",
        (commune,),
    )
    (far,) = await cur.fetchone()
    assert (await listed())[1] == pytest.approx(0.0)  # there while it is stored
    await conn.execute("DELETE FROM parcels WHERE id = %s", (far,))
    assert await listed() == pytest.approx(stored, abs=1e-6)


async def test_collection_titles_in_both_languages(client: httpx.AsyncClient) -> None:
    es = (await client.get("/collections/parcels?lang=es")).json()
    en = (await client.get("/collections/parcels?lang=en")).json()
    assert (es["title"], en["title"]) == ("Parcelas", "Parcels")
    q = (await client.get("/collections/parcels/queryables?lang=en")).json()
    assert q["properties"]["tenure"]["enum"] == [
        "abandoned",
        "occupied",
        "regularizing",
        "regularized",
        "disputed",
    ]
    assert q["properties"]["tenure"]["x-labels"]["regularizing"] == "Regularizing"


@pytest.mark.parametrize("name", list(LAYERS))
async def test_crud_every_layer(client: httpx.AsyncClient, name: str) -> None:
    layer = LAYERS[name]
    await make_commune(client, "CRUD-A")
    await make_commune(client, "CRUD-B", lon=LON + 0.05)
    body = feature(layer, commune="CRUD-A")
    if name == "exchanges":
        body["properties"].update(from_commune="CRUD-A", to_commune="CRUD-B")
        body["geometry"] = None  # drawn by the database between the two communes
    if name == "communes":
        body["properties"]["code"] = "CRUD-C"

    created = await client.post(f"/collections/{name}/items", json=body)
    assert created.status_code == 201, created.text
    fid = created.json()["ids"][0]
    assert created.headers["location"].endswith(f"/collections/{name}/items/{fid}")

    got = await client.get(f"/collections/{name}/items/{fid}")
    assert got.status_code == 200 and got.headers["content-type"].startswith(GEOJSON)
    doc = got.json()
    assert doc["id"] == fid
    for key, value in body["properties"].items():
        assert doc["properties"][key] == value, key
    assert doc["geometry"]["type"] == layer.geometry_type

    attr = (
        next(a for a in layer.attributes if a.domain)
        if any(a.domain for a in layer.attributes)
        else None
    )
    if attr is not None:
        other = list(attr.domain.values)[-1]
        patched = await client.patch(
            f"/collections/{name}/items/{fid}", json={"properties": {attr.name: other}}
        )
        assert patched.status_code == 200, patched.text
        after = (await client.get(f"/collections/{name}/items/{fid}")).json()
        assert after["properties"][attr.name] == other
        # PATCH changes only what it names
        untouched = [k for k in body["properties"] if k != attr.name]
        assert all(after["properties"][k] == body["properties"][k] for k in untouched)

    replaced = dict(body)
    if layer.geometry_type == "Point":
        replaced["geometry"] = {"type": "Point", "coordinates": [LON + 0.002, LAT + 0.002]}
    put = await client.put(f"/collections/{name}/items/{fid}", json=replaced)
    assert put.status_code == 200, put.text
    again = (await client.get(f"/collections/{name}/items/{fid}")).json()
    assert again["properties"] == {**again["properties"], **body["properties"]}
    if layer.geometry_type == "Point":
        assert again["geometry"]["coordinates"] == [LON + 0.002, LAT + 0.002]

    assert (await client.delete(f"/collections/{name}/items/{fid}")).status_code == 204
    assert (await client.get(f"/collections/{name}/items/{fid}")).status_code == 404
    assert (await client.delete(f"/collections/{name}/items/{fid}")).status_code == 404


async def test_a_surveyed_shape_read_and_written_back_stays_where_it_was(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Items carried 6 decimals (~0.1 m): a parcel surveyed to the centimetre, read and sent
    back whole (PUT), moved each vertex by up to 5 cm. They carry 9 (~0.1 mm), in pages and
    items alike, and what comes back is the stored shape within 1e-9 degrees."""
    await make_commune(client, "SURVEY")
    body = feature(LAYERS["parcels"], commune="SURVEY")
    ring = [
        [x + 1.234567891e-7, y - 3.21987654e-8] for x, y in body["geometry"]["coordinates"][0][0]
    ]
    body["geometry"]["coordinates"] = [[ring]]
    fid = (await client.post("/collections/parcels/items", json=body)).json()["ids"][0]
    got = (await client.get(f"/collections/parcels/items/{fid}")).json()
    page = await client.get("/collections/parcels/items", params={"commune": "SURVEY"})
    assert page.json()["features"][0]["geometry"] == got["geometry"]
    read = got["geometry"]["coordinates"][0][0]
    assert all(
        abs(a - b) <= 5e-10
        for vertex, sent in zip(read, ring, strict=True)
        for a, b in zip(vertex, sent, strict=True)
    ), (read, ring)

    put = await client.put(f"/collections/parcels/items/{fid}", json=got)
    assert put.status_code == 200, put.text
    cur = await conn.execute(
        "SELECT ST_HausdorffDistance(geom, ST_GeomFromGeoJSON(%s)) FROM parcels WHERE id = %s",
        (json.dumps(body["geometry"]), fid),
    )
    assert (await cur.fetchone())[0] < 1e-9


async def test_a_patch_of_a_derived_value_is_refused_and_a_put_may_repeat_it(
    client: httpx.AsyncClient,
) -> None:
    """PATCH {"properties": {"area_ha": 99999}} was a 200 that changed nothing."""
    got = (await client.get("/collections/parcels/items", params={"limit": 1})).json()
    feature = got["features"][0]
    url = f"/collections/parcels/items/{feature['id']}"
    r = await client.patch(url, json={"properties": {"area_ha": 99999}})
    assert r.status_code == 400 and "area_ha of parcels is worked out" in r.json()["detail"]
    r = await client.put(url, json=feature)  # as read: area_ha and all
    assert r.status_code == 200, r.text
    assert (await client.get(url)).json()["properties"]["area_ha"] == feature["properties"][
        "area_ha"
    ]


async def test_paging_with_next_links(client: httpx.AsyncClient) -> None:
    await make_commune(client, "PAGING")
    for i in range(5):
        body = feature(LAYERS["parcels"], commune="PAGING", lon=LON + i * 0.0015, code=f"PG-{i}")
        assert (await client.post("/collections/parcels/items", json=body)).status_code == 201
    url = "/collections/parcels/items?commune=PAGING&limit=2"
    seen, pages = [], 0
    while url:
        page = (await client.get(url)).json()
        assert page["numberMatched"] == 5
        assert page["numberReturned"] == len(page["features"]) <= 2
        seen += [f["properties"]["code"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
        pages += 1
    assert seen == [f"PG-{i}" for i in range(5)] and pages == 3


def _next(page: dict) -> str | None:
    hrefs = [link["href"] for link in page["links"] if link["rel"] == "next"]
    return hrefs[0].replace("http://testserver", "") if hrefs else None


async def test_next_links_yield_every_feature_once_whatever_is_written_between_pages(
    client: httpx.AsyncClient,
) -> None:
    """Next links carry a key (the last id sent), not a position: a feature inserted between
    two pages comes once, at its place in the id order, and deleting a feature already read
    hides no other (by offset, the page after would skip one)."""
    await make_commune(client, "KEYSET")
    ids = []
    for i in range(7):
        body = feature(LAYERS["parcels"], commune="KEYSET", lon=LON + i * 0.0015, code=f"KS-{i}")
        ids.append((await client.post("/collections/parcels/items", json=body)).json()["ids"][0])
    url: str | None = "/collections/parcels/items?commune=KEYSET&limit=3"
    seen: list[int] = []
    added: list[int] = []
    while url:
        page = (await client.get(url)).json()
        seen += [f["id"] for f in page["features"]]
        url = _next(page)
        if url is None:
            break
        assert "after=" in url and "offset=" not in url
        # between pages: one feature added, the first one read deleted
        body = feature(LAYERS["parcels"], commune="KEYSET", lon=LON + 0.02, code=f"KS-N{len(seen)}")
        added.append((await client.post("/collections/parcels/items", json=body)).json()["ids"][0])
        if len(seen) == 3:
            deleted = await client.delete(f"/collections/parcels/items/{seen[0]}")
            assert deleted.status_code == 204
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)  # every feature there at the start, none skipped
    assert set(seen) - set(ids) <= set(added) and added[0] in seen
    assert seen == sorted(seen)


async def test_offset_still_pages_and_its_next_link_goes_on_by_key(
    client: httpx.AsyncClient,
) -> None:
    await make_commune(client, "OFFSET")
    for i in range(5):
        body = feature(LAYERS["parcels"], commune="OFFSET", lon=LON + i * 0.0015, code=f"OF-{i}")
        assert (await client.post("/collections/parcels/items", json=body)).status_code == 201
    base = "/collections/parcels/items?commune=OFFSET"
    every = [f["id"] for f in (await client.get(f"{base}&limit=5")).json()["features"]]
    page = (await client.get(f"{base}&limit=2&offset=2")).json()
    assert [f["id"] for f in page["features"]] == every[2:4]
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert f"after={every[3]}" in rels["next"] and "offset=0" in rels["prev"]
    last = (await client.get(_next(page))).json()
    assert [f["id"] for f in last["features"]] == every[4:] and _next(last) is None
    assert last["numberMatched"] == 5
    # sortby keeps its own order: its next link goes on by offset
    desc = (await client.get(f"{base}&limit=2&sortby=-code")).json()
    assert "offset=2" in _next(desc) and "after=" not in _next(desc)


async def test_a_page_ends_at_its_bytes_and_its_next_links_go_on(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    """A limit counts features, and a feature may have 50,000 vertices: a page also ends
    before the feature that would take its stored geometry past max_page_geometry_bytes,
    always with its first feature. Six parcels, the third and the fifth with 2,000 vertices
    (~32 KB stored each, the others ~100 bytes) and a bound of 40,000 bytes: pages of limit
    10 hold [0, 1, 2, 3] and [4, 5]; under a bound of 1,000 each heavy one comes alone, and
    the light one after it too (with it, the page would pass the bound). By key and by
    offset (sortby) alike, every parcel comes once, in order."""
    async with api_client(conn, settings, admin_token) as c:
        await make_commune(c, "HEAVY", size=0.02)
        for i in range(6):
            body = feature(LAYERS["parcels"], commune="HEAVY", lon=LON + i * 0.003, code=f"HV-{i}")
            if i in (2, 4):  # a circle of 2,000 vertices, radius ~100 m
                x0, y0 = LON + i * 0.003 + 0.0012, LAT + 0.0012
                ring = [
                    [
                        x0 + 0.0009 * math.cos(2 * math.pi * k / 1999),
                        y0 + 0.0009 * math.sin(2 * math.pi * k / 1999),
                    ]
                    for k in range(1999)
                ]
                body["geometry"] = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
            assert (await c.post("/collections/parcels/items", json=body)).status_code == 201
    cur = await conn.execute(
        "SELECT code, pg_column_size(geom) FROM parcels WHERE code LIKE 'HV-%' ORDER BY id"
    )
    sizes = dict(await cur.fetchall())
    assert sizes["HV-2"] > 30_000 and max(sizes[f"HV-{i}"] for i in (0, 1, 3, 5)) < 1_000

    async def pages(bound: int, query: str) -> list[list[str]]:
        bounded = settings.model_copy(update={"max_page_geometry_bytes": bound})
        got = []
        async with api_client(conn, bounded) as c:
            url: str | None = f"/collections/parcels/items?commune=HEAVY&limit=10{query}"
            while url:
                page = (await c.get(url)).json()
                assert page["numberMatched"] == 6
                assert page["numberReturned"] == len(page["features"]) >= 1
                got.append([f["properties"]["code"] for f in page["features"]])
                url = _next(page)
        return got

    for query in ("", "&sortby=code"):
        assert await pages(40_000, query) == [["HV-0", "HV-1", "HV-2", "HV-3"], ["HV-4", "HV-5"]]
        assert await pages(1_000, query) == [["HV-0", "HV-1"], *([f"HV-{i}"] for i in range(2, 6))]
        assert await pages(10**9, query) == [[f"HV-{i}" for i in range(6)]]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("after=3&offset=2", "offset=2 and after=3"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=3&sortby=code", "sortby"),
    ],
)
async def test_bad_keys_are_400(client: httpx.AsyncClient, query: str, says: str) -> None:
    r = await client.get(f"/collections/parcels/items?{query}")
    assert r.status_code == 400, r.text
    assert says in r.text


async def test_an_item_etag_is_decided_in_the_database_before_the_feature_is_built(
    conn: AsyncConnection,
) -> None:
    """The item statement computes the ETag (row version, and for parcels a digest of the
    commune codes' version and of who reads) as Python would, and returns no Feature when
    If-None-Match holds it: a 304 builds nothing."""
    from geo_comuna.accounts import PUBLIC
    from geo_comuna.api import etags
    from geo_comuna.db.versions import versions
    from geo_comuna.features import query

    parcels, states = LAYERS["parcels"], LAYERS["states"]
    fid, xmin = await (await conn.execute("SELECT id, xmin::text FROM parcels LIMIT 1")).fetchone()
    salt, tables = etags.feature_inputs(parcels, PUBLIC)
    assert salt is not None and tables == ("communes",)
    digest = etags.feature_digest(salt, await versions(conn, tables))
    found = await query.item(conn, parcels, fid, PUBLIC, salt=salt, tables=tables)
    assert found is not None and found.etag == f'"{fid}.{xmin}.{digest}"'
    assert found.text is not None and found.text.startswith('{"type":"Feature","id":')
    for held in ((found.etag,), ('"x"', found.etag), ("*",)):
        again = await query.item(conn, parcels, fid, PUBLIC, salt=salt, tables=tables, held=held)
        assert again == query.Item(found.etag, None), held
    stale = await query.item(conn, parcels, fid, PUBLIC, salt=salt, tables=tables, held=('"x"',))
    assert stale == found
    assert await query.item(conn, parcels, -1, PUBLIC, salt=salt, tables=tables) is None
    # a state reads alike for everyone and from its own row only: its row version is its ETag
    assert etags.feature_inputs(states, PUBLIC) == (None, ())
    sid, sxmin = await (await conn.execute("SELECT id, xmin::text FROM states LIMIT 1")).fetchone()
    state = await query.item(conn, states, sid, PUBLIC)
    assert state is not None and state.etag == f'"{sid}.{sxmin}"'


async def test_count_follows_writes(client: httpx.AsyncClient) -> None:
    """numberMatched is cached per layer version: a write must invalidate it."""
    await make_commune(client, "COUNT")
    url = "/collections/dwellings/items?commune=COUNT"
    assert (await client.get(url)).json()["numberMatched"] == 0
    body = feature(LAYERS["dwellings"], commune="COUNT")
    fid = (await client.post("/collections/dwellings/items", json=body)).json()["ids"][0]
    assert (await client.get(url)).json()["numberMatched"] == 1
    await client.delete(f"/collections/dwellings/items/{fid}")
    assert (await client.get(url)).json()["numberMatched"] == 0


async def test_filters_bbox_property_and_commune(client: httpx.AsyncClient) -> None:
    await make_commune(client, "FILTER")
    spots = [(LON, LAT, "none"), (LON + 0.002, LAT, "piped"), (LON + 0.5, LAT + 0.5, "none")]
    for lon, lat, water in spots:
        body = feature(LAYERS["dwellings"], commune="FILTER", lon=lon, lat=lat, water=water)
        assert (await client.post("/collections/dwellings/items", json=body)).status_code == 201
    base = "/collections/dwellings/items?commune=FILTER"
    assert (await client.get(base)).json()["numberMatched"] == 3
    assert (await client.get(f"{base}&water=none")).json()["numberMatched"] == 2
    assert (await client.get(f"{base}&water=none,piped")).json()["numberMatched"] == 3
    bbox = f"{LON - 0.001},{LAT - 0.001},{LON + 0.003},{LAT + 0.001}"
    assert (await client.get(f"{base}&bbox={bbox}")).json()["numberMatched"] == 2
    assert (await client.get(f"{base}&bbox={bbox}&water=none")).json()["numberMatched"] == 1


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=10,80,20,70", "its south lies north of its north"),
        # found from outside: said "south <= north" of a number out of any range
        ("bbox=-1e300,9,-69,10", "longitudes from -180 to 180"),
        ("bbox=-70,-91,-69,10", "latitudes from -90 to 90"),
        ("bbox-crs=EPSG:9999&bbox=1,2,3,4", "bbox-crs"),
        ("crs=bogus", "crs"),
        ("colour=red", "colour"),
        ("tenure=stolen", "stolen"),
        ("recovered_on=yesterday", "recovered_on"),
    ],
)
async def test_bad_query_parameters_are_400(
    client: httpx.AsyncClient, query: str, says: str
) -> None:
    r = await client.get(f"/collections/parcels/items?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert says in r.json()["detail"]


async def test_unknown_collection_item_and_commune_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/collections/nope/items")).status_code == 404
    assert (await client.get("/collections/parcels/items/999999999")).status_code == 404
    assert (await client.get("/collections/parcels/items?commune=NO-SUCH")).status_code == 404
    # states belong to no commune: ?commune= gives those it touches (El Maizal: Lara and
    # Portuguesa), as QGIS repeats a connection's ?commune= on every layer
    r = await client.get("/collections/states/items?commune=EL-MAIZAL")
    assert r.status_code == 200, r.text
    touched = (await client.get("/communes/EL-MAIZAL/states")).json()["states"]
    assert sorted(f["properties"]["code"] for f in r.json()["features"]) == sorted(
        s["code"] for s in touched if s["code"]
    )
    assert (await client.get("/collections/parcels/items/abc")).status_code == 400


async def links_for(
    conn: AsyncConnection, settings: Settings, token: str, host: str, **update: object
) -> tuple[list[str], dict[str, str]]:
    """Every link of the landing page, an items page and a write's Location, and the embed
    snippet, as a client asking for ``host`` gets them."""
    async with api_client(conn, settings.model_copy(update=update), token) as c:
        c.headers["Host"] = host
        landing = (await c.get("/")).json()["links"]
        items = (await c.get("/collections/parcels/items?limit=1")).json()["links"]
        body = feature(LAYERS["parcels"], commune="EL-MAIZAL")
        written = await c.post("/collections/parcels/items", json=body)
        snippet = (await c.get("/maps/communes/EL-MAIZAL/embed-snippet")).json()
    hrefs = [link["href"] for link in landing + items] + [written.headers["location"]]
    return hrefs, snippet


async def test_links_follow_only_trusted_hosts(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    """A Host header is the client's to write: an untrusted one never reaches a link."""
    hrefs, snippet = await links_for(conn, settings, admin_token, "evil.example")
    assert all(h.startswith("/") for h in hrefs), hrefs  # relative, still correct
    assert snippet["url"] == "/maps/communes/EL-MAIZAL?embed=true&lang=es"
    assert "evil" not in snippet["html"] + snippet["standalone_url"]
    assert "GEO_COMUNA_PUBLIC_URL" in snippet["warning"]
    assert snippet["warning"].startswith("la dirección es relativa")  # as the page's lang=es

    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        hrefs, snippet = await links_for(conn, settings, admin_token, host)
        assert all(h.startswith(f"http://{host}/") for h in hrefs), hrefs
        assert "warning" not in snippet

    trusted = {"trusted_hosts": ["*.comuna.example"]}
    hrefs, _ = await links_for(conn, settings, admin_token, "mapas.comuna.example", **trusted)
    assert all(h.startswith("http://mapas.comuna.example/") for h in hrefs), hrefs
    hrefs, _ = await links_for(conn, settings, admin_token, "comuna.example.evil.net", **trusted)
    assert all(h.startswith("/") for h in hrefs), hrefs

    public = {"public_url": "https://mapas.comuna.example/geo/"}
    hrefs, snippet = await links_for(conn, settings, admin_token, "evil.example", **public)
    assert all(h.startswith("https://mapas.comuna.example/geo/") for h in hrefs), hrefs
    assert snippet["html"].startswith('<iframe src="https://mapas.comuna.example/geo/maps/')


@pytest.mark.parametrize(
    ("host", "update", "location"),
    [
        ("evil.example", {}, "/collections/parcels/items?limit=1&commune=EL-MAIZAL"),
        (
            "evil.example",
            {"public_url": "https://mapas.comuna.example/geo/"},
            "https://mapas.comuna.example/geo/collections/parcels/items?limit=1&commune=EL-MAIZAL",
        ),
        (
            "localhost:8000",
            {},
            "http://localhost:8000/collections/parcels/items?limit=1&commune=EL-MAIZAL",
        ),
    ],
)
async def test_a_trailing_slash_is_redirected_as_links_are_written(
    conn: AsyncConnection, settings: Settings, host: str, update: dict, location: str
) -> None:
    """Found from outside: Starlette redirected /items/ to the Host header as sent, to any
    host, GEO_COMUNA_PUBLIC_URL or not. The redirect's address is now a link's."""
    async with api_client(conn, settings.model_copy(update=update)) as c:
        c.headers["Host"] = host
        r = await c.get("/collections/parcels/items/?limit=1&commune=EL-MAIZAL")
        assert r.status_code == 307 and r.headers["location"] == location, r.headers
        # found from outside: a %3F sent came back as a ?, a %25 as a %
        odd = await c.get("/collections/parcels/items/2%3Ff%3Dhtml%2541/")
        assert odd.status_code == 307, odd.text
        assert odd.headers["location"].endswith("/collections/parcels/items/2%3Ff=html%2541")
        nowhere = await c.get("/collections/parcels/nothing/")
        assert nowhere.status_code == 404 and "location" not in nowhere.headers
        assert nowhere.headers["content-type"].startswith("application/problem+json")
