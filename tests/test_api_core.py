"""OGC API - Features Part 1 Core as clients use it: paging limits, the parameters every
route takes, formats, HTTP methods, caching validators, compression and CORS."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.api.deps import RESERVED
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
        # the next page goes on after the last feature sent (keyset), 50 at a time
        assert "limit=50" in nxt and f"after={page['features'][-1]['id']}" in nxt
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


# ---------------------------------------------------------------- every route of the API

#: a real value for each path parameter of the OpenAPI document
PATH_VALUES = {
    "collection_id": "parcels",
    "layer": "parcels",
    "commune": "EL-MAIZAL",
    "name": "land-recovery",
    "analysis": "land-recovery",
    "document_id": "1",  # none in the sample: its 404 is answered alike
    "dem_id": "999999",  # none such: a 404 too
    "z": "12",
    "x": "1261",
    "y": "1948",
}


async def operations(client: httpx.AsyncClient) -> list[tuple[str, str, dict]]:
    """(method, concrete path, operation) of every operation the API documents, its
    parameters given by reference (``#/components/parameters/limit``) written out."""
    spec = (await client.get("/openapi.json")).json()
    shared = spec["components"]["parameters"]

    def resolved(op: dict) -> dict:
        params = op.get("parameters", [])
        params = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in params]
        return {**op, "parameters": params}

    first = (await client.get(ITEMS, params={"limit": 1})).json()["features"][0]["id"]
    found = []
    for template, ops in spec["paths"].items():
        path = template.replace("{feature_id}", str(first))
        for name, value in PATH_VALUES.items():
            path = path.replace(f"{{{name}}}", value)
        assert "{" not in path, f"no value for a parameter of {template}"
        found += [(method.upper(), path, resolved(op)) for method, op in ops.items()]
    return found


async def test_head_answers_wherever_get_does(client: httpx.AsyncClient) -> None:
    for method, path, _ in await operations(client):
        if method != "GET" or "/maps/" in path or path.endswith(("/report", ".png")):
            continue  # the heavy pages: one of them below
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code, (path, got.text[:200])
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag", "cache-control", "vary"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    page = await client.head("/maps/communes/EL-MAIZAL")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == b"" and int(page.headers["content-length"]) > 1000
    assert (await client.head("/static/geo_comuna/geo_comuna_maps.js")).status_code == 200
    assert (await client.head("/collections/nothing")).status_code == 404


async def test_a_405_says_which_methods_the_path_has(client: httpx.AsyncClient) -> None:
    cases = {
        ("DELETE", ITEMS): "GET, HEAD, POST, OPTIONS",
        ("POST", f"{ITEMS}/1"): "GET, HEAD, PUT, PATCH, DELETE, OPTIONS",
        ("PUT", "/collections"): "GET, HEAD, OPTIONS",
        ("DELETE", "/collections/parcels/import"): "POST, OPTIONS",
        ("POST", "/communes/EL-MAIZAL/states"): "GET, HEAD, OPTIONS",
    }
    for (method, path), allow in cases.items():
        r = await client.request(method, path)
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"] == allow, (method, path)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_options_lists_the_methods_of_any_path(client: httpx.AsyncClient) -> None:
    for path, allow in {
        "/collections": "GET, HEAD, OPTIONS",
        "/communes/EL-MAIZAL/dems": "GET, HEAD, POST, OPTIONS",
        "/collections/parcels/export": "GET, HEAD, OPTIONS",
    }.items():
        r = await client.options(path)
        assert r.status_code == 204 and r.headers["allow"] == allow, path
    assert (await client.options("/no/such/path")).status_code == 404


async def test_a_401_says_how_to_authenticate(conn: AsyncConnection, settings: Settings) -> None:
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.post(ITEMS, json={})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="geo_comuna"'
    async with api_client(conn, settings, "gc_not-a-token") as wrong:
        r = await wrong.get("/collections")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="geo_comuna", error="invalid_token"'
    token_reads = settings.model_copy(update={"reads": "token"})
    async with api_client(conn, token_reads) as anonymous:
        r = await anonymous.get(ITEMS)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer ")


