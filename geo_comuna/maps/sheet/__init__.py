"""The parcel sheet: a printable A4 page per parcel (Spanish, or English) with its map, area and
perimeter, the table of its vertices in REGVEN / UTM of its zone, its boundaries by side
(linderos), its tenure history, its holders, rights and documents as far as the reader may
see them, and a QR code back to its record.

reads.py gathers a batch in a fixed number of statements (the parcels and all around them in
one, their histories in one, then the records provider once per parcel); linderos.py numbers
the vertices and names each side's neighbour; plan.py draws the map and document.py lays the
page out, both pure, so a served sheet renders off the event loop.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import User
from geo_comuna.errors import NotFound, Said
from geo_comuna.layers.model import PG_INTEGER
from geo_comuna.maps.sheet import document, reads
from geo_comuna.maps.sheet.records import NO_RECORDS, RecordsProvider
from geo_comuna.maps.sheet.records import registered as REGISTERED

__all__ = [
    "NO_RECORDS",
    "REGISTERED",
    "RecordsProvider",
    "commune_sheets",
    "parcel_sheet",
    "record_url",
]


def record_url(base: str, parcel_id: int) -> str:
    """The parcel's record in the API, which the QR code points to."""
    return f"{base}/collections/parcels/items/{parcel_id}"


async def parcel_sheet(
    conn: AsyncConnection,
    parcel_id: int,
    user: User | None,
    lang: str,
    base: str,
    provider: RecordsProvider = REGISTERED,
) -> tuple[str | None, bytes]:
    """The parcel's code and its sheet (PDF), as ``user`` may read it (None: anyone).
    NotFound when there is no such parcel, as for the parcel itself."""
    lo, hi = PG_INTEGER
    found = await reads.load(conn, [parcel_id], user, provider) if lo <= parcel_id <= hi else []
    if not found:
        raise NotFound(
            Said(f"no feature {parcel_id}", f"no existe la entidad {parcel_id}"), layer="parcels"
        )
    sheet = found[0]
    pdf = await work.cpu(document.sheet_pdf, sheet, lang, record_url(base, parcel_id))
    return sheet.code, pdf


#: parcels read (one statement) and written before the next ones are read
BATCH = 200


def listed(sheet: reads.ParcelSheet) -> reads.ParcelSheet:
    """The sheet as the index lists it: its code, tenure and area, without what only its own
    page draws (its shape, neighbours, history...)."""
    return dataclasses.replace(
        sheet, shape={}, neighbours=[], roads=[], commune_line=None, vertices=[], sides=[],
        linderos=[], history=[], records={}, overlaps=[],
    )  # fmt: skip


def file_name(code: str | None, parcel_id: int, taken: set[str]) -> str:
    """A safe file name for a parcel's sheet: its code with anything but letters, digits,
    ``.``, ``_`` and ``-`` replaced (a code is anyone's text: "../x" must not climb out of the
    folder), its id added when that leaves nothing or repeats a name already given."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", code or "").strip("._")
    if not stem or stem.lower() in taken:
        stem = f"{stem}-{parcel_id}" if stem else f"parcel-{parcel_id}"
    # ... until it is free: found from outside, codes "A_B", "A B" and "A B-189" (id 189)
    # gave two sheets one file, the first overwritten and the index naming it twice
    free, n = stem, 1
    while free.lower() in taken:
        n += 1
        free = f"{stem}-{n}"
    taken.add(free.lower())
    return f"{free}.pdf"


async def commune_sheets(
    conn: AsyncConnection,
    commune_id: int,
    title: str,
    user: User | None,
    lang: str,
    base: str,
    out: Path,
    provider: RecordsProvider = REGISTERED,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """One sheet per parcel of the commune in the folder ``out`` (made if missing), and
    ``index.pdf`` listing them; the files written, the index last. The parcels are read and
    their sheets written BATCH at a time: found from outside, 10,000 parcels read at once
    outgrew the statement timeout (30 s) and held ~5 GB before the first sheet was written.
    The index keeps what it lists of each (its code, tenure and area), not the sheet."""
    out.mkdir(parents=True, exist_ok=True)
    ids = await reads.commune_parcels(conn, commune_id)
    progress(Said(f"sheets of {len(ids)} parcels", f"fichas de {len(ids)} parcelas"))
    written: list[Path] = []
    named: list[tuple[reads.ParcelSheet, str]] = []
    taken: set[str] = {"index"}
    step = max(1, len(ids) // 10)
    done = 0
    for start in range(0, len(ids), BATCH):
        for sheet in await reads.load(conn, ids[start : start + BATCH], user, provider):
            name = file_name(sheet.code, sheet.id, taken)
            path = out / name
            path.write_bytes(document.sheet_pdf(sheet, lang, record_url(base, sheet.id)))
            written.append(path)
            named.append((listed(sheet), name))
            done += 1
            if done % step == 0 or done == len(ids):
                progress(Said(f"{done}/{len(ids)} sheets", f"{done}/{len(ids)} fichas"))
    index = out / "index.pdf"
    index.write_bytes(document.index_pdf(named, title, lang))
    written.append(index)
    return written
