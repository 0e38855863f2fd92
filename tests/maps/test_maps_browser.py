"""Maps and the report in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) against a real uvicorn server on the committed test database: no console errors,
the expected layers and legend, features drawn; screenshots in tests/artifacts/maps/. The
standalone file is opened with the network cut off. A missing Chromium fails, never skips.

A "member" browser sends the token of a viewer of 5 de Marzo and El Maizal with every request
(tiles too) and sees each home; the plain browser is anonymous and sees them per sector."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from harness import READY_JS, offline, only_from, open_map, other_site, serve, watch

from geo_comuna import accounts
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.api.app import create_app
from geo_comuna.maps.styles import FALLBACK_COLOUR
from geo_comuna.settings import Settings

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "maps"
VIEWPORT = {"width": 1200, "height": 800}
#: a Venezuelan browser (Accept-Language es-VE): pages without ?lang are in Spanish
LOCALE = "es-VE"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def tiled_server(db_conninfo: str, settings: Settings) -> Iterator[str]:
    """Layers over 50 features drawn from vector tiles, as 100,000 parcels would be."""
    small = settings.model_copy(update={"map_tile_threshold": 50})
    with serve(create_app(small, conninfo=db_conninfo)) as base:
        yield base


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    tab = context.new_page()
    yield tab
    context.close()


def add_member(conninfo: str) -> dict[str, str]:
    """A viewer of 5 de Marzo and El Maizal, committed; the header that carries its token."""

    async def add() -> str:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            name = f"browser-{secrets.token_hex(4)}"
            _, token = await accounts.add_user(conn, name, "viewer", ["5-DE-MARZO", "EL-MAIZAL"])
            return token
        finally:
            await conn.close()

    # Playwright's sync API keeps an event loop on this thread: work on another one
    with ThreadPoolExecutor(1) as pool:
        token = pool.submit(asyncio.run, add()).result()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def member_headers(db_conninfo: str) -> dict[str, str]:
    return add_member(db_conninfo)


@pytest.fixture
def member(browser: Any, member_headers: dict[str, str]) -> Iterator[Any]:
    """A tab whose every request carries a member's token."""
    context = browser.new_context(
        viewport=VIEWPORT, locale=LOCALE, extra_http_headers=member_headers
    )
    tab = context.new_page()
    yield tab
    context.close()


def check(visit: Any, *, layers: list[str], legend: list[str]) -> None:
    assert visit.errors == [], visit.errors
    assert visit.failed == [], visit.failed
    for name in layers:
        assert any(label.startswith(name) for label in visit.state["layers"]), (
            name,
            visit.state["layers"],
        )
    assert set(legend) <= set(visit.state["legend"]), visit.state["legend"]
    # an empty layer is neither offered nor explained ("Invernaderos (0)")
    assert not [label for label in visit.state["layers"] if label.endswith("(0)")]


COMMUNE_LAYERS_ES = [
    "Límite de la comuna",
    "Líneas estadales",
    "Parcelas por tenencia",
    "Unidades de producción",
    "Viviendas por agua",
    "Viviendas por electricidad",
    "Vías, veredas y escaleras",
    "Servicios",
]
COMMUNE_LEGEND = [
    "boundary",
    "state-lines",
    "parcels-tenure",
    "dwellings-water",
    "paths-kind",
    "facilities-kind",
    "production_units-product",
]


def assert_scale_fits(page: Any) -> None:
    """The scale bar's label lies within the bar (found from outside: at folium's 16px,
    "100 km" ran past its end)."""
    text, bar = page.evaluate(
        "() => { const s = document.querySelector('.leaflet-control-scale-line'); "
        "const r = document.createRange(); r.selectNodeContents(s); "
        "return [r.getBoundingClientRect().width, s.clientWidth]; }"
    )
    assert text <= bar, (text, bar)


def test_commune_map_5_de_marzo(member: Any, server: str) -> None:
    page = member
    visit = open_map(
        page,
        f"{server}/maps/communes/5-DE-MARZO",
        screenshot=ARTIFACTS / "commune-5-de-marzo-es.png",
    )
    check(visit, layers=COMMUNE_LAYERS_ES, legend=COMMUNE_LEGEND)
    # 5 de Marzo has no greenhouse: no layer of them
    assert not any(label.startswith("Invernaderos") for label in visit.state["layers"])
    # one scale bar, metric: no feet, no miles
    assert len(visit.state["scale"]) == 1 and visit.state["scale"][0].endswith((" m", " km"))
    assert_scale_fits(page)
    drawn = visit.state["drawn"]
    assert drawn["dwellings-water"] > 1000 and drawn["paths-kind"] > 0
    assert visit.state["paths"] > 1000
    # stairways carry their step count in the tooltip
    text = page.evaluate("""() => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === 'paths-kind') {
                const stair = l.getLayers().find((f) => f.feature.properties.kind === 'stairway');
                stair.openTooltip();
                return document.querySelector('.leaflet-tooltip').textContent;
            }
        }
    }""")
    assert "Escalera" in text and "Escalones" in text
    # the electricity layer is one click away, and its legend follows
    page.get_by_label("Viviendas por electricidad", exact=False).check()
    assert "dwellings-electricity" in page.evaluate(
        "() => Array.from(document.querySelectorAll('.gc-legend-section:not(.gc-off)'))"
        ".map((s) => s.dataset.gcLayer)"
    )


def test_public_commune_map_shows_homes_per_sector(
    page: Any, server: str, db_conninfo: str
) -> None:
    with psycopg.connect(db_conninfo) as conn:
        sectors = conn.execute(
            "SELECT count(DISTINCT d.sector) FROM dwellings d JOIN communes c "
            "ON c.id = d.commune_id WHERE c.code = '5-DE-MARZO'"
        ).fetchone()[0]
    visit = open_map(
        page,
        f"{server}/maps/communes/5-DE-MARZO?lang=en",
        screenshot=ARTIFACTS / "commune-5-de-marzo-public-en.png",
    )
    check(
        visit,
        layers=["Dwellings by sector", "Parcels by tenure", "Roads, footpaths and stairways"],
        legend=["dwellings-sector", "parcels-tenure"],
    )
    assert not any(label.startswith("Dwellings by water") for label in visit.state["layers"])
    assert visit.state["drawn"]["dwellings-sector"] == sectors
    assert "commune's own users only" in visit.state["note"]
    text = page.evaluate("""() => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === 'dwellings-sector') {
                l.getLayers()[0].openPopup();
                return document.querySelector('.leaflet-popup-content').textContent;
            }
        }
    }""")
    assert "Homes without piped water" in text and "Residents" in text


