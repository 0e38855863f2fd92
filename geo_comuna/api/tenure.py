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
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from psycopg import sql

from geo_comuna.accounts import User
from geo_comuna.api import tenure_meta
from geo_comuna.api.deps import (
    ChangeNote,
    Commune,
    CommuneFilter,
    Conditions,
    Conn,
    CrsDep,
    Lang,
    Paging,
    Reader,
    SettingsDep,
    Writer,
    only_form_fields,
    parse_bbox,
)
from geo_comuna.api.etags import fresh, not_modified, shown_as
from geo_comuna.api.hosts import base_url
from geo_comuna.api.methods import allow
from geo_comuna.api.negotiation import page_lang, wants_html
from geo_comuna.api.pages import HTML_CONTENT, PageLang, html
from geo_comuna.api.schema import SCHEMA_RESPONSE, as_geojson_feature, schema_response
from geo_comuna.errors import InvalidInput, Said, TooLarge
from geo_comuna.features import crs
from geo_comuna.layers.model import Domain
from geo_comuna.layers.tenure import PARTY_KIND, RIGHT_KIND, RIGHT_STATUS
from geo_comuna.maps import pages
from geo_comuna.maps.styles import Styles
from geo_comuna.tenure import documents, edit, records

router = APIRouter(tags=["land records"])
GEOJSON = "application/geo+json"
PRIVATE = "private, no-cache"


def _json(body: Any, status: int = 200, etag: str | None = None, media: str = GEOJSON) -> Response:
    headers = {"Cache-Control": PRIVATE}
    if etag:
        headers["ETag"] = etag
    return Response(json.dumps(body, default=str), status, headers, media_type=media)


def _private(response: Response) -> Response:
    """What a record shows depends on who reads (personal fields): no shared cache keeps it."""
    response.headers["Cache-Control"] = PRIVATE
    return response


def _etag(version: str, user: User | None, shown: str = "") -> str:
    """A record's ETag: its row version, then who reads. Their role counts, not only their
    communes (Access.key): a viewer and an editor of one commune see different records.
    ``shown``: its page's language (etags.shown_as; found from outside: a record's page had
    no ETag, and was taken whole at every visit), "" for its JSON."""
    who = None if user is None else (user.role, sorted(set(user.communes)))
    reader = hashlib.sha256(repr((who, shown) if shown else who).encode()).hexdigest()[:12]
    return f'"{version}.{reader}"'


async def collection_doc(conn: Conn, kind: str, base: str, lang: str) -> dict[str, Any]:
    """The collection document of parties or rights (api/tenure_meta.py), as listed in
    ``GET /collections`` too."""
    extent = await records.rights_extent(conn) if kind == "rights" else None
    return tenure_meta.collection(kind, base, lang, extent)


#: a document as JSON, or as a page for people (api/pages.py)
JSON_OR_HTML = {200: {"content": {"application/json": {}, **HTML_CONTENT}}}
#: features as GeoJSON, or as a page for people
GEOJSON_OR_HTML = {200: {"content": {GEOJSON: {}, **HTML_CONTENT}, "description": "Features"}}


async def _collection(request: Request, settings: Any, conn: Conn, kind: str, lang: str) -> Any:
    base = base_url(request, settings)
    if wants_html(request):
        chosen = page_lang(request)
        return html(pages.collection(base, chosen, await collection_doc(conn, kind, base, chosen)))
    return await collection_doc(conn, kind, base, lang)


@router.get(
    "/collections/parties",
    summary="The parties' collection (no geometry)",
    responses=JSON_OR_HTML,
)
async def parties_collection(
    request: Request, settings: SettingsDep, conn: Conn, lang: Lang = "es"
) -> Any:
    return await _collection(request, settings, conn, "parties", lang)


@router.get(
    "/collections/rights",
    summary="The rights' collection (drawn as their parcels)",
    responses=JSON_OR_HTML,
)
async def rights_collection(
    request: Request, settings: SettingsDep, conn: Conn, lang: Lang = "es"
) -> Any:
    return await _collection(request, settings, conn, "rights", lang)


def _schema_response(body: dict[str, Any]) -> Response:
    return schema_response(body, {"Cache-Control": PRIVATE})


