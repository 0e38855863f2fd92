"""The OpenAPI document (api/openapi.py): 3.0.3 and valid, every layer's own paths with its
parameters and bodies, the server's limit, a Bearer scheme, and the problem responses each
operation really sends. Bodies the server writes and takes are checked against its schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api.app import create_app
from geo_comuna.api.openapi import OPENAPI_TYPE, SPANISH, SPOKEN, document
from geo_comuna.layers import LAYERS
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.factories import feature

pytestmark = pytest.mark.anyio
WRITES = ("post", "put", "patch", "delete")


def doc_of(settings: Settings) -> dict[str, Any]:
    return document(create_app(settings), settings)


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _at(doc, node["$ref"])
    return node


def _at(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def params(doc: dict[str, Any], op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An operation's parameters by name, references resolved."""
    out = {}
    for p in op.get("parameters", []):
        p = _at(doc, p["$ref"]) if "$ref" in p else p
        out[p["name"]] = p
    return out


def conforms(doc: dict[str, Any], instance: Any, schema_name: str) -> None:
    """``instance`` is valid against #/components/schemas/<schema_name> (OpenAPI 3.0)."""
    schema = {"components": doc["components"], "allOf": [_ref(schema_name)]}
    OAS30Validator(schema).validate(instance)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The documented operation a request to ``path`` reaches (concrete paths first, as
    OpenAPI matches them)."""
    candidates = sorted(doc["paths"], key=lambda p: p.count("{"))
    for template in candidates:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method in doc["paths"][template]:
            return doc["paths"][template][method]
    raise AssertionError(f"{method.upper()} {path} is not in the document")


# -- the document ----------------------------------------------------------------------------


async def test_served_as_a_valid_openapi_3_0_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == OPENAPI_TYPE
    doc = r.json()
    assert doc["openapi"] == "3.0.3"
    validate_spec(doc)  # raises on anything OpenAPI 3.0 does not allow
    conformance = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conformance
    landing = (await client.get("/")).json()["links"]
    desc = next(link for link in landing if link["rel"] == "service-desc")
    assert desc["type"] == OPENAPI_TYPE and desc["href"].endswith("/openapi.json")
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


#: code in a description, kept as written in both languages
CODE = re.compile(r"``[^`]+``|`[^`]+`")


def _texts(node: Any) -> set[str]:
    """Every description, summary and tag heading of a document."""
    if isinstance(node, dict):
        found = {v for k, v in node.items() if k in SPOKEN and isinstance(v, str)}
        return found.union(*(_texts(v) for v in node.values() if not isinstance(v, str)))
    if isinstance(node, list):
        return set().union(*(_texts(v) for v in node))
    return set()


def _unlike(english: Any, spanish: Any, where: str = "") -> list[str]:
    """Where two documents differ in anything but what a person reads (SPOKEN)."""
    if isinstance(english, dict) and isinstance(spanish, dict):
        if english.keys() != spanish.keys():
            return [where]
        return [
            d
            for k in english
            if not (k in SPOKEN and isinstance(english[k], str))
            for d in _unlike(english[k], spanish[k], f"{where}/{k}")
        ]
    if isinstance(english, list) and isinstance(spanish, list) and len(english) == len(spanish):
        return [
            d
            for i, (a, b) in enumerate(zip(english, spanish, strict=True))
            for d in _unlike(a, b, f"{where}/{i}")
        ]
    return [] if english == spanish else [where]


async def test_the_api_docs_speak_the_readers_language(client: httpx.AsyncClient) -> None:
    """The API docs were English only, also from the Spanish pages' links. /openapi.json
    ?lang=es says every description and summary in Spanish, and nothing else differs: a
    program reads both alike. The docs pages load the document of the reader's language."""
    english = (await client.get("/openapi.json")).json()
    r = await client.get("/openapi.json", params={"lang": "es"})
    assert r.status_code == 200 and r.headers["content-language"] == "es"
    spanish = r.json()
    validate_spec(spanish)
    table = json.loads(SPANISH.read_text(encoding="utf-8"))
    texts = _texts(english)
    assert sorted(texts - table.keys()) == [], "texts without their Spanish in openapi_es.json"
    assert sorted(table.keys() - texts) == [], "Spanish of texts the document no longer has"
    assert _unlike(english, spanish) == []
    # found from outside: six operations sat in Swagger UI's "default", and groups other
    # than the layers' had no words; every group is described now, and has operations
    operations = [(path, op) for path, item in english["paths"].items() for op in item.values()]
    assert [path for path, op in operations if not op.get("tags")] == []
    used = {t for _, op in operations for t in op["tags"]}
    assert used == {tag["name"] for tag in english["tags"]}, used
    assert all(tag.get("x-displayName") and tag.get("description") for tag in spanish["tags"])
    assert _texts(spanish) == {table[t] for t in texts}
    for text in texts:  # code, names and values are kept as they are written
        assert re.findall(CODE, text) == re.findall(CODE, table[text]), text
    items = spanish["paths"]["/collections/parcels/items"]["get"]
    assert items["summary"] != english["paths"]["/collections/parcels/items"]["get"]["summary"]
    for page in ("/docs", "/redoc"):
        said = await client.get(page, params={"lang": "es"})
        assert "/openapi.json?lang=es" in said.text, page
        assert '<html lang="es">' in said.text and 'href="/?lang=es"' in said.text, page
        browser = await client.get(page, headers={"accept-language": "en-GB,en;q=0.9"})
        assert "/openapi.json?lang=en" in browser.text, page
        assert '<html lang="en">' in browser.text and "back to the start" in browser.text
    home = await client.get("/", params={"lang": "es", "f": "html"})
    assert '/docs?lang=es"' in home.text and '/redoc?lang=es"' in home.text