def test_commune_map_el_maizal_in_english(member: Any, server: str) -> None:
    page = member
    visit = open_map(
        page,
        f"{server}/maps/communes/EL-MAIZAL?lang=en",
        screenshot=ARTIFACTS / "commune-el-maizal-en.png",
    )
    check(
        visit,
        layers=[
            "Commune boundary",
            "State lines",
            "Parcels by tenure",
            "Dwellings by water",
            "Dwellings by electricity",
            "Greenhouses",
        ],
        legend=COMMUNE_LEGEND,
    )
    assert visit.state["drawn"]["state-lines"] >= 1  # El Maizal crosses Lara / Portuguesa
    assert "Parcels by tenure" in visit.state["legend_titles"]
    # each state named on its own side of the line: Lara north of Portuguesa
    assert {"Lara", "Portuguesa", "El Maizal"} <= set(visit.state["labels"]), visit.state
    tops = page.evaluate("""() => Object.fromEntries(Array.from(
        document.querySelectorAll('.gc-label-state span'))
        .map((e) => [e.textContent, e.getBoundingClientRect().top]))""")
    assert tops["Lara"] < tops["Portuguesa"]


def test_legend_folds_and_stays_folded(page: Any, server: str) -> None:
    url = f"{server}/maps/communes/EL-MAIZAL?lang=en"
    visit = open_map(page, url)
    body = page.locator(".gc-legend-body")
    assert body.is_visible()
    page.get_by_role("button", name="Legend").click()
    assert body.is_hidden() and page.locator(".gc-legend-toggle").text_content() == "Legend ▸"
    page.screenshot(path=str(ARTIFACTS / "commune-el-maizal-legend-folded-en.png"))
    open_map(page, url)  # reloaded in the same tab: still folded
    assert page.locator(".gc-legend-body").is_hidden()
    page.get_by_role("button", name="Legend").click()
    assert page.locator(".gc-legend-body").is_visible()
    assert visit.errors == []


@pytest.fixture(scope="module")
def basemap_server(db_conninfo: str, settings: Settings) -> Iterator[str]:
    """A server configured with OpenStreetMap's tiles as the online basemap."""
    osm = settings.model_copy(update={"tile_url": OSM_TILES})
    with serve(create_app(osm, conninfo=db_conninfo)) as base:
        yield base


OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def test_online_basemap_is_offered_and_falls_back_offline(
    browser: Any, basemap_server: str
) -> None:
    """With a basemap configured and no network but our server: nothing is fetched from
    elsewhere until the reader asks for it (no console error); asked for, it fails cleanly:
    switched off again with a note, no broken tiles left on the map."""
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = only_from(context, basemap_server)
    tab = context.new_page()
    url = f"{basemap_server}/maps/communes/EL-MAIZAL?lang=en"
    response = httpx.get(url)
    assert "https://tile.openstreetmap.org" in response.headers["content-security-policy"]
    visit = open_map(tab, url, screenshot=ARTIFACTS / "commune-el-maizal-basemap-offline-en.png")
    assert visit.errors == [] and blocked == []
    assert "Online basemap" in visit.state["layers"]
    tab.get_by_label("Online basemap").click()
    note = tab.get_by_text("Basemap unavailable")
    note.wait_for(timeout=10_000)
    assert note.count() == 1
    assert blocked and all(u.startswith("https://tile.openstreetmap.org/") for u in blocked)
    assert tab.locator(".leaflet-tile").count() == 0
    assert not tab.get_by_label("Online basemap").is_checked()
    context.close()


def test_online_basemap_draws_its_tiles_and_credits_them(
    browser: Any, basemap_server: str, tmp_path: Path
) -> None:
    """Online, as a replay: the tile server's answers come from here (this machine has no
    internet), every other site stays closed. Asked for, the basemap draws its tiles under the
    features and credits OpenStreetMap's contributors."""
    from PIL import Image

    tile = tmp_path / "tile.png"
    Image.new("RGB", (256, 256), (232, 224, 200)).save(tile)
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = only_from(context, basemap_server)
    asked: list[str] = []

    def serve_tile(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(path=str(tile), content_type="image/png")

    context.route("https://tile.openstreetmap.org/**", serve_tile)  # the latest route wins
    tab = context.new_page()
    url = f"{basemap_server}/maps/communes/EL-MAIZAL?lang=es"
    visit = open_map(tab, url)
    assert visit.errors == [] and asked == []  # nothing fetched until asked for
    tab.get_by_label("Mapa base en línea").click()
    # a locator, not a JS string: the map's CSP forbids the eval Playwright polls a string with
    tab.locator(".leaflet-tile-loaded").first.wait_for()
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(ARTIFACTS / "commune-el-maizal-basemap-online-es.png"))
    credit = tab.locator(".leaflet-control-attribution").inner_text()
    context.close()
    assert asked and all(u.startswith("https://tile.openstreetmap.org/") for u in asked)
    assert blocked == []
    assert "colaboradores de OpenStreetMap" in credit  # the page's language


def test_no_basemap_unless_configured(page: Any, server: str) -> None:
    visit = open_map(page, f"{server}/maps/communes/EL-MAIZAL?lang=en")
    assert "Online basemap" not in visit.state["layers"]
    assert (
        "openstreetmap"
        not in httpx.get(f"{server}/maps/national").headers["content-security-policy"]
    )


def test_embed_page_fills_an_iframe(page: Any, server: str) -> None:
    snippet = httpx.get(f"{server}/maps/communes/MONTE-SINAI/embed-snippet").json()["html"]
    host = f"<!DOCTYPE html><html><body style='margin:0'><p>Informe</p>{snippet}</body></html>"
    page.route(
        f"{server}/host.html", lambda route: route.fulfill(body=host, content_type="text/html")
    )
    visit = watch(page)
    page.goto(f"{server}/host.html")
    frame = page.frame_locator("iframe")
    frame.locator(".gc-legend").wait_for()
    inner = page.frames[1]
    inner.wait_for_function("() => window.GeoComuna && window.GeoComuna.readyAt !== null")
    size = inner.evaluate(
        "() => [document.querySelector('.folium-map').clientWidth, "
        "window.innerWidth, document.querySelectorAll('.gc-bar').length]"
    )
    assert size[0] == size[1] and size[2] == 0
    # found from outside: open, the layer list and the legend covered ~60 % of the frame;
    # inside another page both start folded, a click away
    folded = inner.evaluate(
        "() => [document.querySelector('.gc-legend').classList.contains('gc-folded'), "
        "document.querySelector('.leaflet-control-layers-expanded') === null]"
    )
    assert folded == [True, True], folded
    assert visit.errors == []
    page.screenshot(path=str(ARTIFACTS / "embedded-monte-sinai.png"))


