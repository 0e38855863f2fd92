"""Land regularization records (migration 0021, geo_comuna/tenure/): the tenure rule worked
out by hand, personal data kept from viewers and anonymous readers by PostgreSQL itself
(plain SQL as each role) and on every surface of the API, documents sniffed by their bytes.

Readers: "anonymous", "viewer-maizal" (a viewer of the party's own commune: no names either),
"editor-marzo" (an editor of another commune); members: "editor-maizal" and "admin".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import html
import io
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pillow_heif
import psycopg
import pytest
from PIL import Image
from psycopg import AsyncConnection

from geo_comuna import accounts
from geo_comuna.accounts import User
from geo_comuna.settings import Settings
from geo_comuna.tenure import documents, records
from tests.conftest import api_client

pytestmark = pytest.mark.anyio
MAIZAL = "EL-MAIZAL"
READERS = {
    "viewer-maizal": ("viewer", [MAIZAL]),
    "editor-marzo": ("editor", ["5-DE-MARZO"]),
    "editor-maizal": ("editor", [MAIZAL]),
    "admin": ("admin", []),
}
OUTSIDERS = ["anonymous", "viewer-maizal", "editor-marzo"]
MEMBERS = ["editor-maizal", "admin"]
#: what must never reach an outsider: the name, the ID number, the contact, a document title
NAME, ID_NUMBER, CONTACT = "Familia Quintero Lugo (ficticia)", "V-09876543", "0414-0000000"
TITLE = "Constancia de ocupación Quintero"


@pytest.fixture
def reader(conn: AsyncConnection, settings: Settings) -> Callable:
    """``async with reader("viewer-maizal") as c``: the app as that reader sees it."""

    tokens: dict[str, str | None] = {"anonymous": None}

    @asynccontextmanager
    async def make(who: str) -> AsyncIterator[httpx.AsyncClient]:
        if who not in tokens:
            role, communes = READERS[who]
            _, tokens[who] = await accounts.add_user(conn, f"test-{who}", role, communes)
        async with api_client(conn, settings, tokens[who]) as client:
            yield client

    return make


async def scalar(conn: AsyncConnection, query: str, params: tuple = ()) -> object:
    cur = await conn.execute(query, params)
    return (await cur.fetchone())[0]


async def parcel(conn: AsyncConnection, code: str) -> int:
    return int(await scalar(conn, "SELECT id FROM parcels WHERE code = %s", (code,)))


async def commune(conn: AsyncConnection, code: str = MAIZAL) -> int:
    return int(await scalar(conn, "SELECT id FROM communes WHERE code = %s", (code,)))


def feature(**props: object) -> dict:
    return {"type": "Feature", "geometry": None, "properties": props}


def jpeg(gps: tuple[float, float] | None = None) -> bytes:
    """A small JPEG; with ``gps`` (lon, lat) its EXIF says where it was taken."""
    image = Image.new("RGB", (16, 16), (120, 160, 90))
    exif = Image.Exif()
    if gps is not None:
        lon, lat = gps

        def dms(v: float) -> tuple[float, float, float]:
            d = int(abs(v))
            m = int((abs(v) - d) * 60)
            return (float(d), float(m), round((abs(v) - d - m / 60) * 3600, 4))

        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: dms(lat),
            3: "E" if lon >= 0 else "W",
            4: dms(lon),
        }
    exif[306] = "2026:11:30 09:15:00"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def heic(gps: tuple[float, float] | None = None) -> bytes:
    """A small HEIC photo, encoded by pillow-heif itself; with ``gps`` (lon, lat) its EXIF
    says where it was taken, as jpeg()'s does."""
    with Image.open(io.BytesIO(jpeg(gps))) as source:
        exif = source.getexif()
        photo = pillow_heif.from_pillow(source.convert("RGB"))
    out = io.BytesIO()
    photo.save(out, quality=50, exif=exif.tobytes())
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# -- the rule, worked out by hand -------------------------------------------------------------


async def tenure(conn: AsyncConnection, parcel_id: int) -> str:
    return str(await scalar(conn, "SELECT tenure FROM parcels WHERE id = %s", (parcel_id,)))


async def add_party(conn: AsyncConnection, name: str, kind: str = "household") -> int:
    return int(
        await scalar(
            conn,
            "INSERT INTO parties (commune_id, kind, name) VALUES (%s, %s, %s) RETURNING id",
            (await commune(conn), kind, name),
        )
    )


async def add_right(conn: AsyncConnection, parcel_id: int, party: int, **kw: object) -> int:
    row = {"kind": "occupancy_claim", "share": 1, "status": "claimed", **kw}
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return int(
        await scalar(
            conn,
            f"INSERT INTO rights (parcel_id, party_id, {cols}) VALUES (%s, %s, {marks}) "
            "RETURNING id",
            (parcel_id, party, *row.values()),
        )
    )


async def test_the_tenure_rule_by_hand(conn: AsyncConnection) -> None:
    p = await parcel(conn, "EM-P008")  # occupied, no sample rights
    assert await tenure(conn, p) == "occupied"
    a, b = await add_party(conn, "A (ficticia)"), await add_party(conn, "B (ficticia)")
    # 1. a restriction holds nothing: the rule is silent, the surveyed tenure stays
    await add_right(conn, p, a, kind="easement", status="granted")
    assert await tenure(conn, p) == "occupied"
    # 4. A claims all of it: claims only -> regularizing
    ra = await add_right(conn, p, a)
    assert await tenure(conn, p) == "regularizing"
    # 2. B claims all of it too: 1 + 1 > 1 -> disputed
    rb = await add_right(conn, p, b)
    assert await tenure(conn, p) == "disputed"
    # B's claim revoked: A's claim alone -> regularizing; A granted -> regularized (3.)
    await conn.execute("UPDATE rights SET status = 'revoked' WHERE id = %s", (rb,))
    assert await tenure(conn, p) == "regularizing"
    await conn.execute("UPDATE rights SET status = 'granted' WHERE id = %s", (ra,))
    assert await tenure(conn, p) == "regularized"
    # B claims half while A holds all: 1 + 0.5 > 1 -> disputed; A down to half: 0.5 + 0.5 = 1
    await conn.execute("UPDATE rights SET status = 'claimed', share = 0.5 WHERE id = %s", (rb,))
    assert await tenure(conn, p) == "disputed"
    await conn.execute("UPDATE rights SET share = 0.5 WHERE id = %s", (ra,))
    assert await tenure(conn, p) == "regularized"
    # a right counts from its start to its end: on dates worked by hand
    await conn.execute(
        "UPDATE rights SET starts_on = '2027-01-01' WHERE id = %s", (ra,)
    )  # A's grant not started: only B's claim counts today
    assert await tenure(conn, p) == "regularizing"
    on = "SELECT parcel_tenure_from_rights(%s, %s::date)"
    assert await scalar(conn, on, (p, "2027-06-01")) == "regularized"
    assert await scalar(conn, on, (p, "2020-01-01")) == "regularizing"
    await conn.execute("UPDATE rights SET status = 'revoked' WHERE id = %s", (rb,))
    assert await scalar(conn, on, (p, "2026-12-01")) is None  # nothing counts: silent
    # 1. silent now, after the rule had spoken: back to the tenure the rights found
    assert await tenure(conn, p) == "occupied"
    # every change of tenure is in the history, naming the right that moved it
    cur = await conn.execute(
        "SELECT from_status, to_status, note, by_rule, rule_right, rule_back, rule_event "
        "FROM parcel_tenure_history(ARRAY[%s]) ORDER BY history_id",
        (p,),
    )
    rows = await cur.fetchall()
    moves = [(f, t) for f, t, *_ in rows][-8:]
    assert moves == [
        ("occupied", "regularizing"),
        ("regularizing", "disputed"),
        ("disputed", "regularizing"),
        ("regularizing", "regularized"),
        ("regularized", "disputed"),
        ("disputed", "regularized"),
        ("regularized", "regularizing"),
        ("regularizing", "occupied"),
    ]
    # as data, no note: the history says it in the reader's language (found from outside: a
    # note, hidden from the public as the parcel's notes are, left them no cause)
    # the right each change above was made by, worked out by hand
    made_by = [ra, rb, rb, ra, rb, ra, ra, rb]
    # and what was done to it: the two claims recorded, then each changed
    done = ["recorded", "recorded", *["changed"] * 6]
    assert [r[2:] for r in rows[-8:]] == [
        (None, True, r, r == rb and i == 7, done[i]) for i, r in enumerate(made_by)
    ]


