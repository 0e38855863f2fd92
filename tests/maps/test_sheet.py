"""The parcel sheet (maps/sheet/), read back with pdftotext as a person would read it.

A hand-worked parcel near Sarare, laid out in REGVEN / UTM zone 19N (EPSG:2202) metres from
(E0, N0) = (481 700, 1 082 000), turned into longitude and latitude here by pyproj (not by the
code under test) and stored as any import would store it:

    P1 (0, 100)   P2 (120, 110)   P3 (125, 0)   P4 (5, -5)      T-001, clockwise

T-002 is the square (120, 110) (220, 110) (220, 0) (125, 0): it shares the side P2-P3. The
road "Sarare-Buria" runs from (-50, -9) to (200, -4), 3 to 5.5 m below the side P3-P4 (a
road's centre counts within 12 m). The commune's west limit is the line through P4 and P1.
Nothing lies north; T-002 only meets the corners 1 and 2 of the north and south sides.

Worked by hand: the northernmost vertex is P2, so clockwise the vertices are 1 = P2
(481 820, 1 082 110), 2 = P3 (481 825, 1 082 000), 3 = P4 (481 705, 1 081 995), 4 = P1
(481 700, 1 082 100). Outward normals (-dy, dx) of each side walked clockwise:
  1-2: (5, -110) -> normal (110, 5), bearing 87.4  -> east,  110.11 m, parcel T-002
  2-3: (-120, -5) -> (5, -120), 177.6              -> south, 120.10 m, the road
  3-4: (-5, 105) -> (-105, -5), 267.3              -> west,  105.12 m, the commune's limit
  4-1: (120, 10) -> (-10, 120), 355.2              -> north, 120.42 m, no neighbour
Grid area by the shoelace: 12 937.5 m²; the geodesic one is larger by about 1/k² (k = 0.9996
at 18 km from the central meridian), checked against pyproj's Geod below.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from pyproj import Geod, Transformer

from geo_comuna import accounts
from geo_comuna.maps import sheet
from geo_comuna.maps.sheet import plan, reads
from geo_comuna.settings import Settings
from tests.conftest import api_client
from tests.live import CLI, clean_env

pytestmark = pytest.mark.anyio
E0, N0 = 481_700.0, 1_082_000.0
PARCEL = [(0, 100), (120, 110), (125, 0), (5, -5)]
NEIGHBOUR = [(120, 110), (220, 110), (220, 0), (125, 0)]
ROAD = [(-50, -9), (200, -4)]
# the commune: its west edge on the line through P4 (5, -5) and P1 (0, 100), x = 5 - (y + 5) / 21
COMMUNE = [(5 + 195 / 21, -200), (5 - 305 / 21, 300), (600, 300), (600, -200)]
TO_LONLAT = Transformer.from_crs("EPSG:2202", "EPSG:4326", always_xy=True)
#: vertex number -> (easting, northing), by hand
VERTICES = {
    1: (481_820.00, 1_082_110.00),
    2: (481_825.00, 1_082_000.00),
    3: (481_705.00, 1_081_995.00),
    4: (481_700.00, 1_082_100.00),
}
PRIVATE_NOTE = "acta 17 firmada por la asamblea"


def lonlat(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [TO_LONLAT.transform(E0 + x, N0 + y) for x, y in points]


def polygon_wkt(points: list[tuple[float, float]]) -> str:
    ring = [*lonlat(points), lonlat(points)[0]]
    return "MULTIPOLYGON(((" + ",".join(f"{x!r} {y!r}" for x, y in ring) + ")))"


async def add_sarare(conn: AsyncConnection) -> dict[str, int]:
    """The commune, the two parcels and the road above; T-001's tenure changed once, with a
    note only the commune's users may read."""
    cur = await conn.execute(
        "INSERT INTO communes (code, name, kind, status, geom) "
        "VALUES ('TEST-SARARE', 'Prueba Sarare', 'rural', 'active', "
        "ST_GeomFromText(%s, 4326)) RETURNING id",
        (polygon_wkt(COMMUNE),),
    )
    commune = (await cur.fetchone())[0]
    ids = {"commune": commune}
    for code, points in (("T-001", PARCEL), ("T-002", NEIGHBOUR)):
        cur = await conn.execute(
            "INSERT INTO parcels (commune_id, code, tenure, land_use, geom) "
            "VALUES (%s, %s, 'occupied', 'crops', ST_GeomFromText(%s, 4326)) RETURNING id",
            (commune, code, polygon_wkt(points)),
        )
        ids[code] = (await cur.fetchone())[0]
    road = ",".join(f"{x!r} {y!r}" for x, y in lonlat(ROAD))
    await conn.execute(
        "INSERT INTO paths (commune_id, kind, name, geom) "
        "VALUES (%s, 'road', 'Sarare-Buría', ST_GeomFromText(%s, 4326))",
        (commune, f"LINESTRING({road})"),
    )
    await conn.execute("SELECT set_config('geo_comuna.change_note', %s, true)", (PRIVATE_NOTE,))
    await conn.execute("UPDATE parcels SET tenure = 'regularizing' WHERE id = %s", (ids["T-001"],))
    await conn.execute("SELECT set_config('geo_comuna.change_note', '', true)")
    return ids