def test_only_embed_pages_may_be_framed_by_other_sites(page: Any, server: str) -> None:
    """Another site may show ?embed=true in an <iframe>; the full page it may not."""
    maps = f"{server}/maps/communes/MONTE-SINAI"
    host = (
        f"<!DOCTYPE html><html><body><iframe name='embed' src='{maps}?embed=true'></iframe>"
        f"<iframe name='full' src='{maps}'></iframe></body></html>"
    )
    with other_site(host) as site:
        visit = watch(page)
        page.goto(site)
        embedded = page.frame(name="embed")
        embedded.wait_for_function(READY_JS, timeout=20_000)
        full = page.frame(name="full")
        for _ in range(200):  # the refusal replaces the frame's document with an error page
            if full.url.startswith("chrome-error:"):
                break
            page.wait_for_timeout(50)
        assert full.url.startswith("chrome-error:"), full.url
    refusals = [e for e in visit.errors if "frame-ancestors 'self'" in e]
    assert len(refusals) == 1 and len(visit.errors) == 1, visit.errors
    assert embedded.evaluate("() => document.querySelectorAll('.gc-legend').length") == 1


def test_an_embedded_map_draws_in_a_report_opened_from_a_disk(
    page: Any, server: str, tmp_path: Path
) -> None:
    """Found from outside: the snippet pasted into a report saved on a laptop and opened
    from its disk (file://) gave a blank frame: frame-ancestors * matches network schemes
    only. With embeds allowed to anyone (the default) the map draws there too, and gets
    ready: looking for its map among the frame's globals read localStorage, which such a
    frame may not, and the error stopped it."""
    snippet = httpx.get(f"{server}/maps/communes/MONTE-SINAI/embed-snippet").json()["html"]
    report = tmp_path / "informe.html"
    report.write_text(f"<!DOCTYPE html><html><body>{snippet}</body></html>", encoding="utf-8")
    visit = watch(page)
    page.goto(report.as_uri())
    frame = page.wait_for_selector("iframe").content_frame()
    frame.wait_for_function(READY_JS, timeout=20_000)
    assert frame.evaluate("() => document.querySelectorAll('.gc-legend').length") == 1
    assert visit.errors == [], visit.errors  # the frame's globals include a blocked storage
    page.screenshot(path=str(ARTIFACTS / "embedded-from-disk.png"))


#: the share of the map's frame the country must fill, across or down
FILLS = 0.8


@pytest.mark.parametrize("lang", ["en", "es"])
def test_national_map(page: Any, server: str, db_conninfo: str, lang: str) -> None:
    visit = open_map(
        page, f"{server}/maps/national?lang={lang}", screenshot=ARTIFACTS / f"national-{lang}.png"
    )
    en = lang == "en"
    check(
        visit,
        layers=(
            ["Communes per state", "Communes by status", "Exchanges by product", "Guayana"]
            if en
            else ["Comunas por estado", "Comunas por estado", "Intercambios", "Zona en Recl"]
        ),
        legend=["state-communes", "communes-status", "exchanges-product", "claim-area"],
    )
    assert visit.state["drawn"]["exchanges-product"] > 0
    assert visit.state["drawn"]["communes-status-points"] >= 9
    assert visit.state["drawn"]["claim-area"] == 1
    assert_scale_fits(page)
    legend = page.evaluate("() => document.querySelector('.gc-legend').innerText")
    one, many = ("commune", "communes") if en else ("comuna", "comunas")
    assert f"1 {one}\n" in legend and f"1 {many}" not in legend and f"2 {many}" in legend
    # the exchanges' legend names the products exchanged, not every product there is
    with psycopg.connect(db_conninfo) as conn:
        products = conn.execute("SELECT count(DISTINCT product) FROM exchanges").fetchone()[0]
    shown = page.locator("[data-gc-layer=exchanges-product] li").count()
    assert 0 < shown == products, (shown, products)
    # an exchange's popup names its communes and gives its length in km (found from outside:
    # 'De: EL-MAIZAL', 'Longitud (m): 245.318,2')
    with psycopg.connect(db_conninfo) as conn:
        ends = conn.execute("""
            SELECT f.name, t.name, ST_Length(e.geom::geography) FROM exchanges e
            JOIN communes f ON f.id = e.from_commune_id JOIN communes t ON t.id = e.to_commune_id
            ORDER BY e.id LIMIT 1""").fetchone()
    # a commune's marker says what its outline says, but its area (found from outside:
    # "Fundada —, Familias —, Superficie (ha) —" for El Maizal)
    maizal = page.evaluate("""() => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === 'communes-status-points') {
                const f = l.getLayers().find((x) => x.feature.properties.code === 'EL-MAIZAL');
                f.openPopup();
                return Array.from(document.querySelectorAll('.leaflet-popup-content td'))
                    .map((td) => td.textContent);
            }
        }
    }""")
    assert maizal[0] == "EL-MAIZAL" and "—" not in maizal and len(maizal) >= 7, maizal
    cells = popup_cells(page, "exchanges-product")[0]
    km = f"{ends[2] / 1000:,.1f} km"
    assert [ends[0], ends[1], km if en else km.translate(str.maketrans(",.", ".,"))] == [
        cells[0],
        cells[1],
        cells[-1],
    ], cells
    claim = "Guayana Esequiba (claim area)" if en else "Zona en Reclamación"
    assert {claim, "Zulia", "Bolívar", "Apure", "El Maizal"} <= set(visit.state["labels"])
    # most names shown; those that would overlap a bigger one hidden until zoomed in
    assert len(visit.state["labels"]) >= 20 and "(" not in visit.state["labels"][-1]
    # the country and its claim area fill the frame (not a corner of it)
    share = page.evaluate("""() => {
        const map = Object.values(window).find((v) => v instanceof L.Map);
        let box = null;
        map.eachLayer((l) => { if (l.gcId === 'state-communes') { box = l.getBounds(); } });
        const a = map.latLngToContainerPoint(box.getNorthWest());
        const b = map.latLngToContainerPoint(box.getSouthEast());
        const size = map.getSize();
        return Math.max((b.x - a.x) / size.x, (b.y - a.y) / size.y);
    }""")
    assert share > FILLS, share
    # the claim area is hatched: filled with the stripes' pattern
    fill = page.evaluate("""() => Array.from(document.querySelectorAll('path'))
        .map((p) => p.getAttribute('fill')).find((f) => f && f.startsWith('url(#gc-hatch'))""")
    assert fill and page.locator("pattern[id^=gc-hatch]").count() == 1