async def test_the_rule_follows_the_calendar(conn: AsyncConnection, settings: Settings) -> None:
    """Found from outside: the rule ran only when a right was written, so a lease that ended
    today left its parcel regularized tomorrow, and a title starting tomorrow left its parcel
    occupied once started. tenure_follow_calendar applies the days passed, worked by hand:"""
    today = await scalar(conn, "SELECT current_date")
    day = dt.timedelta(days=1)
    run = "SELECT tenure_follow_calendar(%s::date)"
    await scalar(conn, run, (today,))  # whatever was due before this test
    leased, titled = await parcel(conn, "EM-P008"), await parcel(conn, "EM-P014")
    before = await tenure(conn, leased), await tenure(conn, titled)
    assert before == ("occupied", "occupied"), before
    a, b = await add_party(conn, "A (ficticia)"), await add_party(conn, "B (ficticia)")
    lease = await add_right(
        conn, leased, a, kind="lease", status="granted", starts_on="2020-01-01", ends_on=today
    )
    title = await add_right(conn, titled, b, kind="title", status="granted", starts_on=today + day)
    # today: the lease counts (its last day), the title not yet
    assert (await tenure(conn, leased), await tenure(conn, titled)) == ("regularized", "occupied")
    assert await scalar(conn, run, (today,)) == 0  # nothing passed since
    # tomorrow: the lease has ended, the title started; both parcels change, once
    assert await scalar(conn, run, (today + day,)) == 2
    assert (await tenure(conn, leased), await tenure(conn, titled)) == ("occupied", "regularized")
    assert await scalar(conn, run, (today + day,)) == 0
    assert await scalar(conn, run, (today + 2 * day,)) == 0
    # the rule that finds nothing to change writes nothing: a layer's version moved with
    # every parcel it looked at, and kept packages were made again (found in a test)
    version = "SELECT version FROM layer_versions WHERE layer = 'parcels'"
    before_version = await scalar(conn, version)
    await conn.execute(
        "SELECT tenure_follow_rights(%s, %s, 'changed', %s)", (titled, title, today + day)
    )
    assert await scalar(conn, version) == before_version
    cur = await conn.execute(
        "SELECT parcel_id, to_status, rule_right, rule_back, rule_event "
        "FROM parcel_tenure_history(ARRAY[%s, %s]) ORDER BY history_id DESC LIMIT 2",
        (leased, titled),
    )
    assert sorted(await cur.fetchall()) == sorted(
        [
            (leased, "occupied", lease, True, "ended"),
            (titled, "regularized", title, False, "started"),
        ]
    )
    async with api_client(conn, settings) as anonymous:
        for lang, ended, started in (
            ("en", "(right {}, past its end date)", "(right {}, in force from its start date)"),
            ("es", "(derecho {}, vencido)", "(derecho {}, vigente desde su fecha de inicio)"),
        ):
            for p, words, r in ((leased, ended, lease), (titled, started, title)):
                got = await anonymous.get(
                    f"/collections/parcels/items/{p}/history", params={"lang": lang}
                )
                assert words.format(r) in got.json()["history"][-1]["cause"], got.json()


async def test_the_rules_notes_written_before_become_its_cause(
    conn: AsyncConnection, settings: Settings
) -> None:
    """Migration 0027 turns the notes the rule wrote in both languages into the right and
    the way back they named; a note a person wrote stays. The history then says the cause
    in the reader's language, to every reader (found from outside: the public saw none)."""
    p = await parcel(conn, "EM-P008")
    written = [
        (
            "occupied",
            "regularized",
            "sigue sus derechos (derecho 41) / follows its rights (right 41)",
        ),
        (
            "regularized",
            "occupied",
            "ya no cuenta ningún derecho (derecho 41): vuelve a la tenencia de antes / no right "
            "counts any more (right 41): back to the tenure before",
        ),
        ("occupied", "disputed", "acta de la asamblea"),
    ]
    for before, after, note in written:
        await conn.execute(
            "INSERT INTO parcel_history (parcel_id, from_status, to_status, note, by_rule) "
            "VALUES (%s, %s, %s, %s, %s)",
            (p, before, after, note, not note.startswith("acta")),
        )
    migration = Path(__file__).parents[1] / "geo_comuna/db/migrations/0027_tenure_rule_cause.sql"
    [update] = re.findall(r"^UPDATE parcel_history.*?;$", migration.read_text(), re.S | re.M)
    await conn.execute(update)
    cur = await conn.execute(
        "SELECT note, by_rule, rule_right, rule_back FROM parcel_tenure_history(ARRAY[%s]) "
        "ORDER BY history_id DESC LIMIT 3",
        (p,),
    )
    assert (await cur.fetchall())[::-1] == [
        (None, True, 41, False),
        (None, True, 41, True),
        ("acta de la asamblea", False, None, False),
    ]
    async with api_client(conn, settings) as anonymous:
        for lang, follows, back in (
            ("en", "follows its rights (right 41)", "no right counts any more (right 41)"),
            ("es", "sigue sus derechos (derecho 41)", "ya no cuenta ningún derecho (derecho 41)"),
        ):
            r = await anonymous.get(
                f"/collections/parcels/items/{p}/history", params={"lang": lang}
            )
            *_, one, two, three = r.json()["history"]
            assert (one["by_rule"], one["right"], one["cause"]) == (True, 41, follows)
            assert two["cause"].startswith(back) and three["cause"] is None
            assert three["note"] is None  # a person's note: the commune's members'


async def test_a_title_revoked_or_deleted_gives_the_parcel_back_its_tenure(
    conn: AsyncConnection,
) -> None:
    """Found from outside: the last right of a parcel revoked or deleted left it regularized.
    Worked by hand on an abandoned parcel: what the rights replaced comes back, unless a
    person set the tenure after them."""
    p = await parcel(conn, "EM-P008")
    await conn.execute("UPDATE parcels SET tenure = 'abandoned' WHERE id = %s", (p,))
    a = await add_party(conn, "A (ficticia)")
    # a restriction alone: the rule never spoke, nothing to give back
    easement = await add_right(conn, p, a, kind="easement", status="granted")
    await conn.execute("DELETE FROM rights WHERE id = %s", (easement,))
    assert await tenure(conn, p) == "abandoned"
    title = await add_right(conn, p, a, status="granted")
    assert await tenure(conn, p) == "regularized"
    await conn.execute("UPDATE rights SET status = 'revoked' WHERE id = %s", (title,))
    assert await tenure(conn, p) == "abandoned"
    await conn.execute("UPDATE rights SET status = 'granted' WHERE id = %s", (title,))
    await conn.execute("UPDATE rights SET kind = 'title' WHERE id = %s", (title,))
    assert await tenure(conn, p) == "regularized"
    await conn.execute("DELETE FROM rights WHERE id = %s", (title,))
    assert await tenure(conn, p) == "abandoned"  # through every change the rule made
    # a person's word after the rule's stands when the rights fall silent
    title = await add_right(conn, p, a)
    assert await tenure(conn, p) == "regularizing"
    await conn.execute("UPDATE parcels SET tenure = 'occupied' WHERE id = %s", (p,))
    await conn.execute("DELETE FROM rights WHERE id = %s", (title,))
    assert await tenure(conn, p) == "occupied"