def test_every_layer_has_its_own_items_and_item_paths(settings: Settings) -> None:
    doc = doc_of(settings)
    assert "/collections/{collection_id}/items" not in doc["paths"]
    assert "/collections/{collection_id}/items/{feature_id}" not in doc["paths"]
    for name, layer in LAYERS.items():
        items = doc["paths"][f"/collections/{name}/items"]
        item = doc["paths"][f"/collections/{name}/items/{{feature_id}}"]
        assert {"get", "post"} <= set(items), name
        assert {"get", "put", "patch", "delete"} <= set(item), name
        get = params(doc, items["get"])
        for attr in layer.attributes:
            if attr.type == "date":  # dates go through datetime (see the next test)
                assert attr.name not in get, name
                continue
            p = get[attr.name]
            # what QGIS takes as a simple queryable, and GDAL as one it may push
            assert (p["in"], p["style"], p["explode"]) == ("query", "form", False)
            assert p["schema"]["type"] == {"text": "string", "date": "string"}.get(
                attr.type, attr.type
            )
            if attr.domain:
                assert p["schema"]["enum"] == list(attr.domain.values)
            assert p["schema"].get("x-members-only", False) == (attr.read == "members")
        assert "collection_id" not in get


def test_each_layer_has_at_most_one_date(settings: Settings) -> None:
    """GDAL sends any comparison of a date field as ``datetime`` (BuildFilter in
    ogroapifdriver.cpp), and QGIS too: that is right only while ``datetime`` means the
    layer's one date, which its description names."""
    doc = doc_of(settings)
    for name, layer in LAYERS.items():
        dates = [a.name for a in layer.attributes if a.type == "date"]
        assert len(dates) <= 1, name
        datetime = params(doc, doc["paths"][f"/collections/{name}/items"]["get"])["datetime"]
        assert all(f"`{d}`" in datetime["description"] for d in dates)


def test_items_take_bbox_datetime_crs_and_the_servers_limit(settings: Settings) -> None:
    custom = settings.model_copy(update={"default_limit": 250, "max_limit": 2000})
    for s in (settings, custom):
        doc = doc_of(s)
        # QGIS sizes its pages from components.parameters.limit
        limit = doc["components"]["parameters"]["limit"]["schema"]
        assert (limit["default"], limit["maximum"], limit["minimum"]) == (
            s.default_limit,
            s.max_limit,
            1,
        )
        for name in LAYERS:
            get = params(doc, doc["paths"][f"/collections/{name}/items"]["get"])
            assert get["limit"]["schema"] == limit, name  # GDAL 3.8+ reads the path's
            assert {"bbox", "bbox-crs", "datetime", "crs", "offset"} <= set(get), name
            assert get["bbox"]["schema"]["items"] == {"type": "number"}