@router.get(
    "/collections/parties/queryables",
    summary="What parties may be filtered by (never a name or an ID number)",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def parties_queryables(request: Request, settings: SettingsDep, lang: Lang = "es") -> Any:
    return _schema_response(tenure_meta.queryables("parties", base_url(request, settings), lang))


@router.get(
    "/collections/rights/queryables",
    summary="What rights may be filtered by (never a holder's name)",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def rights_queryables(request: Request, settings: SettingsDep, lang: Lang = "es") -> Any:
    return _schema_response(tenure_meta.queryables("rights", base_url(request, settings), lang))


@router.get(
    "/collections/parties/schema",
    summary="JSON Schema of parties (personal properties for editors and admins)",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def parties_schema(
    request: Request, settings: SettingsDep, user: Reader, lang: Lang = "es"
) -> Any:
    return _record_schema("parties", request, settings, user, lang)


def _record_schema(
    kind: str, request: Request, settings: Any, user: User, lang: str, as_feature: bool = False
) -> Response:
    """A land record's Part 5 schema, or (``as_feature``) its GeoJSON Feature's."""
    schema = tenure_meta.schema(kind, base_url(request, settings), lang, user)
    return _schema_response(as_geojson_feature(schema) if as_feature else schema)


@router.get(
    "/collections/rights/schema",
    summary="JSON Schema of rights (holder and note for editors and admins)",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def rights_schema(
    request: Request, settings: SettingsDep, user: Reader, lang: Lang = "es"
) -> Any:
    return _record_schema("rights", request, settings, user, lang)


@router.get(
    "/collections/parties/schema/feature",
    summary="JSON Schema of parties as GeoJSON features",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def parties_geojson_schema(
    request: Request, settings: SettingsDep, user: Reader, lang: Lang = "es"
) -> Any:
    return _record_schema("parties", request, settings, user, lang, as_feature=True)


@router.get(
    "/collections/rights/schema/feature",
    summary="JSON Schema of rights as GeoJSON features",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def rights_geojson_schema(
    request: Request, settings: SettingsDep, user: Reader, lang: Lang = "es"
) -> Any:
    return _record_schema("rights", request, settings, user, lang, as_feature=True)


def _values(name: str, raw: str | None, allowed: Domain) -> list[str] | None:
    """``?name=a,b``: the codes each value names, by its code or its Spanish or English
    label in any case (``status=Otorgado``), as the layers' parameters and the records'
    writes take them; else a 400 naming the values and listing both."""
    if raw is None:
        return None
    values = [v.strip() for v in raw.split(",")]
    codes = [allowed.code(v) for v in values]
    wrong = ", ".join(repr(v) for v, code in zip(values, codes, strict=True) if code is None)
    if wrong:
        listed = {lang: ", ".join(allowed.labels(lang)) for lang in ("en", "es")}
        raise InvalidInput(
            Said(
                f"query parameter {name!r}: {wrong} is not one of {listed['en']}",
                f"parámetro {name!r}: {wrong} no es ninguno de {listed['es']}",
            )
        )
    return [code for code in codes if code is not None]


def _page_response(
    request: Request, settings: Any, kind: str, paging: Any, page: dict[str, Any], used: crs.Crs
) -> Response:
    """The page with its links (self, collection, next by key, prev by offset), as the
    layers' items are (api/features.py); a page for people when asked (f=html)."""
    base = base_url(request, settings)
    limit, offset, after = paging
    href = f"{base}/collections/{kind}/items"
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("limit", "offset", "after")
    ]

    def at(*where: tuple[str, int]) -> str:
        return f"{href}?{urlencode([*kept, ('limit', limit), *where])}"

    here = ("after", after) if after is not None else ("offset", offset)
    links = [
        {"href": at(here), "rel": "self", "type": GEOJSON},
        {"href": f"{base}/collections/{kind}", "rel": "collection", "type": "application/json"},
    ]
    if page.pop("more") and page["last_id"] is not None:
        links.append({"href": at(("after", page["last_id"])), "rel": "next", "type": GEOJSON})
    page.pop("last_id")
    if after is None and offset > 0:
        previous = ("offset", max(0, offset - limit))
        links.append({"href": at(previous), "rel": "prev", "type": GEOJSON})
    doc = {**page, "links": links}
    if wants_html(request):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        styles = Styles.load(settings.styles_path)
        doc = json.loads(json.dumps(doc, default=str))  # as a client reads it
        page_html = pages.items(base, page_lang(request), pages.records(kind), doc, path, styles)
        return _private(html(page_html))
    response = _json(doc)
    response.headers["Content-Crs"] = f"<{used.uri}>"
    return response


Bbox = Annotated[str | None, Query(description="west,south,east,north in bbox-crs (default CRS84)")]
BboxCrs = Annotated[str | None, Query(alias="bbox-crs", description="CRS of bbox")]
Kinds = Annotated[str | None, Query(description="one or more kinds, comma-separated")]


@router.get(
    "/collections/parties/items",
    summary="Parties (no geometry; personal data only for their editors)",
    response_class=Response,
    responses=GEOJSON_OR_HTML,
)
async def party_items(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    user: Reader,
    commune: CommuneFilter,
    paging: Paging,
    kind: Kinds = None,
    bbox: Bbox = None,
    response_crs: Annotated[str | None, Query(alias="crs", description="CRS84 only")] = None,
    lang: PageLang = None,
) -> Response:
    """Every party with its kind, commune and id, ``"geometry": null``; its name, cédula/RIF
    and contact only for editors and admins of its commune. A party has no place of its
    own, so ``bbox`` is refused with the way to ask it (its rights', by their parcels)."""
    if bbox is not None:
        raise InvalidInput(
            Said(
                "parties have no geometry (a party holds land through its rights): bbox does "
                "not apply to them; ask /collections/rights/items?bbox=... for the rights on "
                "parcels there, each with its party's id",
                "los sujetos de derecho no tienen geometría (tienen tierra por sus derechos): "
                "bbox no se les aplica; pida /collections/rights/items?bbox=... para los "
                "derechos sobre parcelas de allí, cada uno con el id de su sujeto",
            )
        )
    used = crs.parse(response_crs, "crs")
    if used != crs.CRS84:
        raise InvalidInput(
            Said(
                f"parties have no geometry, so no coordinates to give in {used.uri}: their "
                f"collection lists {crs.CRS84.uri} only",
                f"los sujetos de derecho no tienen geometría, ni coordenadas que dar en "
                f"{used.uri}: su colección lista solo {crs.CRS84.uri}",
            )
        )
    limit, offset, after = paging
    page = await records.parties(
        conn,
        user,
        commune_id=commune,
        kind=_values("kind", kind, PARTY_KIND),
        page=records.Paging(limit, offset, after),
    )
    return _page_response(request, settings, "parties", paging, page, used)


@router.get(
    "/collections/rights/items",
    summary="Rights and restrictions on parcels, drawn as their parcels",
    response_class=Response,
    responses=GEOJSON_OR_HTML,
)
async def right_items(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    user: Reader,
    commune: CommuneFilter,
    paging: Paging,
    response_crs: CrsDep,
    parcel: Annotated[int | None, Query(ge=1, description="parcel id")] = None,
    party: Annotated[int | None, Query(ge=1, description="party id")] = None,
    kind: Kinds = None,
    status: Annotated[str | None, Query(description="one or more statuses")] = None,
    party_kind: Annotated[str | None, Query(description="one or more kinds of party")] = None,
    bbox: Bbox = None,
    bbox_crs: BboxCrs = None,
    lang: PageLang = None,
) -> Response:
    """Each right drawn as its parcel (``bbox`` selects by the parcel, ``crs`` gives its
    coordinates), with its party's id and kind; the holder's name and the note only for
    editors and admins of the parcel's commune."""
    box_crs = crs.parse(bbox_crs, "bbox-crs")
    spatial = None
    box = parse_bbox(bbox, box_crs)
    if box is not None:
        params: dict[str, Any] = {}
        spatial = (crs.bbox_condition(sql.SQL("pc.geom"), box, box_crs, params), params)
    geometry = crs.output_geometry(sql.SQL("pc.geom"), response_crs)
    limit, offset, after = paging
    page = await records.rights(
        conn,
        user,
        commune_id=commune,
        parcel_id=parcel,
        party_id=party,
        kind=_values("kind", kind, RIGHT_KIND),
        status=_values("status", status, RIGHT_STATUS),
        party_kind=_values("party_kind", party_kind, PARTY_KIND),
        spatial=spatial,
        feature=records.right_feature(geometry, response_crs.decimals),
        page=records.Paging(limit, offset, after),
    )
    return _page_response(request, settings, "rights", paging, page, response_crs)


async def _one(
    request: Request, settings: Any, conn: Conn, user: Reader, kind: str, feature_id: int
) -> Response:
    feature, version, _ = await records.one(conn, user, kind, feature_id)
    etag = _etag(version, user, shown_as(request))
    if fresh(request, etag):
        return _private(not_modified(etag, request))
    if wants_html(request):
        styles = Styles.load(settings.styles_path)
        feature = json.loads(json.dumps(feature, default=str))  # as a client reads it
        base = base_url(request, settings)
        page_html = pages.item(base, page_lang(request), pages.records(kind), feature, styles)
        return _private(html(page_html, etag))
    return _json(feature, etag=etag)


@router.get(
    "/collections/parties/items/{feature_id}", summary="One party", responses=GEOJSON_OR_HTML
)
async def party_item(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    user: Reader,
    feature_id: int,
    lang: PageLang = None,
) -> Response:
    return await _one(request, settings, conn, user, "parties", feature_id)


@router.get(
    "/collections/rights/items/{feature_id}", summary="One right", responses=GEOJSON_OR_HTML
)
async def right_item(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    user: Reader,
    feature_id: int,
    lang: PageLang = None,
) -> Response:
    return await _one(request, settings, conn, user, "rights", feature_id)


async def _create(
    request: Request, settings: Any, conn: Conn, user: Writer, kind: str, note: str | None
) -> Response:
    new_id, version = await edit.create(conn, kind, await request.body(), user, note=note)
    location = f"{base_url(request, settings)}/collections/{kind}/items/{new_id}"
    body = {"ids": [new_id]}
    response = _json(body, 201, _etag(version, user), "application/json")
    response.headers["Location"] = location
    return response


@router.post("/collections/parties/items", status_code=201, summary="Register a party")
async def create_party(
    request: Request, settings: SettingsDep, conn: Conn, user: Writer, note: ChangeNote = None
) -> Any:
    return await _create(request, settings, conn, user, "parties", note)


@router.post("/collections/rights/items", status_code=201, summary="Record a right")
async def create_right(
    request: Request, settings: SettingsDep, conn: Conn, user: Writer, note: ChangeNote = None
) -> Any:
    return await _create(request, settings, conn, user, "rights", note)


async def _patch(
    request: Request,
    conn: Conn,
    user: Writer,
    conditions: Conditions,
    kind: str,
    feature_id: int,
    note: str | None,
) -> Response:
    version = await edit.patch(
        conn, kind, feature_id, await request.body(), user, conditions=conditions,
        note=note,
    )  # fmt: skip
    return _json({"ids": [feature_id]}, 200, _etag(version, user), "application/json")


@router.patch("/collections/parties/items/{feature_id}", summary="Change a party")
async def patch_party(
    request: Request,
    conn: Conn,
    user: Writer,
    conditions: Conditions,
    feature_id: int,
    note: ChangeNote = None,
) -> Response:
    return await _patch(request, conn, user, conditions, "parties", feature_id, note)


@router.patch("/collections/rights/items/{feature_id}", summary="Change a right")
async def patch_right(
    request: Request,
    conn: Conn,
    user: Writer,
    conditions: Conditions,
    feature_id: int,
    note: ChangeNote = None,
) -> Response:
    return await _patch(request, conn, user, conditions, "rights", feature_id, note)


@router.delete("/collections/parties/items/{feature_id}", status_code=204, summary="Delete a party")
async def delete_party(
    conn: Conn, user: Writer, conditions: Conditions, feature_id: int, note: ChangeNote = None
) -> Response:
    await edit.remove(conn, "parties", feature_id, user, conditions=conditions, note=note)
    return Response(status_code=204)


@router.delete("/collections/rights/items/{feature_id}", status_code=204, summary="Delete a right")
async def delete_right(
    conn: Conn, user: Writer, conditions: Conditions, feature_id: int, note: ChangeNote = None
) -> Response:
    await edit.remove(conn, "rights", feature_id, user, conditions=conditions, note=note)
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


#: the form of a document's upload
DOCUMENT_FORM = frozenset({"file", "title", "party", "right", "parcel"})


@router.post(
    "/documents", status_code=201, summary="Upload a source document (PDF, JPEG, PNG, HEIC)"
)
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
    await only_form_fields(request, DOCUMENT_FORM)
    limit = settings.max_document_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(
            Said(
                f"{file.filename or 'the document'}: over the limit of {limit} bytes",
                f"{file.filename or 'el documento'}: supera el límite de {limit} bytes",
            )
        )
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


@router.delete("/documents/{document_id}", status_code=204, summary="Delete a document")
async def delete_document(conn: Conn, user: Writer, document_id: int) -> Response:
    """An editor of its commune, or an admin; audited. A parcel's own documents must be
    deleted before the parcel can be."""
    await documents.remove(conn, user, document_id)
    return Response(status_code=204)


@router.get("/documents/{document_id}", summary="A document's description")
async def document(conn: Conn, user: Reader, document_id: int) -> Response:
    return _json(await records.document(conn, user, document_id), media="application/json")


@router.get("/documents/{document_id}/content", summary="Download a document")
async def document_content(conn: Conn, user: Reader, document_id: int) -> Response:
    """The stored bytes, for editors and admins of its commune; 404 for anyone else."""
    data, media, filename = await records.document_file(conn, user, document_id)
    name = filename or f"document-{document_id}"
    # the name in ASCII for every client, and as written (RFC 5987) for those that read it:
    # found from outside, a name such as Ścieżka.pdf could not go in a header (a 500)
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return Response(
        data,
        media_type=media,
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="{plain}"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
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