async def test_a_collective_use_and_a_family_claim_on_all_of_it_is_a_dispute(
    conn: AsyncConnection,
) -> None:
    p = await parcel(conn, "EM-P009")
    c, f = await add_party(conn, "Comuna (ficticia)", "commune"), await add_party(conn, "F")
    await add_right(conn, p, c, kind="collective_use", status="granted")
    assert await tenure(conn, p) == "regularized"
    await add_right(conn, p, f, share=0.25)
    assert await tenure(conn, p) == "disputed"  # 1 + 0.25 > 1


# -- PostgreSQL itself, as each role ----------------------------------------------------------


async def as_role(conn: AsyncConnection, db_role: str, role: str, communes: list[int]) -> None:
    await conn.execute(f"SET LOCAL ROLE {db_role}")
    await conn.execute(
        "SELECT set_config('geo_comuna.role', %s, true), "
        "set_config('geo_comuna.communes', %s, true)",
        (role, ",".join(map(str, communes))),
    )


async def test_plain_sql_as_each_role(conn: AsyncConnection) -> None:
    maizal, marzo = await commune(conn), await commune(conn, "5-DE-MARZO")
    party = int(
        await scalar(
            conn,
            "INSERT INTO parties (commune_id, kind, name, id_number, contact) "
            "VALUES (%s, 'household', %s, %s, %s) RETURNING id",
            (maizal, NAME, ID_NUMBER, CONTACT),
        )
    )
    await conn.execute("INSERT INTO document_contents VALUES (repeat('a', 64), '\\x01')")
    await conn.execute(
        "INSERT INTO documents (sha256, media_type, size_bytes, title, party_id) "
        "VALUES (repeat('a', 64), 'application/pdf', 1, %s, %s)",
        (TITLE, party),
    )
    seen = "SELECT name, id_number, contact, kind FROM party_register WHERE id = %s"
    for db_role in ("geo_comuna_reader", "geo_comuna_writer"):
        for role, communes, personal in [
            ("", [], False),
            ("viewer", [maizal], False),
            ("editor", [marzo], False),
            ("editor", [maizal], True),
            ("admin", [], True),
        ]:
            async with conn.transaction():
                await as_role(conn, db_role, role, communes)
                cur = await conn.execute(seen, (party,))
                name, number, contact, kind = await cur.fetchone()
                assert kind == "household"
                assert (name, number, contact) == (
                    (NAME, ID_NUMBER, CONTACT) if personal else (None, None, None)
                ), (db_role, role)
                docs = await scalar(conn, "SELECT count(*) FROM document_files")
                assert (docs == 1) is personal
                await conn.execute("SET LOCAL ROLE NONE")
        # the tables' personal columns, the documents and their bytes: never, whoever asks
        for query in (
            "SELECT name FROM parties",
            "SELECT id_number FROM parties",
            "SELECT contact FROM parties",
            "SELECT note FROM rights",
            "SELECT title FROM documents",
            "SELECT bytes FROM document_contents",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with conn.transaction():
                    await as_role(conn, db_role, "admin", [])
                    await conn.execute(query)


async def test_row_security_keeps_editors_to_their_communes(conn: AsyncConnection) -> None:
    maizal, marzo = await commune(conn), await commune(conn, "5-DE-MARZO")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="commune you may not edit"):
        async with conn.transaction():
            await as_role(conn, "geo_comuna_writer", "editor", [marzo])
            await conn.execute(
                "INSERT INTO parties (commune_id, kind, name) VALUES (%s, 'person', 'X')",
                (maizal,),
            )
    party = await add_party(conn, "Y")
    async with conn.transaction():
        await as_role(conn, "geo_comuna_writer", "editor", [marzo])
        cur = await conn.execute("UPDATE parties SET name = 'Z' WHERE id = %s", (party,))
        assert cur.rowcount == 0
        await conn.execute("SET LOCAL ROLE NONE")
    p = await parcel(conn, "EM-P014")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="parcel of a commune"):
        async with conn.transaction():
            await as_role(conn, "geo_comuna_writer", "editor", [marzo])
            await conn.execute(
                "INSERT INTO rights (parcel_id, party_id, kind, status) "
                "VALUES (%s, %s, 'lease', 'claimed')",
                (p, party),
            )


# -- the API: registering, and what each reader sees ------------------------------------------


