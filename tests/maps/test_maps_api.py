"""Map pages, embed snippets, vector tiles and the report over HTTP (real app, real PostGIS,
every request in the test's rolled-back transaction)."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import subprocess
import time
import zipfile
from html import unescape as html_unescape
from pathlib import Path

import httpx
import pytest
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import EVERYWHERE
from geo_comuna.analysis.base import Once
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.db.versions import VersionedCache
from geo_comuna.features.filters import Filters
from geo_comuna.features.query import resolve_commune
from geo_comuna.layers import LAYERS, get_layer
from geo_comuna.maps import data
from geo_comuna.maps import overview as overview_module
from geo_comuna.maps.analysis_map import analysis_map, drawable
from geo_comuna.maps.commune import commune_map
from geo_comuna.maps.overview import Overview, overview
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings
from tests.analysis_factories import hurried_get, taking, timing_out
from tests.conftest import api_client
from tests.loop_turns import loop_turns
from tests.network_factories import commune

pytestmark = pytest.mark.anyio
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


async def centre(conn: AsyncConnection, code: str) -> tuple[float, float]:
    cur = await conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
        "FROM communes WHERE code = %s) c",
        (code,),
    )
    return await cur.fetchone()


async def test_an_areas_legend_is_filled_as_the_map_fills_the_areas(
    client: httpx.AsyncClient,
) -> None:
    """Found from outside: the tenure legend's swatches were full-strength colours beside
    parcels drawn at the layer's fill opacity (regularized: 21 apart in CAM02-UCS)."""
    html = (await client.get("/maps/communes/EL-MAIZAL")).text
    styles = Styles.load()
    opacity = styles.layer_style(LAYERS["parcels"])["fill_opacity"]
    hexes = styles.raw["domains"]["tenure"]
    for value in ("abandoned", "regularized"):
        r, g, b = (int(hexes[value][i : i + 2], 16) for i in (1, 3, 5))
        assert f"background:rgba({r},{g},{b},{opacity:g})" in html, value


