"""The OGC API - Features requirements geo_comuna implements, one test per requirement id:
Part 1 (Core, GeoJSON, OpenAPI 3.0), Part 2 (CRS by reference), Part 3 (queryables, filter)
and Part 4 (create/replace/delete, update, ETags; ids of the 20-002 draft). Each test's name
is its id; its docstring the requirement's URI. Run in-process on the test's connection,
rolled back at its end."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection
from pyproj import Transformer

from geo_comuna.layers import LAYERS
from geo_comuna.layers.tenure import COLLECTIONS as RECORDS
from tests.factories import feature

pytestmark = pytest.mark.anyio
GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
UTM19 = "http://www.opengis.net/def/crs/EPSG/0/2202"  # REGVEN / UTM zone 19N
#: the Venezuelan CRSs every collection offers (README, Import and export)
VENEZUELA = [4326, 4189, 2201, 2202, 2203, 4248, *range(24817, 24822)]
PART1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
PART2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
EL_MAIZAL = (-69.2, 9.6, -69.1, 9.75)
#: every collection GET /collections lists: the layers, then the land records (parties,
#: rights; api/tenure.py). Every sweep below runs over all of them.
COLLECTIONS = [*LAYERS, *RECORDS]
#: collections whose features have no geometry (a party has no place of its own): they have
#: no spatial extent and list CRS84 alone, since there are no coordinates to give in another
NO_GEOMETRY = {"parties"}
#: the stored geometries of each collection with one, to check its extent against
GEOMETRIES = {name: f"SELECT geom FROM {name}" for name in LAYERS} | {
    "rights": "SELECT pc.geom FROM rights r JOIN parcels pc ON pc.id = r.parcel_id"
}


async def conforms_to(client: httpx.AsyncClient) -> list[str]:
    return (await client.get("/conformance")).json()["conformsTo"]


async def items(client: httpx.AsyncClient, layer: str = "parcels", **params: object) -> dict:
    r = await client.get(f"/collections/{layer}/items", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def ids_where(conn: AsyncConnection, query: str, *params: object) -> list[int]:
    cur = await conn.execute(query, params)
    return sorted(i for (i,) in await cur.fetchall())


async def openapi_items(client: httpx.AsyncClient, layer: str = "parcels") -> dict[str, dict]:
    doc = (await client.get("/openapi.json")).json()
    out = {}
    for p in doc["paths"][f"/collections/{layer}/items"]["get"]["parameters"]:
        if "$ref" in p:
            p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out[p["name"]] = p
    return out


# -- Part 1: Core ----------------------------------------------------------------------------


async def test_core_root_op(client: httpx.AsyncClient) -> None:
    """/req/core/root-op"""
    assert (await client.get("/")).status_code == 200


async def test_core_root_success(client: httpx.AsyncClient) -> None:
    """/req/core/root-success"""
    rels = {link["rel"] for link in (await client.get("/")).json()["links"]}
    assert {"service-desc", "service-doc", "conformance", "data"} <= rels


async def test_core_api_definition_op(client: httpx.AsyncClient) -> None:
    """/req/core/api-definition-op"""
    link = next(x for x in (await client.get("/")).json()["links"] if x["rel"] == "service-desc")
    r = await client.get(link["href"], headers={"Accept": link["type"]})
    assert r.status_code == 200


async def test_core_api_definition_success(client: httpx.AsyncClient) -> None:
    """/req/core/api-definition-success"""
    r = await client.get("/openapi.json")
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert r.json()["openapi"].startswith("3.0.")


async def test_core_conformance_op(client: httpx.AsyncClient) -> None:
    """/req/core/conformance-op"""
    assert (await client.get("/conformance")).status_code == 200


async def test_core_conformance_success(client: httpx.AsyncClient) -> None:
    """/req/core/conformance-success"""
    declared = await conforms_to(client)
    assert {f"{PART1}core", f"{PART1}geojson", f"{PART1}oas30"} <= set(declared)


async def test_core_query_param_unknown(client: httpx.AsyncClient) -> None:
    """/req/core/query-param-unknown"""
    r = await client.get("/collections/parcels/items", params={"colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["detail"]


async def test_core_query_param_invalid(client: httpx.AsyncClient) -> None:
    """/req/core/query-param-invalid"""
    for bad in ({"limit": "many"}, {"bbox": "1,2,3"}, {"tenure": "stolen"}):
        r = await client.get("/collections/parcels/items", params=bad)
        assert r.status_code == 400, (bad, r.text)


async def test_core_fc_md_op(client: httpx.AsyncClient) -> None:
    """/req/core/fc-md-op"""
    assert (await client.get("/collections")).status_code == 200


async def test_core_fc_md_success(client: httpx.AsyncClient) -> None:
    """/req/core/fc-md-success"""
    body = (await client.get("/collections")).json()
    assert "self" in {link["rel"] for link in body["links"]}
    assert [c["id"] for c in body["collections"]] == COLLECTIONS


async def test_core_fc_md_links(client: httpx.AsyncClient) -> None:
    """/req/core/fc-md-links"""
    for c in (await client.get("/collections")).json()["collections"]:
        types = {link["type"] for link in c["links"] if link["rel"] == "items"}
        assert GEOJSON in types, c["id"]


async def test_core_fc_md_items(client: httpx.AsyncClient) -> None:
    """/req/core/fc-md-items"""
    for c in (await client.get("/collections")).json()["collections"]:
        assert c["id"] and c["links"] and c["itemType"] == "feature"


async def test_core_fc_md_items_links(client: httpx.AsyncClient) -> None:
    """/req/core/fc-md-items-links"""
    for c in (await client.get("/collections")).json()["collections"]:
        href = next(x["href"] for x in c["links"] if x["rel"] == "items")
        assert href.endswith(f"/collections/{c['id']}/items")


async def test_core_fc_md_extent(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/core/fc-md-extent"""
    for c in (await client.get("/collections")).json()["collections"]:
        if c["id"] in NO_GEOMETRY:  # no geometry: no spatial extent to state
            assert "spatial" not in c.get("extent", {}), c
            continue
        cur = await conn.execute(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent(geom) e FROM ({GEOMETRIES[c['id']]}) g) x"
        )
        stored = await cur.fetchone()
        if stored[0] is None:
            continue
        w, s, e, n = c["extent"]["spatial"]["bbox"][0]
        assert c["extent"]["spatial"]["crs"] == CRS84
        assert w <= stored[0] + 1e-6 and s <= stored[1] + 1e-6, c["id"]
        assert e >= stored[2] - 1e-6 and n >= stored[3] - 1e-6, c["id"]


