"""CRS by reference (Part 2): crs, bbox-crs and filter-crs for CRS84 and the Venezuelan CRSs,
checked against pyproj's transform in each CRS's own axis order."""

from __future__ import annotations

import json

import httpx
import pyproj
import pytest
import shapely
from psycopg import AsyncConnection
from shapely.geometry import box, shape
from shapely.ops import transform

from geo_comuna.features import crs
from tests.test_filter import matched, parcel_rows

pytestmark = pytest.mark.anyio
ITEMS = "/collections/parcels/items"
CODES = [4326, 4189, 2201, 2202, 2203, 4248, 24817, 24818, 24819, 24820, 24821]


def test_the_list_agrees_with_pyproj() -> None:
    """Axis order and kind of every CRS offered come from the EPSG definitions."""
    assert [c.srid for c in crs.SUPPORTED[1:]] == CODES and crs.SUPPORTED[0] is crs.CRS84
    for entry in crs.SUPPORTED[1:]:
        official = pyproj.CRS.from_epsg(entry.srid)
        assert entry.geographic == official.is_geographic, entry
        assert entry.lat_first == (official.axis_info[0].direction == "north"), entry
        assert entry.title.split(" (")[0] == official.name, entry
    ogc = pyproj.CRS.from_user_input("OGC:CRS84")
    assert ogc.axis_info[0].direction == "east" and not crs.CRS84.lat_first


def test_identifiers_are_read_or_refused_naming_the_list() -> None:
    assert crs.parse("http://www.opengis.net/def/crs/EPSG/0/2202", "crs").srid == 2202
    assert crs.parse("EPSG:4248", "crs").lat_first
    assert crs.parse("urn:ogc:def:crs:EPSG::24819", "crs").srid == 24819
    assert crs.parse("[EPSG:4189]", "crs").srid == 4189
    assert crs.parse("OGC:CRS84", "crs") is crs.CRS84 and crs.parse(None, "crs") is crs.CRS84
    for bad in ("bogus", "EPSG:3857", "EPSG:0", "EPSG:99999999", "", "EPSG:4326x"):
        with pytest.raises(Exception, match="EPSG/0/24821") as err:
            crs.parse(bad, "crs")
        assert err.value.status == 400


async def first_vertex(conn: AsyncConnection) -> tuple[int, float, float]:
    cur = await conn.execute(
        "SELECT id, ST_X(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)), "
        "ST_Y(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)) FROM parcels "
        "WHERE commune_id = (SELECT id FROM communes WHERE code = 'EL-MAIZAL') ORDER BY id LIMIT 1"
    )
    return await cur.fetchone()


