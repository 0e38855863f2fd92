"""Commune views: the breakdown of a commune across the states it touches, and the national
view of every commune at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from geo_comuna.api.deps import Commune, Conn, ReaderAccess
from geo_comuna.features import breakdown

router = APIRouter(tags=["communes"])


@router.get("/communes/{commune}/states", summary="A commune across state lines")
async def commune_states(conn: Conn, commune: Commune, access: ReaderAccess) -> dict[str, Any]:
    """For every state the commune touches: area (ha, geodesic), share of the commune (%),
    and the parcels (by a point on their surface), dwellings and residents inside it
    (for a reader outside the commune, residents are null where a part has too few homes
    to show them: docs/security.md, "What is public")."""
    return (await breakdown.communes(conn, [commune], access))[0]


@router.get("/states/breakdown", summary="Every commune across state lines")
async def national_breakdown(conn: Conn, access: ReaderAccess) -> dict[str, Any]:
    """The same breakdown for all communes, and per state the communes it hosts."""
    rows = await breakdown.communes(conn, None, access)
    return {"communes": rows, "states": breakdown.by_state(rows)}