#: what each analysis map of 5 de Marzo draws for a member: {layer id: at least n features}
ANSWER_LAYERS = {
    "water-hookups": {
        "analysis-water-hookups": 50,  # homes by project rank
        "analysis-water-hookups-lines": 10,  # each project's pipe
        "water_mains-status": 1,  # the mains
        "context-water-hookups-1": 1,  # the tank
    },
    "electricity-gaps": {
        "analysis-electricity-gaps": 50,  # homes and the transformer sites
        "analysis-electricity-gaps-lines": 50,  # each site to the homes it serves
        "power_lines-condition": 1,
    },
    "land-recovery": {"context-land-recovery-0": 16, "analysis-land-recovery": 3},
    "stair-access": {"analysis-stair-access": 50, "analysis-stair-access-lines": 50},
}
#: what a legend must never show: the analyses' raw values (property names have a "_")
RAW_VALUES = {"candidate", "overlap", "sliver", "dwelling", "network", "straight_line", "road"}


def popup_cells(page: Any, layer: str) -> list[list[str]]:
    """The value cells of the popups of a GeoJSON layer's first 40 features, each opened."""
    return page.evaluate(
        """(id) => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === id) {
                return l.getLayers().slice(0, 40).map((f) => {
                    f.openPopup();
                    // the one just opened: a closed one fades out before it leaves the page
                    const open = document.querySelectorAll('.leaflet-popup-content');
                    const cells = open[open.length - 1].querySelectorAll('td');
                    return Array.from(cells).map((td) => td.textContent);
                });
            }
        }
    }""",
        layer,
    )


def legend_text(page: Any) -> str:
    return " ".join(page.locator(".gc-legend").all_inner_texts())


def raw_in_legend(page: Any) -> list[str]:
    """Legend entries that are a raw key rather than words."""
    items = [t.strip() for t in page.locator(".gc-legend li, .gc-legend h4").all_inner_texts()]
    return [t for t in items if t in RAW_VALUES or "_" in t]


@pytest.mark.parametrize(
    "name", ["water-hookups", "electricity-gaps", "stair-access", "land-recovery", "terrain"]
)
def test_analysis_map(page: Any, server: str, name: str) -> None:
    """An outsider: the answer per sector, and no line (lines end at homes)."""
    visit = open_map(
        page,
        f"{server}/maps/communes/5-DE-MARZO/{name}?lang=en",
        screenshot=ARTIFACTS / f"analysis-{name}.png",
    )
    check(visit, layers=["Commune boundary"], legend=["boundary"])
    if name in all_analyses():
        # drawn, or an explicit message (e.g. no DEM); never a blank map without a word
        assert visit.state["drawn"].get(f"analysis-{name}") or visit.state["note"], visit.state
    else:
        assert "Analysis not available" in visit.state["note"]
    lines = [k for k in visit.state["drawn"] if k.startswith("analysis-") and k.endswith("-lines")]
    assert lines == [], visit.state["drawn"]
    context = {k: n for k, n in ANSWER_LAYERS.get(name, {}).items() if "analysis-" not in k}
    for layer, least in context.items():  # mains, tanks, parcels: public
        assert visit.state["drawn"].get(layer, 0) >= least, (layer, visit.state["drawn"])


@pytest.mark.parametrize("lang", ["es", "en"])
def test_an_outsiders_map_of_chosen_parameters_says_so_and_is_coloured(
    page: Any, server: str, lang: str
) -> None:
    """Found from outside: with the docs' own ?budget_m=500, an outsider's water map was
    coloured by the share of residents, which parameters of one's choosing withhold: every
    sector grey, "sin dato" the whole legend, and nothing said why. It says why, and colours
    the sectors by the homes without piped water."""
    visit = open_map(
        page, f"{server}/maps/communes/5-DE-MARZO/water-hookups?budget_m=500&lang={lang}"
    )
    said = {"es": "Con parámetros distintos de los publicados", "en": "With parameters other"}
    assert said[lang] in visit.state["note"], visit.state["note"]
    title = {"es": "Viviendas sin agua por tubería, por sector", "en": "Homes without piped"}
    assert any(t.startswith(title[lang]) for t in visit.state["legend_titles"]), visit.state
    fills = page.evaluate(
        """() => Object.values(window).filter((l) => l && l.gcId === 'analysis-water-hookups')
            .flatMap((l) => l.getLayers()).map((c) => c.options.fillColor)"""
    )
    assert len(fills) >= 2 and FALLBACK_COLOUR not in fills, fills


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("name", list(ANSWER_LAYERS))
def test_analysis_map_answers(member: Any, server: str, name: str, lang: str) -> None:
    """A member sees the answer itself: each layer drawn, the legend in the page's words."""
    page = member
    visit = open_map(
        page,
        f"{server}/maps/communes/5-DE-MARZO/{name}?lang={lang}",
        screenshot=ARTIFACTS / f"analysis-{name}-member-{lang}.png",
    )
    check(visit, layers=[], legend=list(ANSWER_LAYERS[name]))
    drawn = visit.state["drawn"]
    for layer, least in ANSWER_LAYERS[name].items():
        assert drawn.get(layer, 0) >= least, (layer, drawn)
    words = legend_text(page)
    assert raw_in_legend(page) == [], words
    if lang == "es":
        assert not [
            w for w in ("Water", "Proposed", "Home each", "Walk to", "Parcels of") if w in words
        ]
    # popups say codes in words ("Conexión: network", "Tenencia: abandoned" were codes)
    popups = popup_cells(page, f"analysis-{name}")
    assert popups, name
    codes = (
        "network",
        "straight_line",
        "intermittent",
        "precarious",
        "abandoned",
        "idle",
        "transit_stop",
        "road",
        "dwelling",
        "candidate",
        "None",
    )
    assert not [v for values in popups for v in values if v in codes], popups[:3]


def test_land_recovery_marks_every_kind(browser: Any, own_db: str, settings: Settings) -> None:
    """Candidates, overlaps and slivers each drawn with their colour and their words. The
    sample has no conflict: a ring parcel 0.5 m off one of 5 de Marzo's (a sliver under the
    1 m default) and a copy shifted 10 m (an overlap) are added to a database of our own."""
    with psycopg.connect(own_db, autocommit=True) as conn:
        conn.execute("""
            WITH p AS (SELECT p.commune_id, p.geom FROM parcels p
                       JOIN communes c ON c.id = p.commune_id
                       WHERE c.code = '5-DE-MARZO' ORDER BY p.id LIMIT 1)
            INSERT INTO parcels (commune_id, code, tenure, land_use, geom)
            SELECT commune_id, 'RING', 'occupied', 'crops', ST_Multi(ST_Difference(
                       ST_Buffer(geom::geography, 15)::geometry,
                       ST_Buffer(geom::geography, 0.5)::geometry)) FROM p
            UNION ALL
            SELECT commune_id, 'SHIFTED', 'occupied', 'crops',
                   ST_Multi(ST_Translate(geom, 0.0001, 0)) FROM p""")
    context = browser.new_context(
        viewport=VIEWPORT, locale=LOCALE, extra_http_headers=add_member(own_db)
    )
    tab = context.new_page()
    with serve(create_app(settings, conninfo=own_db)) as base:
        visit = open_map(
            tab,
            f"{base}/maps/communes/5-DE-MARZO/land-recovery?lang=es",
            screenshot=ARTIFACTS / "analysis-land-recovery-conflicts-es.png",
        )
    assert visit.errors == [], visit.errors
    words = legend_text(tab)
    for label in (
        "Candidata a recuperación",
        "Solape entre parcelas",
        "Franja angosta entre parcelas",
        "Parcelas de la comuna",
    ):
        assert label in words, words
    assert raw_in_legend(tab) == [], words
    assert visit.state["drawn"]["context-land-recovery-0"] == 18  # every parcel
    context.close()


