"""Who changed what: the audit trail (admins) and each parcel's tenure history (public; its
notes follow the parcels' read rule)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from geo_comuna.api.deps import Admin, Conn, ReaderAccess, SettingsDep
from geo_comuna.api.hosts import base_url
from geo_comuna.api.negotiation import asked_lang
from geo_comuna.errors import NotFound, Said, said
from geo_comuna.features import audit
from geo_comuna.layers import get_layer

router = APIRouter(tags=["audit"])
#: audited tables that are not feature layers (rasters, migration 0009; the land records,
#: migration 0021)
AUDITED_TABLES = {"dems", "parties", "rights", "documents"}


@router.get("/audit", summary="The audit trail (admins)")
async def audit_trail(
    conn: Conn,
    user: Admin,
    layer: Annotated[str | None, Query(description="layer name")] = None,
    id: Annotated[int | None, Query(description="feature id")] = None,  # noqa: A002
    since: Annotated[dt.datetime | None, Query(description="ISO 8601 timestamp")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """Every write, newest first: who, when, layer and which features. Updates and deletes are
    one entry per feature, with the feature before and after as GeoJSON. An INSERT statement
    (a whole import; each feature of a POST) is one entry giving its count (`features`) and
    ids as inclusive `[first, last]` pairs (`ids`), with no before/after: the inserted feature
    is the row itself until an update or delete records it. A DEM upload (`layer=dems`) is one
    entry with the raster's description and footprint as `after`. `id` finds both kinds."""
    if layer is not None and layer not in AUDITED_TABLES:
        get_layer(layer)  # names the known layers in its 404
    rows = await audit.entries(conn, layer=layer, feature_id=id, since=since, limit=limit)
    return {"entries": rows}


@router.get("/collections/parcels/items/{feature_id}/history", summary="A parcel's tenure history")
async def parcel_history(
    request: Request, settings: SettingsDep, conn: Conn, feature_id: int, access: ReaderAccess
) -> dict[str, Any]:
    """Every tenure change, oldest first; a change's note is null except for the users of the
    parcel's commune and admins. A change the tenure rule made (``by_rule``) names the right
    whose change made it (``right``), what was done to it (``event``: recorded, changed,
    deleted) and says why (``cause``, in the language asked: ``?lang=es``)."""
    rows = await audit.tenure_history(conn, feature_id, access)
    lang = asked_lang(request)
    if not rows:
        raise NotFound(
            Said(
                f"no parcel {feature_id} and no history for it",
                f"no existe la parcela {feature_id} ni historial de ella",
            ),
            layer="parcels",
        )
    return {
        "parcel": feature_id,
        "history": [_change(row, lang) for row in rows],
        "audit": f"{base_url(request, settings)}/audit?layer=parcels&id={feature_id}",
    }


def _change(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """One change as the history gives it: the rule's cause in words, its right by id."""
    cause = audit.rule_cause(row)
    return {
        "from_status": row["from_status"],
        "to_status": row["to_status"],
        "changed_at": row["changed_at"],
        "note": row["note"],
        "by_rule": row["by_rule"],
        "right": row["rule_right"],
        "event": row["rule_event"],  # what was done to that right: recorded, changed, deleted
        "cause": None if cause is None else said(cause, lang),
    }
