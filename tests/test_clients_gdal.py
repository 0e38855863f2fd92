"""GDAL (Debian's ogr2ogr / ogrinfo, 3.6) against a real `geo-comuna serve`: what a planner
types, and from the server's access log, what GDAL asked the server to do.

GDAL's OAPIF driver sends a ``-where`` equality as ``?name=value`` only for a query parameter
the OpenAPI document declares under ``/collections/<layer>/items`` (api/openapi_layers.py),
a comparison of a date field as ``datetime=``, ``-spat`` as ``bbox=``; the rest it filters
itself after downloading. It pages by 10 features unless told ``-oo PAGE_SIZE=`` (3.8 and
later read the limit's maximum from the document), so the runs here say PAGE_SIZE=1000.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
from pyproj import Transformer

from tests.clients import Live, Request
from tests.live import add_user

PAGE = ["-oo", "PAGE_SIZE=1000"]


def gdal(*args: str) -> subprocess.CompletedProcess:
    """An ogr2ogr or ogrinfo run; fails the test, with GDAL's words, if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "CPL_"))}
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, f"{' '.join(args)}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    return run


def fetch(live: Live, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(live.dsn) as conn:
        return conn.execute(query, params).fetchall()


def copied(live: Live, out: Path, layer: str, *args: str) -> list[dict]:
    """``ogr2ogr -f GeoJSON out OAPIF:<server> <layer> <args>``: the features written."""
    gdal("ogr2ogr", "-f", "GeoJSON", "-preserve_fid", str(out), f"OAPIF:{live.base}", layer, *args)
    return json.loads(out.read_text())["features"]


def item_requests(requests: list[Request], layer: str) -> list[Request]:
    """The items pages GDAL read after the first one (which only tells it the fields)."""
    pages = [r for r in requests if r.path == f"/collections/{layer}/items"]
    return pages[1:]


def test_gdal_reads_a_layer_whole(live: Live, tmp_path: Path) -> None:
    info = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{live.base}").stdout
    for name in ("states", "communes", "parcels", "dwellings", "facilities"):
        assert f": {name} (" in info, info
    mark = live.mark()
    features = copied(live, tmp_path / "parcels.geojson", "parcels", *PAGE)
    (count,) = fetch(live, "SELECT count(*) FROM parcels")[0]
    assert len(features) == count > 100
    pages = item_requests(live.requests(mark), "parcels")
    assert [r.query.get("limit") for r in pages] == ["1000"] and pages[0].status == 200


def test_gdal_pushes_where_equalities_to_the_server(live: Live, tmp_path: Path) -> None:
    """GDAL finds tenure, land_use and commune as parameters of /collections/parcels/items
    in the OpenAPI document, so it asks the server for those parcels only."""
    where = "tenure = 'occupied' AND land_use = 'crops' AND commune = 'EL-MAIZAL'"
    mark = live.mark()
    features = copied(live, tmp_path / "p.geojson", "parcels", *PAGE, "-where", where)
    expected = fetch(
        live,
        "SELECT p.id FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE p.tenure = 'occupied' AND p.land_use = 'crops' AND c.code = 'EL-MAIZAL'",
    )
    assert sorted(f["id"] for f in features) == sorted(i for (i,) in expected)
    assert expected
    pages = item_requests(live.requests(mark), "parcels")
    assert pages and all(r.status == 200 for r in pages)
    for r in pages:
        assert (r.query["tenure"], r.query["land_use"], r.query["commune"]) == (
            "occupied",
            "crops",
            "EL-MAIZAL",
        ), r

    # booleans and integers too (GDAL reads a JSON boolean as an integer 0/1)
    mark = live.mark()
    where = "kind = 'stairway' AND vehicles = 0"
    features = copied(live, tmp_path / "s.geojson", "paths", *PAGE, "-where", where)
    expected = fetch(live, "SELECT id FROM paths WHERE kind = 'stairway' AND NOT vehicles")
    assert sorted(f["id"] for f in features) == sorted(i for (i,) in expected)
    pages = item_requests(live.requests(mark), "paths")
    assert pages and all(r.query.get("kind") == "stairway" for r in pages), pages
    assert all(r.query.get("vehicles") == "0" and r.status == 200 for r in pages), pages


def test_gdal_filters_itself_what_it_cannot_push(live: Live, tmp_path: Path) -> None:
    """A LIKE is not a parameter: GDAL downloads the layer and filters it itself (the same
    answer, the whole layer over the wire), which the log shows."""
    mark = live.mark()
    where = "tenure LIKE 'occ%'"
    features = copied(live, tmp_path / "l.geojson", "parcels", *PAGE, "-where", where)
    expected = fetch(live, "SELECT count(*) FROM parcels WHERE tenure LIKE 'occ%%'")[0][0]
    assert len(features) == expected > 0
    pages = item_requests(live.requests(mark), "parcels")
    assert pages and all("tenure" not in r.query for r in pages)


def test_gdal_spat_goes_to_the_server_as_bbox(live: Live, tmp_path: Path) -> None:
    w, s, e, n = -69.2, 9.6, -69.1, 9.75  # El Maizal's corner of Lara
    mark = live.mark()
    features = copied(
        live, tmp_path / "b.geojson", "parcels", *PAGE, "-spat", *map(str, (w, s, e, n))
    )
    expected = fetch(
        live,
        "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        w,
        s,
        e,
        n,
    )
    assert sorted(f["id"] for f in features) == sorted(i for (i,) in expected)
    assert expected
    pages = item_requests(live.requests(mark), "parcels")
    assert pages and all(r.status == 200 for r in pages)
    for r in pages:
        assert [float(v) for v in r.query["bbox"].split(",")] == [w, s, e, n], r


def test_gdal_date_filter_goes_to_the_server_as_datetime(live: Live, tmp_path: Path) -> None:
    """GDAL sends ``recovered_on >= X AND recovered_on <= Y`` as ``datetime=X/Y``, and an
    equality on a date as ``datetime=X``, writing each date as ``2015-01-01T`` (a T and no
    time): the server reads that as the date. (GDAL types the field a date from the first
    page: PAGE_SIZE=1000 holds dated parcels; 10 may not.)"""
    mark = live.mark()
    where = "recovered_on >= '2015-01-01' AND recovered_on <= '2016-12-31'"
    features = copied(live, tmp_path / "d.geojson", "parcels", *PAGE, "-where", where)
    pages = item_requests(live.requests(mark), "parcels")
    assert [r.query.get("datetime") for r in pages] == ["2015-01-01T/2016-12-31T"], pages
    expected = fetch(
        live, "SELECT id FROM parcels WHERE recovered_on BETWEEN '2015-01-01' AND '2016-12-31'"
    )
    assert sorted(f["id"] for f in features) == sorted(i for (i,) in expected)
    assert expected

    (day,) = fetch(live, "SELECT min(recovered_on) FROM parcels")[0]
    mark = live.mark()
    features = copied(
        live, tmp_path / "e.geojson", "parcels", *PAGE, "-where", f"recovered_on = '{day}'"
    )
    pages = item_requests(live.requests(mark), "parcels")
    assert [r.query.get("datetime") for r in pages] == [f"{day}T"], pages
    expected = fetch(live, "SELECT id FROM parcels WHERE recovered_on = %s", day)
    assert sorted(f["id"] for f in features) == sorted(i for (i,) in expected)


def test_gdal_t_srs_writes_regven_utm(live: Live, tmp_path: Path) -> None:
    """``-t_srs EPSG:2202`` (REGVEN / UTM 19N): GDAL 3.6 reads CRS84 and reprojects itself;
    the positions match PROJ's to the millimetre."""
    out = tmp_path / "f.geojson"
    gdal(
        "ogr2ogr", "-f", "GeoJSON", "-t_srs", "EPSG:2202", str(out), f"OAPIF:{live.base}",
        "facilities", *PAGE, "-where", "commune = 'EL-MAIZAL'",
    )  # fmt: skip
    written = json.loads(out.read_text())
    assert "2202" in json.dumps(written["crs"]), written["crs"]
    to_utm = Transformer.from_crs(4326, 2202, always_xy=True)
    stored = fetch(
        live,
        "SELECT ST_X(f.geom), ST_Y(f.geom) FROM facilities f "
        "JOIN communes c ON c.id = f.commune_id WHERE c.code = 'EL-MAIZAL'",
    )
    expected = sorted(to_utm.transform(lon, lat) for lon, lat in stored)
    got = sorted(tuple(f["geometry"]["coordinates"]) for f in written["features"])
    assert len(got) == len(expected) > 0
    for (x, y), (gx, gy) in zip(expected, got, strict=True):
        assert abs(gx - x) < 0.001 and abs(gy - y) < 0.001, ((x, y), (gx, gy))


def test_the_readme_example(live: Live, tmp_path: Path) -> None:
    """README, "With GDAL": what a planner types, as typed."""
    out = tmp_path / "ocupadas.gpkg"
    mark = live.mark()
    where = "commune = 'EL-MAIZAL' AND tenure = 'occupied'"
    gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live.base}", "parcels",
        "-oo", "PAGE_SIZE=1000", "-where", where, "-t_srs", "EPSG:2202",
    )  # fmt: skip
    pages = item_requests(live.requests(mark), "parcels")
    assert pages and all(
        (r.query["commune"], r.query["tenure"]) == ("EL-MAIZAL", "occupied") for r in pages
    ), pages
    info = gdal("ogrinfo", "-ro", "-so", str(out), "parcels").stdout
    expected = fetch(
        live,
        "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = 'EL-MAIZAL' AND p.tenure = 'occupied'",
    )[0][0]
    assert f"Feature Count: {expected}" in info and expected > 0, info
    assert 'ID["EPSG",2202]' in info, info