def test_big_layers_from_vector_tiles(member: Any, tiled_server: str) -> None:
    page = member  # the browser sends the token with each tile request too
    visit = open_map(
        page,
        f"{tiled_server}/maps/communes/EL-MAIZAL?lang=en",
        screenshot=ARTIFACTS / "commune-el-maizal-tiles.png",
    )
    check(
        visit,
        layers=["Parcels by tenure", "Dwellings by water"],
        legend=["parcels-tenure", "dwellings-water"],
    )
    assert visit.state["drawn"]["parcels-tenure"] is True  # every visible tile loaded
    assert visit.state["canvases"] > 0


def test_report(page: Any, server: str) -> None:
    visit = watch(page)
    page.goto(f"{server}/communes/5-DE-MARZO/report?lang=en", wait_until="load")
    frames = page.frames[1:]
    assert frames
    for frame in frames:
        frame.wait_for_function(
            "() => window.GeoComuna && window.GeoComuna.readyAt !== null", timeout=30_000
        )
    assert visit.errors == [] and visit.failed == []
    assert page.locator("#states table tbody tr").count() >= 1
    assert page.locator("#land table tbody tr").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "report-5-de-marzo.png"), full_page=True)
    page.emulate_media(media="print")
    assert page.locator(".actions").is_hidden()


def test_the_reports_maps_draw_when_only_some_sites_may_embed_them(
    browser: Any, db_conninfo: str, settings: Settings
) -> None:
    """Found from outside: with GEO_COMUNA_EMBED_ORIGINS naming a site, as docs/maps.md
    says to, the embed pages allowed that site alone, and every map of the report (our own
    page) was a blocked frame."""
    chosen = settings.model_copy(update={"embed_origins": ["https://comuna.example"]})
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    tab = context.new_page()
    try:
        with serve(create_app(chosen, conninfo=db_conninfo)) as base:
            visit = watch(tab)
            tab.goto(f"{base}/communes/5-DE-MARZO/report?lang=es", wait_until="load")
            frames = tab.frames[1:]
            assert len(frames) >= 2
            for frame in frames:
                frame.wait_for_function(READY_JS, timeout=30_000)
            assert visit.errors == [] and visit.failed == []
    finally:
        context.close()


#: where a map's legend lies against its map, whether the map shows its first view whole,
#: and whether its title shows: in the window, or in each frame of a report
PRINTED_JS = """() => Object.keys(window).map((k) => window[k])
  .filter((v) => window.L && v instanceof L.Map).map((map) => {
    const frame = map.getContainer().getBoundingClientRect();
    const legend = map.gcLegend.getContainer();
    const bar = document.querySelector('.gc-bar');
    return {
      under: legend.getBoundingClientRect().top >= frame.bottom - 1,
      inside: map.getContainer().contains(legend),
      whole: map.getBounds().contains(map.gcHome[0]),
      title: bar ? bar.getBoundingClientRect().height > 0 : null,
      notes_on_map: map.getContainer().querySelectorAll('.gc-note').length,
      notes_under: document.querySelectorAll('.gc-note-printed').length,
    };
  })"""


ON_PAPER_JS = "() => document.querySelector('.gc-legend-printed') !== null"


