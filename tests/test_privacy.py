"""Read rules (layers/model.py): a home's position and residents and every note are read only
by the users of its commune (any role) and admins, on every surface; everyone else gets the
public aggregates by sector; responses that depend on the reader never reach a shared cache.

"Outsiders" are an anonymous reader and a viewer and an editor of another commune (El
Maizal); "members" a viewer and an editor of 5 de Marzo, and an admin.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pyogrio
import pytest
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.accounts import PUBLIC, Access
from geo_comuna.analysis.figures import figures
from geo_comuna.features import disclosure
from geo_comuna.layers import LAYERS, MIN_GROUP
from geo_comuna.maps import data
from geo_comuna.settings import Settings
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
MARZO = "5-DE-MARZO"
OUTSIDERS = ["anonymous", "viewer-maizal", "editor-maizal"]
MEMBERS = ["viewer-marzo", "editor-marzo", "admin"]
READERS = {
    "viewer-maizal": ("viewer", ["EL-MAIZAL"]),
    "editor-maizal": ("editor", ["EL-MAIZAL"]),
    "viewer-marzo": ("viewer", [MARZO]),
    "editor-marzo": ("editor", [MARZO]),
    "admin": ("admin", []),
}
HOME_ANALYSES = ["water-hookups", "stair-access", "electricity-gaps"]


@pytest.fixture
def reader(conn: AsyncConnection, settings: Settings) -> Callable:
    """``async with reader("viewer-marzo") as c``: the app as that reader sees it."""

    @asynccontextmanager
    async def make(who: str, app_settings: Settings = settings) -> AsyncIterator[httpx.AsyncClient]:
        token = None
        if who != "anonymous":
            role, communes = READERS[who]
            _, token = await accounts.add_user(conn, f"test-{who}", role, communes)
        async with api_client(conn, app_settings, token) as client:
            yield client

    return make


async def commune_id(conn: AsyncConnection, code: str = MARZO) -> int:
    cur = await conn.execute("SELECT id FROM communes WHERE code = %s", (code,))
    return (await cur.fetchone())[0]


async def homes(conn: AsyncConnection, code: str = MARZO) -> list[tuple]:
    """(id, lon, lat, residents, sector, water, electricity) of a commune's dwellings."""
    cur = await conn.execute(
        "SELECT d.id, ST_X(d.geom), ST_Y(d.geom), d.residents, d.sector, d.water, d.electricity "
        "FROM dwellings d JOIN communes c ON c.id = d.commune_id WHERE c.code = %s ORDER BY d.id",
        (code,),
    )
    return await cur.fetchall()


async def hidden_homes(conn: AsyncConnection, code: str = MARZO) -> list[tuple]:
    """The homes whose position no public geometry gives away anyway (a water main's service
    line ending at a door does): what an outsider's page must not place."""
    cur = await conn.execute(
        "SELECT d.id FROM dwellings d JOIN communes c ON c.id = d.commune_id "
        "WHERE c.code = %s AND EXISTS (SELECT FROM (SELECT geom FROM water_mains UNION ALL "
        "SELECT geom FROM power_lines UNION ALL SELECT geom FROM paths) g "
        "WHERE ST_DWithin(g.geom, d.geom, 3e-6) AND EXISTS (SELECT FROM ST_DumpPoints(g.geom) v "
        "WHERE ST_DWithin(v.geom, d.geom, 3e-6)))",
        (code,),
    )
    public = {r[0] for r in await cur.fetchall()}
    return [r for r in await homes(conn, code) if r[0] not in public]


async def notes(conn: AsyncConnection, code: str = MARZO) -> list[str]:
    cur = await conn.execute(
        "SELECT DISTINCT p.notes FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = %s AND p.notes IS NOT NULL",
        (code,),
    )
    return [r[0] for r in await cur.fetchall()]


PAIR = re.compile(r"\[\s*(-?\d{1,3}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*\]")


def placed(text: str, rows: list[tuple]) -> int:
    """How many of the homes ``rows`` have their position written in ``text``: a [lon, lat]
    pair within 2e-6 degrees (~0.2 m) of it, however many decimals it is written with."""
    found: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for lon, lat in PAIR.findall(text):
        x, y = float(lon), float(lat)
        found.setdefault((round(x * 1e5), round(y * 1e5)), []).append((x, y))
    n = 0
    for _, lon, lat, *_ in rows:
        kx, ky = round(lon * 1e5), round(lat * 1e5)
        near = (
            p for dx in (-1, 0, 1) for dy in (-1, 0, 1) for p in found.get((kx + dx, ky + dy), [])
        )
        n += any(abs(x - lon) < 2e-6 and abs(y - lat) < 2e-6 for x, y in near)
    return n


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def assert_private_response(r: httpx.Response) -> None:
    cache = r.headers["cache-control"]
    assert "private" in cache or "no-store" in cache, cache
    assert "public" not in cache and "immutable" not in cache, cache
    assert "authorization" in r.headers["vary"].lower()


# -- the registry -----------------------------------------------------------------------------


