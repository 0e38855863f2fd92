"""OGC API - Features over every layer: discovery, CRUD (Part 4), paging, filters."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
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
    assert [c["id"] for c in cols] == list(LAYERS)
    parcels = next(c for c in cols if c["id"] == "parcels")
    w, s, e, n = parcels["extent"]["spatial"]["bbox"][0]
    assert -75 < w < e < -58 and -1 < s < n < 17
    assert (await client.get("/openapi.json")).status_code == 200


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
        ("bbox=10,80,20,70", "bbox"),
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
