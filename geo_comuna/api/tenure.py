"""The land records over HTTP: parties and rights as OGC API - Features collections (reads
and Part 4 writes with tokens, ETags and If-Match, audited by the database), source documents
(upload, description, download), and a parcel's records as its reader may see them.

What a reader sees of personal data is decided in PostgreSQL (tenure/records.py); every
response here depends on who asks, so none goes to a shared cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from geo_comuna.accounts import User
from geo_comuna.api.deps import (
    Commune,
    CommuneFilter,
    Conn,
    IfMatch,
    Lang,
    Reader,
    SettingsDep,
    Writer,
    base_url,
)
from geo_comuna.api.methods import allow
from geo_comuna.errors import TooLarge
from geo_comuna.layers.tenure import COLLECTIONS
from geo_comuna.tenure import documents, edit, records

router = APIRouter(tags=["land records"])
GEOJSON = "application/geo+json"
PRIVATE = "private, no-cache"
Limit = Annotated[int, Query(ge=1, le=10_000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=100_000_000)]


def _json(body: Any, status: int = 200, etag: str | None = None, media: str = GEOJSON) -> Response:
    headers = {"Cache-Control": PRIVATE}
    if etag:
        headers["ETag"] = etag
    return Response(json.dumps(body, default=str), status, headers, media_type=media)


def _etag(version: str, user: User | None) -> str:
    """A record's ETag: its row version, then who reads. Their role counts, not only their
    communes (Access.key): a viewer and an editor of one commune see different records."""
    who = None if user is None else (user.role, sorted(set(user.communes)))
    reader = hashlib.sha256(repr(who).encode()).hexdigest()[:12]
    return f'"{version}.{reader}"'


def _collection(kind: str, base: str, lang: str) -> dict[str, Any]:
    title, description = COLLECTIONS[kind]
    href = f"{base}/collections/{kind}"
    return {
        "id": kind,
        "title": title.get(lang),
        "description": description.get(lang),
        "itemType": "feature",
        "links": [
            {"href": href, "rel": "self", "type": "application/json"},
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON},
        ],
    }


@router.get("/collections/parties", summary="The parties' collection")
async def parties_collection(request: Request, settings: SettingsDep, lang: Lang = "es") -> Any:
    return _collection("parties", base_url(request, settings), lang)


@router.get("/collections/rights", summary="The rights' collection")
async def rights_collection(request: Request, settings: SettingsDep, lang: Lang = "es") -> Any:
    return _collection("rights", base_url(request, settings), lang)


@router.get("/collections/parties/items", summary="Parties (personal data only for their editors)")
async def party_items(
    conn: Conn, user: Reader, commune: CommuneFilter, limit: Limit = 100, offset: Offset = 0
) -> Response:
    """Every party with its kind, commune and id; its name, cédula/RIF and contact only for
    editors and admins of its commune."""
    page = await records.parties(conn, user, commune_id=commune, limit=limit, offset=offset)
    return _json(page)


@router.get("/collections/rights/items", summary="Rights and restrictions on parcels")
async def right_items(
    conn: Conn,
    user: Reader,
    commune: CommuneFilter,
    parcel: Annotated[int | None, Query(ge=1, description="parcel id")] = None,
    party: Annotated[int | None, Query(ge=1, description="party id")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Each right drawn as its parcel, with its party's id and kind; the holder's name and
    the note only for editors and admins of the parcel's commune."""
    page = await records.rights(
        conn,
        user,
        commune_id=commune,
        parcel_id=parcel,
        party_id=party,
        limit=limit,
        offset=offset,
    )
    return _json(page)


async def _one(conn: Conn, user: Reader, kind: str, feature_id: int) -> Response:
    feature, version, _ = await records.one(conn, user, kind, feature_id)
    return _json(feature, etag=_etag(version, user))


@router.get("/collections/parties/items/{feature_id}", summary="One party")
async def party_item(conn: Conn, user: Reader, feature_id: int) -> Response:
    return await _one(conn, user, "parties", feature_id)


@router.get("/collections/rights/items/{feature_id}", summary="One right")
async def right_item(conn: Conn, user: Reader, feature_id: int) -> Response:
    return await _one(conn, user, "rights", feature_id)


async def _create(request: Request, settings: Any, conn: Conn, user: Writer, kind: str) -> Response:
    new_id, version = await edit.create(conn, kind, await request.body(), user)
    location = f"{base_url(request, settings)}/collections/{kind}/items/{new_id}"
    body = {"ids": [new_id]}
    response = _json(body, 201, _etag(version, user), "application/json")
    response.headers["Location"] = location
    return response


@router.post("/collections/parties/items", status_code=201, summary="Register a party")
async def create_party(request: Request, settings: SettingsDep, conn: Conn, user: Writer) -> Any:
    return await _create(request, settings, conn, user, "parties")


@router.post("/collections/rights/items", status_code=201, summary="Record a right")
async def create_right(request: Request, settings: SettingsDep, conn: Conn, user: Writer) -> Any:
    return await _create(request, settings, conn, user, "rights")


async def _patch(
    request: Request, conn: Conn, user: Writer, if_match: IfMatch, kind: str, feature_id: int
) -> Response:
    version = await edit.patch(
        conn, kind, feature_id, await request.body(), user, if_match=if_match
    )
    return _json({"ids": [feature_id]}, 200, _etag(version, user), "application/json")


