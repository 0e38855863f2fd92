"""OWSLib's OGC API - Features client (owslib.ogcapi.features.Features, what a planner's Python
script uses) against a real `geo-comuna serve`: items, bbox and property filters, datetime,
sortby and a CQL2 filter, each answer compared with the database."""

from __future__ import annotations

import psycopg
from owslib.ogcapi.features import Features

from geo_comuna.layers import LAYERS
from geo_comuna.layers.tenure import COLLECTIONS as RECORDS
from tests.clients import Live


def ids(live: Live, query: str, *params: object) -> list[int]:
    with psycopg.connect(live.dsn) as conn:
        return sorted(i for (i,) in conn.execute(query, params).fetchall())


def test_owslib_discovers_the_service(live: Live) -> None:
    api = Features(live.base)
    assert [c["id"] for c in api.collections()["collections"]] == [*LAYERS, *RECORDS]
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    doc = api.api()  # the service-desc link, as OWSLib looks for it
    assert doc["openapi"].startswith("3.0.") and "/collections/parcels/items" in doc["paths"]
    queryables = api.collection_queryables("parcels")
    assert "tenure" in queryables["properties"]


def test_owslib_reads_items(live: Live) -> None:
    api = Features(live.base)
    page = api.collection_items("parcels", limit=5)
    assert page["numberReturned"] == len(page["features"]) == 5
    assert page["numberMatched"] == len(ids(live, "SELECT id FROM parcels"))
    first = page["features"][0]
    assert api.collection_item("parcels", first["id"])["properties"] == first["properties"]


def test_owslib_filters_by_bbox_and_property(live: Live) -> None:
    api = Features(live.base)
    bbox = [-69.2, 9.6, -69.1, 9.75]
    page = api.collection_items("parcels", bbox=bbox, tenure="occupied", limit=1000)
    assert sorted(f["id"] for f in page["features"]) == ids(
        live,
        "SELECT id FROM parcels WHERE tenure = 'occupied' "
        "AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        *bbox,
    )
    assert page["features"]


def test_owslib_datetime(live: Live) -> None:
    api = Features(live.base)
    page = api.collection_items("parcels", datetime_="2015-01-01/2016-12-31", limit=1000)
    expected = ids(
        live, "SELECT id FROM parcels WHERE recovered_on BETWEEN '2015-01-01' AND '2016-12-31'"
    )
    assert sorted(f["id"] for f in page["features"]) == expected and expected
    page = api.collection_items("parcels", datetime_="2019-01-01/..", limit=1000)
    expected = ids(live, "SELECT id FROM parcels WHERE recovered_on >= '2019-01-01'")
    assert sorted(f["id"] for f in page["features"]) == expected and expected


def test_owslib_sortby(live: Live) -> None:
    api = Features(live.base)
    page = api.collection_items("production_units", sortby=("workers", "desc"), limit=5)
    got = [f["properties"]["workers"] for f in page["features"]]
    with psycopg.connect(live.dsn) as conn:
        top = conn.execute(
            "SELECT workers FROM production_units ORDER BY workers DESC NULLS LAST LIMIT 5"
        ).fetchall()
    assert got == [w for (w,) in top], got


def test_owslib_cql2_filter(live: Live) -> None:
    api = Features(live.base)
    cql = "tenure = 'occupied' AND recovered_on >= DATE('2015-01-01')"
    page = api.collection_items("parcels", filter=cql, limit=1000)
    expected = ids(
        live, "SELECT id FROM parcels WHERE tenure = 'occupied' AND recovered_on >= '2015-01-01'"
    )
    assert sorted(f["id"] for f in page["features"]) == expected and expected


def test_owslib_reads_the_land_records_without_personal_data(live: Live) -> None:
    """Anonymous, through OWSLib: the rights on El Maizal's corner by bbox and status, the
    households among the parties; no name, ID number, contact, holder or note anywhere, and
    none of them is a queryable."""
    api = Features(live.base)
    assert api.collection("parties")["itemType"] == "feature"
    bbox = [-69.2, 9.6, -69.1, 9.75]
    page = api.collection_items("rights", bbox=bbox, status="granted", limit=1000)
    assert sorted(f["id"] for f in page["features"]) == ids(
        live,
        "SELECT r.id FROM rights r JOIN parcels pc ON pc.id = r.parcel_id "
        "WHERE r.status = 'granted' "
        "AND ST_Intersects(pc.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        *bbox,
    )
    assert page["features"]
    households = api.collection_items("parties", kind="household", limit=1000)
    assert sorted(f["id"] for f in households["features"]) == ids(
        live, "SELECT id FROM parties WHERE kind = 'household'"
    )
    assert households["features"]
    personal = {"name", "id_number", "contact", "holder", "note"}
    for page_ in (page, households):
        assert not personal & {k for f in page_["features"] for k in f["properties"]}
    for kind in RECORDS:
        assert not personal & set(api.collection_queryables(kind)["properties"])
