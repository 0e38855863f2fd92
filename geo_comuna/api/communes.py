"""Commune views: the breakdown of a commune across the states it touches, and the national
view of every commune at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from geo_comuna.api.deps import Conn, ReaderAccess
from geo_comuna.features import breakdown
from geo_comuna.features.query import require_commune

router = APIRouter(tags=["communes"])
CommuneRef = Annotated[str, Path(description="commune id or registry code")]


@router.get("/communes/{commune}/states", summary="A commune across state lines")
async def commune_states(conn: Conn, commune: CommuneRef, access: ReaderAccess) -> dict[str, Any]:
    """For every state the commune touches: area (ha, geodesic), share of the commune (%),
    and the parcels (by a point on their surface), dwellings and residents inside it
    (for a reader outside the commune, residents are null where a part has too few homes
    to show them: docs/security.md, "What is public")."""
    commune_id = await require_commune(conn, commune)
    return (await breakdown.communes(conn, [commune_id], access))[0]


@router.get("/states/breakdown", summary="Every commune across state lines")
async def national_breakdown(conn: Conn, access: ReaderAccess) -> dict[str, Any]:
    """The same breakdown for all communes, and per state the communes it hosts."""
    rows = await breakdown.communes(conn, None, access)
    return {"communes": rows, "states": breakdown.by_state(rows)}