async def test_core_sfc_md_op(client: httpx.AsyncClient) -> None:
    """/req/core/sfc-md-op"""
    for name in COLLECTIONS:
        assert (await client.get(f"/collections/{name}")).status_code == 200


async def test_core_sfc_md_success(client: httpx.AsyncClient) -> None:
    """/req/core/sfc-md-success"""
    listed = {c["id"]: c for c in (await client.get("/collections")).json()["collections"]}
    for name in COLLECTIONS:
        assert (await client.get(f"/collections/{name}")).json() == listed[name]


async def test_core_fc_op(client: httpx.AsyncClient) -> None:
    """/req/core/fc-op"""
    for name in COLLECTIONS:
        await items(client, name, limit=1)


async def test_core_fc_limit_definition(client: httpx.AsyncClient) -> None:
    """/req/core/fc-limit-definition"""
    limit = (await openapi_items(client))["limit"]
    assert limit["schema"]["type"] == "integer" and limit["schema"]["minimum"] == 1
    assert {"maximum", "default"} <= set(limit["schema"])


async def test_core_fc_limit_response(client: httpx.AsyncClient) -> None:
    """/req/core/fc-limit-response (1.0.1: a limit above the maximum is no error, it is
    read as the maximum)"""
    assert len((await items(client, limit=3))["features"]) == 3
    maximum = (await openapi_items(client))["limit"]["schema"]["maximum"]
    page = await items(client, limit=maximum + 1)
    assert page["numberReturned"] <= maximum


async def test_core_fc_bbox_definition(client: httpx.AsyncClient) -> None:
    """/req/core/fc-bbox-definition"""
    bbox = (await openapi_items(client))["bbox"]
    assert (bbox["style"], bbox["explode"], bbox["schema"]["type"]) == ("form", False, "array")