def test_the_defaults_are_declared_in_the_registry() -> None:
    dwellings, parcels = LAYERS["dwellings"], LAYERS["parcels"]
    assert dwellings.geometry_read == "members" and dwellings.members_only("residents")
    assert parcels.members_only("notes") and parcels.geometry_read == "public"
    for layer in LAYERS.values():
        for attr in layer.attributes:
            if attr.name == "notes":
                assert attr.read == "members", layer.name
        if layer.restricted:  # a rule needs a commune to know who the members are
            assert layer.commune_ref is not None, layer.name
        if layer.geometry_read == "members":
            assert layer.aggregate is not None, layer.name
        if layer.aggregate is not None:
            assert layer.attribute(layer.aggregate.by) is not None
            for figure in layer.aggregate.figures:
                assert figure.title.es and figure.title.en, figure.name


def test_small_groups_are_withheld_and_never_alone() -> None:
    assert disclosure.withheld([10, 5, 4]) == [False, False, False]
    assert disclosure.withheld([10, 2, 0 + MIN_GROUP]) == [False, True, True]  # never alone
    assert disclosure.withheld([1, 2, 50]) == [True, True, False]
    assert disclosure.withheld([2]) == [True]


async def test_access_of_each_role(conn: AsyncConnection) -> None:
    marzo = await commune_id(conn)
    assert Access.of(None) == PUBLIC and not PUBLIC.member_of(marzo)
    viewer = accounts.User(1, "v", "viewer", (marzo,))
    assert Access.of(viewer).member_of(marzo) and not Access.of(viewer).member_of(marzo + 1)
    assert Access.of(accounts.User(2, "a", "admin", ())).member_of(marzo + 1)
    assert not Access.of(accounts.User(3, "v", "viewer", ())).anywhere


# -- items and one item -----------------------------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS + MEMBERS)
async def test_items_and_item(conn: AsyncConnection, reader: Callable, who: str) -> None:
    rows = await homes(conn)
    residents = {r[0]: r[3] for r in rows}
    member = who in MEMBERS
    async with reader(who) as c:
        r = await c.get("/collections/dwellings/items", params={"commune": MARZO, "limit": 50})
        assert r.status_code == 200
        assert_private_response(r)
        page = r.json()
        assert page["numberMatched"] == len(rows)  # every home is listed, by id
        for f in page["features"]:
            assert f["properties"]["water"] in ("piped", "intermittent", "truck", "none")
            if member:
                assert f["geometry"]["type"] == "Point"
                assert f["properties"]["residents"] == residents[f["id"]]
            else:
                assert f["geometry"] is None and "residents" not in f["properties"]
        one = (await c.get(f"/collections/dwellings/items/{rows[0][0]}")).json()
        assert ("residents" in one["properties"]) is member
        assert (one["geometry"] is not None) is member
        parcels = (
            await c.get("/collections/parcels/items", params={"commune": MARZO, "limit": 100})
        ).json()["features"]
        shown = {f["properties"].get("notes") for f in parcels} - {None}
        assert shown == (set(await notes(conn)) if member else set())
        assert all(("notes" in f["properties"]) is member for f in parcels)
        assert all(f["geometry"] for f in parcels)  # parcels' outlines are public


async def test_the_extent_of_homes_is_their_communes(reader: Callable) -> None:
    """The corners of the homes' own box would be coordinates of the outermost homes."""
    async with reader("anonymous") as c:
        homes_box = (await c.get("/collections/dwellings")).json()["extent"]["spatial"]
        communes_box = (await c.get("/collections/communes")).json()["extent"]["spatial"]
    assert homes_box == communes_box


async def test_membership_is_per_commune(conn: AsyncConnection, reader: Callable) -> None:
    """A member of 5 de Marzo reads El Maizal's homes as any outsider does."""
    maizal = await homes(conn, "EL-MAIZAL")
    async with reader("editor-marzo") as c:
        page = (await c.get("/collections/dwellings/items", params={"limit": 10_000})).json()[
            "features"
        ]
    marzo = {r[0] for r in await homes(conn)}
    assert len(page) >= len(marzo) + len(maizal)
    for f in page:
        mine = f["id"] in marzo
        assert ("residents" in f["properties"]) is mine and (f["geometry"] is not None) is mine


# -- filters and queryables -------------------------------------------------------------------


async def test_filters_never_match_what_the_reader_may_not_read(
    conn: AsyncConnection, reader: Callable
) -> None:
    rows = await homes(conn)
    w, s = min(r[1] for r in rows), min(r[2] for r in rows)
    e, n = max(r[1] for r in rows), max(r[2] for r in rows)
    bbox = f"{w - 0.001},{s - 0.001},{e + 0.001},{n + 0.001}"
    some = rows[0][3]
    async with reader("anonymous") as c:
        q = (await c.get("/collections/dwellings/queryables")).json()["properties"]
        assert "residents" not in q and "water" in q
        r = await c.get("/collections/dwellings/items", params={"residents": some})
        assert r.status_code == 403 and "residents" in r.json()["detail"]
        # a home without a readable position lies in no bbox
        r = await c.get("/collections/dwellings/items", params={"bbox": bbox})
        assert r.status_code == 200 and r.json()["numberMatched"] == 0
        r = await c.get("/collections/dwellings/items", params={"bogus": 1})
        assert "residents" not in r.json()["detail"]
    async with reader("viewer-maizal") as c:
        r = await c.get("/collections/dwellings/items", params={"residents": some})
        assert r.status_code == 200  # El Maizal's homes only
        got = r.json()["features"]
        assert got and all(f["properties"]["commune"] == "EL-MAIZAL" for f in got)
    async with reader("viewer-marzo") as c:
        q = (await c.get("/collections/dwellings/queryables")).json()["properties"]
        assert q["residents"]["x-members-only"] is True
        r = await c.get("/collections/dwellings/items", params={"residents": some, "limit": 10_000})
        expected = sum(1 for row in rows if row[3] == some)
        assert r.json()["numberMatched"] == expected
        assert {f["properties"]["commune"] for f in r.json()["features"]} == {MARZO}
        r = await c.get("/collections/dwellings/items", params={"bbox": bbox, "limit": 1})
        assert r.json()["numberMatched"] == len(rows)