async def register(c: httpx.AsyncClient, conn: AsyncConnection) -> dict[str, int]:
    """A household, its claim on EM-P019 and two documents, through the API."""
    r = await c.post(
        "/collections/parties/items",
        json=feature(
            commune=MAIZAL, kind="household", name=NAME, id_number=ID_NUMBER, contact=CONTACT
        ),
    )
    assert r.status_code == 201, r.text
    party = r.json()["ids"][0]
    p = await parcel(conn, "EM-P019")
    r = await c.post(
        "/collections/rights/items",
        json=feature(
            parcel=p,
            party=party,
            kind="occupancy_claim",
            status="under_review",
            share=1,
            starts_on="2024-03-01",
            note=f"{NAME} vive allí desde 2019",
        ),
    )
    assert r.status_code == 201, r.text
    right = r.json()["ids"][0]
    r = await c.post(
        "/documents",
        data={"title": TITLE, "right": str(right)},
        files={"file": ("constancia.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text
    doc = r.json()["id"]
    r = await c.post(
        "/documents",
        data={"title": f"Foto de la casa de {NAME}", "parcel": str(p)},
        files={"file": ("casa.jpg", jpeg((-69.1452, 9.6951)), "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["position"] == pytest.approx([-69.1452, 9.6951], abs=1e-5)
    return {"party": party, "right": right, "document": doc, "photo": r.json()["id"], "parcel": p}


async def test_register_read_change_and_audit(conn: AsyncConnection, reader: Callable) -> None:
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
        assert await tenure(conn, ids["parcel"]) == "regularizing"  # a claim under review
        one = await c.get(f"/collections/parties/items/{ids['party']}")
        assert one.json()["properties"]["name"] == NAME
        etag = one.headers["etag"]
        r = await c.patch(
            f"/collections/parties/items/{ids['party']}",
            json=feature(contact="0412-1111111"),
            headers={"If-Match": etag},
        )
        assert r.status_code == 200, r.text
        stale = await c.patch(
            f"/collections/parties/items/{ids['party']}",
            json=feature(contact="0412-2222222"),
            headers={"If-Match": etag},
        )
        assert stale.status_code == 412
        for kind, record, change in (
            ("parties", ids["party"], feature(contact="0412-3333333")),
            ("rights", ids["right"], feature(note="no")),
        ):
            url = f"/collections/{kind}/items/{record}"
            current = (await c.get(url)).headers["etag"]
            for tags in ("*", current, f'"1.1", W/{current}'):  # what is stored: nothing changes
                r = await c.patch(url, json=change, headers={"If-None-Match": tags})
                assert r.status_code == 412 and "If-None-Match" in r.json()["detail"], r.text
                r = await c.delete(url, headers={"If-None-Match": tags})
                assert r.status_code == 412, (url, tags, r.text)
        party = (await c.get(f"/collections/parties/items/{ids['party']}")).json()
        assert party["properties"]["contact"] == "0412-1111111"
        bad = await c.post("/collections/parties/items", json=feature(commune=MAIZAL, kind="clan"))
        assert bad.status_code == 422 and "'kind'" in bad.json()["detail"]
        assert "Household (household)" in bad.json()["detail"], bad.text
        bad = await c.post(
            "/collections/parties/items",
            json=feature(commune=MAIZAL, kind="person", name="N", id_number="12345678"),
        )
        assert bad.status_code == 422 and "id_number" in bad.json()["detail"]
        # {"properties": ...} alone is a patch, as it is for a layer's feature (it was a 400)
        r = await c.patch(
            f"/collections/rights/items/{ids['right']}", json={"properties": {"status": "granted"}}
        )
        assert r.status_code == 200, r.text
        assert await tenure(conn, ids["parcel"]) == "regularized"
        r = await c.post(
            "/collections/parties/items", json={"properties": {"commune": MAIZAL, "kind": "clan"}}
        )
        assert r.status_code == 400 and "GeoJSON Feature" in r.json()["detail"]
    async with reader("editor-marzo") as c:
        r = await c.patch(
            f"/collections/parties/items/{ids['party']}", json=feature(name="Otro nombre")
        )
        assert r.status_code == 403
        body = feature(commune=MAIZAL, kind="household", name="Otra")
        r = await c.post("/collections/parties/items", json=body, params={"lang": "es"})
        assert r.status_code == 403, r.text  # found from outside: the database's English
        assert "un sujeto de derecho de una comuna que usted no puede editar" in r.json()["detail"]
    async with reader("viewer-maizal") as c:
        r = await c.post("/collections/parties/items", json=feature(commune=MAIZAL))
        assert r.status_code == 403
    async with reader("admin") as c:
        trail = (await c.get("/audit", params={"layer": "parties", "id": ids["party"]})).json()
        actions = [e["action"] for e in trail["entries"]]
        assert actions.count("update") == 1 and actions.count("insert") == 1
        tenure_trail = await c.get("/audit", params={"layer": "parcels", "id": ids["parcel"]})
        assert any(
            e["action"] == "update" and e["after"]["properties"]["tenure"] == "regularized"
            for e in tenure_trail.json()["entries"]
        )


async def test_a_right_names_only_a_party_its_writer_may_edit(
    conn: AsyncConnection, reader: Callable
) -> None:
    """Found from outside: an editor of El Maizal recorded a right on El Maizal's land for a
    party of 5 de Marzo, which that commune's editors could then no longer delete (the right
    held it) nor the right (El Maizal's land). A right across communes is an admin's."""
    p = await parcel(conn, "EM-P019")
    async with reader("editor-marzo") as c:
        body = feature(commune="5-DE-MARZO", kind="household", name="Familia Z")
        r = await c.post("/collections/parties/items", json=body)
        assert r.status_code == 201, r.text
        theirs = r.json()["ids"][0]
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/collections/parties/items", json=feature(commune=MAIZAL, kind="person", name="P")
        )
        assert r.status_code == 201, r.text
        own = r.json()["ids"][0]
        claim = {"parcel": p, "kind": "occupancy_claim", "status": "claimed", "share": 1}
        r = await c.post("/collections/rights/items", json=feature(**claim, party=theirs))
        assert r.status_code == 403, r.text
        assert "a right of a party of a commune you may not edit" in r.json()["detail"]
        r = await c.post(
            "/collections/rights/items", json=feature(**claim, party=theirs), params={"lang": "es"}
        )
        assert "un derecho de un sujeto de derecho de una comuna" in r.json()["detail"], r.text
        r = await c.post("/collections/rights/items", json=feature(**claim, party=own))
        assert r.status_code == 201, r.text
        right = r.json()["ids"][0]
        r = await c.patch(f"/collections/rights/items/{right}", json=feature(party=theirs))
        assert r.status_code == 403, r.text
        cur = await conn.execute("SELECT max(id) + 1000 FROM parties")
        (missing,) = await cur.fetchone()
        r = await c.post("/collections/rights/items", json=feature(**claim, party=missing))
        # no such party: said as such, not as another's (found from outside: it was a 409
        # with PostgreSQL's English detail, in Spanish too)
        assert r.status_code == 422, r.text
        assert "property 'party': there is no such party" in r.json()["detail"], r.text
        r = await c.post(
            "/collections/rights/items", json=feature(**claim, party=missing), params={"lang": "es"}
        )
        assert "propiedad 'party': no existe el sujeto de derecho que nombra" in r.json()["detail"]
        assert "Key" not in r.text
    cur = await conn.execute("SELECT count(*) FROM rights WHERE party_id = %s", (theirs,))
    assert (await cur.fetchone())[0] == 0
    async with reader("admin") as c:  # who may edit both communes records it
        r = await c.post("/collections/rights/items", json=feature(**claim, party=theirs))
        assert r.status_code == 201, r.text
        assert (
            await c.delete(f"/collections/rights/items/{r.json()['ids'][0]}")
        ).status_code == 204
    async with reader("editor-marzo") as c:
        assert (await c.delete(f"/collections/parties/items/{theirs}")).status_code == 204


async def test_a_parcel_keeps_its_land_records(conn: AsyncConnection, reader: Callable) -> None:
    """Found from outside: deleting a parcel deleted its rights and their documents, and its
    own documents, without a word (DELETE, and a sync with delete_missing). It is refused
    until they are deleted or the rights moved; a document can be deleted now."""
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)  # a party, its right on EM-P019, two documents
        url = f"/collections/parcels/items/{ids['parcel']}"
        for lang, says in (("en", "it holds land records"), ("es", "tiene registros de tierra")):
            r = await c.delete(url, params={"lang": lang})
            assert r.status_code == 409 and says in r.json()["detail"], r.text
        assert (await c.get(f"/collections/rights/items/{ids['right']}")).status_code == 200
        assert (await c.get(f"/documents/{ids['photo']}")).status_code == 200
        # the way out the message names: the right (its document goes with it), the photo
        assert (await c.delete(f"/collections/rights/items/{ids['right']}")).status_code == 204
        assert (await c.get(f"/documents/{ids['document']}")).status_code == 404
        assert (await c.delete(url)).status_code == 409  # the photo is the parcel's own
        assert (await c.delete(f"/documents/{ids['photo']}")).status_code == 204
        assert (await c.delete(f"/documents/{ids['photo']}")).status_code == 404
        assert (await c.delete(url)).status_code == 204
    cur = await conn.execute(
        "SELECT action FROM audit_log WHERE layer = 'documents' AND feature_id = %s",
        (ids["photo"],),
    )
    assert "delete" in [r[0] for r in await cur.fetchall()]


@pytest.mark.parametrize("name", ["Ścieżka.pdf", "文書.pdf", "acta 1 (copia).pdf", "plano.pdf"])
async def test_a_document_downloads_under_its_own_name(
    conn: AsyncConnection, reader: Callable, name: str
) -> None:
    """Found from outside: a name outside Latin-1 was stored and then never downloaded (a
    500: it went into a header as it was). ASCII for every client, the name as written for
    those that read RFC 5987."""
    p = await parcel(conn, "EM-P019")
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/documents",
            data={"title": "Acta", "parcel": str(p)},
            files={"file": (name, PDF, "application/pdf")},
        )
        assert r.status_code == 201, r.text
        back = await c.get(f"/documents/{r.json()['id']}/content")
    assert back.status_code == 200 and back.content == PDF
    disposition = back.headers["content-disposition"]
    assert disposition.isascii()
    assert urllib.parse.unquote(disposition.split("filename*=UTF-8''")[1]) == name


async def test_who_may_delete_a_document(conn: AsyncConnection, reader: Callable) -> None:
    """Found from outside: another commune's editor got a 404 reading a document and a 403
    deleting it, which told that it exists; both are a 404 (docs/security.md)."""
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
    for who, status in (("editor-marzo", 404), ("viewer-maizal", 403), ("anonymous", 401)):
        async with reader(who) as c:
            r = await c.delete(f"/documents/{ids['photo']}")
            assert r.status_code == status, (who, r.text)
            if who == "editor-marzo":
                assert (await c.get(f"/documents/{ids['photo']}")).json() == r.json()
    async with reader("admin") as c:
        assert (await c.delete(f"/documents/{ids['photo']}")).status_code == 204


def spellings(text: str) -> set[str]:
    """How a text may be written in a response: as is, JSON-escaped, HTML-escaped."""
    return {text, json.dumps(text)[1:-1], html.escape(text), html.escape(text, quote=False)}


def assert_private(r: httpx.Response) -> None:
    cache = r.headers["cache-control"]
    assert ("private" in cache or "no-store" in cache) and "public" not in cache, cache
    assert "authorization" in r.headers["vary"].lower()


async def test_refusals_say_what_is_wrong(conn: AsyncConnection, reader: Callable) -> None:
    """A right that ends before it starts is refused in words (it was the database's own
    'violates check constraint "rights_check"'); a document for a parcel that does not
    exist is a 404 (it was a 403, as if the parcel were another commune's)."""
    p = await parcel(conn, "EM-P019")
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/collections/parties/items",
            json=feature(commune=MAIZAL, kind="household", name=NAME),
        )
        assert r.status_code == 201, r.text
        party = r.json()["ids"][0]
        r = await c.post(
            "/collections/rights/items",
            json=feature(
                parcel=p, party=party, kind="lease", status="claimed",
                starts_on="2021-01-01", ends_on="2020-01-01",
            ),
        )  # fmt: skip
        assert r.status_code == 422, r.text
        assert "ends_on is before starts_on" in r.json()["detail"]
        assert "rights_check" not in r.text
        for day in ("20210101", "2021-W01-1", "2021-01-01T23:00:00-05:00"):  # as attributes
            r = await c.post(
                "/collections/rights/items",
                json=feature(parcel=p, party=party, kind="lease", status="claimed", starts_on=day),
            )
            assert r.status_code == 422 and "is not a date (YYYY-MM-DD)" in r.text, r.text
        cur = await conn.execute("SELECT max(id) + 1000 FROM parcels")
        (missing,) = await cur.fetchone()
        r = await c.post(
            "/documents",
            data={"title": TITLE, "parcel": str(missing)},
            files={"file": ("constancia.pdf", PDF, "application/pdf")},
        )
        assert r.status_code == 404, r.text
        assert f"no parcel {missing}" in r.json()["detail"]
        # a party holding a right says which records hold it and where they are listed
        r = await c.post(
            "/collections/rights/items",
            json=feature(parcel=p, party=party, kind="lease", status="claimed"),
        )
        assert r.status_code == 201, r.text
        listed = f"GET /collections/rights/items?party={party}"
        r = await c.delete(f"/collections/parties/items/{party}", params={"lang": "es"})
        assert r.status_code == 409, r.text
        said = r.json()["detail"]
        assert "hay derechos que todavía lo nombran" in said and listed in said, said
        assert "Key" not in said and "referenced" not in said
        r = await c.delete(f"/collections/parties/items/{party}")
        assert "rights still name it" in r.json()["detail"] and listed in r.json()["detail"]
        assert (await c.get(listed.removeprefix("GET "))).json()["numberMatched"] == 1


@pytest.mark.parametrize("who", OUTSIDERS + MEMBERS)
async def test_what_each_reader_sees(conn: AsyncConnection, reader: Callable, who: str) -> None:
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
    member = who in MEMBERS
    secrets = [NAME, ID_NUMBER, CONTACT, TITLE, "Quintero"]
    async with reader(who) as c:
        urls = [
            "/collections/parties/items?limit=1000",
            f"/collections/parties/items/{ids['party']}",
            f"/collections/rights/items?parcel={ids['parcel']}",
            f"/collections/rights/items/{ids['right']}",
            f"/collections/parcels/items/{ids['parcel']}/records",
            f"/communes/{MAIZAL}/documents",
            f"/collections/parcels/items/{ids['parcel']}",
            f"/collections/parcels/items/{ids['parcel']}/history",
            f"/collections/parcels/export?format=csv&commune={MAIZAL}",
            f"/maps/communes/{MAIZAL}",
            f"/communes/{MAIZAL}/report",
            f"/communes/{MAIZAL}/analyses/land-recovery",
        ]
        seen = ""
        for url in urls:
            r = await c.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            assert_private(r)
            seen += r.text
        party = (await c.get(f"/collections/parties/items/{ids['party']}")).json()
        assert party["properties"]["kind"] == "household" and party["id"] == ids["party"]
        right = (await c.get(f"/collections/rights/items/{ids['right']}")).json()
        assert right["properties"]["party"] == ids["party"]
        assert right["properties"]["status"] == "under_review"
        assert right["geometry"]["type"] == "MultiPolygon"
        for what in ("document", "photo"):
            r = await c.get(f"/documents/{ids[what]}/content")
            assert r.status_code == (200 if member else 404)
            if member:
                assert r.headers["x-content-type-options"] == "nosniff"
                assert_private(r)
        found = await c.get(f"/documents/{ids['document']}")
        assert found.status_code == (200 if member else 404)
    if member:
        for secret in secrets:
            assert any(form in seen for form in spellings(secret)), secret
        assert len(await records.parcel_records(conn, ids["parcel"], None)) == 3
    else:
        for secret in secrets:
            for form in spellings(secret):
                assert form not in seen, (who, form)


#: the properties that carry personal data (layers/tenure.py: personal=True)
PERSONAL = {"name", "id_number", "contact", "holder", "note"}


@pytest.mark.parametrize("who", OUTSIDERS + MEMBERS)
async def test_the_collections_list_and_describe_them_privately(
    conn: AsyncConnection, reader: Callable, who: str
) -> None:
    """Parties and rights are listed in /collections like any layer; what describes them
    (collection, queryables, schema) and their items by bbox never carries a name or an ID
    number to an outsider, and nobody may filter by one: a filter on a name would answer
    an outsider whether that person holds land."""
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
    bbox = "-69.2,9.6,-69.1,9.75"  # around EM-P019
    async with reader(who) as c:
        listed = {x["id"]: x for x in (await c.get("/collections")).json()["collections"]}
        assert {"parties", "rights"} <= set(listed)
        assert "extent" not in listed["parties"] and listed["rights"]["extent"]["spatial"]
        seen = json.dumps(listed, ensure_ascii=False)
        for kind in ("parties", "rights"):
            one = await c.get(f"/collections/{kind}", params={"lang": "en"})
            assert one.json()["title"] in ("Parties", "Rights and restrictions")
            queryables = (await c.get(f"/collections/{kind}/queryables")).json()
            assert not PERSONAL & set(queryables["properties"]), (who, kind)
            schema = await c.get(f"/collections/{kind}/schema")
            assert_private(schema)
            personal = {n for n, p in schema.json()["properties"].items() if p.get("x-personal")}
            may_write = who in MEMBERS or who == "editor-marzo"  # the schema, not values
            expected = {"name", "id_number", "contact"} if kind == "parties" else {"holder", "note"}
            assert personal == (expected if may_write else set()), (who, kind, personal)
            assert not PERSONAL & set(schema.json()["properties"]) - personal
            if kind == "rights":  # the database's range, for a form to keep to (found from
                # outside: none was given)
                share = schema.json()["properties"]["share"]
                assert (share["exclusiveMinimum"], share["maximum"]) == (0, 1), share
            seen += json.dumps(queryables, ensure_ascii=False) + schema.text
            for name, value in (("name", NAME), ("id_number", ID_NUMBER), ("holder", NAME)):
                r = await c.get(f"/collections/{kind}/items", params={name: value})
                assert r.status_code == 400 and repr(name) in r.json()["detail"], r.text
            r = await c.get(f"/collections/{kind}/items", params={"filter": f"name = '{NAME}'"})
            assert r.status_code == 400, r.text
        r = await c.get("/collections/rights/items", params={"bbox": bbox, "limit": 1000})
        assert r.status_code == 200, r.text
        assert_private(r)
        found = {f["id"]: f for f in r.json()["features"]}
        assert found[ids["right"]]["properties"]["party"] == ids["party"]
        seen += r.text
        r = await c.get(
            "/collections/parties/items", params={"kind": "household", "commune": MAIZAL}
        )
        assert ids["party"] in {f["id"] for f in r.json()["features"]}
        assert {f["properties"]["kind"] for f in r.json()["features"]} == {"household"}
        seen += r.text
        # a value by its label, in either language and any case, as the layers' parameters
        for spelt in ("GRUPO FAMILIAR", "household,Household"):
            same = await c.get(
                "/collections/parties/items", params={"kind": spelt, "commune": MAIZAL}
            )
            assert same.status_code == 200, (spelt, same.text)
            assert same.json()["features"] == r.json()["features"], spelt
        bad = await c.get("/collections/rights/items", params={"status": "stolen"})
        assert bad.status_code == 400 and "Granted (granted)" in bad.json()["detail"]
        bad = await c.get("/collections/rights/items", params={"status": "stolen", "lang": "es"})
        assert bad.status_code == 400 and "Otorgado (granted)" in bad.json()["detail"]
        assert "no es ninguno de" in bad.json()["detail"], bad.text
    if who not in MEMBERS:
        for secret in (NAME, ID_NUMBER, CONTACT, "Quintero"):
            assert not any(form in seen for form in spellings(secret)), (who, secret)
    else:
        assert any(form in seen for form in spellings(NAME)), who


async def test_parcel_records_for_the_sheet(conn: AsyncConnection, reader: Callable) -> None:
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
    maizal = await commune(conn)
    editor = User(None, "e", "editor", (maizal,))
    mine = await records.parcel_records(conn, ids["parcel"], editor)
    assert [h["name"] for h in mine["holders"]] == [NAME]
    assert [d["title"] for d in mine["documents"]] == [TITLE, f"Foto de la casa de {NAME}"]
    assert all(len(d["sha256"]) == 64 for d in mine["documents"])
    for user in (None, User(None, "v", "viewer", (maizal,))):
        theirs = await records.parcel_records(conn, ids["parcel"], user)
        assert theirs["holders"] == [
            {"id": ids["party"], "kind": "household", "illustrative": False}
        ]
        assert [r["status"] for r in theirs["rights"]] == ["under_review"]
        assert "note" not in theirs["rights"][0]
        assert theirs["documents"] == []


# -- documents ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("deed.pdf", jpeg(), "named .pdf (a PDF) but its bytes are a JPEG image"),
        ("photo.jpg", PDF, "named .jpg (a JPEG image) but its bytes are a PDF"),
        ("scan.png", jpeg(), "named .png (a PNG image) but its bytes are a JPEG image"),
        ("deed.exe", PDF, "the ending .exe is not one of a PDF's"),
        ("notes.txt", b"just text", "its bytes are not a PDF, JPEG, PNG or HEIC"),
        ("IMG_1.jpg", heic(), "named .jpg (a JPEG image) but its bytes are a HEIC photo"),
        ("IMG_2.heic", jpeg(), "named .heic (a HEIC photo) but its bytes are a JPEG image"),
    ],
)
async def test_a_lying_or_unknown_file_is_refused_naming_it(
    conn: AsyncConnection, reader: Callable, name: str, data: bytes, says: str
) -> None:
    p = await parcel(conn, "EM-P019")
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/documents",
            data={"title": "t", "parcel": str(p)},
            files={"file": (name, data, "application/pdf")},
        )
    assert r.status_code == 415, r.text
    assert name in r.json()["detail"] and says in r.json()["detail"]
    assert await scalar(conn, "SELECT count(*) FROM documents WHERE parcel_id = %s", (p,)) == 0


