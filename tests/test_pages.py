"""Pages for people (api/pages.py, maps/pages.py): the home page, the communes' and maps'
indexes, and ``f=html`` on collections, items and an item, in Spanish and English, built from
what the reader may read; JSON clients get JSON as before.

Expected words come from the layer registry and the database, never written here."""

from __future__ import annotations

import datetime as dt
import html as html_text
import json
import re

import httpx
import pytest
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from geo_comuna.maps.pages import ONE, WORDS, count_communes, page_language, records
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.templating import day, number
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.test_tenure_records import add_party, add_right

pytestmark = pytest.mark.anyio
#: what Chromium sends for a page
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,*/*;q=0.8"
}
#: words a page for people must never show
RAW = re.compile(r">\s*(None|False|True|null|nan)\s*<")


async def communes(conn: AsyncConnection) -> list[tuple[str, str]]:
    cur = await conn.execute("SELECT code, name FROM communes ORDER BY code")
    return await cur.fetchall()


def visible_text(page: str) -> str:
    """The page's text without its scripts and tags, unescaped."""
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return html_text.unescape(re.sub(r"<[^>]+>", " ", page))


def test_page_language_follows_lang_then_the_browser() -> None:
    assert page_language("en", "es-VE,es;q=0.9") == "en"
    assert page_language(None, "en-US,en;q=0.9,es;q=0.8") == "en"
    assert page_language(None, "de-DE,es;q=0.5,en;q=0.4") == "es"
    assert page_language(None, "fr, de") == "es"  # neither: Spanish
    assert page_language(None, None) == "es"


def test_plurals() -> None:
    assert count_communes(1, "es") == "1 comuna"
    assert count_communes(1, "en") == "1 commune"
    assert count_communes(3600, "es") == "3.600 comunas"  # es-VE thousands
    assert count_communes(3600, "en") == "3,600 communes"


async def test_the_home_page_lists_every_commune_with_its_links(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    r = await client.get("/", headers=BROWSER)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "Accept" in r.headers["vary"]
    page = r.text
    known = await communes(conn)
    assert known, "the test database holds the sample communes"
    for code, name in known:
        assert html_text.escape(name) in page
        for link in (f"/maps/communes/{code}?lang=es", f"/communes/{code}/report?lang=es"):
            assert link in page, link
        assert f"/communes/{code}/package" in page
    text = visible_text(page)
    assert WORDS["es"]["connect"] in text and "OAPIF:" in text
    assert count_communes(len(known), "es") in text
    assert not RAW.search(page)
    # every layer, with its count of features
    for layer in LAYERS.values():
        cur = await conn.execute(f"SELECT count(*) FROM {layer.table}")  # noqa: S608 (registry)
        n = (await cur.fetchone())[0]
        row = re.search(
            rf"{re.escape(html_text.escape(layer.title.es))}</a></td>\s*"
            rf"<td class=\"n\">([\d.]+)</td><td><code>{layer.name}</code></td>",
            page,
        )
        assert row, layer.name
        assert int(row.group(1).replace(".", "")) == n


async def test_json_clients_still_get_json(client: httpx.AsyncClient) -> None:
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        headers = {"Accept": accept} if accept else {}
        r = await client.get("/", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json", accept
        assert "links" in r.json()
        r = await client.get("/collections/parcels/items?limit=2", headers=headers)
        assert r.headers["content-type"].startswith("application/geo+json"), accept
    alternate = [x for x in (await client.get("/")).json()["links"] if x["rel"] == "alternate"]
    assert alternate and alternate[0]["type"] == "text/html"
    conformance = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html" in conformance
    # a route with no page refuses f=html, naming what it takes
    r = await client.get("/conformance?f=html")
    assert r.status_code == 400 and "f=json" in r.json()["detail"]


async def test_english_by_accept_language_and_by_lang(client: httpx.AsyncClient) -> None:
    en = await client.get("/", headers={**BROWSER, "Accept-Language": "en-GB,en;q=0.9"})
    assert WORDS["en"]["connect"] in visible_text(en.text)
    assert '<html lang="en">' in en.text
    es = await client.get("/?lang=es", headers={**BROWSER, "Accept-Language": "en"})
    assert WORDS["es"]["connect"] in visible_text(es.text)
    r = await client.get("/?lang=fr", headers=BROWSER)
    assert r.status_code == 422 or r.status_code == 400


async def test_communes_and_maps_indexes(client: httpx.AsyncClient, conn: AsyncConnection) -> None:
    known = await communes(conn)
    for lang in ("es", "en"):
        page = (await client.get(f"/communes?lang={lang}")).text
        assert count_communes(len(known), lang) in visible_text(page)
        for _, name in known:
            assert html_text.escape(name) in page
        maps = (await client.get(f"/maps?lang={lang}")).text
        assert f"/maps/national?lang={lang}" in maps
        analyses = (await client.get(f"/communes/{known[0][0]}/analyses")).json()["analyses"]
        names = [a["name"] for a in analyses]
        assert names
        cur = await conn.execute(
            "SELECT code FROM communes c "
            "WHERE EXISTS (SELECT FROM dems d WHERE d.commune_id = c.id)"
        )
        with_dem = {r[0] for r in await cur.fetchall()}
        assert with_dem and set(c for c, _ in known) - with_dem, "the sample: some have a DEM"
        for code, _ in known:
            assert f"/maps/communes/{code}?lang={lang}" in maps
            for name in names:
                # found from outside: every commune's terrain link led to a page saying it
                # had no DEM; a map that needs one is offered where there is one
                offered = name != "terrain" or code in with_dem
                assert (f"/maps/communes/{code}/{name}?lang={lang}" in maps) == offered
        assert not RAW.search(page) and not RAW.search(maps)


async def test_el_maizal_shows_both_states(client: httpx.AsyncClient) -> None:
    states = (await client.get("/communes/EL-MAIZAL/states")).json()["states"]
    named = [s["name"] for s in states if s["code"]]
    assert len(named) >= 2
    page = (await client.get("/communes?lang=en")).text
    row = next(r for r in page.split("<tr>") if "EL-MAIZAL" in r)
    for name in named:
        assert html_text.escape(name) in row
    assert WORDS["en"]["across"] in row
    # the communes' items page wrote them as raw JSON ([{"code": "VE-K", "area_ha": ...}])
    items = (await client.get("/collections/communes/items?f=html&lang=es&limit=50")).text
    row = next(r for r in items.split("<tr>") if "EL-MAIZAL" in r)
    assert "{" not in row and "area_ha" not in row
    for state in states:
        if state["code"]:
            share = number("es")(state["share_pct"])
            assert f"{html_text.escape(state['name'])} ({share} %)" in row


async def test_items_and_an_item_as_pages_show_labels(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Coded values show as the maps' labels (the registry's, or styles.json's where it
    says them otherwise), field names as the registry's titles."""
    parcels = LAYERS["parcels"]
    tenure = parcels.attribute("tenure").domain
    styles = Styles.load(settings.styles_path)
    doc = (await client.get("/collections/parcels/items?commune=EL-MAIZAL&limit=5")).json()
    page = (await client.get("/collections/parcels/items?commune=EL-MAIZAL&limit=5&f=html")).text
    assert page.count("<tr>") == len(doc["features"]) + 1  # a row per feature, and the head
    for feature in doc["features"]:
        assert f"/collections/parcels/items/{feature['id']}?f=html" in page
        code = feature["properties"]["tenure"]
        label = re.escape(html_text.escape(styles.value_label(tenure, code, "es")))
        assert re.search(rf'<td( class="w")?>{label}</td>', page), label  # w: one word, unbroken
        area = number("es")(feature["properties"]["area_ha"], 4)
        # es-VE decimals, right-aligned, as many as the API gives (found from outside: 0.2022
        # ha read "0,2", a quarter off for a city plot)
        assert f'<td class="n">{area}</td>' in page and re.search(r",\d{4}$", area), area
    # the map's data is the page's features
    data = re.search(r'<script type="application/json" id="features">(.*?)</script>', page, re.S)
    assert json.loads(data.group(1))["features"] == doc["features"]
    one = doc["features"][0]
    page = (
        await client.get(f"/collections/parcels/items/{one['id']}?lang=en", headers=BROWSER)
    ).text
    assert html_text.escape(styles.value_label(tenure, one["properties"]["tenure"], "en")) in page
    assert html_text.escape(parcels.attribute("tenure").title.en) in page
    assert not RAW.search(page)
    # collections, one collection
    for path in ("/collections", "/collections/parcels"):
        r = await client.get(path, headers=BROWSER)
        assert r.headers["content-type"].startswith("text/html")
        assert html_text.escape(parcels.title.es) in r.text
    # the next link of a page of pages stays a page
    page = (await client.get("/collections/parcels/items?limit=1&f=html")).text
    assert re.search(r'href="[^"]*f=html[^"]*" rel="next"', page)


async def test_a_page_escapes_what_editors_wrote(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    evil = "</script><script>alert(1)</script><b>x"
    await conn.execute("UPDATE communes SET name = %s WHERE code = 'EL-MAIZAL'", (evil,))
    await conn.execute(
        "UPDATE parcels SET code = %s WHERE id = (SELECT min(id) FROM parcels)", (evil,)
    )
    async with api_client(conn, settings) as anonymous:
        for path in ("/", "/communes", "/maps", "/collections/parcels/items?limit=500&f=html"):
            page = (await anonymous.get(path, headers=BROWSER)).text
            assert "<script>alert(1)" not in page, path
            assert "<b>x" not in page, path
        page = (await anonymous.get("/collections/parcels/items?limit=500&f=html")).text
        data = re.search(r'id="features">(.*?)</script>', page, re.S).group(1)
        assert evil in json.dumps(json.loads(data), ensure_ascii=False)


async def test_a_page_holds_only_what_the_reader_may_read(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    """An anonymous page of a home has no residents and no position, as its JSON; and no
    map (found from outside: an empty map of the whole country, and its tiles on a slow
    phone), but a line that says why."""
    cur = await conn.execute(
        "SELECT d.id, d.residents FROM dwellings d WHERE d.residents IS NOT NULL "
        "ORDER BY d.id LIMIT 1"
    )
    home, residents = await cur.fetchone()
    label = LAYERS["dwellings"].attribute("residents").title.es
    member_page = (await client.get(f"/collections/dwellings/items/{home}?f=html")).text
    assert html_text.escape(label) in member_page
    async with api_client(conn, settings) as anonymous:
        doc = (await anonymous.get(f"/collections/dwellings/items/{home}")).json()
        assert "residents" not in doc["properties"] and doc["geometry"] is None
        page = (await anonymous.get(f"/collections/dwellings/items/{home}?f=html")).text
        assert html_text.escape(label) not in page
        assert 'id="features"' not in page and 'id="map"' not in page
        assert "la de una vivienda solo la ven los miembros de su comuna" in page
        page = (await anonymous.get(f"/collections/dwellings/items/{home}?f=html&lang=en")).text
        assert "a home&#39;s is seen only by its commune&#39;s members" in page
        # and their list the same (found from outside: a map of the country, no home on it)
        page = (await anonymous.get("/collections/dwellings/items?f=html&limit=5")).text
        assert 'id="map"' not in page and "la de una vivienda solo la ven" in page
    assert 'id="map"' in member_page


async def test_every_collection_has_its_pages(client: httpx.AsyncClient) -> None:
    """Each layer of the registry and the land records (parties, rights) as a collection
    page, a page of items and a page per item, in both languages, with their titles and no
    raw value; parties, which have no geometry, without a map."""
    described = {**LAYERS, **{kind: records(kind) for kind in ("parties", "rights")}}
    listed = (await client.get("/collections?f=html")).text
    assert " at 0x" not in listed and "built-in method" not in listed
    for name, layer in described.items():
        assert f'/collections/{name}/items?f=html&amp;lang=es">Entidades</a>' in listed, name
        doc = (await client.get(f"/collections/{name}/items?limit=3")).json()
        assert doc["features"] or name not in ("parcels", "parties", "rights"), name
        for lang in ("es", "en"):
            title = html_text.escape(getattr(layer.title, lang))
            page = await client.get(f"/collections/{name}?f=html&lang={lang}")
            assert page.status_code == 200 and title in page.text, (name, page.text[:300])
            # the link to its items, in words: it read "<built-in method items of dict...>"
            items = {"es": "Entidades", "en": "Features"}[lang]
            assert f"><b>{items}</b></a>" in page.text, name
            assert " at 0x" not in page.text and "built-in method" not in page.text, name
            r = await client.get(f"/collections/{name}/items?limit=3&f=html&lang={lang}")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (
                name,
                r.text[:300],
            )
            assert r.text.count("<tr>") == len(doc["features"]) + 1, name
            assert title in r.text, name
            assert not RAW.search(r.text), name
            assert ('id="map"' in r.text) == (name != "parties"), name
            if name in ("parties", "rights"):  # personal fields for some readers only
                assert r.headers["cache-control"].startswith("private"), name
            for feature in doc["features"]:
                one = await client.get(
                    f"/collections/{name}/items/{feature['id']}?f=html&lang={lang}"
                )
                assert one.status_code == 200, (name, one.text[:300])
                assert not RAW.search(one.text), (name, feature["id"])
                for key in feature["properties"]:
                    assert f"<td>{key}</td>" not in one.text or key == "id", (name, key)


async def test_a_land_records_pages_lead_to_each_other(client: httpx.AsyncClient) -> None:
    """Found from outside: a right's page read "Parcel (id) 31" and "Party (id) 1" as plain
    text, a party's page led to none of its rights, and a parcel's commune was a code: a
    person following a land record typed addresses. Each names its page now."""
    right = (await client.get("/collections/rights/items?limit=1")).json()["features"][0]
    parcel, party = right["properties"]["parcel"], right["properties"]["party"]
    for path in (f"/collections/rights/items/{right['id']}", "/collections/rights/items"):
        page = (await client.get(f"{path}?f=html&lang=en")).text
        assert (
            f'<a href="http://testserver/collections/parcels/items/{parcel}?f=html&amp;lang=en">'
            in page
        )
        assert (
            f'<a href="http://testserver/collections/parties/items/{party}?f=html&amp;lang=en">'
            in page
        )
    page = (await client.get(f"/collections/parties/items/{party}?f=html&lang=es")).text
    assert f"/collections/rights/items?party={party}&amp;f=html&amp;lang=es" in page
    # a list of one parcel's rights says whose they are and leads back (found from outside:
    # titled for every right there is), and one with none draws no map of the country
    for query, says, back in (
        (f"parcel={parcel}", f"De la parcela {parcel}", f"parcels/items/{parcel}"),
        (f"party={party}", f"Del sujeto de derecho {party}", f"parties/items/{party}"),
    ):
        page = (await client.get(f"/collections/rights/items?{query}&f=html&lang=es")).text
        assert f'{back}?f=html&amp;lang=es">{says}</a>' in page and 'id="map"' in page
    empty = "/collections/rights/items?parcel=999999&f=html&lang=es"
    page = (await client.get(empty)).text
    assert "De la parcela 999999" in page and 'id="map"' not in page
    code = (await client.get(f"/collections/parcels/items/{parcel}")).json()["properties"]
    page = (await client.get(f"/collections/parcels/items/{parcel}?f=html&lang=es")).text
    commune = f'<a href="http://testserver/communes/{code["commune"]}?f=html&amp;lang=es">'
    assert commune in page
    followed = await client.get(
        f"/communes/{code['commune']}?f=html&lang=es", follow_redirects=True
    )
    assert followed.status_code == 200 and "<h1>" in followed.text


async def test_a_page_is_revalidated_by_its_etag(client: httpx.AsyncClient) -> None:
    """Found from outside: feature pages had no ETag, so every visit on a slow line took the
    whole page again. A page's ETag is its own (not its JSON's, not the other language's),
    answers 304 while current, and changes with the feature."""
    parcel = (await client.get("/collections/parcels/items?limit=1")).json()["features"][0]
    item = f"/collections/parcels/items/{parcel['id']}"
    right = (await client.get("/collections/rights/items?limit=1")).json()["features"][0]
    for path in (
        item,
        "/collections/parcels/items?limit=5",
        f"/collections/rights/items/{right['id']}",
    ):
        tags = {}
        for shown, params, headers in (
            ("json", {}, {}),
            ("es", {"lang": "es"}, BROWSER),
            ("en", {"lang": "en", "f": "html"}, {}),
        ):
            r = await client.get(path, params=params, headers=headers)
            assert r.status_code == 200 and r.headers.get("etag"), (path, shown)
            tags[shown] = r.headers["etag"]
            again = await client.get(
                path, params=params, headers={**headers, "If-None-Match": tags[shown]}
            )
            assert again.status_code == 304 and again.content == b"", (path, shown)
        assert len(set(tags.values())) == 3, tags
        # both say that Accept chose them (found from outside: the JSON did not)
        for params, headers in (({}, {}), ({"lang": "es"}, BROWSER)):
            vary = (await client.get(path, params=params, headers=headers)).headers["vary"]
            assert "Accept" in [v.strip() for v in vary.split(",")], (path, vary)
    before = (await client.get(item, params={"f": "html"})).headers["etag"]
    r = await client.patch(item, json={"properties": {"notes": "lindero revisado"}})
    assert r.status_code == 200, r.text
    r = await client.get(item, params={"f": "html"}, headers={"If-None-Match": before})
    assert r.status_code == 200 and r.headers["etag"] != before


async def test_a_browser_gets_an_error_as_a_page_in_its_language(
    client: httpx.AsyncClient,
) -> None:
    """A browser that followed a link to a commune that is not there got a problem document
    in English JSON, whatever ?lang said. A person gets a page in the page's language; a
    program (Accept: */* or JSON) still gets the problem JSON."""
    cases = [
        ("/maps/communes/NOPE?lang=es", 404, "no encontrado", "no existe ninguna comuna"),
        ("/communes/NOPE/report?lang=en", 404, "not found", "no commune"),
        ("/collections/nope?f=html&lang=es", 404, "no encontrado", "nope"),
        ("/no/such/page?lang=es", 404, "no encontrado", "Esta dirección no existe"),
        # the browser is Spanish: the reason in Spanish, not 'String should match'
        ("/?lang=fr", 400, "dato no válido", "&#39;fr&#39; no es un idioma de este servidor"),
        ("/communes/EL-MAIZAL/sync?f=html&lang=de", 400, "dato no válido", "no es un idioma de"),
        ("/collections/parcels/items?f=html&limit=0", 400, "parámetro", "«limit» debe ser mayor"),
        ("/collections/parcels/items?f=html&offset=x&lang=en", 400, "invalid", "query.offset:"),
        ("/maps/communes/5-DE-MARZO/water-hookups?lang=es&budget_m=abc", 400, "dato", "budget_m"),
    ]
    for url, status, title, said in cases:
        r = await client.get(url, headers=BROWSER)
        assert r.status_code == status, (url, r.text[:200])
        assert r.headers["content-type"].startswith("text/html"), url
        assert title in r.text and said in r.text, (url, r.text)
        assert "<script" not in r.text
        program = await client.get(url.replace("f=html&", ""))  # f=html asks for a page
        assert program.status_code == status
        assert program.headers["content-type"] == "application/problem+json", url
    # what a request said is escaped on the page
    r = await client.get("/maps/communes/%3Cb%3Ex?lang=es", headers=BROWSER)
    assert "<b>x" not in r.text and "&lt;b&gt;x" in r.text


async def test_pages_write_dates_and_counts_as_people_read_them(
    client: httpx.AsyncClient,
) -> None:
    """The parcels' page wrote recovery dates as 2009-03-05 and said '100 mostrados de 186'
    (parcelas are feminine): dates are spelled out as the report writes them, and the count
    reads 'Se muestran 100 de 186'."""
    url = "/collections/parcels/items?commune=EL-MAIZAL&limit=100"
    doc = (await client.get(url)).json()
    dates = {f["properties"]["recovered_on"] for f in doc["features"]} - {None}
    assert dates, "the sample's parcels have recovery dates"
    page = visible_text((await client.get(url + "&f=html")).text)
    assert not re.search(r"\b\d{4}-\d\d-\d\d\b", page)
    for iso in sorted(dates)[:3]:
        assert day("es")(dt.date.fromisoformat(iso)) in page
    assert f"Se muestran {len(doc['features'])} de" in page
    english = visible_text((await client.get(url + "&f=html&lang=en")).text)
    assert f"Showing {len(doc['features'])} of" in english


async def test_a_parcels_page_is_titled_by_its_code_and_links_its_sheet(
    client: httpx.AsyncClient,
) -> None:
    """'Parcelas 60' named a parcel by its database id, and its printable sheet could only
    be reached by typing its address."""
    doc = (await client.get("/collections/parcels/items?commune=EL-MAIZAL&limit=1")).json()
    one = doc["features"][0]
    page = (await client.get(f"/collections/parcels/items/{one['id']}?f=html&lang=es")).text
    assert f"<h1>Parcela {one['properties']['code']}</h1>" in page  # one parcel: singular
    # found from outside: the small map's zoom buttons said "Zoom in" on a Spanish page
    assert 'zoomInTitle: es ? "Acercar" : "Zoom in"' in page and '<html lang="es"' in page
    english = await client.get(f"/collections/parcels/items/{one['id']}?f=html&lang=en")
    assert f"<h1>Parcel {one['properties']['code']}</h1>" in english.text
    party = await client.get("/collections/parties/items/1?f=html&lang=es")
    assert "<h1>Sujeto de derecho 1</h1>" in party.text
    assert set(LAYERS) | {"parties", "rights"} <= set(ONE)  # every collection says one
    sheet = f"/collections/parcels/items/{one['id']}/sheet.pdf?lang=es"
    assert sheet in page and "Ficha para imprimir (PDF)" in page
    # found from outside: a parcel's page led to neither its rights nor its history
    rights = f"/collections/rights/items?parcel={one['id']}&amp;f=html&amp;lang=es"
    assert rights in page and "Sus derechos y restricciones" in page
    got = await client.get(rights.replace("&amp;", "&"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/html")
    history = f"/collections/parcels/items/{one['id']}/history"
    assert history in page and (await client.get(history)).status_code == 200
    assert (await client.get(sheet)).headers["content-type"] == "application/pdf"


async def test_a_parcels_page_shows_its_tenure_history(
    conn: AsyncConnection, settings: Settings, client: httpx.AsyncClient
) -> None:
    """A planner getting a parcel regularized read its history only as JSON: the page lists
    each change, its day, the tenures by their labels and its note (members only)."""
    cur = await conn.execute(
        "SELECT id FROM parcels WHERE tenure = 'occupied' AND commune_id = "
        "(SELECT id FROM communes WHERE code = 'EL-MAIZAL') ORDER BY id LIMIT 1"
    )
    (fid,) = await cur.fetchone()
    await conn.execute("SET LOCAL geo_comuna.change_note = 'acta de asamblea 12'")
    await conn.execute("UPDATE parcels SET tenure = 'regularizing' WHERE id = %s", (fid,))
    cur = await conn.execute("SELECT now()")  # the change's moment: the transaction's
    (when,) = await cur.fetchone()
    url = f"/collections/parcels/items/{fid}"
    es = visible_text((await client.get(url, params={"f": "html", "lang": "es"})).text)
    assert "Historial de tenencia" in es
    change = f"{day('es')(when)} Ocupada En regularización acta de asamblea 12"
    assert change in " ".join(es.split()), es
    en = visible_text((await client.get(url, params={"f": "html", "lang": "en"})).text)
    assert f"{day('en')(when)} Occupied Regularizing acta de asamblea 12" in " ".join(en.split())
    # a claim recorded: the rule's change says which right made it, in the page's language
    await conn.execute("SET LOCAL geo_comuna.change_note = ''")
    party = await add_party(conn, "Familia (ficticia)")
    right = await add_right(conn, fid, party, status="granted")
    page = (await client.get(url, params={"f": "html", "lang": "es"})).text
    es = visible_text(page)
    assert (
        f"En regularización Regularizada sigue sus derechos (derecho {right}, registrado)"
        in " ".join(es.split())
    )
    # the right it names is a link, and the history's JSON is asked in the page's language
    assert f'/collections/rights/items/{right}?f=html&amp;lang=es"' in page
    assert f'/collections/parcels/items/{fid}/history?lang=es"' in page
    async with api_client(conn, settings) as anonymous:
        page = visible_text((await anonymous.get(url, params={"f": "html", "lang": "en"})).text)
        assert f"{day('en')(when)} Occupied Regularizing" in " ".join(page.split())
        assert "acta de asamblea" not in page  # a note is the commune's
    # another layer's feature has no history
    other = (await client.get("/collections/dwellings/items?limit=1")).json()["features"][0]
    page = (await client.get(f"/collections/dwellings/items/{other['id']}?f=html")).text
    assert 'id="history"' not in page


async def test_a_commune_by_its_code_leads_to_its_page_and_its_pages(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    """Found from outside: /communes/EL-MAIZAL, the address a person tries, was a 404. It
    leads to the commune's feature (a page for a browser), whose page links its map, report,
    field package, the page to send it back and its states, as the index does."""
    cur = await conn.execute("SELECT id FROM communes WHERE code = 'EL-MAIZAL'")
    (cid,) = await cur.fetchone()
    r = await client.get("/communes/EL-MAIZAL", params={"f": "html", "lang": "en"})
    assert r.status_code == 307
    assert r.headers["location"].endswith(f"/collections/communes/items/{cid}?f=html&lang=en")
    page = await client.get(r.headers["location"])
    assert page.status_code == 200 and "<h1>Commune El Maizal</h1>" in page.text
    for href in (
        "/maps/communes/EL-MAIZAL?lang=en",
        "/communes/EL-MAIZAL/report?lang=en",
        "/communes/EL-MAIZAL/package",
        "/communes/EL-MAIZAL/sync?lang=en",
        "/communes/EL-MAIZAL/states",
        "/collections/parcels/items?commune=EL-MAIZAL&amp;f=html&amp;lang=en",
    ):
        assert f'{href}"' in page.text, href
    # found from outside: nothing led to it; the index names each commune by a link to it
    index = (await client.get("/communes", params={"lang": "es"}, headers=BROWSER)).text
    assert '/communes/EL-MAIZAL?lang=es">El Maizal</a>' in index
    feature = await client.get("/communes/EL-MAIZAL", follow_redirects=True)
    assert feature.json()["id"] == cid and feature.json()["properties"]["code"] == "EL-MAIZAL"
    assert (await client.get(f"/communes/{cid}")).status_code == 307  # by id too
    missing = await client.get("/communes/NO-SUCH", headers=BROWSER)
    assert missing.status_code == 404 and "NO-SUCH" in missing.text
    parcel = (await client.get("/collections/parcels/items?limit=1")).json()["features"][0]
    other = (await client.get(f"/collections/parcels/items/{parcel['id']}?f=html")).text
    assert "/report?" not in other  # a commune's links on a commune's page only


async def test_a_production_unit_names_its_parcel_by_code(client: httpx.AsyncClient) -> None:
    """Its popup said 'Parcela 123', a database id no field team can find: it carries and
    shows the parcel's code."""
    doc = (await client.get("/collections/production_units/items?limit=100")).json()
    placed = [f["properties"] for f in doc["features"] if f["properties"]["parcel"]]
    assert placed
    for props in placed[:5]:
        parcel = (await client.get(f"/collections/parcels/items/{props['parcel']}")).json()
        assert props["parcel_code"] == parcel["properties"]["code"]
    popup = Styles.load().fields(LAYERS["production_units"], "popup", "es")
    assert {"name": "parcel_code", "label": "Código de la parcela"} in popup