# -- exports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "editor-maizal", "viewer-marzo", "admin"])
async def test_exports(conn: AsyncConnection, reader: Callable, who: str, tmp_path: Path) -> None:
    rows = await homes(conn)
    member = who in MEMBERS
    async with reader(who) as c:
        r = await c.get(
            "/collections/dwellings/export", params={"format": "gpkg", "commune": MARZO}
        )
        assert r.status_code == 200
        assert_private_response(r)
        path = tmp_path / "d.gpkg"
        path.write_bytes(r.content)
        frame = pyogrio.read_dataframe(path)
        assert len(frame) == len(rows)
        # a column the reader may read in no commune is left out; else it is empty here
        assert ("residents" in frame.columns) is (who != "anonymous")
        assert frame.geometry.notna().all() if member else frame.geometry.isna().all()
        if member:
            assert sorted(frame["residents"]) == sorted(r[3] for r in rows)
        elif "residents" in frame.columns:
            assert frame["residents"].isna().all()
        text = (
            await c.get("/collections/parcels/export", params={"format": "csv", "commune": MARZO})
        ).text
        header = next(csv.reader(io.StringIO(text)))
        assert ("notes" in header) is (who != "anonymous")
        found = [n for n in await notes(conn) if n in text]
        assert bool(found) is member
        text = (
            await c.get("/collections/dwellings/export", params={"format": "csv", "commune": MARZO})
        ).text
        lines = list(csv.DictReader(io.StringIO(text)))
        assert len(lines) == len(rows)
        assert all(bool(line["WKT"]) is member for line in lines)