def test_writes_have_request_bodies_and_need_a_bearer_token(settings: Settings) -> None:
    doc = doc_of(settings)
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in WRITES or path == "/audit":
                assert op["security"] == [{"bearerAuth": []}], (method, path)
            else:
                assert op["security"] == [{}, {"bearerAuth": []}], (method, path)
    for name in LAYERS:
        post = doc["paths"][f"/collections/{name}/items"]["post"]["requestBody"]["content"]
        assert set(post) == {"application/geo+json", "application/json"}
        one = doc["paths"][f"/collections/{name}/items/{{feature_id}}"]
        assert "application/geo+json" in one["put"]["requestBody"]["content"]
        assert "application/merge-patch+json" in one["patch"]["requestBody"]["content"]
    token = doc_of(settings.model_copy(update={"reads": "token"}))
    assert token["paths"]["/collections/parcels/items"]["get"]["security"] == [{"bearerAuth": []}]


def test_every_analysis_has_its_path_and_parameters(settings: Settings) -> None:
    doc = doc_of(settings)
    assert "/communes/{commune}/analyses/{name}" not in doc["paths"]
    for name, analysis in all_analyses().items():
        op = doc["paths"][f"/communes/{{commune}}/analyses/{name}"]["get"]
        got = params(doc, op)
        assert {"commune", "f"} <= set(got)
        model = analysis.params.model_json_schema()
        for field, value in model["properties"].items():
            p = got[field]
            assert p["in"] == "query" and p["description"] == value.get("description", "")
            if value.get("default") is not None:
                assert p["schema"]["default"] == value["default"], (name, field)
            for bound in ("minimum", "maximum"):
                if bound in value:
                    assert p["schema"][bound] == value[bound], (name, field)


def test_no_operation_documents_a_status_the_server_does_not_send(settings: Settings) -> None:
    """FastAPI documents 422 for a malformed parameter; the server answers 400
    (api/problems.py). 422 stays only where bodies or files are checked."""
    doc = doc_of(settings)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "get" and "422" in op["responses"]:
                assert path == "/collections/{collection_id}/export", path
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    problem = resolve(doc, response)["content"]["application/problem+json"]
                    assert problem["schema"] == _ref("Problem")


# -- bodies against their schemas -------------------------------------------------------------