async def test_a_heic_photo_is_kept_as_sent_with_its_position(
    conn: AsyncConnection, reader: Callable
) -> None:
    """A phone's HEIC photo: sniffed by its ftyp box, its EXIF GPS read by pillow-heif, its
    bytes stored and given back as sent; one cut short is refused naming it."""
    p = await parcel(conn, "EM-P019")
    data = heic((-69.1452, 9.6951))
    assert data[4:12] == b"ftypheic"
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/documents",
            data={"title": "Foto de la cerca", "parcel": str(p)},
            files={"file": ("IMG_0001.HEIC", data, "application/octet-stream")},
        )
        assert r.status_code == 201, r.text
        stored = r.json()
        assert stored["media_type"] == "image/heic"
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        assert stored["position"] == pytest.approx([-69.1452, 9.6951], abs=1e-5)
        back = await c.get(f"/documents/{stored['id']}/content")
        assert back.content == data and back.headers["content-type"] == "image/heic"
        shown = (await c.get(f"/communes/{MAIZAL}/documents")).json()["features"]
        assert stored["id"] in {f["id"] for f in shown}
        cut = await c.post(
            "/documents",
            data={"title": "t", "parcel": str(p)},
            files={"file": ("IMG_0002.heic", data[:40], "image/heic")},
        )
        assert cut.status_code == 422 and "IMG_0002.heic" in cut.json()["detail"], cut.text
    assert documents.photo_place(heic(), "y.heic", "image/heic").lat is None