async def test_an_unknown_parameter_is_400_on_every_route(client: httpx.AsyncClient) -> None:
    """Before any work: a write is refused before its body is read, a map before it is drawn."""
    swept = 0
    for method, path, op in await operations(client):
        takes = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        r = await client.request(method, path, params={"colour": "red"})
        assert r.status_code == 400, (method, path, r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert "colour" in detail, (method, path, detail)
        assert all(name in detail for name in takes), (method, path, detail)
        swept += 1
    assert swept > 25
    # what a route does take still works
    assert (await client.get("/collections", params={"lang": "en"})).status_code == 200
    assert (await client.get(ITEMS, params={"tenure": "occupied"})).status_code == 200
    r = await client.get("/communes/EL-MAIZAL/analyses/land-recovery", params={"f": "json"})
    assert r.status_code == 200
    assert (await client.get("/communes/EL-MAIZAL/hillshade.png?azimuth=300")).status_code in (
        200,
        404,  # no DEM for the commune
    )


async def test_a_parameter_given_twice_with_two_values_is_400_on_every_route(
    client: httpx.AsyncClient,
) -> None:
    """FastAPI keeps the last of a repeated parameter: ?commune=EL-MAIZAL&commune=5-DE-MARZO
    answered 5 de Marzo's parcels alone, ?bbox=A&bbox=B the second box. Every documented
    parameter that takes one value, given two, is refused naming it; one a route reads as
    a list may repeat, and the same value twice is that value."""
    swept = 0
    for method, path, op in await operations(client):
        for p in op.get("parameters", []):
            if p["in"] != "query" or p.get("schema", {}).get("type") == "array":
                continue
            if "array" in [s.get("type") for s in p.get("schema", {}).get("anyOf", [])]:
                continue
            name = p["name"]
            if path.endswith("/items") and name not in RESERVED:
                continue  # a layer's attribute: its values are ORed (below)
            schema = p.get("schema", {})
            values = [str(v) for v in schema.get("enum", [])] or ["1", "2"]
            if len(values) < 2 or method != "GET":
                continue
            once = await client.request(method, path, params={name: values[0]})
            if once.status_code == 400:
                continue  # not a value this parameter takes alone
            r = await client.request(method, path, params=[(name, values[0]), (name, values[1])])
            assert r.status_code == 400, (method, path, name, r.status_code, r.text[:300])
            assert f"query parameter {name!r} is given 2 different values" in r.json()["detail"]
            swept += 1
    assert swept > 20
    twice = [("commune", "EL-MAIZAL"), ("commune", "EL-MAIZAL"), ("limit", "2")]
    assert (await client.get(ITEMS, params=twice)).status_code == 200
    r = await client.get(ITEMS, params=[("commune", "EL-MAIZAL"), ("commune", "5-DE-MARZO")])
    assert r.status_code == 400 and "'commune'" in r.json()["detail"]
    # a layer's attributes may repeat: the values are ORed
    ored = [("tenure", "occupied"), ("tenure", "abandoned"), ("limit", "1000")]
    r = await client.get(ITEMS, params=ored)
    assert r.status_code == 200
    assert {f["properties"]["tenure"] for f in r.json()["features"]} == {"occupied", "abandoned"}
    # an analysis' own parameters are single too
    r = await client.get(
        "/communes/5-DE-MARZO/analyses/electricity-gaps",
        params=[("min_cluster_size", "3"), ("min_cluster_size", "4")],
    )
    assert r.status_code == 400 and "'min_cluster_size'" in r.json()["detail"]


async def test_every_route_takes_the_language_of_its_words(client: httpx.AsyncClient) -> None:
    """?lang= is every route's: a Spanish client adding lang=es to every call got a 400 from
    analyses and exports ("parámetros desconocidos ['lang']"), and an analysis' bad parameter
    stayed English. A language the server does not speak is refused, never ignored."""
    analysis = "/communes/5-DE-MARZO/analyses/water-hookups"
    r = await client.get(analysis, params={"f": "csv", "lang": "es"})
    assert r.status_code == 200, r.text
    r = await client.get(analysis, params={"budget_m": "-5", "lang": "es"})
    assert r.status_code == 400
    assert "«budget_m» debe ser mayor que 0" in r.json()["detail"], r.text
    r = await client.get(analysis, params={"budget_m": "-5", "lang": "en"})
    assert "budget_m: Input should be greater than 0" in r.json()["detail"], r.text
    r = await client.get(analysis, params={"nope": "1", "lang": "es"})
    assert "parámetro desconocido nope; este análisis toma" in r.json()["detail"], r.text
    assert "la ruta toma además f, lang" in r.json()["detail"], r.text
    for path in ("/conformance", "/collections/parcels/export", analysis, ITEMS):
        r = await client.get(path, params={"lang": "fr"})
        assert r.status_code == 400 and "es or en" in r.json()["detail"], (path, r.text)
        r = await client.get(path, params=[("lang", "es"), ("lang", "en")])
        assert r.status_code == 400 and "'lang'" in r.json()["detail"], (path, r.text)


async def test_a_search_posted_to_items_is_told_how_to_search(client: httpx.AsyncClient) -> None:
    """OWSLib's collection_items(cql=...) POSTs its search to /items with ?limit=: the answer
    named only the unknown parameter, which read as if the search had been understood."""
    body = {"op": "=", "args": [{"property": "tenure"}, "occupied"]}
    r = await client.post(ITEMS, params={"limit": 10}, json=body)
    assert r.status_code == 400
    assert (
        "a POST to items adds features: to search them, GET items with filter="
        in (r.json()["detail"])
    )
    r = await client.post(ITEMS, params={"limit": 10, "lang": "es"}, json=body)
    assert "parámetro desconocido 'limit'" in r.json()["detail"], r.text


async def test_every_documented_parameter_is_taken(client: httpx.AsyncClient) -> None:
    """The rule allows exactly what the OpenAPI document lists: each documented parameter,
    given a value no route accepts, is refused for its value, never as unknown."""
    for method, path, op in await operations(client):
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
        if not names:
            continue
        r = await client.request(method, path, params=dict.fromkeys(names, "x\u00e9"))
        assert "unknown query parameter" not in r.text, (method, path, r.text[:300])


# ---------------------------------------------------------------- formats: f and Accept


@pytest.mark.parametrize(
    ("path", "f", "media"),
    [
        (ITEMS, "json", "application/geo+json"),
        (ITEMS, "geojson", "application/geo+json"),
        (f"{ITEMS}/1", "geojson", "application/geo+json"),
        ("/collections", "json", "application/json"),
        ("/", "json", "application/json"),
        ("/collections/parcels/queryables", "json", "application/schema+json"),
        ("/maps/communes/EL-MAIZAL", "html", "text/html"),
    ],
)
async def test_f_names_the_format(client: httpx.AsyncClient, path: str, f: str, media: str) -> None:
    r = await client.get(path, params={"f": f}, headers={"Accept": "text/csv"})  # f wins
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(media)


@pytest.mark.parametrize(
    ("path", "f"),
    [
        (ITEMS, "xml"),
        (ITEMS, "bogus"),
        (f"{ITEMS}/1", "csv"),
        ("/collections", "geojson"),
        ("/conformance", "html"),
        ("/maps/communes/EL-MAIZAL", "json"),
        ("/tiles/parcels/12/1261/1948.pbf", "json"),
        ("/collections/parcels/export", "json"),
    ],
)
async def test_any_other_f_is_400(client: httpx.AsyncClient, path: str, f: str) -> None:
    r = await client.get(path, params={"f": f})
    assert r.status_code == 400, r.text
    assert "f" in r.json()["detail"]


async def test_an_accept_that_admits_nothing_we_serve_is_406(client: httpx.AsyncClient) -> None:
    for path, accept in [
        (ITEMS, "application/xml"),
        ("/conformance", "text/html"),
        (ITEMS, "application/geo+json;q=0, text/csv"),
        ("/collections", "text/csv"),
        ("/maps/national", "application/json"),
    ]:
        r = await client.get(path, headers={"Accept": accept})
        assert r.status_code == 406, (path, accept)
        assert r.headers["content-type"].startswith("application/problem+json")
    for path, accept in [
        (ITEMS, "application/geo+json, application/json"),  # QGIS
        (ITEMS, "application/json"),
        (ITEMS, "*/*"),
        (ITEMS, "application/*"),
        (ITEMS, "text/html"),  # the page (tests/test_pages.py)
        ("/collections", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("/collections/parcels/queryables", "application/schema+json"),
        ("/communes/EL-MAIZAL/analyses/land-recovery?f=csv", "text/csv"),
    ]:
        r = await client.get(path, headers={"Accept": accept})
        assert r.status_code == 200, (path, accept, r.text[:200])


# ---------------------------------------------------------------- ETag and If-None-Match


async def test_a_page_not_changed_since_is_304(client: httpx.AsyncClient) -> None:
    url = f"{ITEMS}?commune=EL-MAIZAL&limit=5"
    first = await client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["vary"] == first.headers["vary"]
    assert (await client.get(url, headers={"If-None-Match": f'"x", {etag}'})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304
    assert (await client.head(url, headers={"If-None-Match": etag})).status_code == 304
    # another page, another query: other ETags
    other = await client.get(f"{ITEMS}?commune=EL-MAIZAL&limit=5&offset=5")
    assert other.headers["etag"] != etag
    assert (await client.get(url, headers={"If-None-Match": '"stale"'})).status_code == 200
    # a write to the layer changes every page of it
    fid = first.json()["features"][0]["id"]
    patched = await client.patch(f"{ITEMS}/{fid}", json={"properties": {"code": "ETAG-1"}})
    assert patched.status_code == 200
    after = await client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert after.json()["features"][0]["properties"]["code"] == "ETAG-1"
    # the ETag read in the page's own statement (no If-None-Match) is the one asked first
    assert (await client.get(url)).headers["etag"] == after.headers["etag"]


async def test_page_etags_tell_readers_apart_where_what_they_read_differs(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    """Parcels' notes are read by their commune's users and admins only: an anonymous
    reader's page is another page, with another ETag; a 304 never hands one reader's page to
    another. The states read the same for everyone."""

    _, viewer = await accounts.add_user(conn, "etag-viewer", "viewer", ["EL-MAIZAL"])
    url = f"{ITEMS}?commune=EL-MAIZAL"
    tags = {}
    for who, token in (("anonymous", None), ("viewer", viewer), ("admin", admin_token)):
        async with api_client(conn, settings, token) as c:
            tags[who] = (
                (await c.get(url)).headers["etag"],
                (await c.get("/collections/states/items")).headers["etag"],
            )
    parcels = {who: t[0] for who, t in tags.items()}
    assert len(set(parcels.values())) == 3
    assert len({t[1] for t in tags.values()}) == 1
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.get(url, headers={"If-None-Match": parcels["admin"]})
        assert r.status_code == 200 and "notes" not in r.json()["features"][0]["properties"]


async def test_a_feature_not_changed_since_is_304(
    client: httpx.AsyncClient, conn: AsyncConnection, settings: Settings
) -> None:
    fid = (await client.get(ITEMS, params={"commune": "EL-MAIZAL", "limit": 1})).json()["features"][
        0
    ]["id"]
    url = f"{ITEMS}/{fid}"
    etag = (await client.get(url)).headers["etag"]
    assert etag.startswith(f'"{fid}.')
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    async with api_client(conn, settings) as anonymous:  # reads no notes: another ETag
        theirs = await anonymous.get(url, headers={"If-None-Match": etag})
        assert theirs.status_code == 200 and theirs.headers["etag"] != etag
    # the ETag is also what If-Match takes, however the client got it
    ok = await client.patch(
        url, json={"properties": {"code": "ETAG-2"}}, headers={"If-Match": f"W/{etag}"}
    )
    assert ok.status_code == 200
    stale = await client.patch(url, json={"properties": {"code": "X"}}, headers={"If-Match": etag})
    assert stale.status_code == 412
    now = (await client.get(url, headers={"If-None-Match": etag})).headers["etag"]
    assert now != etag
    # the parcel shows its commune's code: renaming the commune changes what it reads
    commune = (await client.get("/collections/communes/items?code=EL-MAIZAL")).json()
    cid = commune["features"][0]["id"]
    renamed = await client.patch(
        f"/collections/communes/items/{cid}", json={"properties": {"code": "EL-MAIZAL-2"}}
    )
    assert renamed.status_code == 200, renamed.text
    moved = await client.get(url, headers={"If-None-Match": now})
    assert moved.status_code == 200 and moved.json()["properties"]["commune"] == "EL-MAIZAL-2"


# ---------------------------------------------------------------- compression


async def test_big_json_bodies_are_gzipped_for_clients_that_accept_it(
    client: httpx.AsyncClient,
) -> None:
    url = f"{ITEMS}?limit=200"
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > 20_000
    packed = await client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.content == plain.content  # httpx decompressed it
    # a q of 0 refuses a coding (it was sent gzip anyway); * admits what is not named
    for header, gzipped in [
        ("gzip;q=0", False),
        ("gzip;q=0, identity", False),
        ("GZIP; Q=0.0", False),
        ("*;q=0, identity", False),
        ("br, *", True),
        ("gzip;q=0.5", True),
        ("*, gzip;q=0", False),
    ]:
        r = await client.get(url, headers={"Accept-Encoding": header})
        assert ("content-encoding" in r.headers) == gzipped, header
    assert "Accept-Encoding" in packed.headers["vary"] and "Authorization" in packed.headers["vary"]
    # the compressed page's ETag is weak; it still revalidates the page
    assert packed.headers["etag"] == plain.headers["etag"]
    again = await client.get(url, headers={"If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304
    # a feature's strong ETag turns weak once compressed, and If-Match still takes it
    big = (await client.get("/collections/communes/items?code=EL-MAIZAL")).json()["features"][0]
    one = f"/collections/communes/items/{big['id']}"
    strong = (await client.get(one, headers={"Accept-Encoding": "identity"})).headers["etag"]
    weak = await client.get(one, headers={"Accept-Encoding": "gzip"})
    assert weak.headers["content-encoding"] == "gzip" and weak.headers["etag"] == f"W/{strong}"
    ok = await client.patch(
        one, json={"properties": {"families": 700}}, headers={"If-Match": weak.headers["etag"]}
    )
    assert ok.status_code == 200, ok.text


async def test_small_bodies_and_images_go_as_they_are(client: httpx.AsyncClient) -> None:
    gz = {"Accept-Encoding": "gzip"}
    small = await client.get("/communes/EL-MAIZAL/dems", headers=gz)
    assert small.status_code == 200 and "content-encoding" not in small.headers
    problem = await client.get("/collections/nothing", headers=gz)
    assert "content-encoding" not in problem.headers
    png = await client.get("/communes/5-DE-MARZO/hillshade.png", headers=gz)
    assert png.status_code == 200 and "content-encoding" not in png.headers
    head = await client.head(f"{ITEMS}?limit=200", headers=gz)
    assert head.headers["content-encoding"] == "gzip" and head.content == b""


# ---------------------------------------------------------------- CORS


async def test_no_cors_unless_configured(client: httpx.AsyncClient) -> None:
    r = await client.get("/collections", headers={"Origin": "https://visor.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = await client.options(
        ITEMS,
        headers={"Origin": "https://visor.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers


async def test_cors_for_the_configured_origins(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    allowed = settings.model_copy(update={"cors_origins": ["https://visor.comuna.example"]})
    async with api_client(conn, allowed, admin_token) as c:
        page = await c.get(ITEMS, headers={"Origin": "https://visor.comuna.example"})
        assert page.headers["access-control-allow-origin"] == "https://visor.comuna.example"
        assert "ETag" in page.headers["access-control-expose-headers"]
        assert "Origin" in page.headers["vary"]
        pre = await c.options(
            f"{ITEMS}/1",
            headers={
                "Origin": "https://visor.comuna.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, if-match",
            },
        )
        assert pre.status_code == 200
        assert "PATCH" in pre.headers["access-control-allow-methods"]
        assert "if-match" in pre.headers["access-control-allow-headers"].lower()
        other = await c.get(ITEMS, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        refused = await c.post(
            ITEMS, content=b"{}", headers={"Origin": "https://visor.comuna.example"}
        )
        assert refused.status_code == 400  # errors can be read by the page too
        assert refused.headers["access-control-allow-origin"] == "https://visor.comuna.example"
    anyone = settings.model_copy(update={"cors_origins": ["*"]})
    async with api_client(conn, anyone) as c:
        r = await c.get("/collections", headers={"Origin": "https://any.example"})
        assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("origin", ["visor.example", "https://*.example", "https://a.b/path", ""])
def test_a_bad_cors_origin_is_refused_at_start(origin: str) -> None:
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="cors_origins"):
        Settings(cors_origins=[origin])


def test_f_names_any_format_a_route_serves() -> None:
    """A route serving JSON and a page (as collections will) takes f=json and f=html; one
    whose own parameter picks the format (exports' format) takes no f."""
    from geo_comuna.api.parameters import f_values

    class Both:
        responses = {200: {"content": {"application/json": {}, "text/html": {}}}}
        response_class = None

    assert f_values(Both, "GET", frozenset()) == ["json", "html"]
    assert f_values(Both, "GET", frozenset({"format"})) == []
    assert f_values(Both, "POST", frozenset()) == []


async def test_refusals_found_english_only_are_said_in_spanish_too(
    conn: AsyncConnection, settings: Settings
) -> None:
    """Found from outside: a missing feature's page in Spanish read 'capa parcels: no feature
    999999'; a reversed datetime interval, an unknown analysis, the admin-only refusal and
    a body over the limit were English only, also with ?lang=es."""
    small = settings.model_copy(update={"max_body_bytes": 2048})
    async with api_client(conn, small) as client:
        page = await client.get(
            "/collections/parcels/items/999999", params={"f": "html", "lang": "es"}
        )
        assert page.status_code == 404 and "no existe la entidad 999999" in page.text
        assert "no feature" not in page.text
        for path, params, spanish in (
            (
                "/collections/parcels/items",
                {"datetime": "2021-01-01/2020-01-01"},
                "el intervalo termina antes de empezar",
            ),
            ("/communes/EL-MAIZAL/analyses/no-such", {}, "no hay ningún análisis llamado"),
            ("/collections/parcels/items", {"bbox": "a,b,c,d"}, "debe ser de números"),
            # and more, found in a reading of the code for English-only refusals
            (
                "/collections/parcels/items",
                {"offset": "10", "after": "3"},
                "nombran dos comienzos",
            ),
            ("/collections/water_mains/items", {"datetime": "2021-01-01"}, "no tiene fecha"),
            ("/collections/parties/items", {"bbox": "0,0,1,1"}, "no tienen geometría"),
            (
                "/collections/parties/items",
                {"crs": "http://www.opengis.net/def/crs/EPSG/0/2202"},
                "no tienen geometría",
            ),
            ("/maps/communes/EL-MAIZAL/no-such-analysis", {"x": "1"}, "parámetros desconocidos"),
        ):
            r = await client.get(path, params={**params, "lang": "es"})
            assert spanish in r.json()["detail"], (path, r.text)
        r = await client.post(
            "/collections/parcels/items", params={"lang": "es"}, content=b"x" * 4096
        )
        assert r.status_code == 413 and "supera el límite" in r.json()["detail"], r.text
        # a parameter's and the router's own refusals have Spanish titles too (found from
        # outside: "invalid parameter", and a 405's "http error", "Method Not Allowed")
        r = await client.get("/collections/parcels/items", params={"limit": "abc", "lang": "es"})
        assert r.status_code == 400 and r.json()["title"] == "parámetro no válido", r.text
        assert r.headers["content-language"] == "es"
        r = await client.delete("/collections", params={"lang": "es"})
        assert r.status_code == 405 and r.json()["title"] == "método no permitido", r.text
        assert "Method Not Allowed" not in r.text and "allow" in r.headers


async def test_only_tiles_anyone_reads_alike_are_for_any_site(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    """Found from outside: every tile said Access-Control-Allow-Origin: *, whatever
    GEO_COMUNA_CORS_ORIGINS said; docs/security.md names the one exception it keeps: a
    public tile that every reader reads alike."""
    origin = {"Origin": "https://evil.example"}
    public = await client.get("/tiles/parcels/0/0/0.pbf", headers=origin)
    assert public.status_code == 200 and public.headers["access-control-allow-origin"] == "*"
    homes = await client.get("/tiles/dwellings/0/0/0.pbf", headers=origin)
    assert homes.status_code == 200 and "private" in homes.headers["cache-control"]
    assert "access-control-allow-origin" not in homes.headers
    closed = settings.model_copy(update={"reads": "token"})
    _, viewer = await accounts.add_user(conn, "tile-viewer", "viewer", [])
    async with api_client(conn, closed, viewer) as c:
        tile = await c.get("/tiles/parcels/0/0/0.pbf", headers=origin)
        assert tile.status_code == 200 and "access-control-allow-origin" not in tile.headers


async def test_a_problems_title_is_in_the_language_asked(client: httpx.AsyncClient) -> None:
    """Found from outside: "title": "not found" above a Spanish detail. The type stays the
    code's, what a program goes by."""
    from geo_comuna.errors import NotFound

    es = (await client.get("/collections/nope", params={"lang": "es"})).json()
    en = (await client.get("/collections/nope", params={"lang": "en"})).json()
    assert es["type"] == en["type"] == "urn:geo-comuna:problem:not-found"
    assert (es["title"], en["title"]) == (NotFound.title_es, "not found")