async def test_the_home_page_is_titled_once(client: httpx.AsyncClient) -> None:
    """Found from outside: the home page's title read 'geo_comuna · geo_comuna'."""
    home = (await client.get("/", params={"f": "html", "lang": "es"})).text
    assert "<title>geo_comuna</title>" in home
    maps = (await client.get("/maps", params={"lang": "es"})).text
    assert "<title>Mapas · geo_comuna</title>" in maps


async def test_a_rights_page_lists_its_fields_in_order(client: httpx.AsyncClient) -> None:
    """Found from outside: a right's page read "Hasta" before "Desde" (the database's JSON
    sorts its keys); fields come in the collection's order."""
    doc = (await client.get("/collections/rights/items", params={"limit": 1})).json()
    right = doc["features"][0]["id"]
    page = (
        await client.get(f"/collections/rights/items/{right}", params={"f": "html", "lang": "es"})
    ).text
    assert (
        page.index("<td>Desde</td>") < page.index("<td>Hasta</td>") < page.index("<td>Estado</td>")
    )


async def test_a_rights_share_reads_as_a_percentage(client: httpx.AsyncClient) -> None:
    """Found from outside: a right's page read "Cuota (0–1) 1" where its printed sheet says
    "100 %"; pages write the share as the sheet does (the API keeps the fraction)."""
    doc = (await client.get("/collections/rights/items", params={"limit": 1})).json()
    right = doc["features"][0]
    share = right["properties"]["share"]
    page = (
        await client.get(
            f"/collections/rights/items/{right['id']}", params={"f": "html", "lang": "es"}
        )
    ).text
    shown = f"{round(share * 100, 2):g}".replace(".", ",")
    assert f"<td>Cuota</td><td>{shown} %</td>" in page, page
    assert "(0–1)" not in page


