"""All a batch of sheets reads: the parcels, what lies around them and how each side runs (one
statement, maps/sql/sheet_parcels.sql), their tenure histories (one more), and each parcel's
holders, rights and documents from the records provider (maps/sheet/records.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from geo_comuna.accounts import Access, User
from geo_comuna.analysis.land_recovery.params import Params as LandRecoveryParams
from geo_comuna.features.query import readable
from geo_comuna.layers import get_layer
from geo_comuna.maps.sheet import records as records_
from geo_comuna.maps.sheet.linderos import Lindero, Side, Vertex, linderos, number

SHEET_SQL = files("geo_comuna.maps").joinpath("sql/sheet_parcels.sql").read_text()
#: metres within which another parcel or the commune's limit runs along a side: parcels
#: digitized from imagery are a few metres apart where they meet (the sample's are drawn 4 m
#: apart, 5 m inside their commune)
TOLERANCE_M = 6.0
#: metres within which a road's line runs along a side: the line is the road's centre, half its
#: right of way (up to 24 m) from the parcels on either side (the sample's run 8 m from them)
ROAD_TOLERANCE_M = 12.0
#: m² under which two parcels' shared ground is numerical noise, not an overlap: land
#: recovery's default (its min_conflict_area_m2), so that both name the same overlaps
OVERLAP_M2 = LandRecoveryParams().min_conflict_area_m2  # 0.1


@dataclass
class ParcelSheet:
    """What one sheet shows. Coordinates in metres of REGVEN / UTM (``srid``)."""

    id: int
    code: str | None
    tenure: str
    land_use: str | None
    recovered_on: dt.date | None
    srid: int  # 2201, 2202, 2203: zones 18N, 19N, 20N
    commune_code: str | None
    commune_name: str | None
    area_ha: float  # geodesic, WGS 84
    perimeter_m: float  # geodesic, WGS 84
    shape: dict[str, Any]  # GeoJSON MultiPolygon, clockwise rings
    frame: tuple[float, float, float, float]  # the map's box
    neighbours: list[dict[str, Any]]  # id, code, shape (cut to the frame)
    roads: list[dict[str, Any]]  # GeoJSON lines cut to the frame
    commune_line: dict[str, Any] | None
    vertices: list[Vertex]
    sides: list[Side]
    linderos: list[Lindero]
    history: list[dict[str, Any]] = field(default_factory=list)
    records: records_.Records = field(default_factory=dict)
    #: other parcels sharing its ground: id, code, m2 (geodesic), largest first (found from
    #: outside: one 65 % inside another was listed as its neighbour, the overlap unsaid)
    overlaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def zone(self) -> int:
        return self.srid - 2183


async def commune_parcels(conn: AsyncConnection, commune_id: int) -> list[int]:
    """The commune's parcel ids, in order of code."""
    cur = await conn.execute(
        "SELECT id FROM parcels WHERE commune_id = %s ORDER BY code, id", (commune_id,)
    )
    return [row[0] for row in await cur.fetchall()]


async def load(
    conn: AsyncConnection,
    ids: list[int],
    user: User | None,
    provider: records_.RecordsProvider = records_.NO_RECORDS,
) -> list[ParcelSheet]:
    """The sheets of the parcels ``ids`` (those that exist), in order of code, as ``user``
    may read them (None: anyone)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            SHEET_SQL,
            {
                "ids": ids,
                "tol": TOLERANCE_M,
                "road_tol": ROAD_TOLERANCE_M,
                "overlap_m2": OVERLAP_M2,
            },
        )
        rows = await cur.fetchall()
    sheets = [_sheet(row) for row in rows]
    histories = await _histories(conn, [s.id for s in sheets], Access.of(user))
    for sheet in sheets:
        sheet.history = histories.get(sheet.id, [])
        sheet.records = await records_.read(provider, conn, sheet.id, user)
    return sheets


def _sheet(row: dict[str, Any]) -> ParcelSheet:
    empty = {"type": "MultiPolygon", "coordinates": []}
    vertices, sides = number(row["shape"] or empty, row["sides"] or [], TOLERANCE_M)
    return ParcelSheet(
        id=row["id"],
        code=row["code"],
        tenure=row["tenure"],
        land_use=row["land_use"],
        recovered_on=row["recovered_on"],
        srid=row["srid"],
        commune_code=row["commune_code"],
        commune_name=row["commune_name"],
        area_ha=row["area_m2"] / 10_000,
        perimeter_m=row["perimeter_m"],
        shape=row["shape"] or empty,
        frame=tuple(row["frame"]),  # type: ignore[arg-type]
        neighbours=row["neighbours"] or [],
        roads=[r for r in row["roads"] or [] if r],
        commune_line=row["commune_line"],
        vertices=vertices,
        sides=sides,
        linderos=linderos(sides),
        overlaps=row["overlapping"] or [],
    )


async def _histories(
    conn: AsyncConnection, ids: list[int], access: Access
) -> dict[int, list[dict[str, Any]]]:
    """Each parcel's tenure changes, oldest first, through parcel_tenure_history() (the one
    reader of the history). A change's note follows the parcel's notes' read rule, as in
    features/audit.py: the reader's commune's parcels only (admins: all)."""
    parcels = get_layer("parcels")
    note = sql.SQL("h.note")
    if parcels.members_only("notes"):
        note = sql.SQL("CASE WHEN {} THEN h.note END").format(readable(parcels, access))
    found: dict[int, list[dict[str, Any]]] = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT h.parcel_id, h.from_status, h.to_status, h.changed_at, {} AS note, "
                "h.by_rule, h.rule_right, h.rule_back, h.rule_event "
                "FROM parcel_tenure_history(%s::integer[]) h JOIN parcels t ON t.id = h.parcel_id "
                "ORDER BY h.parcel_id, h.changed_at, h.history_id"
            ).format(note),
            (ids,),
        )
        for row in await cur.fetchall():
            found.setdefault(row.pop("parcel_id"), []).append(row)
    return found