async def test_document_limits(conn: AsyncConnection, settings: Settings) -> None:
    p = await parcel(conn, "EM-P019")
    editor = User(None, "e", "editor", (await commune(conn),))
    with pytest.raises(Exception, match="over 1024"):
        await documents.upload(
            conn,
            editor,
            PDF + b" " * 2000,
            filename="big.pdf",
            title="t",
            attached_to={"parcel": p},
            limit=1024,
        )
    with pytest.raises(Exception, match="exactly one"):
        await documents.upload(
            conn,
            editor,
            PDF,
            filename="a.pdf",
            title="t",
            attached_to={"parcel": p, "party": 1},
            limit=1024,
        )
    with pytest.raises(Exception, match="without its end"):
        documents.media_type(b"%PDF-1.4 cut short", "cut.pdf")
    # a document stored twice keeps one copy of its bytes, found by its SHA-256
    for _ in range(2):
        await documents.upload(
            conn, editor, PDF, filename="a.pdf", title="t", attached_to={"parcel": p}, limit=1024
        )
    assert await scalar(conn, "SELECT count(*) FROM document_contents") == 1


def test_photo_place_from_exif_by_hand() -> None:
    # 9° 41' 42.36" N, 69° 8' 42.72" W = 9.6951, -69.1452
    place = documents.photo_place(jpeg((-69.1452, 9.6951)), "x.jpg")
    assert place.lat == pytest.approx(9.6951, abs=1e-6)
    assert place.lon == pytest.approx(-69.1452, abs=1e-6)
    assert place.taken_at == dt.datetime(2026, 11, 30, 9, 15)
    assert documents.photo_place(jpeg(), "y.jpg").lat is None