@pytest.mark.parametrize(
    "path",
    [
        "/collections/parcels/items?f=html&lang=es&limit=5&tenure=abandoned&after=1",
        "/collections/parties/items?lang=es&f=html",
        "/collections/rights/items?f=html&lang=es&limit=3",
        "/communes?lang=es",
    ],
)
async def test_the_language_switch_leads_to_the_same_page(
    client: httpx.AsyncClient, path: str
) -> None:
    """Found from outside: a page reached by a link carrying lang= (a layer's Entidades, a
    Siguiente) switched language to ?lang=es&...&lang=en, and got a 400 for two values."""
    page = await client.get(path, headers=BROWSER)
    assert page.status_code == 200, page.text
    switch = re.search(r'<a class="lang" href="([^"]+)"', page.text)
    assert switch, page.text[:500]
    href = html_text.unescape(switch[1]).removeprefix("http://testserver")
    assert href.count("lang=") == 1 and href.endswith("lang=en"), href
    # every other parameter as the page had it, in its order
    kept = [p for p in path.partition("?")[2].split("&") if not p.startswith("lang=")]
    assert href.partition("?")[2].split("&")[:-1] == kept, href
    english = await client.get(href, headers=BROWSER)
    assert english.status_code == 200 and '<html lang="en"' in english.text, english.text[:300]


async def test_a_page_of_features_says_where_it_stands(client: httpx.AsyncClient) -> None:
    """Found from outside: past a "Siguiente" a page said "Se muestran 10 de 186", not which
    10, and had no way back. By offset it says which; by key, it links the first page."""
    url = "/collections/parcels/items?f=html&lang=es&limit=10"
    first = (await client.get(url, headers=BROWSER)).text
    total = re.search(r"Se muestran 10 de ([\d.]+)", first)
    assert total, first[:1500]
    by_offset = (await client.get(f"{url}&offset=10", headers=BROWSER)).text
    assert f"Se muestran 11–20 de {total[1]}" in by_offset
    following = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert following and "after=" in following[1]
    keyed = (await client.get(html_text.unescape(following[1]), headers=BROWSER)).text
    back = re.search(r'<a href="([^"]+)" rel="first">⇤ Primera página</a>', keyed)
    assert back and "after=" not in back[1], keyed[-1500:]
    again = (await client.get(html_text.unescape(back[1]), headers=BROWSER)).text
    assert again.count('rel="next"') == 1 and 'rel="first"' not in again
    ids = re.compile(r"/collections/parcels/items/(\d+)\?f=html")
    assert ids.findall(again) == ids.findall(first)