@router.patch("/collections/parties/items/{feature_id}", summary="Change a party")
async def patch_party(
    request: Request, conn: Conn, user: Writer, if_match: IfMatch, feature_id: int
) -> Response:
    return await _patch(request, conn, user, if_match, "parties", feature_id)


@router.patch("/collections/rights/items/{feature_id}", summary="Change a right")
async def patch_right(
    request: Request, conn: Conn, user: Writer, if_match: IfMatch, feature_id: int
) -> Response:
    return await _patch(request, conn, user, if_match, "rights", feature_id)


@router.delete("/collections/parties/items/{feature_id}", status_code=204, summary="Delete a party")
async def delete_party(conn: Conn, user: Writer, if_match: IfMatch, feature_id: int) -> Response:
    await edit.remove(conn, "parties", feature_id, user, if_match=if_match)
    return Response(status_code=204)


@router.delete("/collections/rights/items/{feature_id}", status_code=204, summary="Delete a right")
async def delete_right(conn: Conn, user: Writer, if_match: IfMatch, feature_id: int) -> Response:
    await edit.remove(conn, "rights", feature_id, user, if_match=if_match)
    return Response(status_code=204)


def _items_allow(user: User | None) -> Response:
    """POST for editors and admins (an editor within their communes)."""
    writes = {"POST"} if user is not None and user.may_write else set()
    return Response(status_code=204, headers={"Allow": allow({"GET", *writes})})


async def _item_allow(conn: Conn, kind: str, user: User | None, feature_id: int) -> Response:
    """PATCH and DELETE where the token may write this record: admins, and editors of its
    commune (a right's: its parcel's)."""
    _, _, commune_id = await records.one(conn, user, kind, feature_id)
    mine = user is not None and (
        user.role == "admin" or (user.role == "editor" and commune_id in user.communes)
    )
    writes = {"PATCH", "DELETE"} if mine else set()
    return Response(status_code=204, headers={"Allow": allow({"GET", *writes})})


# one route per collection: a path parameter would also catch the layers' OPTIONS
@router.options("/collections/parties/items", status_code=204, summary="What this token may do")
async def party_items_options(user: Reader) -> Response:
    return _items_allow(user)


@router.options("/collections/rights/items", status_code=204, summary="What this token may do")
async def right_items_options(user: Reader) -> Response:
    return _items_allow(user)


@router.options(
    "/collections/parties/items/{feature_id}", status_code=204, summary="What this token may do"
)
async def party_item_options(conn: Conn, user: Reader, feature_id: int) -> Response:
    return await _item_allow(conn, "parties", user, feature_id)


@router.options(
    "/collections/rights/items/{feature_id}", status_code=204, summary="What this token may do"
)
async def right_item_options(conn: Conn, user: Reader, feature_id: int) -> Response:
    return await _item_allow(conn, "rights", user, feature_id)


@router.post("/documents", status_code=201, summary="Upload a source document (PDF, JPEG, PNG)")
async def upload_document(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    user: Writer,
    file: Annotated[UploadFile, File(description="the scan or photo")],
    title: Annotated[str, Form(max_length=300)],
    party: Annotated[int | None, Form(ge=1)] = None,
    right: Annotated[int | None, Form(ge=1)] = None,
    parcel: Annotated[int | None, Form(ge=1)] = None,
) -> Response:
    """Attach a document to one party, right or parcel. Its type comes from its bytes; a
    name that says another type is refused (415). Photos' EXIF GPS position is kept."""
    limit = settings.max_document_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{file.filename or 'the document'}: over the limit of {limit} bytes")
    stored = await documents.upload(
        conn,
        user,
        data,
        filename=file.filename,
        title=title,
        attached_to={"party": party, "right": right, "parcel": parcel},
        limit=limit,
    )
    response = _json(stored, 201, media="application/json")
    response.headers["Location"] = f"{base_url(request, settings)}/documents/{stored['id']}"
    return response


@router.get("/documents/{document_id}", summary="A document's description")
async def document(conn: Conn, user: Reader, document_id: int) -> Response:
    return _json(await records.document(conn, user, document_id), media="application/json")


@router.get("/documents/{document_id}/content", summary="Download a document")
async def document_content(conn: Conn, user: Reader, document_id: int) -> Response:
    """The stored bytes, for editors and admins of its commune; 404 for anyone else."""
    data, media, filename = await records.document_file(conn, user, document_id)
    name = filename or f"document-{document_id}"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return Response(
        data,
        media_type=media,
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/collections/parcels/items/{feature_id}/records", summary="A parcel's land records")
async def parcel_records(conn: Conn, user: Reader, feature_id: int) -> Response:
    """Holders, rights and documents of one parcel, as far as the reader may see them."""
    return _json(await records.parcel_records(conn, feature_id, user), media="application/json")


@router.get("/communes/{commune}/documents", summary="Positions of a commune's photos")
async def commune_photos(conn: Conn, user: Reader, commune: Commune) -> Response:
    """The photos with a GPS position, as GeoJSON points, for those who may read them."""
    return _json(await records.photo_positions(conn, user, commune))