def test_a_pngs_place_is_read_without_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found from outside: a PNG's EXIF was read by decoding every pixel (343 KB of zeros made
    350 MB). It comes from its eXIf chunk, as the header reads it."""
    with Image.open(io.BytesIO(jpeg((-69.1452, 9.6951)))) as photo:
        out, bare = io.BytesIO(), io.BytesIO()
        photo.save(out, "PNG", exif=photo.getexif())
        photo.save(bare, "PNG")  # no eXIf chunk: getexif() went through the pixels for one

    def decoded(*_: object) -> None:
        raise AssertionError("a pixel was decoded")

    from PIL import ImageFile

    monkeypatch.setattr(Image.Image, "load", decoded)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    place = documents.photo_place(out.getvalue(), "x.png", "image/png")
    assert place.lat == pytest.approx(9.6951, abs=1e-6)
    assert documents.photo_place(bare.getvalue(), "y.png", "image/png").lat is None


# -- the samples ----------------------------------------------------------------------------------


async def test_samples_hold_illustrative_records_that_agree_with_the_rule(
    conn: AsyncConnection,
) -> None:
    cur = await conn.execute(
        "SELECT c.code, count(DISTINCT r.id), count(DISTINCT r.id) FILTER "
        "(WHERE pt.kind = 'commune' AND r.kind = 'collective_use'), "
        "count(DISTINCT r.id) FILTER (WHERE r.kind = 'occupancy_claim'), "
        "bool_and(r.illustrative AND pt.illustrative) "
        "FROM rights r JOIN parcels p ON p.id = r.parcel_id JOIN communes c ON c.id = p.commune_id "
        "JOIN parties pt ON pt.id = r.party_id GROUP BY c.code ORDER BY c.code"
    )
    rows = await cur.fetchall()
    assert [r[0] for r in rows] == [MAIZAL, "MONTE-SINAI"]
    for _, n, collective, claims, illustrative in rows:
        assert n > 0 and collective > 0 and claims > 0 and illustrative
    assert await scalar(
        conn,
        "SELECT bool_and(position('(ilustrativo' IN name) > 0 OR position('ficticia' IN name) > 0)"
        " FROM parties",
    )
    disagree = await scalar(
        conn,
        "SELECT count(*) FROM parcels p WHERE EXISTS (SELECT FROM rights r "
        "WHERE r.parcel_id = p.id) AND parcel_tenure_from_rights(p.id) IS DISTINCT FROM p.tenure",
    )
    assert disagree == 0


async def test_land_recovery_counts_parcels_by_right_status(
    conn: AsyncConnection, reader: Callable
) -> None:
    maizal = await commune(conn)
    cur = await conn.execute(
        "SELECT r.status, count(DISTINCT r.parcel_id) FROM rights r JOIN parcels p "
        "ON p.id = r.parcel_id WHERE p.commune_id = %s GROUP BY r.status",
        (maizal,),
    )
    expected = dict(await cur.fetchall())
    async with reader("anonymous") as c:
        body = (await c.get(f"/communes/{MAIZAL}/analyses/land-recovery")).json()
    found = {e["status"]: e["parcels"] for e in body["summary"]["by_right_status"]}
    assert found == expected and set(found) <= {"claimed", "under_review", "granted", "revoked"}
    without = body["summary"]["parcels_without_rights"]
    assert without == body["summary"]["parcels"] - await scalar(
        conn,
        "SELECT count(DISTINCT r.parcel_id) FROM rights r JOIN parcels p ON p.id = r.parcel_id "
        "WHERE p.commune_id = %s",
        (maizal,),
    )


@pytest.mark.parametrize("who", ["anonymous", "viewer-maizal", "editor-maizal"])
async def test_the_commune_map_names_holders_for_its_editors_only(
    conn: AsyncConnection, reader: Callable, who: str
) -> None:
    async with reader("editor-maizal") as c:
        await register(c, conn)
    async with reader(who) as c:
        page = (await c.get(f"/maps/communes/{MAIZAL}", params={"lang": "en"})).text
    member = who == "editor-maizal"
    assert "Parcels with recorded rights" in page  # every reader sees where rights are
    assert "Occupancy claim" in page and "Under review" in page
    assert any(form in page for form in spellings(NAME)) is member
    assert ("Document photos" in page) is member  # the photo's position, for members only
    assert any(form in page for form in spellings("Household")) is not member


# -- backup and restore -------------------------------------------------------------------------


def test_backup_and_restore_carry_the_documents(own_db: str, tmp_path: Path) -> None:
    from tests.test_durability import cli

    with psycopg.connect(own_db, autocommit=True) as db:
        db.execute(
            "INSERT INTO document_contents VALUES (%s, %s)", (hashlib.sha256(PDF).hexdigest(), PDF)
        )
        db.execute(
            "INSERT INTO documents (sha256, media_type, size_bytes, title, parcel_id) "
            "SELECT %s, 'application/pdf', %s, 'Acta', min(id) FROM parcels",
            (hashlib.sha256(PDF).hexdigest(), len(PDF)),
        )
    archive = tmp_path / "store.backup"
    done = cli(own_db, "backup", str(archive))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(own_db, autocommit=True) as db:
        db.execute("DELETE FROM documents")
        db.execute("DELETE FROM document_contents")
    done = cli(own_db, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(own_db, autocommit=True) as db:
        (data,) = db.execute(
            "SELECT c.bytes FROM documents d JOIN document_contents c USING (sha256) "
            "WHERE d.title = 'Acta'"
        ).fetchone()
        assert bytes(data) == PDF
        # the views and their grants came back too: the reader role reads through them
        db.execute("BEGIN")
        db.execute("SET LOCAL ROLE geo_comuna_reader")
        db.execute("SELECT set_config('geo_comuna.role', 'admin', true)")
        assert db.execute("SELECT count(*) FROM document_files").fetchone()[0] == 1
        db.execute("ROLLBACK")


async def test_options_answer_what_the_token_may_do(
    conn: AsyncConnection, reader: Callable
) -> None:
    party = await add_party(conn, "Ficticia")
    expected = {
        "anonymous": ("GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
        "viewer-maizal": ("GET, HEAD, OPTIONS", "GET, HEAD, OPTIONS"),
        "editor-marzo": ("GET, HEAD, POST, OPTIONS", "GET, HEAD, OPTIONS"),
        "editor-maizal": ("GET, HEAD, POST, OPTIONS", "GET, HEAD, PATCH, DELETE, OPTIONS"),
    }
    for who, (items, item) in expected.items():
        async with reader(who) as c:
            r = await c.options("/collections/parties/items")
            assert r.status_code == 204 and r.headers["allow"] == items, who
            r = await c.options(f"/collections/parties/items/{party}")
            assert r.status_code == 204 and r.headers["allow"] == item, who
            assert (await c.head(f"/collections/parties/items/{party}")).status_code == 200


async def test_the_vocabulary_is_the_schemas(conn: AsyncConnection) -> None:
    """Each domain of layers/tenure.py is exactly what migration 0021's CHECK allows."""
    from geo_comuna.layers.tenure import DOCUMENT_TYPES, PARTY_KIND, RIGHT_KIND, RIGHT_STATUS

    for table, column, allowed in [
        ("parties", "kind", set(PARTY_KIND.values)),
        ("rights", "kind", set(RIGHT_KIND.values)),
        ("rights", "status", set(RIGHT_STATUS.values)),
        ("documents", "media_type", set(DOCUMENT_TYPES)),
    ]:
        cur = await conn.execute(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'c' "
            "AND pg_get_constraintdef(c.oid) LIKE %s",
            (table, f"%({column} = ANY%"),
        )
        (definition,) = await cur.fetchone()
        assert set(re.findall(r"'([^']+)'::text", definition)) == allowed, (table, column)