# -- tiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS + MEMBERS)
async def test_tiles(conn: AsyncConnection, reader: Callable, who: str) -> None:
    rows = await homes(conn)
    lon = sum(r[1] for r in rows) / len(rows)
    lat = sum(r[2] for r in rows) / len(rows)
    version = await data.layer_version(conn, LAYERS["dwellings"])
    async with reader(who) as c:
        for z in (12, 17):  # the summary grid and single homes
            x, y = tile_of(lon, lat, z)
            r = await c.get(f"/tiles/dwellings/{z}/{x}/{y}.pbf", params={"v": version})
            assert r.status_code == 200
            assert_private_response(r)
            if who in MEMBERS:
                assert b"dwellings" in r.content and len(r.content) > 100
            else:
                assert r.content == b""  # not a home, not a cell counting homes
        x, y = tile_of(lon, lat, 17)
        again = await c.get(
            f"/tiles/dwellings/17/{x}/{y}.pbf", headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304


async def test_a_tile_of_one_reader_is_not_served_to_another(
    conn: AsyncConnection, reader: Callable
) -> None:
    """Same URL, same layer version: the app's own tile cache and the ETag tell readers apart."""
    rows = await homes(conn)
    x, y = tile_of(rows[0][1], rows[0][2], 17)
    url = f"/tiles/dwellings/17/{x}/{y}.pbf"
    async with reader("admin") as c:
        first = await c.get(url)
    async with reader("anonymous") as c:
        second = await c.get(url)
        stale = await c.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert first.content and second.content == b""
    assert first.headers["etag"] != second.headers["etag"] and stale.status_code == 200


async def test_public_layers_keep_long_lived_public_tiles_unless_reads_need_a_token(
    conn: AsyncConnection, reader: Callable, settings: Settings
) -> None:
    version = await data.layer_version(conn, LAYERS["parcels"])
    async with reader("anonymous") as c:
        r = await c.get("/tiles/parcels/5/9/15.pbf", params={"v": version})
        assert (
            r.headers["cache-control"].startswith("public")
            and "immutable" in r.headers["cache-control"]
        )
        assert "authorization" in r.headers["vary"].lower()
    closed = settings.model_copy(update={"reads": "token"})
    for who in ("viewer-maizal", "admin"):
        async with reader(who, closed) as c:
            for layer in ("parcels", "dwellings", "paths"):
                r = await c.get(f"/tiles/{layer}/5/9/15.pbf", params={"v": version})
                assert r.status_code == 200
                # the same for every reader with a token: the browser may keep it long
                cache = r.headers["cache-control"]
                assert cache.startswith("private") and "public" not in cache, cache
                assert "authorization" in r.headers["vary"].lower()
            assert_private_response(await c.get("/collections/parcels/items?limit=1"))
            assert_private_response(await c.get("/maps/national"))


# -- maps, the report, the breakdown ----------------------------------------------------------


def sector_figures(rows: list[tuple]) -> dict[str | None, dict[str, float]]:
    """The registry's dwellings Aggregate worked out here from the rows themselves."""
    out: dict[str | None, dict[str, float]] = {}
    for _, _, _, residents, sector, water, electricity in rows:
        s = out.setdefault(
            sector,
            {
                "dwellings": 0,
                "residents": 0,
                "without_piped_water": 0,
                "residents_without_piped_water": 0,
                "without_formal_electricity": 0,
            },
        )
        s["dwellings"] += 1
        s["residents"] += residents
        s["without_piped_water"] += water != "piped"
        s["residents_without_piped_water"] += residents if water != "piped" else 0
        s["without_formal_electricity"] += electricity != "formal"
    for s in out.values():
        s["without_piped_water_pct"] = round(100 * s["without_piped_water"] / s["dwellings"], 1)
    return out


async def test_sector_aggregates_equal_the_sample(conn: AsyncConnection) -> None:
    rows = await homes(conn)
    expected = sector_figures(rows)
    assert min(s["dwellings"] for s in expected.values()) >= MIN_GROUP  # all shown
    groups = await disclosure.groups(conn, LAYERS["dwellings"], await commune_id(conn))
    assert groups.withheld == 0 and set(groups.by_value) == set(expected)
    for sector, feature in groups.by_value.items():
        props = feature["properties"]
        assert props["sector"] == sector
        for name, value in expected[sector].items():
            assert props[name] == pytest.approx(value), (sector, name)
        # placed among the sector's homes, on none of them
        mine = [r for r in rows if r[4] == sector]
        lon, lat = feature["geometry"]["coordinates"]
        assert min(r[1] for r in mine) < lon < max(r[1] for r in mine)
        assert min(r[2] for r in mine) < lat < max(r[2] for r in mine)
        assert placed(json.dumps(feature), mine) == 0


async def test_a_sector_of_two_homes_is_withheld_with_the_next_smallest(
    conn: AsyncConnection, reader: Callable
) -> None:
    marzo = await commune_id(conn)
    rows = await homes(conn)
    for lon, lat in ((rows[0][1], rows[0][2]), (rows[1][1], rows[1][2])):
        await conn.execute(
            "INSERT INTO dwellings (commune_id, residents, water, electricity, sector, geom) "
            "VALUES (%s, 4, 'none', 'none', 'Dos casas', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            (marzo, lon, lat),
        )
    counts = {s: f["dwellings"] for s, f in sector_figures(await homes(conn)).items()}
    smallest_other = min((n, s) for s, n in counts.items() if s != "Dos casas")[1]
    groups = await disclosure.groups(conn, LAYERS["dwellings"], marzo)
    assert groups.withheld == 2
    assert set(groups.by_value) == set(counts) - {"Dos casas", smallest_other}
    async with reader("anonymous") as c:
        html = (await c.get(f"/maps/communes/{MARZO}", params={"lang": "en"})).text
        assert "2 group(s) not shown" in html and "Dos casas" not in html
        body = (await c.get(f"/communes/{MARZO}/analyses/stair-access")).json()
        shown = {b["sector"] for b in body["summary"]["by_sector"]}
        assert "Dos casas" not in shown and smallest_other not in shown
        assert body["summary"]["sectors_withheld"] == 2
        # its CSV's rows are sectors, and its summary says so (found from outside: "homes")
        assert body["summary"]["csv_rows"] == "sectors"
        spanish = await c.get(f"/communes/{MARZO}/analyses/stair-access", params={"lang": "es"})
        assert spanish.json()["summary"]["csv_rows"] == "sectores"


@pytest.mark.parametrize("who", OUTSIDERS + MEMBERS)
async def test_commune_map(conn: AsyncConnection, reader: Callable, who: str) -> None:
    rows, hidden = await homes(conn), await hidden_homes(conn)
    member = who in MEMBERS
    async with reader(who) as c:
        for params in ({"lang": "en"}, {"standalone": "true"}):
            r = await c.get(f"/maps/communes/{MARZO}", params=params)
            assert r.status_code == 200
            assert_private_response(r)
            html = r.text
            texts = [n for n in await notes(conn) if n in html]
            if member:
                assert placed(html, rows) == len(rows) and texts
                assert ("Dwellings by water" in html) or ("Viviendas por agua" in html)
            else:
                assert placed(html, hidden) == 0 and texts == []
                assert "Dwellings by sector" in html or "Viviendas por sector" in html
                assert "Dwellings by water" not in html and "Viviendas por agua" not in html
    if not member:  # the groups as PostGIS wrote them (json_build_object's " : ")
        for sector, figures in sector_figures(rows).items():
            assert f'"sector" : "{sector}", "dwellings" : {figures["dwellings"]}' in html


@pytest.mark.parametrize("who", ["anonymous", "editor-maizal", "editor-marzo", "admin"])
async def test_report(conn: AsyncConnection, reader: Callable, who: str) -> None:
    rows, hidden = await homes(conn), await hidden_homes(conn)
    member = who in MEMBERS
    async with reader(who) as c:
        r = await c.get(f"/communes/{MARZO}/report", params={"download": "true", "lang": "en"})
        assert r.status_code == 200
        assert_private_response(r)
        html = r.text
    texts = [n for n in await notes(conn) if n in html]
    assert placed(html, rows) == len(rows) if member else placed(html, hidden) == 0
    assert bool(texts) is member
    # the utilities table: residents per water situation, every group large enough here
    by_water: dict[str, int] = {}
    for row in rows:
        by_water[row[5]] = by_water.get(row[5], 0) + row[3]
    assert all(f"{n:,}" in html for n in by_water.values())


async def test_report_withholds_residents_of_small_groups(
    conn: AsyncConnection, reader: Callable
) -> None:
    """One home left without electricity: the report's row for it would be that home."""
    marzo = await commune_id(conn)
    alone = (await homes(conn))[0][0]
    await conn.execute(
        "UPDATE dwellings SET electricity = 'precarious' "
        "WHERE commune_id = %s AND electricity = 'none'",
        (marzo,),
    )
    await conn.execute(
        "UPDATE dwellings SET electricity = 'none', residents = 417 WHERE id = %s", (alone,)
    )
    async with reader("anonymous") as c:
        html = (await c.get(f"/communes/{MARZO}/report", params={"lang": "en"})).text
    async with reader("viewer-marzo") as c:
        mine = (await c.get(f"/communes/{MARZO}/report", params={"lang": "en"})).text
    assert ">417<" not in html and ">417<" in mine
    # and not by subtraction: the next smallest row is withheld with it
    assert html.count(">—<") >= 2
    # and the dash says why (found from outside: read as data missing)
    assert "—: residents of fewer than 3 homes" in html and "—: residents" not in mine
    async with reader("anonymous") as c:
        es = (await c.get(f"/communes/{MARZO}/report", params={"lang": "es"})).text
    assert "—: habitantes de menos de 3 viviendas" in es


async def test_the_reports_analysis_figures_show_a_withheld_residents_figure(
    conn: AsyncConnection, reader: Callable
) -> None:
    """Found from outside: where the public view of stair access withholds the residents of
    the homes over a limit, the report left those rows out, as if they did not apply. They
    read "—", with the footnote that says why; a member reads the figures."""
    async with reader("anonymous") as c:
        public = (await c.get(f"/communes/{MARZO}/analyses/stair-access")).json()["summary"]
        html = (await c.get(f"/communes/{MARZO}/report", params={"lang": "en"})).text
    async with reader("viewer-marzo") as c:
        mine = (await c.get(f"/communes/{MARZO}/report", params={"lang": "en"})).text
    assert public["flagged"]["residents"] is None and public["flagged"]["dwellings"] > 0, public
    assert dict(figures("stair-access", public, "en", str))["People flagged"] == "—"
    section = html.split('id="analyses"')[1].split("</section>")[0]
    assert '<th>People flagged</th><td class="n">—</td>' in section, section
    assert "—: residents of fewer than 3 homes" in section
    mine_section = mine.split('id="analyses"')[1].split("</section>")[0]
    assert "<th>People flagged</th>" in mine_section and "—: residents" not in mine_section


async def test_cached_pages_are_never_another_readers(
    conn: AsyncConnection, settings: Settings
) -> None:
    """The report and the public view of an analysis are kept per reader class in the app's
    cache: on one app, a member asking first must not hand an outsider the private page, an
    outsider asking first must not leave a member with the public view, and the repeats do
    come from the cache."""
    from geo_comuna.api.app import create_app
    from geo_comuna.api.deps import get_conn

    marzo = await commune_id(conn)
    alone = (await homes(conn))[0][0]
    await conn.execute(
        "UPDATE dwellings SET electricity = 'precarious' "
        "WHERE commune_id = %s AND electricity = 'none'",
        (marzo,),
    )
    await conn.execute(
        "UPDATE dwellings SET electricity = 'none', residents = 417 WHERE id = %s", (alone,)
    )
    rows, hidden = await homes(conn), await hidden_homes(conn)
    _, token = await accounts.add_user(conn, "test-cached-viewer", "viewer", [MARZO])
    member = {"Authorization": f"Bearer {token}"}
    app = create_app(settings)

    async def same_conn() -> AsyncIterator[AsyncConnection]:
        yield conn

    app.dependency_overrides[get_conn] = same_conn
    report = f"/communes/{MARZO}/report"
    analysis = f"/communes/{MARZO}/analyses/water-hookups"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        mine = (await c.get(report, params={"lang": "en"}, headers=member)).text
        theirs = (await c.get(report, params={"lang": "en"})).text
        public = (await c.get(analysis)).text
        private = (await c.get(analysis, headers=member)).text
        hits = app.state.answers.hits
        assert (await c.get(report, params={"lang": "en"})).text == theirs
        assert (await c.get(report, params={"lang": "en"}, headers=member)).text == mine
        assert (await c.get(analysis)).text == public
        assert app.state.answers.hits >= hits + 3
    assert ">417<" in mine and ">417<" not in theirs
    unpiped = [r for r in rows if r[5] != "piped"]  # the homes the analysis is about
    assert placed(public, hidden) == 0 and placed(private, unpiped) == len(unpiped) > 0


async def test_breakdown_withholds_residents_of_a_small_part(
    conn: AsyncConnection, reader: Callable
) -> None:
    """A commune part holding one home: its residents are the home's."""
    async with reader("anonymous") as c:
        whole = (await c.get(f"/communes/{MARZO}/states")).json()
        assert all(s["residents"] is not None for s in whole["states"] if s["dwellings"])
    maizal = await homes(conn, "EL-MAIZAL")
    cur = await conn.execute(
        "SELECT b.code, b.dwellings FROM commune_state_breakdown(%s) b ORDER BY b.dwellings",
        ([await commune_id(conn, "EL-MAIZAL")],),
    )
    parts = await cur.fetchall()
    assert len(parts) >= 2 and len(maizal) == sum(p[1] for p in parts)
    async with reader("anonymous") as c:
        shown = (await c.get("/communes/EL-MAIZAL/states")).json()["states"]
    hidden = disclosure.withheld([p[1] for p in parts if p[1]])
    assert sum(s["residents"] is None for s in shown) == sum(hidden)


# -- analyses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOME_ANALYSES)
async def test_analyses_of_homes(conn: AsyncConnection, reader: Callable, name: str) -> None:
    rows, hidden = await homes(conn), await hidden_homes(conn)
    ids = {r[0] for r in rows}
    url = f"/communes/{MARZO}/analyses/{name}"
    for who in ("anonymous", "editor-maizal"):
        async with reader(who) as c:
            body = (await c.get(url)).json()
            geo = await c.get(url, params={"f": "geojson"})
            table = (await c.get(url, params={"f": "csv"})).text
            assert_private_response(geo)
        kinds = {f["properties"]["kind"] for f in body["features"]}
        assert kinds <= {"sector", "transformer_site"} and "sector" in kinds, kinds
        assert not any(f["id"] in ids for f in body["features"])
        assert not any("nearest_dwelling" in f["properties"] for f in body["features"])
        assert placed(geo.text, hidden) == 0 and placed(table, hidden) == 0
        sectors = body["summary"]["by_sector"]
        assert all(b["dwellings"] >= MIN_GROUP for b in sectors)
        assert len(list(csv.DictReader(io.StringIO(table)))) == len(sectors)
        assert json.loads(geo.text)["features"] == body["features"]
        assert "lines" not in json.loads(geo.text)  # pipes and walks end at homes
        sites = [f for f in body["features"] if f["properties"]["kind"] == "transformer_site"]
        assert all(f["properties"]["dwellings"] >= MIN_GROUP for f in sites)
    async with reader("viewer-marzo") as c:
        mine = (await c.get(url)).json()
        lines = json.loads((await c.get(url, params={"f": "geojson"})).text).get("lines")
    assert (lines is not None) is (name in ("water-hookups", "stair-access"))
    homes_in = [f for f in mine["features"] if f["id"] in ids]
    assert homes_in and all("residents" in f["properties"] for f in homes_in)
    assert len(mine["summary"]["by_sector"]) >= len(sectors)


@pytest.mark.parametrize("who", ["anonymous", "viewer-marzo"])
async def test_analysis_maps(conn: AsyncConnection, reader: Callable, who: str) -> None:
    rows, hidden = await homes(conn), await hidden_homes(conn)
    async with reader(who) as c:
        for name in HOME_ANALYSES:
            r = await c.get(f"/maps/communes/{MARZO}/{name}", params={"lang": "en"})
            assert r.status_code == 200
            assert_private_response(r)
            if who == "anonymous":
                assert placed(r.text, hidden) == 0 and "Results per sector" in r.text, name
            else:
                assert placed(r.text, rows) > 0 and "Results per sector" not in r.text, name


# -- history ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "editor-maizal", "editor-marzo", "admin"])
async def test_history_notes(conn: AsyncConnection, reader: Callable, who: str) -> None:
    cur = await conn.execute(
        "SELECT min(p.id) FROM parcels p JOIN communes c ON c.id = p.commune_id "
        "WHERE c.code = %s AND p.tenure <> 'disputed'",
        (MARZO,),
    )
    parcel = (await cur.fetchone())[0]
    await conn.execute("SELECT set_config('geo_comuna.change_note', 'vecina denuncia', false)")
    await conn.execute("UPDATE parcels SET tenure = 'disputed' WHERE id = %s", (parcel,))
    await conn.execute("SELECT set_config('geo_comuna.change_note', '', false)")
    async with reader(who) as c:
        r = await c.get(f"/collections/parcels/items/{parcel}/history")
    assert r.status_code == 200
    assert_private_response(r)
    history = r.json()["history"]
    assert history[-1]["to_status"] == "disputed"  # the change itself is public
    assert (history[-1]["note"] == "vecina denuncia") is (who in MEMBERS)
    assert ("vecina" in r.text) is (who in MEMBERS)


# -- the whole API, by pattern ----------------------------------------------------------------


async def test_no_route_leaks_a_home(conn: AsyncConnection, reader: Callable) -> None:
    """Every GET that names 5 de Marzo, read anonymously, holds no home's position and no
    parcel note of it."""
    hidden = await hidden_homes(conn)
    texts = await notes(conn)
    async with reader("anonymous") as c:
        spec = (await c.get("/openapi.json")).json()
        paths = [
            p.replace("{commune}", MARZO).replace("{collection_id}", layer)
            for p, ops in spec["paths"].items()
            if "get" in ops and not re.search(r"\{(?!commune\}|collection_id\})", p)
            for layer in ("dwellings", "parcels")
        ]
        for path in sorted(set(paths)):
            r = await c.get(path, params={"commune": MARZO})
            if r.status_code != 200:
                continue
            text = r.text
            assert placed(text, hidden) == 0, path
            assert not [n for n in texts if n in text], path


# --- what a probe found: group sites on a home, residents of small sub-groups ---------------


def _groups(
    block: object, enclosing: int | None = None
) -> list[tuple[int, int | None, int | None]]:
    """(homes, residents, homes of the enclosing group) of every group of homes in a summary:
    every key naming dwellings paired with the same key naming residents."""
    found: list[tuple[int, int | None, int | None]] = []
    if isinstance(block, list):
        for item in block:
            found += _groups(item, enclosing)
    elif isinstance(block, dict):
        own = block.get("dwellings") if isinstance(block.get("dwellings"), int) else None
        for key, value in block.items():
            if isinstance(value, dict | list):
                found += _groups(value, own if own is not None else enclosing)
            elif "dwellings" in key and isinstance(value, int):
                whole = enclosing if key == "dwellings" else own
                found.append((value, block.get(key.replace("dwellings", "residents")), whole))
    return found


def test_guard_groups_by_hand() -> None:
    from geo_comuna.analysis.disclosure import guard_groups

    summary = {
        "dwellings": 20,
        "residents": 90,
        "over_steps": {"dwellings": 2, "residents": 9},  # a small group
        "flagged": {"dwellings": 19, "residents": 85},  # its rest is one home
        "by_sector": [
            {
                "sector": "A",
                "dwellings": 10,
                "residents": 40,
                "dwellings_without_piped": 8,  # the other 2 homes: their residents by subtraction
                "residents_without_piped": 30,
                "share_residents_without_piped_pct": 75.0,
                "over_minutes": {"dwellings": 5, "residents": 21},
            }
        ],
    }
    guarded = guard_groups(summary)
    assert guarded["residents"] == 90 and guarded["over_steps"]["residents"] is None
    assert guarded["flagged"]["residents"] is None and guarded["flagged"]["dwellings"] == 19
    sector = guarded["by_sector"][0]
    assert sector["residents"] == 40 and sector["over_minutes"]["residents"] == 21
    assert sector["residents_without_piped"] is None
    assert sector["share_residents_without_piped_pct"] is None
    assert summary["over_steps"]["residents"] == 9  # the original (a cached answer) untouched


def test_guard_groups_withholds_what_subtraction_between_groups_gives() -> None:
    """Found from outside: a sector's over_minutes (1 home) was withheld, and flagged 26 / 129
    beside over_steps 25 / 127 gave its residents as 129 - 127. Worked by hand: groups of one
    block 1 or 2 homes apart lose their residents; 3 apart keep them; and a commune-wide
    figure goes when only one sector's is withheld (the others' sum taken from it)."""
    from geo_comuna.analysis.disclosure import guard_groups

    def sector(name: str, steps: int, flagged: int) -> dict:
        return {
            "sector": name,
            "dwellings": 40,
            "residents": 160,
            "over_minutes": {"dwellings": 1, "residents": 2},
            "over_steps": {"dwellings": steps, "residents": steps * 5},
            "flagged": {"dwellings": flagged, "residents": flagged * 5 + 2},
        }

    summary = {
        "dwellings": 120,
        "residents": 480,
        "over_minutes": {"dwellings": 3, "residents": 6},
        "over_steps": {"dwellings": 40, "residents": 200},
        "flagged": {"dwellings": 43, "residents": 206},
        "by_sector": [sector("A", 25, 26), sector("B", 10, 13), sector("C", 5, 8)],
    }
    guarded = guard_groups(summary)
    a, b, _ = guarded["by_sector"]
    assert a["over_minutes"]["residents"] is None  # 1 home
    assert a["over_steps"]["residents"] is None and a["flagged"]["residents"] is None  # 26 - 25
    assert b["over_steps"]["residents"] == 50 and b["flagged"]["residents"] == 67  # 13 - 10
    # commune-wide: over_minutes is 3 homes, each sector's 1 withheld: no one home comes out
    assert guarded["over_minutes"]["residents"] == 6
    # one sector's over_steps and flagged are withheld, so the commune's go (206 - 67 - 42
    # would give sector A's flagged residents)
    assert guarded["over_steps"]["residents"] is None and guarded["flagged"]["residents"] is None


@pytest.mark.parametrize("query", ["", "?max_steps=414", "?max_minutes=1"])
@pytest.mark.parametrize("analysis", HOME_ANALYSES)
async def test_no_residents_of_fewer_than_three_homes_directly_or_by_subtraction(
    reader: Callable, analysis: str, query: str
) -> None:
    """Every group of homes an outsider sees a residents figure for holds at least MIN_GROUP
    homes, and so does the rest of the group it belongs to."""
    if query and analysis != "stair-access":
        return
    async with reader("anonymous") as client:
        r = await client.get(f"/communes/{MARZO}/analyses/{analysis}{query}")
    assert r.status_code == 200, r.text
    groups = _groups(r.json()["summary"])
    assert groups
    for homes_, residents, whole in groups:
        if residents is None or not homes_:
            continue
        assert homes_ >= MIN_GROUP, (analysis, homes_, residents)
        if whole is not None and whole != homes_:
            assert whole - homes_ >= MIN_GROUP, (analysis, homes_, whole)
    # nor by subtraction between two groups of one block (found from outside)
    for block in _blocks(r.json()["summary"]):
        shown = [
            v["dwellings"]
            for v in block.values()
            if isinstance(v, dict)
            and isinstance(v.get("dwellings"), int)
            and v.get("residents") is not None
        ]
        for a in shown:
            assert all(a == b or abs(a - b) >= MIN_GROUP for b in shown), (analysis, shown)


def _residents(value: object) -> list[object]:
    """Every value under a key naming residents, at any depth."""
    if isinstance(value, list):
        return [r for item in value for r in _residents(item)]
    if not isinstance(value, dict):
        return []
    return [
        r
        for key, item in value.items()
        for r in (
            _residents(item) if isinstance(item, dict | list) else [item] * ("residents" in key)
        )
    ]


@pytest.mark.parametrize("analysis", HOME_ANALYSES)
async def test_parameters_an_outsider_chose_show_no_residents(
    reader: Callable, analysis: str
) -> None:
    """Found from outside: electricity gaps' transformer sites at a clustering radius of 8 m
    and of 10 m, one the other plus one home, gave that home's residents by subtraction (37
    such pairs in 5 de Marzo, every one right). With parameters other than the published
    ones, an outsider's view counts homes and withholds every residents figure."""
    chosen = {
        "electricity-gaps": [
            {"cluster_radius_m": r, "min_cluster_size": 3, "dwellings_per_site": 10_000}
            for r in (8, 10)
        ],
        "stair-access": [{"max_steps": 100}, {"max_steps": 101}],
        "water-hookups": [{"max_connector_m": 30}, {"max_connector_m": 31}],
    }[analysis]
    url = f"/communes/{MARZO}/analyses/{analysis}"
    async with reader("anonymous") as client:
        published = (await client.get(url)).json()
        assert any(r is not None for r in _residents(published)), "published: big groups shown"
        for params in chosen:
            r = await client.get(url, params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert all(v is None for v in _residents(body)), (params, body["summary"])
            assert body["summary"]["by_sector"] and any(
                b["dwellings"] for b in body["summary"]["by_sector"]
            )
            assert any(
                "residents are shown to the commune's own users only" in w for w in body["warnings"]
            )
            table = (await client.get(url, params={**params, "f": "csv"})).text
            for row in csv.DictReader(io.StringIO(table)):
                assert all(not v for k, v in row.items() if "residents" in k), row
            es = (await client.get(url, params={**params, "lang": "es"})).json()
            assert any("los habitantes solo los ven" in w for w in es["warnings"]), es["warnings"]
    async with reader("viewer-marzo") as client:  # the commune's own users choose freely
        mine = (await client.get(url, params=chosen[0])).json()
    assert any(r is not None for r in _residents(mine))


def _blocks(summary: dict) -> list[dict]:
    """The summary and each sector's block."""
    return [summary, *[s for s in summary.get("by_sector") or [] if isinstance(s, dict)]]


@pytest.mark.parametrize(
    "query", ["", "?cluster_radius_m=5&min_cluster_size=3&dwellings_per_site=3"]
)
async def test_an_outsiders_transformer_site_is_never_on_a_home(
    reader: Callable, conn: AsyncConnection, query: str
) -> None:
    """A site is its homes' residents-weighted median, which lands on a home when one home
    outweighs the rest: outsiders get the point on a ~110 m grid; members the exact one."""
    places = {(round(lon, 6), round(lat, 6)) for _, lon, lat, *_ in await homes(conn)}
    url = f"/communes/{MARZO}/analyses/electricity-gaps{query}"
    async with reader("anonymous") as client:
        public = (await client.get(url)).json()["features"]
    sites = [f for f in public if f["properties"].get("kind") == "transformer_site"]
    assert sites
    for site in sites:
        lon, lat = site["geometry"]["coordinates"]
        assert (round(lon, 6), round(lat, 6)) not in places
        assert (
            abs(lon * 1000 - round(lon * 1000)) < 1e-6
            and abs(lat * 1000 - round(lat * 1000)) < 1e-6
        )
    async with reader("admin") as client:
        member = (await client.get(url)).json()["features"]
    exact = [f for f in member if f["properties"].get("kind") == "transformer_site"]
    assert any(
        abs(f["geometry"]["coordinates"][0] * 1000 - round(f["geometry"]["coordinates"][0] * 1000))
        > 1e-6
        for f in exact
    )
