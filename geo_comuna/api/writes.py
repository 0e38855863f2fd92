"""OGC API - Features Part 4 writes: create, replace, update and delete features of any
registry layer, all or nothing (features/edit.py validates and writes; the database's
row-level security decides what an editor may touch).

Bodies are read raw and parsed by the service, so a request parses the same way as a file
import. What the caller's token may do is answered by ``OPTIONS`` (api/editing.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from psycopg import AsyncConnection

from geo_comuna.accounts import User
from geo_comuna.api.deps import (
    LANGS,
    ChangeNote,
    Conditions,
    Conn,
    ContentCrs,
    LayerDep,
    SettingsDep,
    Writer,
)
from geo_comuna.api.hosts import base_url
from geo_comuna.features import edit
from geo_comuna.features.crs import Crs
from geo_comuna.layers import Layer
from geo_comuna.preconditions import Preconditions
from geo_comuna.settings import Settings

router = APIRouter()
Repair = Annotated[
    bool, Query(description="make invalid geometries valid (ST_MakeValid) and report each change")
]
#: coded values are taken by code or by their Spanish or English label
MessageLang = Annotated[
    str, Query(pattern=LANGS, description="language of the value labels an error lists")
]


async def _body(request: Request) -> bytes:
    return await request.body()


def _connection_commune(request: Request) -> str | None:
    """The ``commune`` of the client's connection URL (api/parameters.py), which an editor's
    QGIS sends with its writes too: it was taken and ignored, so a new feature without a
    commune was refused as naming none, and one naming another commune passed."""
    return request.query_params.get("commune") or None


def _written(written: edit.Written, status: int, location: str | None = None) -> Response:
    headers = {"Location": location} if location else {}
    if written.etag:
        headers["ETag"] = written.etag
    if written.repairs:
        headers["X-Geo-Comuna-Repairs"] = str(len(written.repairs))
    body = {"ids": written.ids, "repairs": written.repairs}
    return Response(
        json.dumps(body, default=str),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


@router.post(
    "/collections/{collection_id}/items",
    status_code=201,
    summary="Add a Feature or a FeatureCollection (all or nothing)",
)
async def create_items(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    layer: LayerDep,
    user: Writer,
    body_crs: ContentCrs,
    repair: Repair = False,
    lang: MessageLang = "es",
    note: ChangeNote = None,
) -> Response:
    written = await edit.create(
        conn, layer, await _body(request), settings, user, repair=repair, lang=lang, crs=body_crs,
        commune=_connection_commune(request), note=note,
    )  # fmt: skip
    base = base_url(request, settings)
    location = (
        f"{base}/collections/{layer.name}/items/{written.ids[0]}" if len(written.ids) == 1 else None
    )
    return _written(written, 201, location)


async def _change(
    change: Callable[..., Awaitable[Any]],
    request: Request,
    settings: Settings,
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    user: User,
    conditions: Preconditions,
    repair: bool,
    lang: str,
    body_crs: Crs,
    note: str | None,
) -> Response:
    """PUT and PATCH: the body read, changed as ``change`` does it, answered alike."""
    body = await _body(request)
    written = await change(
        conn, layer, feature_id, body, settings, user,
        repair=repair, conditions=conditions, lang=lang, crs=body_crs,
        commune=_connection_commune(request), note=note,
    )  # fmt: skip
    return _written(written, 200)


@router.put(
    "/collections/{collection_id:not_tenure}/items/{feature_id}", summary="Replace a feature"
)
async def replace_item(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    layer: LayerDep,
    feature_id: int,
    user: Writer,
    conditions: Conditions,
    body_crs: ContentCrs,
    repair: Repair = False,
    lang: MessageLang = "es",
    note: ChangeNote = None,
) -> Response:
    return await _change(
        edit.replace, request, settings, conn, layer, feature_id, user, conditions, repair, lang,
        body_crs, note,
    )  # fmt: skip


@router.patch(
    "/collections/{collection_id}/items/{feature_id}",
    summary="Change some properties or the geometry of a feature",
)
async def patch_item(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    layer: LayerDep,
    feature_id: int,
    user: Writer,
    conditions: Conditions,
    body_crs: ContentCrs,
    repair: Repair = False,
    lang: MessageLang = "es",
    note: ChangeNote = None,
) -> Response:
    return await _change(
        edit.patch, request, settings, conn, layer, feature_id, user, conditions, repair, lang,
        body_crs, note,
    )  # fmt: skip


@router.delete(
    "/collections/{collection_id}/items/{feature_id}", status_code=204, summary="Delete a feature"
)
async def delete_item(
    conn: Conn,
    layer: LayerDep,
    feature_id: int,
    user: Writer,
    conditions: Conditions,
    note: ChangeNote = None,
) -> Response:
    await edit.remove(conn, layer, feature_id, user, conditions=conditions, note=note)
    return Response(status_code=204)