async def test_text_a_database_cannot_hold_and_shares_that_are_no_number_are_422(
    conn: AsyncConnection, reader: Callable
) -> None:
    """Found from outside: a NUL or a lone surrogate in a party's name or contact, a right's
    note, or a document's title or file name was PostgreSQL's refusal, a 500; a share of NaN
    too, and the text "0.5" was taken as a share. A share of 4 decimals and a trailing zero is
    a share."""
    async with reader("editor-maizal") as c:
        ids = await register(c, conn)
        bad_parties = [
            feature(commune=MAIZAL, kind="household", name="a\x00b"),
            feature(commune=MAIZAL, kind="household", name="a\ud800b"),
        ]
        for body in bad_parties:  # json.dumps writes the surrogate as \ud800, as a client may
            r = await c.post(
                "/collections/parties/items",
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                params={"lang": "es"},
            )
            assert r.status_code == 422 and "carácter NUL" in r.json()["detail"], r.text
        r = await c.patch(
            f"/collections/parties/items/{ids['party']}",
            json={"properties": {"contact": "x\x00"}},
        )
        assert r.status_code == 422 and "NUL character" in r.json()["detail"], r.text
        p = await parcel(conn, "EM-P018")
        for props, says in (
            ({"note": "n\x00", "share": 1}, "NUL character"),
            ({"share": float("nan")}, "is not a share"),
            ({"share": "0.5"}, "is not a share"),
            # stored to 4 decimals: 0.123456 was kept as 0.1235 without a word, and 0.00004
            # was the database's own refusal
            ({"share": 0.123456}, "more than 4 decimals: a share is kept to 4 (0.1235)"),
            ({"share": 0.00004}, "0.00004 has more than 4 decimals: a share is kept to 4"),
            # rounded as the database would (half up), not to even
            ({"share": 0.12345}, "0.12345 has more than 4 decimals: a share is kept to 4 (0.1235)"),
        ):
            body = feature(parcel=p, party=ids["party"], kind="lease", status="claimed", **props)
            r = await c.post(
                "/collections/rights/items",
                content=json.dumps(body).encode(),  # NaN as JSON's extension writes it
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code in (400, 422) and says in r.json()["detail"], (props, r.text)
        body = feature(parcel=p, party=ids["party"], kind="lease", status="claimed", share=0.12340)
        r = await c.post("/collections/rights/items", json=body)
        assert r.status_code == 201, r.text
        r = await c.get(f"/collections/rights/items/{r.json()['ids'][0]}")
        assert r.json()["properties"]["share"] == 0.1234, r.text
        r = await c.post(
            "/documents",
            data={"title": "a\x00b", "parcel": str(ids["parcel"])},
            files={"file": ("casa.jpg", jpeg(), "image/jpeg")},
        )
        assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text


def test_two_rights_deleted_at_once_leave_the_tenure_they_found(own_db: str) -> None:
    """Found from outside: two rights of one parcel deleted at the same moment each applied
    the rule while the other was still there, and the parcel stayed regularizing with no
    right at all. The second now waits for the first and reads the rights it left."""

    async def run() -> tuple[str, list]:
        async with await AsyncConnection.connect(own_db, autocommit=True) as setup:
            p = await parcel(setup, "EM-P008")
            a, b = await add_party(setup, "A (ficticia)"), await add_party(setup, "B (ficticia)")
            ra = await add_right(setup, p, a, status="granted", share=0.5)
            rb = await add_right(setup, p, b, share=0.5)
            assert await tenure(setup, p) == "regularized"
            one = await AsyncConnection.connect(own_db)
            two = await AsyncConnection.connect(own_db)
            try:
                await one.execute("DELETE FROM rights WHERE id = %s", (ra,))
                # the second delete waits for the first's lock on the parcel
                second = asyncio.create_task(two.execute("DELETE FROM rights WHERE id = %s", (rb,)))
                await asyncio.sleep(0.5)
                assert not second.done()
                await one.commit()
                await second
                await two.commit()
            finally:
                await one.close()
                await two.close()
            cur = await setup.execute(
                "SELECT from_status, to_status FROM parcel_tenure_history(ARRAY[%s]) "
                "ORDER BY history_id",
                (p,),
            )
            return await tenure(setup, p), (await cur.fetchall())[-3:]

    found, moves = asyncio.run(run())
    assert found == "occupied", moves


async def test_land_records_on_a_layers_routes_say_what_they_are(reader: Callable) -> None:
    """Found from outside: an export, import or tile of parties or rights said "no
    collection named 'parties'" of what /collections lists, and a PUT of one (land records
    take PATCH) reached a layer's route to say the same."""
    async with reader("admin") as c:
        for kind in ("parties", "rights"):
            for method, path in (
                ("GET", f"/collections/{kind}/export"),
                ("POST", f"/collections/{kind}/import"),
                ("GET", f"/tiles/{kind}/0/0/0.pbf"),
            ):
                r = await c.request(method, path)
                assert r.status_code == 404, (path, r.text)
                assert f"/collections/{kind}/items" in r.json()["detail"], (path, r.text)
                assert "no collection named" not in r.json()["detail"]
            r = await c.put(f"/collections/{kind}/items/1", json={})
            assert r.status_code == 405, r.text
            assert "PATCH" in r.headers["allow"] and "PUT" not in r.headers["allow"]
        r = await c.get("/collections/nowhere/export")
        assert r.status_code == 404 and "no collection named 'nowhere'" in r.json()["detail"]


async def test_a_title_recorded_with_a_note_is_the_history_s_note(
    conn: AsyncConnection, reader: Callable
) -> None:
    """Found from outside: land records refused ?note=, so the change a title makes (its
    parcel regularized, by the tenure rule) could never carry its file number, the README's
    own example. A right's write says why as a feature's does."""
    p = await parcel(conn, "EM-P008")
    await conn.execute("UPDATE parcels SET tenure = 'occupied' WHERE id = %s", (p,))
    note = "Título INTi 2026-114"
    async with reader("editor-maizal") as c:
        r = await c.post(
            "/collections/parties/items",
            json=feature(commune=MAIZAL, kind="household", name=NAME),
            params={"note": "censo"},
        )
        assert r.status_code == 201, r.text
        party = r.json()["ids"][0]
        right = feature(parcel=p, party=party, kind="title", status="granted", share=1)
        r = await c.post("/collections/rights/items", json=right, params={"note": note})
        assert r.status_code == 201, r.text
        history = (await c.get(f"/collections/parcels/items/{p}/history")).json()["history"]
        assert (history[-1]["to_status"], history[-1]["note"]) == ("regularized", note), history
        r = await c.delete(f"/collections/rights/items/{r.json()['ids'][0]}", params={"note": "x"})
        assert r.status_code == 204, r.text
    cur = await conn.execute(
        "SELECT reason FROM audit_log WHERE layer IN ('parties', 'rights') ORDER BY id DESC LIMIT 3"
    )
    assert [row[0] for row in await cur.fetchall()] == ["x", note, "censo"]
