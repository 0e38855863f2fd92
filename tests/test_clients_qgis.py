"""QGIS against a real `geo-comuna serve`.

Reading: QGIS 3.22 from Debian (python3-qgis + qgis-providers, installed by
scripts/setup.sh --test), headless (QT_QPA_PLATFORM=offscreen), run by Debian's Python in a
subprocess (tests/qgis_layer.py): the virtualenv's Python may not be the one python3-qgis is
built for.

Editing: QGIS edits OGC API - Features layers from 3.32 on, which Debian 12 does not ship,
so its requests are replayed as its OAPIF provider sends them (qgsoapifprovider.cpp
computeCapabilities, qgsoapif{create,put,patch}featurerequest.cpp, qgsbasenetworkrequest.cpp):
OPTIONS on the items and on one item to learn the methods from ``Allow``, then POST
``application/geo+json`` (reading the id back from ``Location``), PATCH
``application/merge-patch+json`` with only the properties or only the geometry, PUT the whole
feature with its id as a string, DELETE. The token comes from a QGIS authentication
configuration of the "API Header" kind (``Authorization: Bearer <token>``). QGIS sends no
If-Match: the server keeps its default (GEO_COMUNA_REQUIRE_IF_MATCH=false) for it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.clients import Live
from tests.factories import MAIZAL
from tests.live import add_user

SCRIPT = Path(__file__).with_name("qgis_layer.py")
QGIS_PYTHON = "/usr/bin/python3"  # python3-qgis is built for Debian's Python
JSON = "application/json"
GEOJSON = "application/geo+json"


def qgis(live: Live, layer: str, subset: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(live.log.parent))
    run = subprocess.run(
        [QGIS_PYTHON, str(SCRIPT), live.base, layer, subset],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["valid"], out
    return out


def count(live: Live, query: str) -> int:
    with psycopg.connect(live.dsn) as conn:
        return conn.execute(query).fetchone()[0]


def test_qgis_loads_a_layer_and_counts_it(live: Live) -> None:
    mark = live.mark()
    seen = qgis(live, "parcels")
    total = count(live, "SELECT count(*) FROM parcels")
    assert seen["count"] == seen["iterated"] == total > 100
    assert seen["crs"] == "EPSG:4326"
    assert {"tenure", "land_use", "commune", "area_ha"} <= set(seen["fields"])
    asked = [r for r in live.requests(mark) if r.path == "/collections/parcels/items"]
    # QGIS takes its page size from the document's components.parameters.limit: at least
    # 1000 when the maximum allows (qgsoapifprovider.cpp), not its fallback of 100
    assert {r.query["limit"] for r in asked[1:]} == {"1000"}, asked
    assert "/openapi.json" in {r.path for r in live.requests(mark)}


def test_qgis_counts_a_layer_filtered_by_date(live: Live) -> None:
    subset = "\"recovered_on\" >= '2015-01-01' AND \"recovered_on\" <= '2016-12-31'"
    seen = qgis(live, "parcels", subset)
    expected = count(
        live,
        "SELECT count(*) FROM parcels WHERE recovered_on BETWEEN '2015-01-01' AND '2016-12-31'",
    )
    assert seen["subset_accepted"] and seen["count"] == seen["iterated"] == expected > 0


# -- the editing flow of QGIS 3.32+, replayed ------------------------------------------------


@pytest.fixture(scope="module")
def editor(live: Live) -> httpx.Client:
    token = add_user(live.dsn, "Mesa técnica QGIS", "editor", ["EL-MAIZAL"])
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def qgis_feature(**properties: object) -> dict:
    """A parcel as QgsJsonExporter writes it: every field of the layer, null where empty,
    the derived area too (the server ignores it), no id and no bbox."""
    lon, lat = round(MAIZAL[0] + 0.004, 6), round(MAIZAL[1] + 0.004, 6)
    east, north = round(lon + 0.001, 6), round(lat + 0.001, 6)  # 6 decimals, as QGIS writes
    ring = [[lon, lat], [east, lat], [east, north], [lon, north]]
    return {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [[[*ring, ring[0]]]]},
        "properties": {
            "commune": "EL-MAIZAL",
            "code": None,
            "tenure": "occupied",
            "land_use": "crops",
            "recovered_on": None,
            "area_ha": None,
            "notes": None,
            **properties,
        },
    }


def test_qgis_learns_it_may_edit_from_options(live: Live, editor: httpx.Client) -> None:
    """computeCapabilities: OPTIONS on /items must allow POST; OPTIONS on the URL of the
    first feature of the first page QGIS read, PUT, PATCH and DELETE. An editor adds the
    layer with ``?commune=`` (README), so that first feature is one it may change; QGIS
    sends OPTIONS to the items URL without the layer's extra query parameters."""
    first = editor.get(
        "/collections/parcels/items?commune=EL-MAIZAL&limit=10", headers={"Accept": GEOJSON}
    )
    fid = first.json()["features"][0]["id"]
    r = editor.options("/collections/parcels/items")
    assert r.status_code in (200, 204), r.text
    assert "POST" in [m.strip() for m in r.headers["allow"].split(",")]
    r = editor.options(f"/collections/parcels/items/{fid}")
    assert r.status_code in (200, 204), r.text
    assert {"PUT", "PATCH", "DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_qgis_adds_changes_and_deletes_a_feature(live: Live, editor: httpx.Client) -> None:
    items = "/collections/parcels/items"
    r = editor.post(
        items,
        content=json.dumps(qgis_feature(code="QGIS-1")),
        headers={"Content-Type": GEOJSON},
    )
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    fid = location[location.rindex("/items/") + len("/items/") :]  # as QGIS reads it back
    assert fid.isdigit()
    one = f"{items}/{fid}"

    # an attribute edit: only the changed properties (QGIS has PATCH, so no PUT)
    r = editor.patch(
        one,
        content=json.dumps({"properties": {"tenure": "regularizing"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code in (200, 204), r.text
    # a geometry edit: only the geometry
    moved = qgis_feature()["geometry"]
    ring = moved["coordinates"][0][0]
    moved["coordinates"][0][0] = [[round(x + 0.0002, 6), y] for x, y in ring]
    r = editor.patch(
        one,
        content=json.dumps({"geometry": moved}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code in (200, 204), r.text
    got = editor.get(one, headers={"Accept": GEOJSON}).json()
    assert got["properties"]["tenure"] == "regularizing"
    assert got["properties"]["code"] == "QGIS-1"
    assert got["geometry"]["coordinates"] == moved["coordinates"]

    # a server without PATCH gets the whole feature, its id a string (QgsJsonExporter)
    whole = {"id": fid, **qgis_feature(code="QGIS-1", tenure="regularized")}
    r = editor.put(one, content=json.dumps(whole), headers={"Content-Type": GEOJSON})
    assert r.status_code in (200, 204), r.text
    assert editor.get(one).json()["properties"]["tenure"] == "regularized"

    assert editor.delete(one).status_code in (200, 204)
    assert editor.get(one).status_code == 404


def test_a_client_sending_if_match_is_stopped_from_overwriting(editor: httpx.Client) -> None:
    """QGIS does not send If-Match; a client that does (the web editor, a script) learns the
    version from ETag and gets 412 once someone else changed the feature."""
    r = editor.post("/collections/parcels/items", json=qgis_feature(code="QGIS-2"))
    one = r.headers["location"]
    etag = editor.get(one).headers["etag"]
    other = editor.patch(one, json={"properties": {"land_use": "pasture"}})
    assert other.status_code == 200 and other.headers["etag"] != etag
    stale = editor.put(one, json=qgis_feature(code="QGIS-2"), headers={"If-Match": etag})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"].startswith("application/problem+json")
    fresh = editor.put(
        one, json=qgis_feature(code="QGIS-2"), headers={"If-Match": other.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text
    assert editor.delete(one, headers={"If-Match": fresh.headers["etag"]}).status_code == 204