async def test_what_the_server_sends_fits_the_schemas(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for name in LAYERS:
        page = (await client.get(f"/collections/{name}/items", params={"limit": 20})).json()
        conforms(doc, page, f"{_camel(name)}FeatureCollection")
        if page["features"]:
            fid = page["features"][0]["id"]
            one = (await client.get(f"/collections/{name}/items/{fid}")).json()
            conforms(doc, one, f"{_camel(name)}Feature")


async def test_what_the_schemas_allow_the_server_takes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for name, layer in LAYERS.items():
        if name in ("states", "communes", "exchanges"):
            continue  # need their own codes and ends: tests/test_api_features.py
        body = feature(layer, commune="EL-MAIZAL", lon=-69.145, lat=9.695)
        conforms(doc, body, f"{_camel(name)}NewFeature")
        conforms(doc, {"type": "FeatureCollection", "features": [body]}, _new(name))
        r = await client.post(f"/collections/{name}/items", json=body)
        assert r.status_code == 201, r.text
        conforms(doc, r.json(), "WriteResult")
        first = layer.attributes[0].name
        patch = {"properties": {first: body["properties"][first]}}
        conforms(doc, patch, f"{_camel(name)}Patch")
        fid = r.json()["ids"][0]
        r = await client.patch(f"/collections/{name}/items/{fid}", json=patch)
        assert r.status_code == 200, r.text


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _new(name: str) -> str:
    return f"{_camel(name)}NewFeatureCollection"


# -- the statuses really sent are documented --------------------------------------------------


async def problems_sent(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> list[tuple[str, str, httpx.Response]]:
    """One request provoking each problem status an operation can answer with."""
    _, viewer = await accounts.add_user(conn, "oas-viewer", "viewer", [])
    sent = []
    async with api_client(conn, settings, admin_token) as admin:
        parcel = (await admin.get("/collections/parcels/items?limit=1")).json()["features"][0]
        one = f"/collections/parcels/items/{parcel['id']}"
        good = feature(LAYERS["parcels"], commune="EL-MAIZAL", lon=-69.145, lat=9.695)
        bad_geometry = {**good, "geometry": {"type": "Point", "coordinates": [-69.1, 9.7]}}
        requests = [
            ("get", "/collections/parcels/items", {"params": {"limit": "x"}}),
            ("get", "/collections/parcels/items", {"params": {"commune": "NO-SUCH"}}),
            ("get", "/collections/parcels/items/999999999", {}),
            ("post", "/collections/parcels/items", {"json": bad_geometry}),
            ("put", one, {"json": good, "headers": {"If-Match": '"1.1"'}}),
            ("patch", one, {"json": {"properties": {}}, "headers": {"If-Match": '"1.1"'}}),
            ("delete", one, {"headers": {"If-Match": '"1.1"'}}),
            ("get", "/collections/parcels/export", {"params": {"format": "xyz"}}),
            ("get", "/communes/EL-MAIZAL/analyses/land-recovery", {"params": {"nope": 1}}),
            ("get", "/audit", {"headers": {"Authorization": f"Bearer {viewer}"}}),
        ]
        for method, path, kwargs in requests:
            sent.append((method, path, await admin.request(method.upper(), path, **kwargs)))
    async with api_client(conn, settings, viewer) as c:
        r = await c.post("/collections/parcels/items", json=good)
        sent.append(("post", "/collections/parcels/items", r))
    async with api_client(conn, settings) as anonymous:
        r = await anonymous.get("/collections/parcels/items", params={"notes": "x"})
        sent.append(("get", "/collections/parcels/items", r))
        r = await anonymous.delete(one)
        sent.append(("delete", one, r))
        r = await anonymous.get("/", headers={"Authorization": "Bearer nonsense"})
        sent.append(("get", "/", r))
    strict = settings.model_copy(update={"require_if_match": True, "max_body_bytes": 200})
    async with api_client(conn, strict, admin_token) as c:
        sent.append(("patch", one, await c.patch(one, json={"properties": {}})))
        sent.append(
            (
                "post",
                "/collections/parcels/items",
                await c.post("/collections/parcels/items", json=good),
            )
        )
    return sent


async def test_every_problem_sent_is_documented(
    conn: AsyncConnection, settings: Settings, admin_token: str
) -> None:
    sent = await problems_sent(conn, settings, admin_token)
    # 428 is documented only where the server requires If-Match
    assert (
        "428" not in operation(doc_of(settings), "put", "/collections/parcels/items/1")["responses"]
    )
    doc = doc_of(settings.model_copy(update={"require_if_match": True}))
    statuses = set()
    for method, path, r in sent:
        assert r.status_code >= 400, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        op = operation(doc, method, path)
        assert str(r.status_code) in op["responses"], (method, path, r.status_code, r.text)
        conforms(doc, r.json(), "Problem")
        statuses.add(r.status_code)
    assert statuses >= {400, 401, 403, 404, 412, 413, 415, 422, 428}, statuses


async def test_commune_is_a_parameter_exactly_where_it_filters(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Every layer documents and takes ?commune= (QGIS repeats an editor's ?commune= on every
    request). states belong to no commune: there it keeps the states the commune's land lies
    in (it was once a database error, 500)."""
    doc = doc_of(settings)
    for name in LAYERS:
        documented = "commune" in params(doc, doc["paths"][f"/collections/{name}/items"]["get"])
        r = await client.get(f"/collections/{name}/items", params={"commune": "EL-MAIZAL"})
        assert documented and r.status_code == 200, (name, r.text)
    r = await client.get("/collections/states/items", params={"commune": "EL-MAIZAL"})
    assert sorted(f["properties"]["code"] for f in r.json()["features"]) == ["VE-K", "VE-P"]
