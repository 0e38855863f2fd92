"""``OPTIONS`` on items and on an item (OGC API - Features Part 4): ``Allow`` lists exactly
the methods the caller's token may use there.

QGIS (3.32 and later) offers to edit an OGC API layer only when ``OPTIONS`` on its items
names ``POST``, and on one of its items (the first of the first page it read, or
``unknown_id`` when that page was empty) ``PUT`` and ``DELETE``; with ``PATCH`` named too it
sends only what changed. So:

* items: ``GET, HEAD`` for every reader, ``POST`` for whoever may create features of the
  layer (admins; editors where the layer lets them: not communes, not states);
* an item: ``PUT, PATCH`` and ``DELETE`` as the token may change or delete that feature
  (an editor: only features of its communes);
* an id that names no feature (``unknown_id``): what the token may do to features of its
  communes, so that an editor starting on an empty layer can edit.

An editor should add the layer with ``?commune=CODE`` in its URL: QGIS then reads the first
page, and so asks about an item, from its own commune.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from geo_comuna.api.deps import Conn, LayerDep, Reader
from geo_comuna.api.methods import allow
from geo_comuna.features import permissions
from geo_comuna.layers.model import EditorAction

router = APIRouter(tags=["editing"])
#: the methods of each editing action
METHODS: dict[EditorAction, tuple[str, ...]] = {
    "create": ("POST",),
    "change": ("PUT", "PATCH"),
    "delete": ("DELETE",),
}


def _allow(actions: frozenset[EditorAction]) -> Response:
    methods = {"GET", *(m for action in actions for m in METHODS[action])}
    return Response(status_code=204, headers={"Allow": allow(methods)})


@router.options(
    "/collections/{collection_id}/items",
    status_code=204,
    summary="What this token may do to the layer's features (Allow)",
)
async def items_options(layer: LayerDep, user: Reader) -> Response:
    return _allow(permissions.on_layer(layer, user) & {"create"})


@router.options(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    summary="What this token may do to one feature (Allow)",
)
async def item_options(conn: Conn, layer: LayerDep, user: Reader, feature_id: str) -> Response:
    """``feature_id`` is any text: QGIS asks about ``unknown_id`` on an empty layer."""
    found = None
    if feature_id.isascii() and feature_id.isdigit() and len(feature_id) < 20:
        found = await permissions.on_feature(conn, layer, user, int(feature_id))
    if found is None:  # no such feature: what the token may do in its communes
        found = permissions.on_layer(layer, user) - {"create"}
    return _allow(found)
