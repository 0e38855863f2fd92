"""The pages for people in a real headless Chromium with the network closed but for our own
server: every page in Spanish and English draws without a console error or a failed request,
shows no raw value ("None", "False", a property's code name) and no imperial unit, keeps its
text inside the viewport, and the items page draws its features on the map. Screenshots in
tests/artifacts/pages/ (and docs/img/ for the README)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from harness import only_from, watch

from geo_comuna.maps.pages import WORDS

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "pages"
PAGES = {
    "home": "/",
    "communes": "/communes",
    "maps": "/maps",
    "collections": "/collections?f=html",
    "parcels": "/collections/parcels/items?commune=EL-MAIZAL&limit=50&f=html",
    "parties": "/collections/parties/items?f=html",
    "rights": "/collections/rights/items?commune=EL-MAIZAL&f=html",
    # the address a person tries: the commune's page, with its own pages' links
    "commune": "/communes/EL-MAIZAL?f=html",
}
#: the pages that draw a map of their features
MAPPED = ("parcels", "rights", "commune")
#: what a page for people never shows: raw values, imperial units
RAW = re.compile(r"\b(None|False|True|null|NaN|undefined|ft|mi)\b")
#: text that overflows the viewport, and the map's state
INSPECT_JS = """() => ({
    text: document.body.innerText,
    overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
    paths: document.querySelectorAll('path.leaflet-interactive').length,
    tiles: document.querySelectorAll('.leaflet-tile-loaded').length,
    scale: Array.from(document.querySelectorAll('.leaflet-control-scale-line'))
        .map(e => e.textContent),
    // one-word cells or codes in a cell (EM-P001, 5-DE-MARZO beside a commune's name) on
    // more than one line: broken at their hyphens
    broken: Array.from(document.querySelectorAll('td, td code')).filter((td) => {
        if (/\\s/.test(td.textContent.trim())) { return false; }
        const r = document.createRange(); r.selectNodeContents(td);
        const size = parseFloat(getComputedStyle(td).fontSize);
        return r.getBoundingClientRect().height > 2 * size;
    }).map((td) => td.textContent),
})"""


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("width", [1200, 390])  # a laptop and a phone
def test_pages_read_well_offline(
    browser: Any, server: str, name: str, lang: str, width: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 800},
        locale="es-VE" if lang == "es" else "en-US",  # the page's language by Accept-Language
    )
    blocked = only_from(context, server)
    tab = context.new_page()
    visit = watch(tab)
    tab.goto(f"{server}{PAGES[name]}", wait_until="load")
    if name in MAPPED:  # the states' tiles come after the page's load
        tab.wait_for_selector(".leaflet-tile-loaded", state="attached", timeout=15_000)
        tab.wait_for_load_state("networkidle")
    state = tab.evaluate(INSPECT_JS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}-{lang}-{width}.png"), full_page=False)
    context.close()
    assert visit.errors == [] and visit.failed == [] and blocked == [], (visit, blocked)
    assert not state["overflow"], "text outside the viewport"
    assert state["broken"] == [], state["broken"][:5]
    words = WORDS[lang]
    assert words["communes"] in state["text"] and words["api_docs"] in state["text"]
    assert not RAW.search(state["text"]), RAW.search(state["text"])
    if name in MAPPED:
        assert state["paths"] > 0, "the parcels are drawn"
        assert state["scale"] and all(s.endswith(("m", "km")) for s in state["scale"])
        # found from outside: features far apart were specks on a blank page
        assert state["tiles"] > 0, "the states are drawn under them"


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_report_fits_a_phone(browser: Any, server: str, lang: str) -> None:
    """At 390 px the report's tables ran past the right edge (the dwellings' columns cut off):
    a wide table now scrolls inside the page, and nothing runs outside it."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    tab = context.new_page()
    tab.goto(f"{server}/communes/5-DE-MARZO/report?lang={lang}", wait_until="load")
    state = tab.evaluate(INSPECT_JS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"report-{lang}-390.png"), full_page=False)
    context.close()
    assert not state["overflow"], "text outside the viewport"


def test_a_filter_that_matches_nothing_says_so(browser: Any, server: str) -> None:
    """Found from outside: filtering the communes to nothing left an empty table and no word.
    A line says it, and goes once a commune matches again."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="es-VE")
    tab = context.new_page()
    tab.goto(f"{server}/communes?lang=es", wait_until="load")
    tab.fill("input[data-filter]", "ninguna-comuna-se-llama-asi")
    assert tab.inner_text(".filter-none") == WORDS["es"]["filter_none"]
    assert tab.locator("#communes tbody tr:not([hidden])").count() == 0
    tab.fill("input[data-filter]", "sinai")  # accents and case aside, as before
    assert tab.inner_text(".filter-none") == ""
    assert tab.locator("#communes tbody tr:not([hidden])").count() == 1
    context.close()