def pdf_text(pdf: bytes, tmp_path: Path, name: str = "sheet.pdf") -> str:
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / name
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return re.sub(r"[ \t]+", " ", done.stdout)


async def get_sheet(
    conn: AsyncConnection, settings: Settings, parcel: int, token: str | None = None, **query: Any
) -> Any:
    async with api_client(conn, settings, token) as client:
        return await client.get(f"/collections/parcels/items/{parcel}/sheet.pdf", params=query)


async def test_the_hand_worked_parcel_in_spanish(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    ids = await add_sarare(conn)
    answer = await get_sheet(conn, settings, ids["T-001"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    text = pdf_text(answer.content, tmp_path)

    assert "Ficha de parcela T-001" in text
    assert "Comuna Prueba Sarare (TEST-SARARE)" in text
    assert "REGVEN / UTM zona 19N (EPSG:2202)" in text
    # numbers as Spanish writes them (decimal comma): "24.3370 ha" reads as 243,370 ha
    for number, (easting, northing) in VERTICES.items():
        written = f"{easting:.2f} {northing:.2f}".replace(".", ",")
        assert re.search(rf"\b{number} {written}\b", text), number
    assert len(re.findall(r"\b\d 48\d{4},\d\d 108\d{4},\d\d\b", text)) == 4

    assert re.search(r"Norte 4–1 120,42 sin colindante registrado", text)
    assert re.search(r"Este 1–2 110,11 parcela T-002", text)
    assert re.search(r"Sur 2–3 120,10 vía Sarare-Buría", text)
    assert re.search(r"Oeste 3–4 105,12 límite de la comuna", text)
    assert re.search(r"Generada el \d{1,2} de [a-z]+ de \d{4}", text)
    assert re.search(r"\b1:\d{1,3}\.\d{3}\b", text), text  # the scale: 1:2.400, not 1:2 400

    # area and perimeter on the spheroid, by pyproj's Geod from the stored corners
    lons, lats = zip(*lonlat(PARCEL), strict=True)
    area, perimeter = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    assert abs(abs(area) / 12_937.5 - 1) < 0.002  # the shoelace's grid area, give or take k²
    assert f"{abs(area) / 10_000:.4f} ha".replace(".", ",") in text
    assert f"{perimeter:.2f} m".replace(".", ",") in text

    # the tenure history, with the registry's labels, the first tenure's row first
    # its days spelled out as the sheet's other dates, not 2026-12-05
    # (two changes on one day with their time, in the order they were made: found from
    # outside, the sheet left it ambiguous where the page gave it)
    day, time = r"\d{1,2} de [a-z]+ de \d{4}", r"\d\d:\d\d UTC"
    assert re.search(
        rf"{day} \(inicial\) Ocupada\n {time}\n {day} Ocupada En regularización\n {time}", text
    ), text
    assert not re.search(r"\d{4}-\d\d-\d\d", text)
    # an empty section on one line (found from outside: "Documentos / sin registros" ran a
    # Spanish sheet onto a second page), and the page says how many there are
    for section in ("Titulares", "Derechos", "Documentos"):
        assert f"{section}: sin registros" in text, text
    assert "Página 1 de 1" in text
    assert f"/collections/parcels/items/{ids['T-001']}" in text  # the record the QR names


async def test_a_sheet_prints_any_languages_letters(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a code and a commune's name outside Windows-1252 (Yanomami's ɨ,
    Arabic) were printed as "?" on the sheet, the document people keep, and as black boxes
    on its plan. The sheet is set in DejaVu (embedded), and they print as written."""
    ids = await add_sarare(conn)
    await conn.execute("UPDATE communes SET name = 'Hɨmɨ Ɨnɨ' WHERE id = %s", (ids["commune"],))
    await conn.execute("UPDATE parcels SET code = 'Hɨmɨ-7' WHERE id = %s", (ids["T-001"],))
    await conn.execute("UPDATE parcels SET code = 'Ŋ-Ø' WHERE id = %s", (ids["T-002"],))
    answer = await get_sheet(conn, settings, ids["T-001"])
    assert answer.status_code == 200, answer.text
    text = pdf_text(answer.content, tmp_path)
    assert "Ficha de parcela Hɨmɨ-7" in text and "Comuna Hɨmɨ Ɨnɨ" in text, text
    assert "Ŋ-Ø" in text and "?" not in text.replace("¿", ""), text
    fonts = subprocess.run(
        ["pdffonts", str(tmp_path / "sheet.pdf")], capture_output=True, text=True, check=True
    ).stdout
    assert "DejaVuSans" in fonts, fonts  # embedded: any viewer prints them


async def test_a_sheet_says_which_parcel_shares_its_ground(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a parcel 65 % inside another was printed as its neighbour ("Oeste
    4–1: parcela EM-P027", a side running through the other's inside), the overlap unsaid on
    the document of its regularization. The sheet says it, with the area shared (geodesic,
    worked out here apart), and marks that neighbour as overlapping."""
    from shapely.geometry import Polygon

    ids = await add_sarare(conn)
    over = [(60, 50), (60, -60), (-40, -60), (-40, 50)]  # the south-west part of T-001
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, geom) "
        "VALUES (%s, 'T-003', 'disputed', ST_GeomFromText(%s, 4326)) RETURNING id",
        (ids["commune"], polygon_wkt(over)),
    )
    third = (await cur.fetchone())[0]
    shared = Polygon(lonlat(PARCEL)).intersection(Polygon(lonlat(over)))
    hectares = abs(Geod(ellps="WGS84").geometry_area_perimeter(shared)[0]) / 10_000
    assert 0.28 < hectares < 0.33  # by hand: ~60 m (x 0 to 60) by ~52 m (y -5 to 50, less a slant)
    written = f"{hectares:.4f}".replace(".", ",")

    text = pdf_text((await get_sheet(conn, settings, ids["T-001"])).content, tmp_path)
    flat = " ".join(text.split())
    assert f"Se superpone con la parcela T-003 en {written} ha" in flat, flat
    assert "parcela T-003 (se superpone)" in flat, flat
    assert "parcela T-002 (se superpone)" not in flat  # a neighbour along a side only
    english = await get_sheet(conn, settings, third, lang="en")
    flat = " ".join(pdf_text(english.content, tmp_path).split())
    assert f"Overlaps parcel T-001 by {written.replace(',', '.')} ha" in flat, flat
    alone = await get_sheet(conn, settings, ids["T-002"])
    assert "superpone" not in pdf_text(alone.content, tmp_path)


async def test_a_jagged_parcel_still_has_its_sheet(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: a parcel of 16,000 vertices gave a cell of stretches taller than
    a page, which the PDF could not lay out (a 500, and `geo-comuna sheet --commune` died on
    it). A cell lists its first stretches and counts the rest; the vertices are all listed."""
    import math

    ids = await add_sarare(conn)
    star = [
        (60 + r * math.cos(2 * math.pi * i / 2000), 50 + r * math.sin(2 * math.pi * i / 2000))
        for i, r in enumerate([10, 44] * 1000)
    ]
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, geom) "
        "VALUES (%s, 'T-STAR', 'occupied', ST_GeomFromText(%s, 4326)) RETURNING id",
        (ids["commune"], polygon_wkt(star)),
    )
    star_id = (await cur.fetchone())[0]
    r = await get_sheet(conn, settings, star_id, lang="en")
    assert r.status_code == 200, r.text[:300]
    text = pdf_text(r.content, tmp_path)
    assert "more stretches" in text, text[:2000]
    assert " 2000 " in text  # the last vertex is listed
    pages = int(re.search(r"Page 1 of (\d+)", text).group(1))
    assert pages > 1 and f"Page {pages} of {pages}" in text


def test_a_parcel_of_many_holes_labels_its_outline() -> None:
    """Found from outside: a parcel of 400 holes (1,605 vertices) had every hole's vertices
    labelled on its plan, a black mass of numbers. Past MAX_LABELLED, the outer ring's are
    labelled; the coordinates' table still lists them all."""
    from geo_comuna.maps.sheet.linderos import number

    def square(x: float, y: float, side: float, clockwise: bool) -> list[list[float]]:
        ring = [[x, y], [x, y + side], [x + side, y + side], [x + side, y], [x, y]]
        return ring if clockwise else ring[::-1]

    holes = [square(10 + 20 * i, 10 + 20 * j, 5, False) for i in range(8) for j in range(8)]
    shape = {"type": "MultiPolygon", "coordinates": [[square(0, 0, 170, True), *holes]]}
    vertices, _ = number(shape, [], 6.0)
    assert len(vertices) == 4 + 4 * 64 > plan.MAX_LABELLED
    assert sorted(plan._labelled(shape, vertices)) == [1, 2, 3, 4]
    few = {"type": "MultiPolygon", "coordinates": [[square(0, 0, 170, True), *holes[:3]]]}
    vertices, _ = number(few, [], 6.0)
    assert len(plan._labelled(few, vertices)) == 16  # all of them, when they fit


def test_sheet_file_names_never_collide() -> None:
    """Found from outside: a name taken got the parcel's id added, which could be taken too:
    "A_B", "A B" and "A B-189" (id 189) gave two sheets one file, the first overwritten."""
    taken: set[str] = {"index"}
    # in the order the sheets come (by code, C collation, no code last)
    parcels = [("A B", 190), ("A B-189", 7), ("A_B", 189), ("parcel-187", 5), (None, 187)]
    names = [sheet.file_name(code, pid, taken) for code, pid in parcels]
    assert len(set(names)) == len(names), names
    assert names == [
        "A_B.pdf", "A_B-189.pdf", "A_B-189-2.pdf", "parcel-187.pdf", "parcel-187-2.pdf"
    ], names  # fmt: skip


def test_close_vertices_share_a_label() -> None:
    assert plan.numbered([9, 8, 10, 25]) == "8–10, 25"
    assert plan.numbered([1, 25]) == "1, 25" and plan.numbered([4]) == "4"


async def test_vertices_a_few_centimetres_apart_are_numbered_once(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """Found from outside: vertices 0.1 m apart printed their numbers one over the other on
    the plan ("24" and "25" read as "2S"). Three on the south side, 10 cm apart, share one
    label, a range of three numbers; each is still a row of the vertex table."""
    ids = await add_sarare(conn)
    cluster = [(0, 100), (100, 100), (100, 0), (50.2, 0), (50.1, 0), (50, 0), (0, 0)]
    cur = await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, geom) "
        "VALUES (%s, 'T-CLOSE', 'occupied', ST_GeomFromText(%s, 4326)) RETURNING id",
        (ids["commune"], polygon_wkt(cluster)),
    )
    r = await get_sheet(conn, settings, (await cur.fetchone())[0], lang="en")
    assert r.status_code == 200, r.text[:300]
    text = pdf_text(r.content, tmp_path)
    ranges = [(int(a), int(b)) for a, b in re.findall(r"(?<![\d.,])(\d)–(\d)(?![\d.,])", text)]
    # by hand: 1 is the north-west corner (the first of the two northernmost, clockwise), so
    # the three close ones are 4, 5 and 6; the other ranges are the sides' stretches (1–2...)
    assert [r for r in ranges if r[1] - r[0] == 2] == [(4, 6)], (ranges, text[:1500])
    for n, (x, y) in enumerate(cluster, 1):  # the table lists each vertex, by hand
        assert f"{n} {E0 + x:.2f} {N0 + y:.2f}" in text, (n, text[:3000])


async def test_english_and_the_neighbour_sheet(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    ids = await add_sarare(conn)
    answer = await get_sheet(conn, settings, ids["T-001"], lang="en")
    assert answer.status_code == 200, answer.text
    text = pdf_text(answer.content, tmp_path)
    assert "Parcel sheet T-001" in text and "Ficha" not in text
    assert "REGVEN / UTM zone 19N (EPSG:2202)" in text
    assert re.search(r"\b1:\d{1,3},\d{3}\b", text), text  # the scale, grouped the English way
    assert re.search(r"North 4–1 120\.42 no registered neighbour", text)
    assert re.search(r"East 1–2 110\.11 parcel T-002", text)
    assert re.search(r"South 2–3 120\.10 road Sarare-Buría", text)
    assert re.search(r"West 3–4 105\.12 commune limit", text)
    assert re.search(
        r"\d{1,2} [A-Z][a-z]+ \d{4} \(first\) Occupied\n \d\d:\d\d UTC\n.*Occupied Regularizing",
        text,
    ), text
    assert text.count("no records registered") == 3

    # T-002's west side is T-001's east side, walked the other way: vertices (120, 110) and
    # (125, 0), numbered 1 (the northernmost, then westernmost) and 4
    other = pdf_text((await get_sheet(conn, settings, ids["T-002"], lang="en")).content, tmp_path)
    assert re.search(r"West 4–1 110\.11 parcel T-001", other)
    assert re.search(r"\b1 481820\.00 1082110\.00\b", other)


async def test_a_sheet_follows_the_browsers_language(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    ids = await add_sarare(conn)
    async with api_client(conn, settings, None) as client:
        url = f"/collections/parcels/items/{ids['T-001']}/sheet.pdf"
        answer = await client.get(url, headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert answer.status_code == 200 and "Accept-Language" in answer.headers["vary"]
    assert "filename*=UTF-8''sheet-T-001.pdf" in answer.headers["content-disposition"]
    assert "Parcel sheet T-001" in pdf_text(answer.content, tmp_path)


async def test_a_sheet_is_read_as_its_parcel_is(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    ids = await add_sarare(conn)
    async with api_client(conn, settings) as client:
        for bad in ("2000000000", "99999999999", "-1", "T-001"):  # as the parcel: 404s, 4xx
            item = await client.get(f"/collections/parcels/items/{bad}")
            answer = await client.get(f"/collections/parcels/items/{bad}/sheet.pdf")
            assert 400 <= answer.status_code < 500 and answer.status_code == item.status_code
            assert answer.headers["content-type"] == "application/problem+json"
        assert (
            await client.get("/collections/parcels/items/2000000000/sheet.pdf")
        ).status_code == 404
        wrong = await client.get(f"/collections/parcels/items/{ids['T-001']}/sheet.pdf?lang=fr")
        assert wrong.status_code == 400 and "lang" in wrong.text

    # a server whose reads need a token: no token, no sheet, as no parcel
    closed = settings.model_copy(update={"reads": "token"})
    for path in (
        f"/collections/parcels/items/{ids['T-001']}",
        f"/collections/parcels/items/{ids['T-001']}/sheet.pdf",
    ):
        async with api_client(conn, closed) as client:
            assert (await client.get(path)).status_code == 401

    # the history's note is the commune's: an outsider's sheet leaves it out
    _, outsider = await accounts.add_user(conn, "viewer-maizal", "viewer", ["EL-MAIZAL"])
    _, member = await accounts.add_user(conn, "viewer-sarare", "viewer", ["TEST-SARARE"])
    for token, shown in ((None, False), (outsider, False), (member, True)):
        answer = await get_sheet(conn, settings, ids["T-001"], token)
        assert answer.status_code == 200
        assert (PRIVATE_NOTE in pdf_text(answer.content, tmp_path)) is shown


async def register_holder(conn: AsyncConnection, commune_id: int, parcel_id: int) -> None:
    """A household claiming the parcel, with a scanned act: the registry's own tables."""
    cur = await conn.execute(
        "INSERT INTO parties (commune_id, kind, name, id_number) "
        "VALUES (%s, 'household', 'Familia Pérez Ñáñez', 'V-12345678') RETURNING id",
        (commune_id,),
    )
    party = (await cur.fetchone())[0]
    await conn.execute(
        "INSERT INTO rights (parcel_id, party_id, kind, share, status, starts_on) "
        "VALUES (%s, %s, 'occupancy_claim', 1, 'claimed', '2021-03-01')",
        (parcel_id, party),
    )
    await conn.execute("INSERT INTO document_contents VALUES (repeat('ab', 32), '\\x01')")
    await conn.execute(
        "INSERT INTO documents (sha256, media_type, size_bytes, title, parcel_id) "
        "VALUES (repeat('ab', 32), 'application/pdf', 1, 'Acta de asamblea', %s)",
        (parcel_id,),
    )


async def test_holders_rights_and_documents_come_from_the_registry(
    conn: AsyncConnection, settings: Settings, tmp_path: Path
) -> None:
    """The sheet prints the registry's records as the reader may see them: the holder's
    name and ID number, and the documents, only for an editor of the commune (PostgreSQL
    withholds them from anyone else), kinds and statuses by their labels, the document by
    title, type and checksum."""
    ids = await add_sarare(conn)
    await register_holder(conn, ids["commune"], ids["T-001"])
    _, viewer = await accounts.add_user(conn, "viewer-sarare", "viewer", ["TEST-SARARE"])
    _, editor = await accounts.add_user(conn, "editor-sarare", "editor", ["TEST-SARARE"])
    for token, personal in ((None, False), (viewer, False), (editor, True)):
        async with api_client(conn, settings, token) as c:
            answer = await c.get(f"/collections/parcels/items/{ids['T-001']}/sheet.pdf")
        assert answer.status_code == 200, answer.text
        text = pdf_text(answer.content, tmp_path)
        assert ("Familia Pérez Ñáñez" in text) is personal
        assert ("V-12345678" in text) is personal
        assert "Grupo familiar" in text and "Solicitado" in text
        assert "Solicitud por" in text and "ocupación" in text  # the cell wraps
        flat = " ".join(text.split())  # a cell may wrap
        # the right's start (a cell of the wider DejaVu may wrap its year to the next line)
        assert "1 de marzo de" in flat and "2021-03-01" not in text
        # and its end, which it has not, as the pages write it (found from outside: blank)
        assert re.search(r"1 de marzo de( 2021)? +—", text) or "2021 —" in flat, text
        assert "100 %" in text  # the right's share, not "1"
        # the holder's name where the reader may see it, said withheld where not
        assert (flat.count("Ñáñez") == 2) is personal  # in holders, and in the right (wrapped)
        assert ("(reservado a los miembros)" in text) is not personal
        assert "household" not in text and "occupancy_claim" not in text
        # the documents are the commune's editors' (and admins') to see
        assert ("Acta de asamblea" in text and "ab" * 32 in text) is personal
        assert bool(re.search(r"Título +Tipo +SHA-256", text)) is personal  # headings in Spanish


@pytest.mark.parametrize("batch", [200, 2])
async def test_a_communes_sheets_and_index(
    conn: AsyncConnection,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
) -> None:
    """Read and written a batch of parcels at a time (found from outside: 10,000 read at once
    outgrew the statement timeout and ~5 GB), in two batches as in one."""
    monkeypatch.setattr(sheet, "BATCH", batch)
    ids = await add_sarare(conn)
    # a code is anyone's text: its file stays in the folder
    await conn.execute(
        "INSERT INTO parcels (commune_id, code, tenure, geom) "
        "VALUES (%s, '../T-003', 'abandoned', ST_GeomFromText(%s, 4326))",
        (ids["commune"], polygon_wkt([(300, 300), (400, 300), (400, 200), (300, 200)])),
    )
    out = tmp_path / "sheets"
    said: list[str] = []
    written = await sheet.commune_sheets(
        conn,
        ids["commune"],
        "TEST-SARARE",
        None,
        "es",
        "https://x.example",
        out,
        progress=said.append,
    )
    assert sorted(p.name for p in written) == ["T-001.pdf", "T-002.pdf", "T-003.pdf", "index.pdf"]
    assert all(p.parent == out for p in written)
    assert said[-1] == "3/3 sheets"
    index = pdf_text((out / "index.pdf").read_bytes(), tmp_path, "index.pdf")
    assert "Índice de fichas de parcelas: TEST-SARARE" in index
    assert re.search(r"3 parcelas · \d+,\d{4} ha · Generada el \d{1,2} de [a-z]+ de", index)
    for code in ("T-001", "T-002", "../T-003"):
        assert code in index
    assert "Ficha de parcela ../T-003" in pdf_text((out / "T-003.pdf").read_bytes(), tmp_path)


def test_the_command_line(own_db: str, tmp_path: Path) -> None:
    env = clean_env(GEO_COMUNA_DATABASE_URL=own_db)
    run = subprocess.run(
        [*CLI, "sheet", "--commune", "EL-MAIZAL", "--out", str(tmp_path / "maizal")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "sheets" in run.stderr  # progress
    files = sorted((tmp_path / "maizal").iterdir())
    with psycopg.connect(own_db) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM parcels p JOIN communes c ON c.id = p.commune_id "
            "WHERE c.code = 'EL-MAIZAL'"
        ).fetchone()
    assert count > 50 and len(files) == count + 1

    one = subprocess.run(
        [
            *CLI,
            "sheet",
            "EM-P001",
            "--commune",
            "EL-MAIZAL",
            "--lang",
            "en",
            "--out",
            str(tmp_path / "one.pdf"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert one.returncode == 0, one.stderr
    assert "Parcel sheet EM-P001" in pdf_text((tmp_path / "one.pdf").read_bytes(), tmp_path)
    # with no GEO_COMUNA_PUBLIC_URL the QR points to this machine: said, not left to be found
    assert "QR codes point to http://127.0.0.1:8000" in one.stderr
    refused = subprocess.run(
        [*CLI, "sheet", "NOPE", "--commune", "EL-MAIZAL"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert refused.returncode == 2 and "no parcel with code 'NOPE'" in refused.stderr


@pytest.mark.parametrize(
    ("lon", "epsg"),
    [(-72.5, 2201), (-71.9, 2202), (-66.1, 2202), (-65.9, 2203), (-59.9, 2203)],
)
async def test_the_zone_is_the_centres(conn: AsyncConnection, lon: float, epsg: int) -> None:
    """REGVEN / UTM 18N west of 72 W, 19N to 66 W, 20N east of it (and beyond 60 W, the last
    zone REGVEN defines); the first vertex as pyproj puts it in that zone."""
    # a triangle whose apex is far the northernmost in any zone's grid
    ring = [(lon, 8.0), (lon + 0.0005, 8.002), (lon + 0.001, 8.0), (lon, 8.0)]
    wkt = "MULTIPOLYGON(((" + ",".join(f"{x!r} {y!r}" for x, y in ring) + ")))"
    cur = await conn.execute(
        "INSERT INTO parcels (code, tenure, geom) VALUES ('Z', 'occupied', "
        "ST_GeomFromText(%s, 4326)) RETURNING id",
        (wkt,),
    )
    (found,) = await reads.load(conn, [(await cur.fetchone())[0]], None)
    assert found.srid == epsg
    east, north = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(
        lon + 0.0005, 8.002
    )  # the apex: vertex 1
    first = found.vertices[0]
    assert (first.number, round(first.easting, 2), round(first.northing, 2)) == (
        1,
        round(east, 2),
        round(north, 2),
    )