def test_gdal_lists_the_land_records_and_reads_rights(live: Live, tmp_path: Path) -> None:
    """Parties and rights are in /collections, so GDAL lists them: parties with no geometry,
    rights as polygons (their parcels). Anonymous, GDAL reads rights whole and by -spat (sent
    as bbox), and never a holder's name: the field is not there."""
    info = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{live.base}").stdout
    listed = {line.split(": ", 1)[1].split(" ", 1)[0]: line for line in info.splitlines()[2:]}
    assert listed["parties"].endswith("(title: Sujetos de derecho)"), info  # no geometry
    assert listed["rights"].endswith("(Multi Polygon)"), info
    features = copied(live, tmp_path / "rights.geojson", "rights", *PAGE)
    expected = fetch(live, "SELECT id, parcel_id, status FROM rights ORDER BY id")
    assert [(f["id"], f["properties"]["parcel"], f["properties"]["status"]) for f in features] == [
        tuple(row) for row in expected
    ]
    assert expected and all(f["geometry"]["type"] == "MultiPolygon" for f in features)
    assert not {"holder", "note"} & {k for f in features for k in f["properties"]}
    parties = copied(live, tmp_path / "parties.geojson", "parties", *PAGE)
    (count,) = fetch(live, "SELECT count(*) FROM parties")[0]
    assert len(parties) == count > 0 and all(f["geometry"] is None for f in parties)
    assert not {"name", "id_number", "contact"} & {k for f in parties for k in f["properties"]}
    # GDAL 3.6's OAPIF layers always have a geometry field: "Unknown (any)", all null here;
    # its fields are what the schema gives an anonymous reader, no name among them
    layer = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{live.base}", "parties").stdout
    assert f"Feature Count: {count}" in layer, layer
    fields = [line.split(":")[0] for line in layer.split("mapping: 2,1\n", 1)[1].splitlines()]
    assert fields == ["kind", "commune", "illustrative"], layer

    w, s, e, n = -69.2, 9.6, -69.1, 9.75
    mark = live.mark()
    inside = copied(live, tmp_path / "b.geojson", "rights", *PAGE, "-spat", *map(str, (w, s, e, n)))
    expected = fetch(
        live,
        "SELECT r.id FROM rights r JOIN parcels pc ON pc.id = r.parcel_id "
        "WHERE ST_Intersects(pc.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        w,
        s,
        e,
        n,
    )
    assert sorted(f["id"] for f in inside) == sorted(i for (i,) in expected) and expected
    pages = item_requests(live.requests(mark), "rights")
    assert pages and all(r.status == 200 and "bbox" in r.query for r in pages), pages