@pytest.mark.parametrize("code", CODES)
async def test_features_come_in_the_crs_asked_for(
    client: httpx.AsyncClient, conn: AsyncConnection, code: int
) -> None:
    fid, lon, lat = await first_vertex(conn)
    uri = f"http://www.opengis.net/def/crs/EPSG/0/{code}"
    # pyproj in the authority's axis order: (lat, lon) in, (lat, lon) or (E, N) out
    expected = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{code}").transform(lat, lon)
    tolerance = 2e-6 if pyproj.CRS.from_epsg(code).is_geographic else 0.01
    for url, params in (
        (f"{ITEMS}/{fid}", {"crs": uri}),
        (ITEMS, {"crs": f"EPSG:{code}", "commune": "EL-MAIZAL", "limit": 1}),
    ):
        r = await client.get(url, params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-crs"] == f"<{uri}>"
        doc = r.json()
        feature = doc if doc["type"] == "Feature" else doc["features"][0]
        assert feature["id"] == fid
        got = feature["geometry"]["coordinates"][0][0][0]
        assert got == pytest.approx(list(expected), abs=tolerance), (code, got, expected)


async def test_crs84_is_the_default_and_named(client: httpx.AsyncClient) -> None:
    for url in (ITEMS, f"{ITEMS}/1"):
        r = await client.get(url)
        assert r.headers["content-crs"] == f"<{crs.CRS84.uri}>"
        again = await client.get(url, params={"crs": crs.CRS84.uri})
        if url == ITEMS:
            assert again.json()["features"] == r.json()["features"]
        else:
            assert again.json() == r.json()
    cols = (await client.get("/collections")).json()["collections"]
    for col in cols:
        # parties have no geometry, so no coordinates to give in another CRS (api/tenure_meta)
        offered = [crs.CRS84.uri] if col["id"] == "parties" else crs.URIS
        assert col["crs"] == offered and col["storageCrs"] in col["crs"], col["id"]
    conf = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf


@pytest.mark.parametrize("param", ["crs", "bbox-crs", "filter-crs"])
async def test_an_unsupported_crs_is_400_naming_the_supported(
    client: httpx.AsyncClient, param: str
) -> None:
    params = {param: "bogus", "bbox": "-70,9,-69,10", "filter": "tenure = 'abandoned'"}
    for url in (ITEMS, f"{ITEMS}/1"):
        r = await client.get(url, params=params if url == ITEMS else {"crs": "EPSG:3857"})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert "EPSG/0/2202" in detail and crs.CRS84.uri in detail


async def test_bbox_crs_in_each_axis_order(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    rows = await parcel_rows(conn)
    area = box(-69.2, 9.6, -69.14, 9.8)  # part of El Maizal
    expected = sum(1 for r in rows if r["geom"].intersects(area))
    assert 0 < expected < sum(1 for r in rows if r["commune"] == "EL-MAIZAL")
    assert await matched(client, {"bbox": "-69.2,9.6,-69.14,9.8"}) == expected
    # EPSG:4326 is latitude first: south,west,north,east
    for name in ("EPSG:4326", "http://www.opengis.net/def/crs/EPSG/0/4326"):
        assert await matched(client, {"bbox": "9.6,-69.2,9.8,-69.14", "bbox-crs": name}) == expected
    # lon/lat order read as EPSG:4326 is a box near the South Pole
    params = {"bbox": "-69.2,9.6,-69.14,9.8", "bbox-crs": "EPSG:4326"}
    assert await matched(client, params) == 0
    r = await client.get(ITEMS, params={"bbox": "9.6,-69.2,9.8,95", "bbox-crs": "OGC:CRS84"})
    assert r.status_code == 400 and "west,south,east,north" in r.json()["detail"]

    # REGVEN / UTM 19N and PSAD56: the box in their coordinates, the answer worked out there
    for code in (2202, 24819, 4248):
        to = pyproj.Transformer.from_crs(4326, code, always_xy=True)
        x0, y0 = to.transform(-69.2, 9.6)
        x1, y1 = to.transform(-69.14, 9.8)
        there = box(x0, y0, x1, y1)
        want = sum(1 for r in rows if transform(to.transform, r["geom"]).intersects(there))
        assert 0 < want
        written = [x0, y0, x1, y1] if code != 4248 else [y0, x0, y1, x1]
        bbox = ",".join(f"{v:.9f}" for v in written)
        assert await matched(client, {"bbox": bbox, "bbox-crs": f"EPSG:{code}"}) == want, code


async def test_a_bbox_across_the_antimeridian_holds_what_it_holds(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    rows = await parcel_rows(conn)
    assert await matched(client, {"bbox": "170,-10,-170,10"}) == 0
    # from 170°E eastwards across 180° to 68°W: the parcels west of 68°W
    west = shapely.union_all([box(170, 0, 180, 12), box(-180, 0, -68, 12)])
    expected = sum(1 for r in rows if r["geom"].intersects(west))
    assert 0 < expected < len(rows)
    assert await matched(client, {"bbox": "170,0,-68,12"}) == expected
    assert await matched(client, {"bbox": "0,170,12,-68", "bbox-crs": "EPSG:4326"}) == expected
    text = "S_INTERSECTS(geometry, BBOX(170, 0, -68, 12))"
    assert await matched(client, {"filter": text}) == expected


async def test_filter_crs(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    rows = await parcel_rows(conn)
    maizal = [r for r in rows if r["commune"] == "EL-MAIZAL"]
    point = maizal[3]["geom"].representative_point()
    expected = sum(1 for r in rows if r["geom"].intersects(point))
    assert expected >= 1
    lonlat = f"S_INTERSECTS(geometry, POINT({point.x} {point.y}))"
    assert await matched(client, {"filter": lonlat}) == expected
    latlon = f"S_INTERSECTS(geometry, POINT({point.y} {point.x}))"
    assert await matched(client, {"filter": latlon, "filter-crs": "EPSG:4326"}) == expected
    e, n = pyproj.Transformer.from_crs(4326, 2202, always_xy=True).transform(point.x, point.y)
    utm = f"S_INTERSECTS(geometry, POINT({e} {n}))"
    assert await matched(client, {"filter": utm, "filter-crs": "EPSG:2202"}) == expected
    # a polygon written in UTM: its answer worked out in UTM
    to = pyproj.Transformer.from_crs(4326, 2202, always_xy=True)
    area = box(e - 800, n - 800, e + 800, n + 800)
    want = sum(1 for r in rows if transform(to.transform, r["geom"]).intersects(area))
    as_json = {"op": "s_intersects", "args": [{"property": "geometry"}, area.__geo_interface__]}
    params = {"filter": json.dumps(as_json), "filter-lang": "cql2-json", "filter-crs": "EPSG:2202"}
    assert await matched(client, params) == want > expected
    far = "S_INTERSECTS(geometry, POINT(1000000000000 1000000000000))"
    r = await client.get(ITEMS, params={"filter": far, "filter-crs": "EPSG:2202"})
    assert r.status_code == 400 and "EPSG:2202" in r.json()["detail"], r.text


async def test_transformed_geometry_is_the_stored_one(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """A whole parcel in UTM, taken back to lon/lat by pyproj, is the parcel."""
    fid, _, _ = await first_vertex(conn)
    doc = (await client.get(f"{ITEMS}/{fid}", params={"crs": "EPSG:24819"})).json()
    back = pyproj.Transformer.from_crs(24819, 4326, always_xy=True)
    lonlat = transform(back.transform, shape(doc["geometry"]))
    stored = shape((await client.get(f"{ITEMS}/{fid}")).json()["geometry"])
    assert lonlat.symmetric_difference(stored).area < 1e-10


@pytest.mark.parametrize("code", [4326, 2202, 24819])
async def test_a_feature_written_in_a_crs_lands_where_it_was_read(
    client: httpx.AsyncClient, conn: AsyncConnection, code: int
) -> None:
    """Content-Crs (Part 2), as QGIS sends it for a layer in another CRS: a parcel read in
    EPSG:4326 (latitude first), REGVEN / UTM 19N or PSAD56 / UTM 19N and written back in it,
    whole (PUT) or by its shape alone (PATCH), is where it was; a new one sent in UTM is
    where pyproj puts it. Before, the API took lon/lat only and refused UTM as 'out of
    range'."""
    uri = f"<http://www.opengis.net/def/crs/EPSG/0/{code}>"
    fid, _, _ = await first_vertex(conn)
    before = shape((await client.get(f"{ITEMS}/{fid}")).json()["geometry"])
    doc = (await client.get(f"{ITEMS}/{fid}", params={"crs": f"EPSG:{code}"})).json()
    r = await client.put(f"{ITEMS}/{fid}", json=doc, headers={"Content-Crs": uri})
    assert r.status_code == 200, r.text
    after = shape((await client.get(f"{ITEMS}/{fid}")).json()["geometry"])
    assert before.hausdorff_distance(after) < 1e-8  # ~1 mm
    body = {"geometry": doc["geometry"]}
    r = await client.patch(f"{ITEMS}/{fid}", json=body, headers={"Content-Crs": uri})
    assert r.status_code == 200, r.text
    again = shape((await client.get(f"{ITEMS}/{fid}")).json()["geometry"])
    assert before.hausdorff_distance(again) < 1e-8

    if code == 4326:
        return
    new = {**doc, "properties": {**doc["properties"], "code": f"CRS-{code}"}}
    new.pop("id")
    r = await client.post(ITEMS, json=new, headers={"Content-Crs": uri})
    assert r.status_code == 201, r.text
    made = (await client.get(f"{ITEMS}/{r.json()['ids'][0]}")).json()
    back = pyproj.Transformer.from_crs(code, 4326, always_xy=True)
    expected = transform(back.transform, shape(doc["geometry"]))
    assert shape(made["geometry"]).hausdorff_distance(expected) < 1e-7  # ~1 cm


async def test_a_write_in_a_crs_not_named_is_refused_saying_how(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    fid, _, _ = await first_vertex(conn)
    doc = (await client.get(f"{ITEMS}/{fid}", params={"crs": "EPSG:2202"})).json()
    r = await client.put(f"{ITEMS}/{fid}", json=doc)  # UTM metres, no Content-Crs
    assert r.status_code == 422 and "Content-Crs" in r.json()["detail"], r.text
    r = await client.put(f"{ITEMS}/{fid}", json=doc, headers={"Content-Crs": "<EPSG:3857>"})
    assert r.status_code == 400 and "Content-Crs 'EPSG:3857'" in r.json()["detail"], r.text
    ring = [[1e30, 5], [1e30, 6], [2e30, 5], [1e30, 5]]
    far = {"geometry": {**doc["geometry"], "coordinates": [[ring]]}}
    r = await client.patch(f"{ITEMS}/{fid}", json=far, headers={"Content-Crs": "EPSG:2202"})
    assert r.status_code == 422, r.text
    assert "outside what EPSG:2202 can express" in r.json()["detail"], r.text


async def test_a_bodys_crs_member_is_read_not_ignored(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: a body's GeoJSON 2008 crs member was ignored, so a parcel whose
    body declared EPSG:2202 (with lon/lat coordinates) was stored as lon/lat. A member that
    names the CRS the coordinates are read in (Content-Crs; CRS84, or EPSG:4326 as old
    writers labelled lon/lat) is fine; another is refused, saying to send Content-Crs."""
    fid, _, _ = await first_vertex(conn)
    doc = (await client.get(f"{ITEMS}/{fid}")).json()
    before = doc["geometry"]

    def member(name: str) -> dict:
        return {"type": "name", "properties": {"name": name}}

    for name in ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"):
        r = await client.put(f"{ITEMS}/{fid}", json={**doc, "crs": member(name)})
        assert r.status_code == 200, (name, r.text)
    r = await client.patch(
        f"{ITEMS}/{fid}",
        json={"geometry": before, "crs": member("EPSG:2202")},
        params={"lang": "es"},
    )
    assert r.status_code == 400 and "cabecera Content-Crs" in r.json()["detail"], r.text
    utm = (await client.get(f"{ITEMS}/{fid}", params={"crs": "EPSG:2202"})).json()
    r = await client.put(
        f"{ITEMS}/{fid}",
        json={**utm, "crs": member("urn:ogc:def:crs:EPSG::2202")},
        headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/2202>"},
    )
    assert r.status_code == 200, r.text
    for odd in ({"type": "link"}, {"type": "name", "properties": "EPSG:4326"}, "EPSG:4326"):
        r = await client.post(ITEMS, json={**doc, "crs": odd})
        assert r.status_code == 400 and "names no CRS" in r.json()["detail"], r.text
    after = (await client.get(f"{ITEMS}/{fid}")).json()["geometry"]
    assert shape(after).hausdorff_distance(shape(before)) < 1e-8