async def test_commune_map_links_only_the_apps_own_libraries(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/communes/5-DE-MARZO")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="es">' in html
    # found from outside: folium's viewport kept a reader on a phone from zooming the page
    assert "user-scalable=no" not in html and "maximum-scale" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1.0"' in html
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert "/static/leaflet/leaflet.js" in [s.partition("?v=")[0] for s in sources]
    assert all(s.startswith(("/static/", "data:")) for s in sources), sources
    assert "cdn" not in html.lower() and "bootstrap" not in html
    for title in (
        "Parcelas por tenencia",
        "Viviendas por agua",
        "Viviendas por electricidad",
        "Vías, veredas y escaleras",
        "Servicios",
        "Líneas estadales",
    ):
        assert title in html
    assert 'class="gc-bar"' in html


async def test_static_libraries_are_served(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/leaflet/leaflet.js",
        "/static/leaflet/leaflet.css",
        "/static/geo_comuna/geo_comuna_maps.js",
        "/static/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
    ):
        r = await client.get(path)
        assert r.status_code == 200, path
    assert (await client.get("/static/leaflet/../../package.json")).status_code == 404


async def test_english_labels_and_embed_mode(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/communes/EL-MAIZAL", params={"lang": "en", "embed": "true"})
    assert r.status_code == 200
    assert '<html lang="en">' in r.text and "Parcels by tenure" in r.text
    assert 'class="gc-bar"' not in r.text  # no chrome inside an iframe


async def test_embed_snippet(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/communes/EL-MAIZAL/embed-snippet", params={"lang": "en"})
    assert r.status_code == 200
    body = r.json()
    assert body["url"] == "http://testserver/maps/communes/EL-MAIZAL?embed=true&lang=en"
    assert body["html"].startswith(
        '<iframe src="http://testserver/maps/communes/EL-MAIZAL?'
        'embed=true&amp;lang=en" title="El Maizal"'
    )
    assert "standalone=true" in body["standalone_url"]
    r = await client.get("/maps/national/embed-snippet")
    assert "/maps/national?embed=true" in r.json()["url"]
    r = await client.get("/maps/communes/EL-MAIZAL/water-hookups/embed-snippet")
    assert "/maps/communes/EL-MAIZAL/water-hookups?embed=true" in r.json()["url"]


async def test_the_embed_link_gives_a_person_a_page_to_copy_the_code_from(
    client: httpx.AsyncClient,
) -> None:
    """Found from outside: the map's "Insertar" link opened the JSON document, its iframe
    escaped inside a string. A browser now gets a page: the code in a box to copy, the
    offline file, and the map as it will show; a program still gets the JSON."""
    path = "/maps/communes/EL-MAIZAL/embed-snippet"
    program = (await client.get(path)).json()
    r = await client.get(path, headers={"accept": "text/html", "accept-language": "es"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="es">' in page and "Insertar el mapa: El Maizal" in page
    box = re.search(r'<textarea id="code" rows="4" readonly>([^<]*)</textarea>', page)
    assert box and html_unescape(box[1]) == program["html"], page
    assert program["html"] in page  # the preview
    assert html_unescape(page).count(program["standalone_url"]) == 1
    english = await client.get(path, params={"lang": "en"}, headers={"accept": "text/html"})
    assert "Embed the map: El Maizal" in english.text
    # found from outside: a phone has no Ctrl+C, and the page asked for /favicon.ico (a 404)
    assert "hold it on a phone" in english.text and "manténgalo pulsado" in page
    assert '<link rel="icon" href="data:,"/>' in page


async def test_an_analysis_maps_links_keep_the_analysis_and_its_parameters(
    client: httpx.AsyncClient,
) -> None:
    """On the water hookups map of a 500 m budget the title bar's EN, download and embed
    links led to the commune map: the other language lost the analysis and its budget. They
    are the same map's, with the budget; the embed snippet draws it with the budget too."""
    url = "/maps/communes/5-DE-MARZO/water-hookups"
    r = await client.get(url, params={"lang": "es", "budget_m": 500})
    assert r.status_code == 200
    links = set(re.findall(r'href="([^"]+)"', r.text))
    here = f"{url}?budget_m=500.0"
    assert f"{here}&amp;lang=en" in links
    assert f"{here}&amp;lang=es&amp;standalone=true" in links
    assert f"{url}/embed-snippet?budget_m=500.0&amp;lang=es" in links
    assert "/maps/communes/5-DE-MARZO?lang=en" not in links
    english = await client.get(url, params={"lang": "en", "budget_m": 500.0})
    assert english.status_code == 200 and "Water hookups" in english.text
    snippet = (await client.get(f"{url}/embed-snippet", params={"budget_m": 500})).json()
    assert snippet["url"].endswith(f"{here}&embed=true&lang=es")
    assert f"{here}&standalone=true" in snippet["standalone_url"]
    bad = await client.get(f"{url}/embed-snippet", params={"budget_m": "mucho"})
    assert bad.status_code == 400 and "budget_m" in bad.text
    plain = await client.get(url, params={"lang": "es"})  # defaults: no parameter repeated
    assert f"{url}?lang=en" in set(re.findall(r'href="([^"]+)"', plain.text))


async def test_maps_reports_and_sheets_follow_the_browsers_language(
    client: httpx.AsyncClient,
) -> None:
    """With no ?lang an English browser got Spanish maps, reports and sheets, though the
    pages followed its Accept-Language; ?lang still decides. Their downloads are named in
    the page's language (a Spanish report came as report-1-es.html)."""
    english = {"Accept-Language": "en-US,en;q=0.9"}
    for path in (
        "/maps/communes/EL-MAIZAL",
        "/maps/communes/EL-MAIZAL/land-recovery",
        "/maps/national",
        "/communes/EL-MAIZAL/report",
    ):
        r = await client.get(path, headers=english)
        assert r.status_code == 200 and '<html lang="en">' in r.text, path
        assert "Accept-Language" in r.headers["vary"], path
        r = await client.get(path, params={"lang": "es"}, headers=english)
        assert '<html lang="es">' in r.text, path
        r = await client.get(path)
        assert '<html lang="es">' in r.text, path  # no preference: Spanish
    # and by the commune's code: by its id, several communes' files could not be told apart
    r = await client.get("/communes/EL-MAIZAL/report", params={"download": "true"})
    assert 'filename="informe-EL-MAIZAL-es.html"' in r.headers["content-disposition"]
    r = await client.get("/communes/EL-MAIZAL/report?download=true", headers=english)
    assert 'filename="report-EL-MAIZAL-en.html"' in r.headers["content-disposition"]
    r = await client.get("/maps/communes/EL-MAIZAL", params={"standalone": "true"})
    assert 'filename="comuna-EL-MAIZAL-es.html"' in r.headers["content-disposition"]
    r = await client.get("/maps/communes/5-DE-MARZO/stair-access?standalone=true&lang=en")
    assert (
        'filename="commune-5-DE-MARZO-stair-access-en.html"' in (r.headers["content-disposition"])
    )


async def test_standalone_inlines_everything(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/communes/5-DE-MARZO", params={"standalone": "true"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    assert not re.search(r"<script[^>]+src=", r.text)
    assert not re.search(r"<link[^>]+stylesheet", r.text)
    assert "L.map(" in r.text and "GeoComuna.geojson(" in r.text


async def test_unknown_commune_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/communes/NO-SUCH-COMMUNE")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_the_national_map_counts_communes_as_the_breakdown_does(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """The map counted a commune only in the state holding its point on surface: Portuguesa
    and Miranda showed 0 communes, where /states/breakdown counts El Maizal and Monte Sinaí
    (805 and 380 ha there). Both now count every commune in every state it touches."""
    mapped = json.loads(await data.state_communes(conn))
    on_map = {f["properties"]["code"]: f["properties"]["communes"] for f in mapped["features"]}
    r = await client.get("/states/breakdown")
    assert r.status_code == 200, r.text
    body = r.json()
    states = body["states"] if isinstance(body, dict) else body
    counted = {s["code"]: s["communes"] for s in states if s["code"]}
    assert counted["VE-P"] >= 1 and on_map["VE-P"] == counted["VE-P"]
    assert {code: on_map[code] for code in counted} == counted
    assert all(n == 0 for code, n in on_map.items() if code not in counted)


async def test_the_national_map_gives_each_state_its_area(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: the states' popup lists their area, which the map's data lacked:
    every state read "—". It is the area the states' collection gives."""
    mapped = json.loads(await data.state_communes(conn))
    on_map = {f["properties"]["code"]: f["properties"]["area_ha"] for f in mapped["features"]}
    r = await client.get("/collections/states/items", params={"limit": 100})
    listed = {f["properties"]["code"]: f["properties"]["area_ha"] for f in r.json()["features"]}
    assert len(on_map) == len(listed) == 25 and on_map == listed
    assert 1_800_000 < on_map["VE-K"] < 2_000_000  # Lara: ~19,800 km²


async def test_national_map(client: httpx.AsyncClient) -> None:
    r = await client.get("/maps/national", params={"lang": "en"})
    assert r.status_code == 200
    for title in ("Communes per state", "Communes by status", "Exchanges by product"):
        assert title in r.text


async def test_analysis_maps(client: httpx.AsyncClient) -> None:
    for name in all_analyses():
        r = await client.get(f"/maps/communes/5-DE-MARZO/{name}")
        assert r.status_code == 200, name
    r = await client.get("/maps/communes/5-DE-MARZO/water-hookups", params={"max_projects": 0})
    assert r.status_code == 400  # the analysis' own parameters are checked
    r = await client.get("/maps/communes/5-DE-MARZO/no-such-analysis")
    assert r.status_code == 404


async def test_a_budget_on_the_water_map_draws_the_projects_it_takes(
    client: httpx.AsyncClient,
) -> None:
    """?budget_m=500 drew the same page as without it: every project's pipe, the budget
    ignored. The map now draws the projects the budget's choice takes, and says how many."""
    url = "/maps/communes/5-DE-MARZO/water-hookups"
    every = (await client.get(url, params={"lang": "en"})).text
    budget = (await client.get(url, params={"lang": "en", "budget_m": 500})).text
    answer = await client.get(
        "/communes/5-DE-MARZO/analyses/water-hookups", params={"budget_m": 500}
    )
    chosen = answer.json()["summary"]["budget"]["greedy"]["projects"]
    assert 0 < chosen < answer.json()["summary"]["projects"]
    # and only their homes, colored by rank (found from outside: every home was, read as
    # funded); without a budget, every home (a home's feature has its connector, a pipe not)
    shown, homes = budget.count('"connector_m"'), every.count('"connector_m"')
    assert homes == answer.json()["summary"]["dwellings_without_piped_water"]
    assert chosen <= shown < homes
    assert (
        f"Within the budget: {chosen} projects (greedy choice); {homes - shown} more homes "
        "without piped water are beyond it." in budget
    ), budget[:2000]
    assert "Within the budget" not in every
    assert budget.count('"chosen_greedy": true') == chosen
    assert '"chosen_greedy": false' not in budget


async def test_a_missing_analysis_shows_a_message(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """An analysis the styles expect but that is not installed: the map still opens."""
    styles = Styles(copy.deepcopy(Styles.load().raw))  # the loaded styles are shared
    styles.raw["analyses"]["flood-risk"] = {"legend": {"es": "Riesgo", "en": "Flood risk"}}
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    html = await analysis_map(conn, commune_id, "flood-risk", Page(lang="en"), styles=styles)
    assert "Analysis not available" in html and "Flood risk" in html


async def test_an_analysis_that_cannot_finish_shows_why(
    client: httpx.AsyncClient, conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analysis the statement timeout cancels while a package draws its maps (the package
    keeps each answer, or failure, once): the map still opens and says why."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", timing_out(all_analyses()["land-recovery"])
    )
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    with work.caching(Once()):
        html = await analysis_map(conn, commune_id, "land-recovery", Page(lang="en"))
    assert "Analysis not available" in html and "did not finish" in html


async def parcels_overview(conn: AsyncConnection, commune_id: int) -> Overview | None:
    """The overview of a commune's parcels by tenure."""
    themes = {"tenure": {"abandoned": "#d7191c", "occupied": "#1a9641"}}
    filters = Filters(commune_id=commune_id)
    parcels = get_layer("parcels")
    return await overview(
        conn, parcels, filters, themes, EVERYWHERE, fallback="#999999", opacity=0.6
    )


async def test_an_overview_is_drawn_once_per_layer_version(conn: AsyncConnection) -> None:
    """A package's map, report and analysis maps in two languages want the same overview
    picture six times (~3 s each for 200,000 parcels): through the cache it is drawn once,
    and drawn anew once the layer is written."""
    commune_id = await resolve_commune(conn, "EL-MAIZAL")

    async def drawn() -> Overview | None:
        return await parcels_overview(conn, commune_id)

    with work.caching(VersionedCache()):
        first = await drawn()
        assert first is not None and await drawn() is first
        await conn.execute(
            "UPDATE parcels SET tenure = 'abandoned' WHERE commune_id = %s", (commune_id,)
        )
        again = await drawn()
    assert again is not first and again.images["tenure"] != first.images["tenure"]
    assert again.bounds == first.bounds


async def test_an_overview_is_burned_off_the_event_loop_a_chunk_at_a_time(
    conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Burning the shapes of 200,000 parcels takes ~2 s of CPU: on a worker, so that other
    requests go on meanwhile, and CHUNK rows at a time, read as they are burned, so that only
    one chunk of shapes is held. Chunks of 20 give the picture one chunk gives."""
    commune_id = await resolve_commune(conn, "EL-MAIZAL")

    async def drawn() -> Overview | None:
        return await parcels_overview(conn, commune_id)

    whole = await drawn()
    burn, burned = overview_module._burn, []

    def slow(*args: object) -> None:
        time.sleep(0.1)  # blocks whatever thread runs it
        burned.append(args[2])
        burn(*args)

    monkeypatch.setattr(overview_module, "_burn", slow)
    monkeypatch.setattr(overview_module, "CHUNK", 20)
    async with loop_turns(0.005) as turns:
        chunked = await drawn()
    cur = await conn.execute("SELECT count(*) FROM parcels WHERE commune_id = %s", (commune_id,))
    count = (await cur.fetchone())[0]
    assert burned == list(range(1, count + 1, 20)) and len(burned) >= 3
    assert turns[0] >= 5 * len(burned), turns  # the loop ran on while each chunk burned
    assert chunked == whole


async def test_a_geobuf_is_built_once_per_version_of_what_it_reads(
    conn: AsyncConnection,
) -> None:
    """A package's maps and reports in two languages carry the same geobuf of a big layer
    (~0.5 s each for 200,000 parcels): through the cache it is built once, and built anew
    after a write to the layer or to a table its features are built from (a commune's code)."""
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    parcels = get_layer("parcels")
    filters = Filters(commune_id=commune_id)

    async def built() -> bytes:
        return await data.geobuf(conn, parcels, filters, ["commune", "tenure"], EVERYWHERE)

    with work.caching(VersionedCache()):
        first = await built()
        assert first and await built() is first
        await conn.execute(
            "UPDATE parcels SET tenure = 'abandoned' WHERE commune_id = %s", (commune_id,)
        )
        second = await built()
        assert second is not first and second != first and await built() is second
        await conn.execute("UPDATE communes SET code = 'EL-MAIZAL-2' WHERE id = %s", (commune_id,))
        third = await built()
    assert third != second and b"EL-MAIZAL-2" in third


async def test_tiles(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    lon, lat = await centre(conn, "EL-MAIZAL")
    x, y = tile_of(lon, lat, 13)
    url = f"/tiles/parcels/13/{x}/{y}.pbf"
    r = await client.get(url, params={"commune": "EL-MAIZAL"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(r.content) > 100 and b"parcels" in r.content and b"tenure" in r.content
    etag = r.headers["etag"]
    again = await client.get(url, params={"commune": "EL-MAIZAL"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    far = await client.get("/tiles/parcels/13/0/0.pbf")
    assert far.status_code == 200 and far.content == b""
    assert (await client.get("/tiles/parcels/23/0/0.pbf")).status_code == 400
    assert (await client.get("/tiles/parcels/3/8/0.pbf")).status_code == 400
    assert (await client.get("/tiles/nothing/3/1/1.pbf")).status_code == 404
    for layer in ("communes", "dwellings", "paths", "exchanges", "states"):
        assert (await client.get(f"/tiles/{layer}/5/9/15.pbf")).status_code == 200


async def test_tiles_at_the_edge_of_the_world_hold_their_own_features(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """The tiles at x = 0 reach past 180 degrees west by their buffer. Selecting their
    features by that buffered box turned into lon/lat wrapped it to the other side of the
    world: at zoom 1 the tile over the Americas looked for features between 2.8 and 177 degrees
    east and drew none of the communes' facilities."""
    lon, lat = await centre(conn, "5-DE-MARZO")
    cur = await conn.execute("SELECT count(*) FROM facilities")
    assert (await cur.fetchone())[0] > 0
    for z in range(5):
        x, y = tile_of(lon, lat, z)
        r = await client.get(f"/tiles/facilities/{z}/{x}/{y}.pbf")
        assert r.status_code == 200 and b"facilities" in r.content, (z, x, y)


def read_tile(folder: Path, z: int, x: int, y: int, body: bytes) -> list[dict]:
    """The features of a tile as GeoJSON in lon/lat, read by Debian's GDAL (the service's own
    GDAL refuses MVT: only import formats)."""
    path = folder / str(z) / str(x) / f"{y}.pbf"  # GDAL places a tile by its path
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    read = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "-t_srs", "EPSG:4326", "/vsistdout/", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(read.stdout)["features"]


async def test_a_parcel_of_many_vertices_is_drawn_with_the_tiles_own_detail(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """A parcel of 20,000 vertices (one every ~5 cm, its edge waving every ~2.5 m) is ~300 m
    across: at zoom 13 that is ~250 cells of the tile's grid. The tile is simplified by half a cell
    before ST_AsMVTGeom: 336 vertices, not the 3,743 that snapping alone leaves (100 such
    parcels took 15 s for one tile), and the same shape (area within 1%)."""
    commune = await resolve_commune(conn, "EL-MAIZAL")
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, tenure, geom) SELECT %s, 'occupied', ST_Multi("
        "ST_MakePolygon(ST_AddPoint(line, ST_StartPoint(line)))) FROM (SELECT ST_SetSRID("
        "ST_MakeLine(ARRAY(SELECT ST_MakePoint(-61 + r * cos(a), 8 + r * sin(a)) FROM ("
        "SELECT 0.0016 * (0.95 + 0.05 * sin(k * 0.05)) AS r, k * 2 * pi() / 20000 AS a "
        "FROM generate_series(0, 19999) k) s)), 4326) AS line) q "
        "RETURNING ST_NPoints(geom), ST_AsBinary(geom)",
        (commune,),
    )
    vertices, wkb = await cur.fetchone()
    assert vertices == 20_001
    x, y = tile_of(-61, 8, 13)
    r = await client.get(f"/tiles/parcels/13/{x}/{y}.pbf")
    assert r.status_code == 200
    [drawn] = read_tile(tmp_path, 13, x, y, r.content)
    shape = shapely.geometry.shape(drawn["geometry"])
    assert 100 < shapely.get_num_coordinates(shape) <= 1_000
    assert shape.area == pytest.approx(shapely.from_wkb(wkb).area, rel=0.01)


#: parcels of a summary tile worked out by hand: (cell column, cell row, offset of the centre
#: in degrees, tenure). Cells are 1/32 of a zoom-8 tile (360 / 256 / 32 degrees), centred on
#: multiples of their size; each parcel is 0.001 degrees wide, under a pixel at zoom 8.
SUMMARY_PARCELS = [
    (0, 0, (0.004, 0.003), "occupied"),
    (0, 0, (-0.006, 0.001), "occupied"),
    (0, 0, (0.0, -0.008), "abandoned"),
    (2, 0, (0.002, 0.002), "regularized"),
    (2, 0, (-0.003, 0.004), "disputed"),  # a tie: the first value in order is shown
    (0, 3, (0.0, 0.0), "regularizing"),
]


async def test_a_low_zoom_tile_of_small_parcels_is_a_grid_of_counted_cells(
    client: httpx.AsyncClient, conn: AsyncConnection, tmp_path: Path
) -> None:
    """At zoom 8 a parcel is a fraction of a pixel, so the tile is the summary grid: a cell per
    1/32 of the tile holding its parcels' count and their most frequent tenure."""
    z, cell = 8, 360 / 256 / 32
    col, row = round(-61.2 / cell), round(7.9 / cell)  # far from the samples' parcels
    commune = await resolve_commune(conn, "EL-MAIZAL")
    for i, j, (dx, dy), tenure in SUMMARY_PARCELS:
        cx, cy = (col + i) * cell + dx, (row + j) * cell + dy
        await conn.execute(
            "INSERT INTO parcels (commune_id, tenure, geom) VALUES (%s, %s, ST_Multi("
            "ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
            (commune, tenure, cx - 0.0005, cy - 0.0005, cx + 0.0005, cy + 0.0005),
        )
    x, y = tile_of(col * cell, row * cell, z)
    assert tile_of((col + 2) * cell, (row + 3) * cell, z) == (x, y)  # all in one tile
    # reaching into the tile from the west, but centred in the tile beside it: not counted
    west = -180 + x * 360 / 2**z - 0.002
    await conn.execute(
        "INSERT INTO parcels (commune_id, tenure, geom) VALUES (%s, 'disputed', ST_Multi("
        "ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
        (commune, west - 0.004, row * cell, west + 0.004, row * cell + 0.001),
    )
    r = await client.get(f"/tiles/parcels/{z}/{x}/{y}.pbf")
    assert r.status_code == 200
    found = {}
    for f in read_tile(tmp_path, z, x, y, r.content):
        centre = shapely.geometry.shape(f["geometry"]).centroid
        at = (round(centre.x / cell) - col, round(centre.y / cell) - row)
        found[at] = (f["properties"]["gc_count"], f["properties"]["tenure"])
    assert found == {
        (0, 0): (3, "occupied"),
        (2, 0): (2, "disputed"),
        (0, 3): (1, "regularizing"),
    }


async def test_tiles_of_a_version_are_cached_for_long(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    version = await data.layer_version(conn, get_layer("parcels"))
    r = await client.get("/tiles/parcels/5/9/15.pbf", params={"v": version})
    assert "immutable" in r.headers["cache-control"]
    r = await client.get("/tiles/parcels/5/9/15.pbf", params={"v": version + 1})
    assert "max-age=60" in r.headers["cache-control"]


async def test_a_tile_changes_with_the_codes_it_shows(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """An exchange's tile shows the codes of its communes. When a commune's code changed,
    the tile kept its ETag (a 304 for the old one), its cache entry and its ?v= URL, and
    showed the old code: its version was the exchanges' table's alone."""
    cur = await conn.execute(
        "SELECT c.id, c.code, ST_X(ST_PointOnSurface(e.geom)), ST_Y(ST_PointOnSurface(e.geom)) "
        "FROM exchanges e JOIN communes c ON c.id = e.to_commune_id LIMIT 1"
    )
    commune, code, lon, lat = await cur.fetchone()
    x, y = tile_of(lon, lat, 14)
    url = f"/tiles/exchanges/14/{x}/{y}.pbf"
    before = await client.get(url)
    assert before.status_code == 200 and code.encode() in before.content
    version = await data.layer_version(conn, get_layer("exchanges"))
    await conn.execute("UPDATE communes SET code = code || '-X' WHERE id = %s", (commune,))
    assert await data.layer_version(conn, get_layer("exchanges")) > version
    after = await client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert f"{code}-X".encode() in after.content


@pytest.mark.parametrize(
    "path",
    [
        "/maps/communes/5-DE-MARZO",
        "/maps/communes/5-DE-MARZO/water-hookups?embed=true",
        "/maps/national?lang=en",
        "/communes/5-DE-MARZO/report",
        "/maps/communes/5-DE-MARZO?standalone=true",
    ],
)
async def test_a_map_or_report_a_browser_has_is_a_304(
    client: httpx.AsyncClient, conn: AsyncConnection, path: str
) -> None:
    """Found from outside, and left from before: map pages and the report had no ETag (folium
    names its elements at random), so every visit on a slow line took the whole page again.
    The same data gives the same bytes; a browser holding them gets a 304, until a write."""
    first, second = await client.get(path), await client.get(path)
    assert first.status_code == 200 and first.content == second.content
    etag = first.headers["etag"]
    held = await client.get(path, headers={"If-None-Match": etag})
    assert held.status_code == 304 and held.content == b"" and held.headers["etag"] == etag
    await conn.execute(
        "UPDATE communes SET name = name || ' (nueva)' WHERE code IN ('5-DE-MARZO', 'EL-MAIZAL')"
    )
    after = await client.get(path, headers={"If-None-Match": etag})
    assert after.status_code == 200 and "(nueva)" in after.text
    assert after.headers["etag"] != etag


async def test_a_value_like_an_element_id_is_left_as_it_is(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: since map pages number folium's element ids, a facility named
    "Cancha_d41d8cd98f00b204e9800998ecf8427e" (an MD5 after an underscore, as a survey app
    writes) showed as "Cancha_00000000000000000000000000000014". Only the page's own
    elements' ids are numbered, and none is left random."""
    name = "Cancha_d41d8cd98f00b204e9800998ecf8427e"
    await conn.execute(
        "UPDATE facilities SET name = %s WHERE id = (SELECT min(f.id) FROM facilities f "
        "JOIN communes c ON c.id = f.commune_id WHERE c.code = '5-DE-MARZO')",
        (name,),
    )
    page = await client.get("/maps/communes/5-DE-MARZO")
    assert page.status_code == 200 and name in page.text
    ids = re.findall(r"_([0-9a-f]{32})\b", page.text.replace(name, ""))
    assert ids and all(i.startswith("0" * 20) for i in ids), sorted(set(ids))[-3:]


async def test_big_layers_use_tiles_or_geobuf(conn: AsyncConnection) -> None:
    commune_id = await resolve_commune(conn, "5-DE-MARZO")
    served = await commune_map(conn, commune_id, Page(tile_threshold=100, access=EVERYWHERE))
    assert "/tiles/dwellings/{z}/{x}/{y}.pbf?v=" in served
    assert "Leaflet.VectorGrid.bundled.min.js" in served
    standalone = await commune_map(
        conn, commune_id, Page(tile_threshold=100, standalone=True, access=EVERYWHERE)
    )
    assert "GeoComuna.geobuf(" in standalone and "/tiles/dwellings" not in standalone
    # everyone else gets the dwellings per sector, never their tiles
    public = await commune_map(conn, commune_id, Page(tile_threshold=100))
    assert "Viviendas por sector" in public and "/tiles/dwellings" not in public


async def test_many_parcels_with_rights_are_drawn_within_the_pages_budget(
    conn: AsyncConnection,
) -> None:
    """Found from outside: the parcels with rights were inlined as shapes whatever their
    number (10,000 made a page of 41 MB). Past a layer's inline budget each is a point; past
    the overview threshold they are left out, and the note says where they are listed."""
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    cur = await conn.execute(
        "SELECT count(DISTINCT parcel_id) FROM rights r JOIN parcels p ON p.id = r.parcel_id "
        "WHERE p.commune_id = %s",
        (commune_id,),
    )
    (held,) = await cur.fetchone()
    assert held >= 3  # the sample's

    def holdings(page: str) -> dict:
        name = re.search(r'GeoComuna\.geojson\(\{"id":"holdings".*?\}, (\w+)\)', page)
        assert name, "no holdings layer"
        start = page.index(f"var {name[1]} = ") + len(f"var {name[1]} = ")
        return json.JSONDecoder().raw_decode(page, start)[0]

    whole = await commune_map(conn, commune_id, Page())
    shapes = {f["geometry"]["type"] for f in holdings(whole)["features"]}
    assert shapes == {"MultiPolygon"} and len(holdings(whole)["features"]) == held
    many = await commune_map(conn, commune_id, Page(tile_threshold=held - 1))
    assert {f["geometry"]["type"] for f in holdings(many)["features"]} == {"Point"}
    assert "un punto por parcela" in many
    too_many = await commune_map(conn, commune_id, Page(overview_threshold=held - 1, lang="en"))
    assert '"id":"holdings"' not in too_many
    assert f"{held} parcels with rights, too many to draw on this map" in too_many
    assert "/collections/rights/items?commune=EL-MAIZAL" in too_many


async def test_a_layer_of_few_features_but_many_vertices_is_drawn_as_a_big_one(
    conn: AsyncConnection,
) -> None:
    """100 parcels of 50,000 vertices each made a served map of 108 MB. Past
    Page.inline_vertices vertices a layer is drawn as a big one is, however few its features:
    from tiles when served, as simplified geobuf in a standalone file."""
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    cur = await conn.execute(
        "SELECT count(*), sum(ST_NPoints(geom)) FROM parcels WHERE commune_id = %s", (commune_id,)
    )
    n, vertices = await cur.fetchone()
    assert 0 < n < Page().tile_threshold and vertices > n

    async def drawn(most: int, standalone: bool) -> str:
        page = Page(inline_vertices=most, standalone=standalone, access=EVERYWHERE)
        return await commune_map(conn, commune_id, page)

    assert "/tiles/parcels/" not in await drawn(vertices, standalone=False)
    assert "/tiles/parcels/{z}/{x}/{y}.pbf?v=" in await drawn(vertices - 1, standalone=False)
    assert "GeoComuna.geobuf(" not in await drawn(vertices, standalone=True)
    assert "GeoComuna.geobuf(" in await drawn(vertices - 1, standalone=True)


def test_an_analysis_map_draws_many_vertices_simplified_and_points_as_they_are() -> None:
    """Land recovery's features in a commune of 100 parcels of 50,000 vertices made a map of
    78 MB. Past Page.inline_vertices a map draws the answer's lines and areas simplified by
    ~1 m (a circle of 110 m radius: a few dozen vertices, its area within 2%); points, and
    answers within the budget, as they are; the answer itself keeps every vertex."""
    turns = (2 * math.pi * k / 10_000 for k in range(10_000))
    circle = shapely.Polygon([(-66 + 0.001 * math.cos(a), 9 + 0.001 * math.sin(a)) for a in turns])
    features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(circle),
            "properties": {"kind": "candidate"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-66, 9]},
            "properties": {},
        },
        {"type": "Feature", "geometry": None, "properties": {}},
    ]
    assert drawable(features, 10_001) is features  # the ring's 10,000 vertices and its closing
    drawn = drawable(features, 10_000)
    shape = shapely.geometry.shape(drawn[0]["geometry"])
    assert shapely.get_num_coordinates(shape) < 100
    assert shape.area == pytest.approx(circle.area, rel=0.02)
    assert drawn[0]["properties"] == {"kind": "candidate"} and drawn[1:] == features[1:]
    assert shapely.get_num_coordinates(shapely.geometry.shape(features[0]["geometry"])) == 10_001


async def test_report(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    r = await client.get("/communes/EL-MAIZAL/report", params={"lang": "en"})
    assert r.status_code == 200
    html = r.text
    assert "Lara" in html and "Portuguesa" in html  # the per-state breakdown
    assert "Land: parcels by tenure" in html and "Utilities" in html
    assert "@media print" in html
    assert '<iframe class="map whole" title="Commune map" src="/maps/communes/' in html
    # found from outside: Monte Sinaí's header read "— habitantes" (no registry figure) beside
    # a table of 218 "habitantes" (those of its mapped dwellings): the header says whose
    assert "people (registry)" in html
    spanish = (await client.get("/communes/MONTE-SINAI/report", params={"lang": "es"})).text
    assert "habitantes (registro)" in spanish
    assert "no parcels recorded" not in html
    # found from outside: tenures in the codes' alphabetical order (English's); now the
    # legend's, the path of recovery, in either language
    maizal = (await client.get("/communes/EL-MAIZAL/report", params={"lang": "es"})).text
    land = maizal[maizal.index('<section id="land">') : maizal.index('<section id="utilities">')]
    shown = [
        label
        for label in ("Abandonada", "Ocupada", "En regularización", "Regularizada", "En disputa")
        if f"<td>{label}</td>" in land
    ]
    assert len(shown) >= 3 and shown == sorted(shown, key=land.index), shown
    # found from outside: ha figures with two decimals, as the tables write them
    whole_ha = re.search(r"(?<![\d.,])\d{1,3}(\.\d{3})*\s+ha\b", maizal)
    assert not whole_ha, f"ha without decimals: {whole_ha}"
    # found from outside: a commune without parcels had a land section of headings, no row
    bare = "NET-TEST"
    await commune(conn, bare)
    urban = (await client.get(f"/communes/{bare}/report", params={"lang": "es"})).text
    land = urban[urban.index('<section id="land">') : urban.index('<section id="utilities">')]
    assert "La comuna no tiene parcelas registradas." in land and "<table>" not in land
    utilities = urban[urban.index('<section id="utilities">') :]
    utilities = utilities[: utilities.index("</section>")]
    assert "La comuna no tiene viviendas registradas." in utilities and "<table>" not in utilities
    r = await client.get("/communes/EL-MAIZAL/report", params={"download": "true"})
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "srcdoc=" in r.text and "<script src=" not in r.text


async def test_the_report_holds_terrain_where_the_commune_has_a_dem(
    client: httpx.AsyncClient,
) -> None:
    """5 de Marzo has the sample's DEM: its report has a terrain section, with the figures of
    /analyses/terrain as the report writes numbers, and the terrain map. El Maizal has none:
    no terrain section rather than one more "not available"."""
    r = await client.get("/communes/5-DE-MARZO/report", params={"lang": "en"})
    assert r.status_code == 200
    html = r.text
    assert "<h3>Terrain" in html and "Mean elevation" in html and "Steep share" in html
    assert 'src="/maps/communes/' in html and '/terrain?embed=true&amp;lang=en"' in html
    summary = (await client.get("/communes/5-DE-MARZO/analyses/terrain")).json()["summary"]
    from geo_comuna.maps.templating import number

    # the figure and its unit held on one line (found from outside: "18.579,3 / m")
    assert f"{number('en')(summary['commune']['mean_elevation_m'], 1)}\u00a0m" in html
    assert "not available" not in html
    maizal = (await client.get("/communes/EL-MAIZAL/report", params={"lang": "en"})).text
    assert "<h3>Land recovery" in maizal and "Terrain" not in maizal


async def test_a_report_whose_analysis_runs_out_of_time_says_so(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analysis the statement timeout cancels while the served report is built (no
    package keeping answers): the report opens with the rest and says that it did not
    finish, not that it failed to run (as it said for a commune of 200,000 parcels)."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", timing_out(all_analyses()["land-recovery"])
    )
    for lang, said, not_said in (
        ("en", "not available: it did not finish", "failed to run"),
        ("es", "no disponible: no terminó", "falló al calcularse"),
    ):
        r = await client.get("/communes/EL-MAIZAL/report", params={"lang": lang})
        assert r.status_code == 200 and "Lara" in r.text
        assert said in r.text and not_said not in r.text


async def test_a_slow_analysis_leaves_the_others_of_a_report_their_time(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report's four analyses share its 2 s: land recovery, which would take 30 s, is
    stopped after its 0.5 s and says so, and the other three still give their figures. One
    analysis used to take the whole request's time, and every one after it said it had run
    out of time too."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", taking(all_analyses()["land-recovery"], 30)
    )
    r, took = await hurried_get(
        conn, settings, admin_token, 2.0, "/communes/5-DE-MARZO/report", lang="en"
    )
    assert r.status_code == 200
    assert "not available: it did not finish in its share of the time a report may take" in r.text
    for figure in ("Dwellings without piped water", "Homes without safe power"):
        assert figure in r.text
    assert r.text.count("not available") == 1
    assert took < 10  # not land recovery's 30 s (a bound, not a benchmark)


async def test_a_report_file_whose_analysis_cannot_finish_still_comes(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The downloaded report draws each analysis' map before its summaries, and the map ran
    land recovery in the whole time left: in a commune of 100 parcels of 50,000 vertices the
    file was a 503. Now the analyses are answered first, in shares of half the time, and
    the maps and summaries reuse the answers and the failure: the file comes, and says so
    in both places."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", taking(all_analyses()["land-recovery"], 30)
    )
    r, took = await hurried_get(
        conn, settings, admin_token, 3.0, "/communes/5-DE-MARZO/report", lang="en", download="true"
    )
    assert r.status_code == 200, r.text
    said = "not available: it did not finish in its share of the"
    assert r.text.count(said) >= 2  # the summary and the map inside the file
    assert "Dwellings without piped water" in r.text
    assert took < 10  # not land recovery's 30 s (a bound, not a benchmark)


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en", "Analysis not available: it did not finish in its share of the"),
        ("es", "Análisis no disponible: no terminó en su parte de los"),
    ],
)
async def test_an_analysis_map_leaves_itself_time_to_draw(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
    said: str,
) -> None:
    """Land recovery in a commune of 100 parcels of 50,000 vertices took 19 of the map's 20 s,
    and the map was a 503. The analysis now has half the time: the map comes without it and
    says why, in the page's language."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", taking(all_analyses()["land-recovery"], 30)
    )
    r, took = await hurried_get(
        conn, settings, admin_token, 2.0, "/maps/communes/EL-MAIZAL/land-recovery", lang=lang
    )
    assert r.status_code == 200, r.text
    assert said in r.text
    assert took < 10  # not land recovery's 30 s (a bound, not a benchmark)


async def test_a_report_runs_its_smallest_analyses_first(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Land recovery would take 0.8 s of a report's 2 s. In the report's order it came first
    and had a quarter (0.5 s): stopped, and the report lacked it. Given more parcels than
    homes, El Maizal runs the three analyses of homes first and land recovery last, with
    what they left: every analysis is in the report, in the report's order."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", taking(all_analyses()["land-recovery"], 0.8)
    )
    commune_id = await resolve_commune(conn, "EL-MAIZAL")
    await conn.execute(  # small diamonds inside the commune, as many as its homes
        "INSERT INTO parcels (commune_id, code, tenure, land_use, geom) "
        "SELECT c.id, 'MORE-' || i, 'occupied', 'crops', "
        "ST_Multi(ST_Buffer(ST_PointOnSurface(c.geom), 0.00001, 'quad_segs=1')) "
        "FROM communes c, generate_series(1, (SELECT count(*) FROM dwellings "
        "WHERE commune_id = %(c)s)) i WHERE c.id = %(c)s",
        {"c": commune_id},
    )
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM parcels WHERE commune_id = %(c)s), "
        "(SELECT count(*) FROM dwellings WHERE commune_id = %(c)s)",
        {"c": commune_id},
    )
    parcels, dwellings = await cur.fetchone()
    assert parcels > dwellings > 0
    r, _ = await hurried_get(
        conn, settings, admin_token, 2.0, "/communes/EL-MAIZAL/report", lang="en"
    )
    assert r.status_code == 200
    assert "not available" not in r.text
    titles = ("Land recovery", "Water hookups", "Electricity gaps", "Stair access")
    at = [r.text.index(f"<h3>{title}") for title in titles]
    assert at == sorted(at)


MONTHS = {
    "es": "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|"
    "diciembre",
    "en": "January|February|March|April|May|June|July|August|September|October|November|December",
}
#: words of one language that must not be on the other's page (whole words, any case)
FOREIGN = {
    "es": ["report", "generated", "source", "parcels", "dwellings", "residents", "people",
           "water", "electricity", "candidates?", "overlaps?", "slivers?", "yes", "tenure",
           "analyses", "maps?", "download", "hookups", "stair", "none", "true", "false"],
    "en": ["informe", "generado", "fuente", "parcelas", "viviendas", "habitantes", "agua",
           "electricidad", "tenencia", "sí", "descargar", "mapas?", "análisis"],
}  # fmt: skip


def visible_text(html: str) -> str:
    """What a person reads of a page: no styles, no tags, entities decoded."""
    import html as entities

    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return entities.unescape(re.sub(r"<[^>]+>", "\n", html))


def test_dates_are_written_in_the_pages_language() -> None:
    import datetime as dt

    from geo_comuna.maps.templating import day

    assert day("es")(dt.date(2026, 12, 4)) == "4 de diciembre de 2026"
    assert day("en")(dt.date(2026, 12, 4)) == "4 December 2026"
    moment = dt.datetime(2027, 1, 31, 23, 5, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    assert day("es")(moment) == "31 de enero de 2027, 03:05 UTC"  # 23:05 in Caracas
    assert day("en")(None) == "—"


@pytest.mark.parametrize("who", ["admin", "anonymous"])
async def test_the_report_reads_in_its_language(
    conn: AsyncConnection, settings: Settings, admin_token: str, who: str
) -> None:
    """Every word of the report in the page's language (no raw key, no None, no word of the
    other language), its numbers and dates written the language's way, for a member and
    an outsider (who gets other figures). The commune's source, a text of its data, is
    cleared: it is shown as written."""
    await conn.execute(
        "UPDATE communes SET founded = '2009-03-05', source = NULL WHERE code = '5-DE-MARZO'"
    )
    cur = await conn.execute(
        "SELECT count(*) FROM dwellings d JOIN communes c ON c.id = d.commune_id "
        "WHERE c.code = '5-DE-MARZO'"
    )
    homes = (await cur.fetchone())[0]
    assert homes >= 1000  # so that it is written with a thousands separator
    async with api_client(conn, settings, admin_token if who == "admin" else None) as c:
        pages = {
            lang: (await c.get("/communes/5-DE-MARZO/report", params={"lang": lang})).text
            for lang in ("es", "en")
        }
    for lang, html in pages.items():
        text = visible_text(html)
        assert 'class="unavailable"' not in html, lang  # every analysis ran
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), re.findall(r"\b[a-z]+_\w+", text)
        for word in FOREIGN[lang]:
            assert not re.search(rf"\b{word}\b", text, re.I), (lang, word)
        assert not re.search(r"\b(None|True|False|nan|null)\b", text), lang
        assert not re.search(r"\d{4}-\d\d-\d\d", text)  # no ISO date
        if lang == "es":
            assert "fundada 5 de marzo de 2009" in text
            assert re.search(rf"Generado el \d{{1,2}} de ({MONTHS['es']}) de \d{{4}}\b", text)
            assert f"{homes:,}".replace(",", ".") in text
            assert not re.search(r"\d,\d{3}(?!\d)", text)  # 1.234,5, never 1,234.5
        else:
            assert "founded 5 March 2009" in text
            assert re.search(rf"Generated \d{{1,2}} ({MONTHS['en']}) \d{{4}}\b", text)
            assert f"{homes:,}" in text
            assert not re.search(r"\d\.\d{3}(?!\d)", text)


async def test_properties_are_escaped(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    """No script injection through feature properties or names: in pages (inline data) and
    in the report."""
    await conn.execute(
        "UPDATE parcels SET notes = %s, code = %s WHERE id = (SELECT min(p.id) FROM parcels p "
        "JOIN communes c ON c.id = p.commune_id WHERE c.code = 'EL-MAIZAL')",
        (SCRIPT, IMG),
    )
    await conn.execute(
        "UPDATE communes SET name = %s, source = %s WHERE code = 'EL-MAIZAL'", (IMG, SCRIPT)
    )
    for url in (
        "/maps/communes/EL-MAIZAL",
        "/maps/communes/EL-MAIZAL?standalone=true",
        "/communes/EL-MAIZAL/report",
        "/maps/national",
    ):
        html = (await client.get(url)).text
        assert SCRIPT not in html and IMG not in html, url
    await conn.execute(
        "UPDATE parcels SET code = '{{ 7 * 7 }}' WHERE id = (SELECT max(p.id) "
        "FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = 'EL-MAIZAL')"
    )
    page = (await client.get("/maps/communes/EL-MAIZAL")).text
    assert "{{ 7 * 7 }}" in page  # data is never evaluated as a template
    report = (await client.get("/communes/EL-MAIZAL/report")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in report
    page = (await client.get("/maps/communes/EL-MAIZAL")).text
    assert "\\u003cscript>alert(1)\\u003c/script>" in page


def test_tile_cache_drops_the_least_recently_used() -> None:
    from geo_comuna.features.tiles import TileCache

    cache = TileCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # "b" is now the least recently used
    cache.put("c", b"90ab")
    assert cache.get("b") is None and cache.get("a") == b"1234" and cache.size == 8
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None


async def test_a_package_leaves_its_pages_the_time_its_analyses_cannot_use(
    conn: AsyncConnection,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every analysis of the package would take 30 s, and the package has 6 s
    (GEO_COMUNA_PACKAGE_SECONDS): the analyses get a third of it, each stopped at its share,
    and the package is still built, its README.txt and reports saying why each analysis is
    missing, in both languages."""
    for name in ("land-recovery", "water-hookups", "electricity-gaps", "stair-access"):
        if name in all_analyses():
            monkeypatch.setitem(all_analyses(), name, taking(all_analyses()[name], 30))
    hurried = settings.model_copy(update={"compute_seconds": 15.0, "package_seconds": 6.0})
    async with api_client(conn, hurried, admin_token) as client:
        started = time.monotonic()
        r = await client.get("/communes/5-DE-MARZO/package")
        took = time.monotonic() - started
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as package:
        readme = package.read("README.txt").decode()
        report_en = package.read("report-en.html").decode()
    assert readme.count("did not finish in its share of the 6 s a package may take") == 4
    assert readme.count("no terminó en su parte de los 6 s que puede durar un paquete") == 4
    assert readme.count("(GEO_COMUNA_PACKAGE_SECONDS)") == 8  # both halves
    assert report_en.count("not available") >= 4
    assert took < 12  # not the analyses' 30 s (a bound, not a benchmark)


def test_a_shape_simplified_away_is_left_out_without_a_warning() -> None:
    """An overview burns what the database simplified for its scale; a tiny parcel comes back
    as nothing or as an empty shape. rasterio warned once for each (~20,000 lines on stderr
    for a commune of 60,000 small parcels); they are now left out, the others still burned."""
    import warnings

    import numpy as np
    import shapely
    from rasterio.transform import from_origin

    burned = np.zeros((4, 4), dtype=np.uint32)
    square = shapely.to_wkb(shapely.box(0, -2, 2, 0))
    empty = shapely.to_wkb(shapely.Polygon())
    from rasterio.errors import ShapeSkipWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ShapeSkipWarning)
        overview_module._burn(burned, [None, empty, square], 1, from_origin(0, 0, 1, 1))
    assert (burned[:2, :2] == 3).all() and burned.sum() == 12


async def test_a_map_and_a_report_lead_back_to_the_site(client: httpx.AsyncClient) -> None:
    """Found from outside: map pages and the report had no way back to the home page. They
    link it first; an offline file does not (its links would lead nowhere)."""
    page = (await client.get("/maps/communes/EL-MAIZAL", params={"lang": "es"})).text
    assert re.search(
        r'<div class="gc-bar"><h1>[^<]+</h1><a href="[^"]*/\?lang=es">Inicio</a>', page
    )
    report = (await client.get("/communes/EL-MAIZAL/report", params={"lang": "en"})).text
    assert re.search(r'<a href="[^"]*/\?lang=en">Home</a>', report)
    offline = await client.get("/maps/communes/EL-MAIZAL", params={"standalone": "true"})
    assert ">Inicio</a>" not in offline.text


async def test_a_commune_maps_legend_lists_the_values_it_shows(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: every commune's legend listed all 15 products (and every kind of
    facility), whatever it had. A legend explains the map: the values of its features."""
    page = (await client.get("/maps/communes/EL-MAIZAL", params={"lang": "en"})).text
    given = re.search(r'GeoComuna\.legend\([^,]+, ("(?:[^"\\]|\\.)*")', page)
    assert given, "the legend's call"
    legend = json.loads(given[1])
    section = re.search(r'data-gc-layer="production_units-product">(.*?)</section>', legend)
    assert section, "the production units' legend"
    listed = set(re.findall(r"</span>([^<]+)</li>", section[1]))
    cur = await conn.execute(
        "SELECT DISTINCT u.product FROM production_units u JOIN communes c "
        "ON c.id = u.commune_id WHERE c.code = 'EL-MAIZAL'"
    )
    products = LAYERS["production_units"].attribute("product").domain
    held = {products.values[r[0]].en for r in await cur.fetchall()}
    assert listed == held and len(held) < len(products.values), (listed, held)