def fields_of(live: Live, layer: str, *args: str) -> dict[str, str]:
    """``ogrinfo -so``'s fields of ``layer``, name -> OGR type, at GDAL's own page size."""
    info = gdal("ogrinfo", "-ro", "-so", *args, f"OAPIF:{live.base}", layer).stdout
    fields = info.split("mapping: 2,1\n", 1)[1].splitlines()
    return dict(line.split(": ", 1) for line in fields if ": " in line)


def test_gdal_types_its_fields_from_the_described_by_schema(live: Live) -> None:
    """GDAL types a layer's fields from its describedBy schema, else from the first page (10
    features): 5 de Marzo's parcels come first and have no dates, so recovered_on was a
    String; an El Maizal editor's first page of dwellings is 5 de Marzo's, whose residents it
    may not read, so the residents field was missing for all 300 of El Maizal's."""
    first = fetch(live, "SELECT recovered_on FROM parcels ORDER BY id LIMIT 10")
    assert all(day is None for (day,) in first), "the first page has no dates"
    parcels = fields_of(live, "parcels")
    assert parcels["recovered_on"].startswith("Date"), parcels
    assert parcels["commune"].startswith("String") and parcels["area_ha"].startswith("Real")

    token = add_user(live.dsn, "gdal-editor", "editor", ["EL-MAIZAL"])
    auth = ["--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {token}"]
    assert fields_of(live, "dwellings", *auth)["residents"].startswith("Integer")
    assert "residents" not in fields_of(live, "dwellings")  # not a field for anyone
    rights = fields_of(live, "rights")
    assert rights["ends_on"].startswith("Date") and rights["starts_on"].startswith("Date")