def _pdf_text(pdf: bytes, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "printed.pdf"
    path.write_bytes(pdf)
    pages = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    count = int(next(x for x in pages.stdout.splitlines() if x.startswith("Pages:")).split()[1])
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return count, text.stdout


def test_a_printed_map_shows_its_title_the_whole_commune_and_its_legend_under_it(
    browser: Any, server: str, tmp_path: Path
) -> None:
    """Found from outside: a map page printed kept its screen view (the commune cut at the
    paper's edge), lost its title, and its legend covered a third of the map. On paper the
    title is above, the map fitted again to its first view, the legend under it; back on
    screen all is as it was."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=LOCALE)
    tab = context.new_page()
    open_map(tab, f"{server}/maps/communes/5-DE-MARZO?lang=es")
    [screen] = tab.evaluate(PRINTED_JS)
    assert screen["inside"] and not screen["under"] and screen["title"]
    place = (
        "() => { const l = document.querySelector('.gc-legend'); "
        "return [l.parentNode.className, Array.from(l.parentNode.children).indexOf(l)]; }"
    )
    before = tab.evaluate(place)
    tab.emulate_media(media="print")  # a media change is told at the next frame
    tab.wait_for_function(ON_PAPER_JS)
    [paper] = tab.evaluate(PRINTED_JS)
    assert {k: paper[k] for k in ("under", "inside", "whole", "title")} == {
        "under": True,
        "inside": False,
        "whole": True,
        "title": True,
    }, paper
    tab.emulate_media(media="screen")
    tab.wait_for_function(f"() => !({ON_PAPER_JS})()")
    [back] = tab.evaluate(PRINTED_JS)
    assert back["inside"] and not back["under"], back
    assert tab.evaluate(place) == before  # where it was, beside the scale
    tab.emulate_media(media="null")  # printing as Chromium prints
    pages, text = _pdf_text(tab.pdf(format="A4"), tmp_path)
    assert pages == 1 and "5 de Marzo" in text and "Parcelas por tenencia" in text, text
    context.close()


def test_a_printed_reports_maps_show_the_whole_commune_with_their_legends(
    browser: Any, server: str, tmp_path: Path
) -> None:
    """The report's maps (each a frame) printed the same way: cut to the screen's view with
    the legend over them. Each heading stays with its map or table."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=LOCALE)
    tab = context.new_page()
    tab.goto(f"{server}/communes/EL-MAIZAL/report?lang=en", wait_until="load")
    frames = tab.frames[1:]
    for frame in frames:
        frame.wait_for_function(READY_JS, timeout=30_000)
    tab.emulate_media(media="print")
    for frame in frames:
        frame.wait_for_function(ON_PAPER_JS)
    printed = [m for frame in frames for m in frame.evaluate(PRINTED_JS)]
    assert len(printed) == len(frames) >= 4
    assert all(m["under"] and m["whole"] for m in printed), printed
    # a map's note under it, not over the commune (found from outside: the public's "Results
    # per sector" hid the boundary)
    assert not any(m["notes_on_map"] for m in printed), printed
    assert sum(m["notes_under"] for m in printed) >= 3, printed
    tab.emulate_media(media="null")  # printing as Chromium prints
    pages, text = _pdf_text(tab.pdf(format="A4"), tmp_path)
    assert "Commune map" in text and "Parcels by tenure" in text
    assert pages <= 10, pages
    context.close()


def test_standalone_works_with_the_network_cut(
    browser: Any, server: str, tmp_path: Path, member_headers: dict[str, str]
) -> None:
    html = httpx.get(
        f"{server}/maps/communes/EL-MAIZAL",
        params={"standalone": "true", "lang": "en"},
        headers=member_headers,
        timeout=60,
    ).text
    path = tmp_path / "el-maizal.html"
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = offline(context)
    context.set_offline(True)
    visit = open_map(
        context.new_page(), path.as_uri(), screenshot=ARTIFACTS / "standalone-offline-el-maizal.png"
    )
    check(visit, layers=["Parcels by tenure", "Dwellings by water"], legend=["parcels-tenure"])
    assert visit.state["paths"] > 100
    assert blocked == []  # nothing even tried to reach the network
    context.close()


def test_standalone_national_map_offline(browser: Any, server: str, tmp_path: Path) -> None:
    """The national file carries its names and the claim area; nothing reaches the network."""
    html = httpx.get(f"{server}/maps/national", params={"standalone": "true"}, timeout=60).text
    path = tmp_path / "national.html"
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = offline(context)
    context.set_offline(True)
    visit = open_map(
        context.new_page(), path.as_uri(), screenshot=ARTIFACTS / "standalone-offline-national.png"
    )
    check(visit, layers=["Comunas por estado", "Zona en Reclamación"], legend=["claim-area"])
    assert "Zona en Reclamación" in visit.state["labels"]
    assert "Mapa base en línea" not in visit.state["layers"]
    assert blocked == []
    context.close()


def test_standalone_big_layers_offline(
    browser: Any, tiled_server: str, tmp_path: Path, member_headers: dict[str, str]
) -> None:
    """Past the threshold a standalone file carries geobuf, tiled in the browser."""
    html = httpx.get(
        f"{tiled_server}/maps/communes/5-DE-MARZO",
        params={"standalone": "true"},
        headers=member_headers,
        timeout=60,
    ).text
    assert "GeoComuna.geobuf(" in html
    path = tmp_path / "5-de-marzo.html"
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = offline(context)
    visit = open_map(context.new_page(), path.as_uri())
    check(visit, layers=["Viviendas por agua"], legend=["dwellings-water"])
    assert visit.state["drawn"]["dwellings-water"] is True and visit.state["canvases"] > 0
    assert blocked == []
    context.close()


def test_no_script_runs_from_feature_properties(
    browser: Any, own_db: str, settings: Settings
) -> None:
    with psycopg.connect(own_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE parcels SET notes = %s, code = %s WHERE id = (SELECT min(p.id) "
            "FROM parcels p JOIN communes c ON c.id = p.commune_id "
            "WHERE c.code = 'EL-MAIZAL')",
            (SCRIPT, IMG),
        )
        conn.execute("UPDATE communes SET name = %s WHERE code = 'EL-MAIZAL'", (IMG,))
    # notes are for the commune's own users
    context = browser.new_context(
        viewport=VIEWPORT, locale=LOCALE, extra_http_headers=add_member(own_db)
    )
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with serve(create_app(settings, conninfo=own_db)) as base:
        visit = open_map(tab, f"{base}/maps/communes/EL-MAIZAL")
        shown = tab.evaluate("""() => {
            for (const l of Object.values(window)) {
                if (l && l.gcId === 'parcels-tenure') {
                    const bad = l.getLayers().find((f) => f.feature.properties.notes);
                    bad.openPopup();
                    return document.querySelector('.leaflet-popup-content').textContent;
                }
            }
        }""")
        bar = tab.locator(".gc-bar h1").text_content()
        tab.goto(f"{base}/communes/EL-MAIZAL/report")
        heading = tab.locator("h1").text_content()
    assert SCRIPT in shown and IMG in shown  # shown as text
    assert bar == IMG and heading == IMG
    assert tab.locator("img[src=x]").count() == 0
    assert dialogs == [] and visit.errors == []
    context.close()


def test_standalone_very_big_layers_show_a_picture_offline(
    browser: Any, db_conninfo: str, tmp_path: Path
) -> None:
    """Past the overview threshold a standalone file shows a pre-drawn picture at once and
    the features themselves once zoomed in."""
    from psycopg import AsyncConnection

    from geo_comuna.features.query import resolve_commune
    from geo_comuna.maps.commune import commune_map
    from geo_comuna.maps.page import Page

    async def build() -> str:
        async with await AsyncConnection.connect(db_conninfo) as conn:
            commune_id = await resolve_commune(conn, "EL-MAIZAL")
            page = Page(lang="en", standalone=True, tile_threshold=5, overview_threshold=10)
            return await commune_map(conn, commune_id, page)

    # Playwright's sync API keeps an event loop on this thread: build on another one
    with ThreadPoolExecutor(1) as pool:
        html = pool.submit(asyncio.run, build()).result()
    assert "GeoComuna.overview(" in html and "data:image/png;base64," in html
    path = tmp_path / "el-maizal-overview.html"
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = offline(context)
    tab = context.new_page()
    visit = open_map(tab, path.as_uri(), screenshot=ARTIFACTS / "standalone-overview-el-maizal.png")
    check(visit, layers=["Parcels by tenure"], legend=["parcels-tenure"])
    assert visit.state["drawn"]["parcels-tenure"] is True and visit.state["images"] >= 1
    tab.evaluate("""() => { for (const k in window) if (k.startsWith('map_'))
                              window[k].setZoom(20, {animate: false}); }""")
    tab.wait_for_function("() => !Object.keys(GeoComuna.waiting).length", timeout=30_000)
    assert tab.evaluate("document.querySelectorAll('.leaflet-tile-container canvas').length")
    assert visit.errors == [] and blocked == []
    context.close()


def _operations(server: str) -> dict[str, int]:
    """Operations per tag (the first; "default" for none) of the served OpenAPI document."""
    found: dict[str, int] = {}
    for item in httpx.get(f"{server}/openapi.json").json()["paths"].values():
        for op in item.values():
            tag = (op.get("tags") or ["default"])[0]
            found[tag] = found.get(tag, 0) + 1
    return found


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_render_with_no_network_but_ours(browser: Any, server: str, path: str) -> None:
    """/docs and /redoc draw the whole API from Swagger UI and ReDoc served by the app
    (package data), with every other site unreachable and no CSP complaint. ReDoc draws a
    section per operation; Swagger UI a block per tag, each tag's operations when opened."""
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE)
    blocked = only_from(context, server)
    tab = context.new_page()
    visit = watch(tab)
    tab.goto(f"{server}{path}", wait_until="load")
    per_tag = _operations(server)
    if path == "/redoc":
        operations = sum(per_tag.values())
        tab.wait_for_function(
            "() => document.querySelectorAll(\"[data-section-id^='operation/']\").length"
            f" >= {operations}",
            timeout=30_000,
        )
    else:
        tab.wait_for_function(
            f"() => document.querySelectorAll('.opblock-tag').length >= {len(per_tag)}",
            timeout=30_000,
        )
        # every tag opens onto its operations (parcels and the land records, say)
        for tag in ("parcels", "land records"):
            tab.locator(f".opblock-tag[data-tag='{tag}']").click()
        wanted = per_tag["parcels"] + per_tag["land records"]
        tab.wait_for_function(
            f"() => document.querySelectorAll('.opblock').length >= {wanted}", timeout=30_000
        )
    tab.screenshot(path=str(ARTIFACTS / f"api{path.replace('/', '-')}.png"))
    # ReDoc 2 always draws Redocly's logo from cdn.redoc.ly at the foot of its menu (no option
    # turns it off): the CSP refuses it before any request leaves, and ReDoc hides the image
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    errors = [e for e in visit.errors if logo not in e]
    failed = [f for f in visit.failed if f != f"{logo} csp"]
    assert errors == [] and failed == [], (visit.errors, visit.failed)
    assert blocked == []  # nothing even tried another site
    context.close()


PHONE = {"width": 390, "height": 844}


def test_the_commune_is_first_shown_clear_of_the_open_panels(browser: Any, server: str) -> None:
    """Found from outside: on a laptop's screen the layer list and the legend covered a third
    of El Maizal. Its first view is fitted into what they leave (a little smaller); the
    country's map keeps its size under them (test_national_map)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale=LOCALE)
    tab = context.new_page()
    try:
        open_map(
            tab,
            f"{server}/maps/communes/EL-MAIZAL?lang=es",
            screenshot=ARTIFACTS / "laptop-EL-MAIZAL.png",
        )
        found = tab.evaluate("""() => {
            const map = Object.values(window).find((v) => v instanceof L.Map);
            const frame = map.getContainer().getBoundingClientRect();
            const home = map.gcHome[0];
            const a = map.latLngToContainerPoint(home.getNorthWest());
            const b = map.latLngToContainerPoint(home.getSouthEast());
            const rect = (s) => {
                const r = document.querySelector(s).getBoundingClientRect();
                return {left: r.left - frame.left, top: r.top - frame.top,
                        right: r.right - frame.left, bottom: r.bottom - frame.top};
            };
            return {
                commune: {left: a.x, top: a.y, right: b.x, bottom: b.y},
                layers: rect('.leaflet-control-layers-expanded'),
                legend: rect('.gc-legend:not(.gc-folded)'), bar: rect('.gc-bar'),
            };
        }""")
        for panel in ("layers", "legend", "bar"):
            a, b = found["commune"], found[panel]
            clear = (
                a["right"] <= b["left"]
                or b["right"] <= a["left"]
                or a["bottom"] <= b["top"]
                or b["bottom"] <= a["top"]
            )
            assert clear, (panel, found)
    finally:
        context.close()


@pytest.mark.parametrize(
    "path", ["/maps/communes/5-DE-MARZO", "/maps/communes/5-DE-MARZO/stair-access"]
)
def test_a_phone_sees_the_title_bar_and_the_map(browser: Any, server: str, path: str) -> None:
    """On a phone the layer list (always open) covered the title bar, its language switch and
    the zoom buttons, and the legend (open unless the map was under 480 px high) most of the
    map. On a narrow screen both start folded, each a button away."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = context.new_page()
    try:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        open_map(tab, f"{server}{path}?lang=es", screenshot=ARTIFACTS / f"phone-{name}.png")
        boxes = tab.evaluate("""() => {
            const box = (s) => {
                const e = document.querySelector(s);
                if (!e) { return null; }
                const r = e.getBoundingClientRect();
                return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
            };
            return {
                bar: box('.gc-bar'), layers: box('.leaflet-control-layers'),
                zoom: box('.leaflet-control-zoom'), legend: box('.gc-legend'),
                lang: box('.gc-bar a'), map: box('.leaflet-container'), note: box('.gc-note'),
                expanded: !!document.querySelector('.leaflet-control-layers-expanded'),
                folded: !!document.querySelector('.gc-legend.gc-folded'),
            };
        }""")

        def overlap(a: dict, b: dict) -> bool:
            return not (
                a["right"] <= b["left"]
                or b["right"] <= a["left"]
                or a["bottom"] <= b["top"]
                or b["bottom"] <= a["top"]
            )

        assert not boxes["expanded"] and boxes["folded"], boxes
        for control in ("layers", "zoom", "legend"):
            assert not overlap(boxes[control], boxes["bar"]), (control, boxes)
        assert not overlap(boxes["layers"], boxes["zoom"]), boxes
        assert boxes["note"] is None or not overlap(boxes["note"], boxes["zoom"]), boxes
        # Leaflet's own titles in the page's language ("Zoom in", "Layers" in Spanish)
        assert tab.get_attribute(".leaflet-control-zoom-in", "title") == "Acercar"
        assert tab.get_attribute(".leaflet-control-layers-toggle", "aria-label") == "Capas"
        # a tap on a feature opens its popup and no tooltip (both opened, one over the other)
        tapped = tab.evaluate("""() => {
            for (const l of Object.values(window)) {
                if (l && l.gcId && l.getLayers && l.getLayers().length) {
                    const f = l.getLayers()[0];
                    return {tooltip: !!f.getTooltip(), popup: !!f.getPopup()};
                }
            }
        }""")
        assert tapped == {"tooltip": False, "popup": True}, tapped
        # the layer list opens with a tap, and its entries are then in reach
        tab.tap(".leaflet-control-layers-toggle")
        tab.wait_for_selector(".leaflet-control-layers-expanded", timeout=5_000)
        assert tab.is_visible(".leaflet-control-layers-list")
        # found from outside: with the legend open, the list covered the legend or the
        # legend the list's last layers (a tap on the legend folds the list: open it again)
        tab.tap(".gc-legend-toggle")
        tab.wait_for_selector(".gc-legend:not(.gc-folded)", timeout=5_000)
        tab.tap(".leaflet-control-layers-toggle")
        tab.wait_for_selector(".leaflet-control-layers-expanded", timeout=5_000)
        tab.screenshot(path=ARTIFACTS / f"phone-{name}-both-open.png")
        both = tab.evaluate("""() => [
            '.leaflet-control-layers-expanded', '.gc-legend'].map((s) => {
                const r = document.querySelector(s).getBoundingClientRect();
                return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
            })""")
        assert not overlap(both[0], both[1]), both
        last = tab.locator(".leaflet-control-layers-overlays label").last
        last.scroll_into_view_if_needed()
        assert last.is_visible()
    finally:
        context.close()


def test_a_layer_the_server_refuses_does_not_keep_the_map_waiting(page: Any, server: str) -> None:
    """Found in CI: a hillshade refused (429, the heavy requests' limit) left the map
    waiting for it; it never got ready. It is ready without it, and says it was not drawn."""
    refused: list[str] = []

    def refuse(route: Any) -> None:
        refused.append(route.request.url)
        route.fulfill(status=429, headers={"Retry-After": "2"}, body="")

    page.route("**/hillshade.png*", refuse)
    visit = open_map(page, f"{server}/maps/communes/5-DE-MARZO?lang=es")
    assert refused, "the map asked for no hillshade"
    assert visit.state["drawn"]["hillshade"] is False
    assert visit.state["drawn"]["parcels-tenure"] > 0
    assert all("429" in e for e in visit.errors), visit.errors


def test_popups_write_dates_as_people_read_them(page: Any, server: str) -> None:
    """A popup wrote a commune's founding date as 2009-03-05, a code to a Spanish reader."""
    open_map(page, f"{server}/maps/communes/5-DE-MARZO?lang=es")
    table = """(lang) => GeoComuna.table(
        {lang: lang, fields: {popup: [{name: 'founded', label: 'F'}]}},
        {founded: '2009-03-05'}, 'popup')"""
    spanish = page.evaluate(table, "es")
    assert "5 de marzo de 2009" in spanish and "2009-03-05" not in spanish
    assert "5 March 2009" in page.evaluate(table, "en")
    # an area to the m², as the API gives it (found from outside: 0.2022 ha read "0,2")
    area = """(lang) => GeoComuna.table(
        {lang: lang, fields: {popup: [{name: 'area_ha', label: 'A', places: 4}]}},
        {area_ha: 0.2}, 'popup')"""
    assert ">0,2000<" in page.evaluate(area, "es") and ">0.2000<" in page.evaluate(area, "en")
    # a residents figure the public view withholds says why (found from outside: "—" alone)
    hidden = """(lang) => GeoComuna.table(
        {lang: lang, fields: {popup: [{name: 'flagged_residents', label: 'R'}]}},
        {flagged_residents: null}, 'popup')"""
    assert "—: habitantes de menos de 3 viviendas" in page.evaluate(hidden, "es")
    assert "—: residents of fewer than 3 homes" in page.evaluate(hidden, "en")
    # a field a feature has no value for is left out (found from outside: a transformer site
    # listed "Sector —", a sector "Grupo —, Alcance —", from the other kind's fields)
    site = """() => GeoComuna.table(
        {lang: 'es', fields: {popup: [{name: 'kind', label: 'Tipo'},
                                       {name: 'sector', label: 'Sector'},
                                       {name: 'reach_m', label: 'Alcance'}]}},
        {kind: 'transformer_site', sector: null, reach_m: 40}, 'popup')"""
    shown = page.evaluate(site)
    assert "Sector" not in shown and "Alcance" in shown and "Tipo" in shown, shown


def test_the_electricity_maps_lines_say_what_they_are(member: Any, server: str) -> None:
    """Its lines (a transformer site to each home it would serve) had an empty popup and a
    legend entry that said the section's title again."""
    open_map(member, f"{server}/maps/communes/5-DE-MARZO/electricity-gaps?lang=es")
    legend = legend_text(member)
    assert "Del sitio de transformador a cada vivienda de su grupo" in legend
    cells = member.evaluate("""() => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === 'analysis-electricity-gaps-lines') {
                l.getLayers()[0].openPopup();
                return Array.from(document.querySelectorAll('.leaflet-popup-content th'))
                    .map((th) => th.textContent);
            }
        }
    }""")
    assert cells == ["Grupo"], cells


def test_a_flagged_home_says_why_in_its_popup(member: Any, server: str) -> None:
    """Found from outside: a home flagged for its 377-step climb back read "Steps climbed 0",
    a 6-minute walk and "Flagged: Yes", the burden that flagged it nowhere. Its popup gives
    the steps of the way, the way back and the limit it went over."""
    open_map(member, f"{server}/maps/communes/5-DE-MARZO/stair-access?lang=en")
    shown = member.evaluate("""() => {
        for (const l of Object.values(window)) {
            if (l && l.gcId === 'analysis-stair-access') {
                const f = l.getLayers().find((f) => f.feature.properties.over_steps);
                f.openPopup();
                const rows = document.querySelectorAll('.leaflet-popup-content tr');
                const cell = (r, c) => r.querySelector(c).textContent;
                return [f.feature.properties, Object.fromEntries(Array.from(rows).map(
                    (r) => [cell(r, 'th'), cell(r, 'td')]))];
            }
        }
    }""")
    props, popup = shown
    assert (
        popup["Over the steps limit"] == "Yes"
        and popup["Flagged (over a threshold or no mapped path)"] == "Yes"
    )
    assert popup["Steps on the way"].replace(",", "") == str(props["steps"])
    assert popup["Steps climbed back home"].replace(",", "") == str(props["steps_climbed_back"])
    assert "Elevation gained back home (m)" in popup and "Minutes back home" in popup
    member.wait_for_timeout(400)  # the popup fades in
    member.screenshot(path=str(ARTIFACTS / "stair-access-flagged-home-en.png"))


def test_a_keyboard_reaches_the_maps_controls_not_its_shapes(page: Any, server: str) -> None:
    """Found from outside: Tab went through every shape of El Maizal's map (145 stops, each
    a popup a key could not open) before the zoom and the legend; and the page had no
    heading. Its title is its h1, and the shapes are out of the tab order."""
    open_map(page, f"{server}/maps/communes/EL-MAIZAL?lang=es")
    assert page.locator("h1").text_content() == "El Maizal"
    reached = []
    for _ in range(35):  # the title bar's links, the zoom, the layer list, the legend
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "() => document.activeElement.tagName + ' ' + "
                "(document.activeElement.getAttribute('class') || '')"
            )
        )
    assert not [r for r in reached if r.startswith("path")], reached
    assert any("leaflet-control-zoom-in" in r for r in reached), reached
    assert any("gc-legend-toggle" in r for r in reached), reached