async def test_core_fc_bbox_response(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/core/fc-bbox-response"""
    page = await items(client, bbox=",".join(map(str, EL_MAIZAL)), limit=1000)
    assert sorted(f["id"] for f in page["features"]) == await ids_where(
        conn,
        "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
        *EL_MAIZAL,
    )


async def test_core_fc_bbox_response_rights(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """/req/core/fc-bbox-response, on rights: a right is drawn as its parcel, so bbox picks
    the rights on parcels that intersect it"""
    page = await items(client, "rights", bbox=",".join(map(str, EL_MAIZAL)), limit=1000)
    expected = await ids_where(
        conn,
        "SELECT r.id FROM rights r JOIN parcels pc ON pc.id = r.parcel_id "
        "WHERE ST_Intersects(pc.geom, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
        *EL_MAIZAL,
    )
    assert sorted(f["id"] for f in page["features"]) == expected and expected
    far = await items(client, "rights", bbox="-60,1,-59.9,1.1")
    assert far["numberMatched"] == 0 and far["features"] == []


async def test_core_fc_bbox_on_no_geometry_is_refused(client: httpx.AsyncClient) -> None:
    """/req/core/query-param-invalid, for a collection without geometry: bbox cannot apply
    to parties, and the 400 says why and where to ask instead"""
    r = await client.get("/collections/parties/items", params={"bbox": "-70,9,-69,10"})
    assert r.status_code == 400
    assert "no geometry" in r.json()["detail"] and "rights" in r.json()["detail"]
    r = await client.get("/collections/parties/items", params={"crs": UTM19})
    assert r.status_code == 400 and "no geometry" in r.json()["detail"]


async def test_core_fc_time_definition(client: httpx.AsyncClient) -> None:
    """/req/core/fc-time-definition"""
    assert (await openapi_items(client))["datetime"]["schema"]["type"] == "string"
    await items(client, datetime="2015-01-01/2016-12-31")


async def test_core_fc_time_response(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/core/fc-time-response"""
    page = await items(client, datetime="2015-01-01/2016-12-31", limit=1000)
    expected = await ids_where(
        conn, "SELECT id FROM parcels WHERE recovered_on BETWEEN '2015-01-01' AND '2016-12-31'"
    )
    assert sorted(f["id"] for f in page["features"]) == expected and expected


async def test_core_fc_response(client: httpx.AsyncClient) -> None:
    """/req/core/fc-response"""
    page = await items(client, limit=5)
    assert page["type"] == "FeatureCollection" and len(page["features"]) == 5


async def test_core_fc_links(client: httpx.AsyncClient) -> None:
    """/req/core/fc-links"""
    page = await items(client, limit=5)
    rels = {link["rel"] for link in page["links"]}
    assert {"self", "next"} <= rels
    last = await items(client, limit=5, offset=page["numberMatched"] - 1)
    assert "next" not in {link["rel"] for link in last["links"]}


async def test_core_fc_links_rights(client: httpx.AsyncClient) -> None:
    """/req/core/fc-links, on rights: following next links reads every right once"""
    page = await items(client, "rights", limit=2)
    seen = [f["id"] for f in page["features"]]
    while nxt := next((x["href"] for x in page["links"] if x["rel"] == "next"), None):
        r = await client.get(nxt.replace("http://testserver", ""))
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [f["id"] for f in page["features"]]
    assert len(seen) == len(set(seen)) == page["numberMatched"] > 2


async def test_core_fc_rel_type(client: httpx.AsyncClient) -> None:
    """/req/core/fc-rel-type"""
    page = await items(client, limit=5, offset=5)
    for link in page["links"]:
        if link["rel"] in ("self", "next", "prev"):
            assert link["type"] == GEOJSON, link


async def test_core_fc_numbermatched(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/core/fc-numberMatched"""
    total = len(await ids_where(conn, "SELECT id FROM parcels WHERE tenure = 'occupied'"))
    assert (await items(client, tenure="occupied", limit=1))["numberMatched"] == total


async def test_core_fc_numberreturned(client: httpx.AsyncClient) -> None:
    """/req/core/fc-numberReturned"""
    page = await items(client, limit=7)
    assert page["numberReturned"] == len(page["features"]) == 7


async def test_geojson_definition(client: httpx.AsyncClient) -> None:
    """/req/geojson/definition"""
    r = await client.get("/collections/parcels/items?limit=1")
    assert r.headers["content-type"].startswith(GEOJSON)
    fid = r.json()["features"][0]["id"]
    one = await client.get(f"/collections/parcels/items/{fid}")
    assert one.headers["content-type"].startswith(GEOJSON)


async def test_geojson_content(client: httpx.AsyncClient) -> None:
    """/req/geojson/content"""
    for name in COLLECTIONS:
        page = (await items(client, name, limit=3))["features"]
        assert page, name  # the sample holds features of every collection
        for f in page:
            assert f["type"] == "Feature" and {"id", "geometry", "properties"} <= set(f)
            if name in RECORDS:  # (a layer's members-only positions are null too)
                assert (f["geometry"] is None) == (name in NO_GEOMETRY), (name, f)


async def test_oas30_oas_definition_1(client: httpx.AsyncClient) -> None:
    """/req/oas30/oas-definition-1"""
    accept = "application/vnd.oai.openapi+json;version=3.0"
    r = await client.get("/openapi.json", headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == accept


async def test_oas30_oas_definition_2(client: httpx.AsyncClient) -> None:
    """/req/oas30/oas-definition-2"""
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


async def test_oas30_completeness(client: httpx.AsyncClient) -> None:
    """/req/oas30/completeness: every resource of the API is in the document"""
    doc = (await client.get("/openapi.json")).json()
    for path in ("/", "/conformance", "/collections", "/collections/{collection_id}"):
        assert path in doc["paths"], path
    for name in COLLECTIONS:
        assert f"/collections/{name}/items" in doc["paths"]
        assert f"/collections/{name}/items/{{feature_id}}" in doc["paths"]


async def test_oas30_exceptions_codes(client: httpx.AsyncClient) -> None:
    """/req/oas30/exceptions-codes"""
    doc = (await client.get("/openapi.json")).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert any(code.startswith("4") for code in op["responses"]), (method, path)


async def test_oas30_oas_impl(client: httpx.AsyncClient) -> None:
    """/req/oas30/oas-impl: what the document describes answers"""
    doc = (await client.get("/openapi.json")).json()
    for path, item in doc["paths"].items():
        if "get" in item and "{" not in path and path.startswith("/collections"):
            r = await client.get(path, params={"limit": 1} if path.endswith("/items") else {})
            assert r.status_code == 200, (path, r.text)


async def test_oas30_security(client: httpx.AsyncClient) -> None:
    """/req/oas30/security"""
    doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    post = doc["paths"]["/collections/parcels/items"]["post"]
    assert post["security"] == [{"bearerAuth": []}]


# -- Part 2: Coordinate Reference Systems by Reference ---------------------------------------


async def test_crs_crs_uri(client: httpx.AsyncClient) -> None:
    """/req/crs/crs-uri"""
    for c in (await client.get("/collections")).json()["collections"]:
        assert all(uri.startswith("http://www.opengis.net/def/crs/") for uri in c["crs"])


async def test_crs_fc_md_crs_list(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-md-crs-list: every collection offers the Venezuelan CRSs"""
    assert PART2 in await conforms_to(client)
    wanted = {f"http://www.opengis.net/def/crs/EPSG/0/{code}" for code in VENEZUELA}
    for c in (await client.get("/collections")).json()["collections"]:
        if c["id"] in NO_GEOMETRY:  # no coordinates: nothing to give in another CRS
            assert c["crs"] == [CRS84], c
            continue
        assert CRS84 in c["crs"] and wanted <= set(c["crs"]), c["id"]


async def test_crs_fc_md_storagecrs(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-md-storageCrs"""
    for c in (await client.get("/collections")).json()["collections"]:
        assert c["storageCrs"] in c["crs"]


async def test_crs_fc_crs_definition(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-crs-definition"""
    assert (await openapi_items(client))["crs"]["schema"]["format"] == "uri"


async def test_crs_fc_crs_valid_value(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-crs-valid-value"""
    r = await client.get("/collections/parcels/items", params={"crs": "urn:nowhere"})
    assert r.status_code == 400, r.text
    await items(client, crs=UTM19, limit=1)


async def test_crs_fc_crs_action(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-crs-action: coordinates in the asked CRS (axis order as EPSG says)"""
    plain = await items(client, "facilities", limit=5)
    utm = await items(client, "facilities", limit=5, crs=UTM19)
    to_utm = Transformer.from_crs(4326, 2202, always_xy=True)
    for a, b in zip(plain["features"], utm["features"], strict=True):
        x, y = to_utm.transform(*a["geometry"]["coordinates"])
        bx, by = b["geometry"]["coordinates"]
        assert abs(bx - x) < 0.01 and abs(by - y) < 0.01, (a, b)


async def test_crs_fc_bbox_crs_definition(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-bbox-crs-definition"""
    assert (await openapi_items(client))["bbox-crs"]["schema"]["format"] == "uri"


async def test_crs_fc_bbox_crs_valid_values(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-bbox-crs-valid-values"""
    bad = {"bbox": "1,2,3,4", "bbox-crs": "urn:nowhere"}
    assert (await client.get("/collections/parcels/items", params=bad)).status_code == 400


async def test_a_crs_for_a_bbox_or_filter_not_given_is_400(client: httpx.AsyncClient) -> None:
    """bbox-crs without a bbox, filter-crs without a filter: a parameter that would be
    ignored, so a 400 naming it (it answered every parcel)."""
    items = "/collections/parcels/items"
    crs = "http://www.opengis.net/def/crs/EPSG/0/2202"
    for name in ("bbox-crs", "filter-crs"):
        r = await client.get(items, params={name: crs})
        assert r.status_code == 400, (name, r.text)
        assert f"{name} says the CRS of" in r.json()["detail"]
    both = {"bbox": "400000,1000000,500000,1100000", "bbox-crs": crs}
    assert (await client.get(items, params=both)).status_code == 200


async def test_crs_fc_bbox_crs_action(client: httpx.AsyncClient) -> None:
    """/req/crs/fc-bbox-crs-action: a bbox in REGVEN / UTM 19N selects what its CRS84
    equivalent does"""
    to_utm = Transformer.from_crs(4326, 2202, always_xy=True)
    w, s = to_utm.transform(EL_MAIZAL[0], EL_MAIZAL[1])
    e, n = to_utm.transform(EL_MAIZAL[2], EL_MAIZAL[3])
    utm = await items(client, limit=1000, bbox=f"{w},{s},{e},{n}", **{"bbox-crs": UTM19})
    assert utm["numberMatched"] > 0


async def test_crs_fc_crs_action_rights(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/crs/fc-crs-action, on rights: the parcel's ring in REGVEN / UTM 19N as PostGIS
    transforms it, and a bbox in it selects what its CRS84 equivalent does"""
    utm = await items(client, "rights", limit=3, crs=UTM19)
    for f in utm["features"]:
        cur = await conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointN(ST_ExteriorRing("
            "ST_GeometryN(geom, 1)), 1), 2202) p FROM parcels WHERE id = %s) x",
            (f["properties"]["parcel"],),
        )
        x, y = await cur.fetchone()
        bx, by = f["geometry"]["coordinates"][0][0][0]
        assert abs(bx - x) < 0.01 and abs(by - y) < 0.01, f["id"]
    to_utm = Transformer.from_crs(4326, 2202, always_xy=True)
    w, s = to_utm.transform(EL_MAIZAL[0], EL_MAIZAL[1])
    e, n = to_utm.transform(EL_MAIZAL[2], EL_MAIZAL[3])
    r = await client.get(
        "/collections/rights/items",
        params={"bbox": f"{w},{s},{e},{n}", "bbox-crs": UTM19, "limit": 1000},
    )
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{CRS84}>"
    plain = await items(client, "rights", bbox=",".join(map(str, EL_MAIZAL)), limit=1000)
    assert r.json()["numberMatched"] == plain["numberMatched"] > 0


async def test_crs_ogc_crs_header(client: httpx.AsyncClient) -> None:
    """/req/crs/ogc-crs-header"""
    r = await client.get("/collections/parcels/items", params={"crs": UTM19, "limit": 1})
    assert "content-crs" in r.headers, dict(r.headers)


async def test_crs_ogc_crs_header_value(client: httpx.AsyncClient) -> None:
    """/req/crs/ogc-crs-header-value"""
    r = await client.get("/collections/parcels/items", params={"crs": UTM19, "limit": 1})
    assert r.headers.get("content-crs") == f"<{UTM19}>"


# -- Part 3: Filtering -----------------------------------------------------------------------


async def test_queryables_get_queryables_op(client: httpx.AsyncClient) -> None:
    """/req/queryables/get-queryables-op"""
    for name in COLLECTIONS:
        assert (await client.get(f"/collections/{name}/queryables")).status_code == 200


async def test_queryables_get_queryables_response(client: httpx.AsyncClient) -> None:
    """/req/queryables/get-queryables-response"""
    r = await client.get("/collections/parcels/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    body = r.json()
    assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert body["$id"].endswith("/collections/parcels/queryables")
    assert body["type"] == "object" and "tenure" in body["properties"]


QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"


async def test_queryables_queryables_link(client: httpx.AsyncClient) -> None:
    """/req/queryables/queryables-link"""
    rel = QUERYABLES
    for c in (await client.get("/collections")).json()["collections"]:
        assert rel in {link["rel"] for link in c["links"]}, c["id"]


async def test_queryables_query_parameters_parameters(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """/req/queryables-query-parameters/parameters: each queryable, a query parameter"""
    declared = await openapi_items(client)
    queryables = (await client.get("/collections/parcels/queryables")).json()["properties"]
    for name in queryables:
        if name not in ("geometry", "recovered_on"):  # a date is datetime's
            assert name in declared, name
    page = await items(client, land_use="crops", limit=1000)
    assert sorted(f["id"] for f in page["features"]) == await ids_where(
        conn, "SELECT id FROM parcels WHERE land_use = 'crops'"
    )


async def test_queryables_every_collection_has_its_schema_and_filters(
    client: httpx.AsyncClient,
) -> None:
    """/req/queryables/get-queryables-response and Part 5's schema link, for every
    collection: each queryable but the geometry (bbox's) and dates (datetime's) is a query
    parameter of the items the OpenAPI document declares"""
    doc = (await client.get("/openapi.json")).json()
    for c in (await client.get("/collections")).json()["collections"]:
        links = {link["rel"]: link["href"] for link in c["links"]}
        schema = await client.get(links["http://www.opengis.net/def/rel/ogc/1.0/schema"])
        assert schema.status_code == 200, c["id"]
        assert schema.headers["content-type"].startswith("application/schema+json")
        props = schema.json()["properties"]
        assert ("geometry" in props) == (c["id"] not in NO_GEOMETRY), c["id"]
        if c["id"] not in RECORDS:
            continue  # the layers' parameters: test_queryables_query_parameters_parameters
        declared = {
            p["name"] for p in doc["paths"][f"/collections/{c['id']}/items"]["get"]["parameters"]
        }
        queryables = (await client.get(links[QUERYABLES])).json()["properties"]
        for name in queryables:
            if name != "geometry":
                assert name in declared, (c["id"], name)


async def test_filter_filter_param(client: httpx.AsyncClient) -> None:
    """/req/filter/filter-param"""
    assert f"{PART3}filter" in await conforms_to(client)
    await items(client, filter="tenure = 'occupied'")


async def test_filter_filter_lang_param(client: httpx.AsyncClient) -> None:
    """/req/filter/filter-lang-param"""
    text = await items(client, filter="tenure = 'occupied'", **{"filter-lang": "cql2-text"})
    as_json = '{"op": "=", "args": [{"property": "tenure"}, "occupied"]}'
    cql = await items(client, filter=as_json, **{"filter-lang": "cql2-json"})
    assert text["numberMatched"] == cql["numberMatched"] > 0
    bad = {"filter": "tenure = 'occupied'", "filter-lang": "sql"}
    assert (await client.get("/collections/parcels/items", params=bad)).status_code == 400


async def test_filter_filter_crs_param(client: httpx.AsyncClient) -> None:
    """/req/filter/filter-crs-param"""
    to_utm = Transformer.from_crs(4326, 2202, always_xy=True)
    w, s = to_utm.transform(EL_MAIZAL[0], EL_MAIZAL[1])
    e, n = to_utm.transform(EL_MAIZAL[2], EL_MAIZAL[3])
    cql = f"S_INTERSECTS(geometry, BBOX({w}, {s}, {e}, {n}))"
    page = await items(client, filter=cql, **{"filter-crs": UTM19})
    assert page["numberMatched"] > 0


async def test_filter_response(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """/req/filter/response"""
    cql = "tenure = 'occupied' AND recovered_on >= DATE('2015-01-01')"
    page = await items(client, filter=cql, limit=1000)
    expected = await ids_where(
        conn, "SELECT id FROM parcels WHERE tenure = 'occupied' AND recovered_on >= '2015-01-01'"
    )
    assert sorted(f["id"] for f in page["features"]) == expected and expected


# -- Part 4: Create, Replace, Update and Delete ----------------------------------------------


async def created(client: httpx.AsyncClient) -> str:
    body = feature(LAYERS["facilities"], commune="EL-MAIZAL", lon=-69.145, lat=9.695)
    r = await client.post("/collections/facilities/items", json=body)
    assert r.status_code == 201, r.text
    return r.headers["location"].replace("http://testserver", "")


async def test_create_replace_delete_insert_post_op(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/insert-post-op"""
    await created(client)


async def test_create_replace_delete_insert_response(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/insert-response"""
    where = await created(client)
    assert (await client.get(where)).status_code == 200


async def test_create_replace_delete_update_put_put_op(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/update-put-put-op"""
    where = await created(client)
    body = feature(LAYERS["facilities"], commune="EL-MAIZAL", lon=-69.145, lat=9.695)
    assert (await client.put(where, json=body)).status_code in (200, 204)


async def test_create_replace_delete_put_response(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/put-response"""
    where = await created(client)
    body = feature(LAYERS["facilities"], commune="EL-MAIZAL", name="Escuela")
    body["geometry"] = {"type": "Point", "coordinates": [-69.146, 9.696]}
    r = await client.put(where, json=body)
    assert r.status_code in (200, 204)
    assert (await client.get(where)).json()["properties"]["name"] == "Escuela"


async def test_create_replace_delete_delete_op(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/delete-op"""
    where = await created(client)
    assert (await client.delete(where)).status_code in (200, 204)


async def test_create_replace_delete_delete_response(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/delete-response"""
    where = await created(client)
    assert (await client.delete(where)).status_code in (200, 204)
    assert (await client.get(where)).status_code == 404


async def test_create_replace_delete_options_op(client: httpx.AsyncClient) -> None:
    """/req/create-replace-delete/options-op"""
    where = await created(client)
    for path, wanted in (
        ("/collections/facilities/items", {"GET", "POST"}),
        (where, {"GET", "PUT", "PATCH", "DELETE"}),
    ):
        r = await client.options(path)
        assert r.status_code in (200, 204), r.text
        assert wanted <= {m.strip() for m in r.headers["allow"].split(",")}


async def test_update_update_patch_op(client: httpx.AsyncClient) -> None:
    """/req/update/update-patch-op"""
    where = await created(client)
    r = await client.patch(where, json={"properties": {"name": "Consultorio"}})
    assert r.status_code in (200, 204)


async def test_update_update_patch_response(client: httpx.AsyncClient) -> None:
    """/req/update/update-patch-response"""
    where = await created(client)
    await client.patch(where, json={"properties": {"name": "Consultorio"}})
    assert (await client.get(where)).json()["properties"]["name"] == "Consultorio"


async def test_optimistic_locking_etags_get_etag_response(client: httpx.AsyncClient) -> None:
    """/req/optimistic-locking-etags/get-etag-response"""
    where = await created(client)
    assert (await client.get(where)).headers["etag"]


async def test_optimistic_locking_etags_ifmatch_put_eval(client: httpx.AsyncClient) -> None:
    """/req/optimistic-locking-etags/ifmatch-put-eval"""
    where = await created(client)
    etag = (await client.get(where)).headers["etag"]
    await client.patch(where, json={"properties": {"name": "Otro"}})
    body = feature(LAYERS["facilities"], commune="EL-MAIZAL", lon=-69.145, lat=9.695)
    r = await client.put(where, json=body, headers={"If-Match": etag})
    assert r.status_code == 412, r.text
