"""OGC API - Features reads: landing page, conformance, collections, queryables, items.

One router serves every layer of the registry (its writes, Part 4: api/writes.py). Feature
bodies come out of PostGIS as text and go out as they are.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from psycopg import AsyncConnection

from geo_comuna import __version__
from geo_comuna.accounts import Access
from geo_comuna.api import etags, tenure_meta
from geo_comuna.api.deps import (
    CRS84,
    After,
    Bbox,
    BboxCrs,
    CollectionId,
    CommuneQuery,
    Conn,
    CrsParam,
    Datetime,
    FilterCrs,
    FilterLang,
    FilterText,
    Lang,
    LayerDep,
    Limit,
    Offset,
    Properties,
    ReaderAccess,
    SettingsDep,
    Sortby,
    filters,
    output,
    paging,
    reading,
)
from geo_comuna.api.hosts import base_url
from geo_comuna.api.negotiation import page_lang, wants_html
from geo_comuna.api.pages import HTML_CONTENT, PageLang, html
from geo_comuna.api.parameters import check_request, own_parameters
from geo_comuna.api.schema import (
    DESCRIBED_BY,
    SCHEMA_JSON,
    SCHEMA_REL,
    SCHEMA_RESPONSE,
    schema_response,
)
from geo_comuna.errors import NotFound, Said
from geo_comuna.features import audit, crs, query
from geo_comuna.features.filters import Filters
from geo_comuna.features.output import Output
from geo_comuna.features.query import require_commune
from geo_comuna.features.queryables import computed
from geo_comuna.layers import LAYERS, Layer, get_layer
from geo_comuna.layers.tenure import COLLECTIONS
from geo_comuna.maps import pages
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings
from geo_comuna.tenure import records

router = APIRouter(tags=["collections"])
#: Pages of features and one feature by id, the hottest reads, on a router of their own that
#: the app includes without the readers' dependencies (api/app.py): they resolve them in one
#: call (deps.reading) and call the page's own (paging, filters, output) as functions, since
#: FastAPI's solving of a dozen or thirty dependencies took longer than the answer's
#: statement in PostgreSQL (bench/README.md).
item_router = APIRouter()
GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    # f=html (and a browser's Accept) on the landing page, collections, items and an item
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
    # a feature schema per collection (Part 5, draft), which QGIS reads to type its fields
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
]


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


#: a JSON document's route that gives its page too (api/pages.py)
JSON_OR_HTML = {200: {"content": {"application/json": {}, **HTML_CONTENT}}}


@router.get("/", summary="Landing page", responses=JSON_OR_HTML)
async def landing(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    access: ReaderAccess,
    lang: PageLang = None,
) -> Any:
    """The service's links; for a browser (or ``f=html``) the home page: the communes with
    their map, report and package, the layers, and how to connect QGIS and GDAL."""
    base = base_url(request, settings)
    if wants_html(request):
        chosen = page_lang(request)
        styles = Styles.load(settings.styles_path)
        rows = await pages.communes(conn, access, styles, chosen)
        counts = await pages.layer_counts(conn)
        return html(pages.landing(base, chosen, rows, counts, styles))
    return {
        "title": "geo_comuna",
        "description": "Territory store of Venezuela's communes: states, commune boundaries, "
        "parcels, production, dwellings and networks.",
        "version": __version__,
        "links": [
            _link(f"{base}/", "self", "application/json", "this document"),
            _link(f"{base}/?f=html", "alternate", "text/html", "this document as a page"),
            _link(
                f"{base}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "API definition",
            ),
            _link(f"{base}/docs", "service-doc", "text/html", "API documentation"),
            _link(f"{base}/conformance", "conformance", "application/json"),
            _link(f"{base}/collections", "data", "application/json", "collections"),
        ],
    }


@router.get("/conformance", summary="Conformance classes")
async def conformance() -> dict[str, list[str]]:
    return {"conformsTo": CONFORMANCE}


#: the calendar of extent.temporal (OGC API - Features Part 1)
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


def _temporal(days: tuple[dt.date, dt.date]) -> dict[str, Any]:
    """The first and the last dated feature's days, from the first's start to the last's end."""
    first, last = days
    return {
        "interval": [[f"{first.isoformat()}T00:00:00Z", f"{last.isoformat()}T23:59:59Z"]],
        "trs": GREGORIAN,
    }


def _collection(
    layer: Layer,
    base: str,
    lang: str,
    extent: list[float] | None,
    days: tuple[dt.date, dt.date] | None = None,
) -> dict:
    href = f"{base}/collections/{layer.name}"
    doc: dict[str, Any] = {
        "id": layer.name,
        "title": layer.title.get(lang),
        "description": layer.description.get(lang),
        "itemType": "feature",
        "crs": crs.URIS,
        "storageCrs": CRS84,
        "links": [
            _link(href, "self", "application/json"),
            _link(f"{href}/items", "items", GEOJSON, "features"),
            _link(
                f"{href}/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                SCHEMA_JSON,
            ),
            _link(f"{href}/schema", SCHEMA_REL, SCHEMA_JSON, "feature schema"),
            _link(f"{href}/schema/feature", DESCRIBED_BY, SCHEMA_JSON, "GeoJSON feature schema"),
        ],
    }
    if extent:
        doc["extent"] = {"spatial": {"bbox": [extent], "crs": CRS84}}
    if days:
        doc.setdefault("extent", {})["temporal"] = _temporal(days)
    return doc


@router.get("/collections", summary="All layers and the land records", responses=JSON_OR_HTML)
async def collections(
    request: Request, settings: SettingsDep, conn: Conn, lang: Lang = "es"
) -> Any:
    base = base_url(request, settings)
    extents = await query.extents(conn, list(LAYERS.values()))
    days = await query.temporal_extents(conn, list(LAYERS.values()))
    rights_extent = await records.rights_extent(conn)
    if wants_html(request):
        chosen = page_lang(request)
        doc = {
            "collections": [
                *(
                    _collection(layer, base, chosen, extents.get(layer.name), days.get(layer.name))
                    for layer in LAYERS.values()
                ),
                *(tenure_meta.collection(k, base, chosen, rights_extent) for k in COLLECTIONS),
            ]
        }
        return html(pages.collections(base, chosen, doc))
    return {
        "links": [_link(f"{base}/collections", "self", "application/json")],
        "collections": [
            *(
                _collection(layer, base, lang, extents.get(layer.name), days.get(layer.name))
                for layer in LAYERS.values()
            ),
            # the land records (api/tenure.py): parties with no geometry, rights as parcels
            *(tenure_meta.collection(kind, base, lang, rights_extent) for kind in COLLECTIONS),
        ],
    }


@router.get("/collections/{collection_id}", summary="One layer", responses=JSON_OR_HTML)
async def collection(
    request: Request, settings: SettingsDep, conn: Conn, layer: LayerDep, lang: Lang = "es"
) -> Any:
    extents = await query.extents(conn, [layer])
    days = await query.temporal_extents(conn, [layer])
    if wants_html(request):
        chosen = page_lang(request)
        base = base_url(request, settings)
        doc = _collection(layer, base, chosen, extents.get(layer.name), days.get(layer.name))
        return html(pages.collection(base, chosen, doc))
    return _collection(
        layer, base_url(request, settings), lang, extents.get(layer.name), days.get(layer.name)
    )


_JSON_TYPES = {
    "text": "string",
    "integer": "integer",
    "number": "number",
    "date": "string",
    "boolean": "boolean",
}
_GEOMETRY_SCHEMA = {
    "Point": "https://geojson.org/schema/Point.json",
    "LineString": "https://geojson.org/schema/LineString.json",
    "MultiPolygon": "https://geojson.org/schema/MultiPolygon.json",
}


@router.get(
    "/collections/{collection_id}/queryables",
    summary="Properties to filter by",
    response_class=Response,
    responses=SCHEMA_RESPONSE,
)
async def queryables(
    request: Request,
    settings: SettingsDep,
    layer: LayerDep,
    access: ReaderAccess,
    lang: Lang = "es",
) -> Response:
    """What ``filter`` and ``sortby`` may use: the geometry, the references (``commune`` by
    its code), the attributes (also ``?name=value``) and the values PostGIS works out of each
    feature (``area_ha``...). A members-only property is listed only to
    readers who may read it somewhere (``x-members-only``: it matches only in their
    communes' features); anyone else filtering by it gets 403."""
    props: dict[str, Any] = {
        "geometry": {
            "$ref": _GEOMETRY_SCHEMA[layer.geometry_type],
            "x-ogc-role": "primary-geometry",
            "format": f"geometry-{layer.geometry_type.lower()}",
        }
    }
    for ref in layer.references:
        kind = "integer" if ref.key == "id" else "string"
        props[ref.name] = {"title": ref.title.get(lang), "type": kind}
    for attr in layer.attributes:
        members = attr.read == "members"
        if members and not access.anywhere:
            continue
        schema: dict[str, Any] = {"title": attr.title.get(lang), "type": _JSON_TYPES[attr.type]}
        if members:
            schema["x-members-only"] = True
        if attr.type == "date":
            schema["format"] = "date"
        if attr.domain:
            schema["enum"] = list(attr.domain.values)
            schema["x-labels"] = {k: v.get(lang) for k, v in attr.domain.values.items()}
        if attr.minimum is not None:
            schema["minimum"] = attr.minimum
        if attr.maximum is not None:
            schema["maximum"] = attr.maximum
        props[attr.name] = schema
    for derived in computed(layer):  # worked out by PostGIS: read, filtered, sorted by
        schema = {"title": derived.title.get(lang), "type": derived.type, "readOnly": True}
        if derived.unit:
            schema["x-ogc-unit"] = derived.unit
        props[derived.name] = schema
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base_url(request, settings)}/collections/{layer.name}/queryables",
        "type": "object",
        "title": layer.title.get(lang),
        "properties": props,
    }
    return schema_response(body)


def _page_links(
    request: Request,
    base: str,
    layer: Layer,
    paging: tuple[int, int, int | None],
    page: query.Page,
    keyed: bool,
) -> list[dict[str, str]]:
    """self, collection, next (by key when the order is the ids': ``keyed``; else by
    offset) and, for a page reached by offset, prev."""
    limit, offset, after = paging
    href = f"{base}/collections/{layer.name}/items"
    start = ("limit", "offset", "after")
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in start]

    def at(*where: tuple[str, int]) -> str:
        return f"{href}?{urlencode([*params, ('limit', limit), *where])}"

    here = ("after", after) if after is not None else ("offset", offset)
    links = [
        _link(at(here), "self", GEOJSON),
        _link(f"{base}/collections/{layer.name}", "collection", "application/json"),
    ]
    if page.more and page.last_id is not None:
        # a page may end before its limit (Settings.max_page_geometry_bytes)
        following = ("after", page.last_id) if keyed else ("offset", offset + page.number_returned)
        links.append(_link(at(following), "next", GEOJSON, "next page"))
    if after is None and offset > 0:
        links.append(
            _link(at(("offset", max(0, offset - limit))), "prev", GEOJSON, "previous page")
        )
    return links


@item_router.get(
    "/collections/{collection_id:not_tenure}/items",
    summary="Features of a layer",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, **HTML_CONTENT}, "description": "FeatureCollection"}},
)
@own_parameters  # any attribute filters (api/deps.py filters)
async def items(
    request: Request,
    collection_id: CollectionId,
    limit: Limit = None,
    offset: Offset = 0,
    after: After = None,
    bbox: Bbox = None,
    bbox_crs: BboxCrs = None,
    commune: CommuneQuery = None,
    filter_text: FilterText = None,
    filter_lang: FilterLang = None,
    filter_crs: FilterCrs = None,
    datetime: Datetime = None,
    sortby: Sortby = None,
    properties: Properties = None,
    crs_value: CrsParam = None,
) -> Response:
    """GeoJSON FeatureCollection (RFC 7946). Filter with ``bbox``, ``commune``, any
    attribute (``?tenure=abandoned,occupied``) and a CQL2 ``filter``; page with the ``next``
    link (``after``: the id the page starts after, as fast deep as shallow) or
    ``limit``/``offset``; ``sortby``, ``properties`` and ``crs`` shape
    the features. Areas are in hectares and lengths in metres, geodesic.

    Members-only properties (a home's residents, notes) are absent, and members-only
    positions (homes) null, except in features of the reader's communes (admins: all)."""
    await check_request(request)
    # what the readers' dependencies and the page's own gave, in the order they came
    async with reading(request) as (conn, access):  # who reads first (401)
        settings = request.app.state.settings
        layer = get_layer(collection_id)
        commune_id = None if commune is None else await require_commune(conn, commune)
        where = await filters(
            request,
            layer,
            access,
            commune_id,
            bbox,
            bbox_crs,
            filter_text,
            filter_lang,
            filter_crs,
            datetime,
        )
        paged = await paging(settings, limit, offset, after)
        shape = output(layer, access, crs.parse(crs_value, "crs"), sortby, properties)
        return await _items(request, conn, settings, layer, where, paged, access, shape)


async def _items(
    request: Request,
    conn: AsyncConnection,
    settings: Settings,
    layer: Layer,
    filters: Filters,
    paging: tuple[int, int, int | None],
    access: Access,
    output: Output,
) -> Response:
    limit, offset, after = paging
    base = base_url(request, settings)
    # A client holding a page learns it is current before the page is built; any other
    # request reads the versions its ETag digests in the page's own statement: one round trip
    ask_first = etags.held(request) or query.kept_per_version(layer)
    if ask_first:
        etag = await etags.page(conn, layer, request, base, access)
        if etags.fresh(request, etag):
            return etags.not_modified(etag, request)  # the client has it: not built again
    page = await query.page(
        conn,
        layer,
        filters,
        limit=limit,
        offset=offset,
        counts=request.app.state.counts,
        access=access,
        output=output,
        after=after,
        tables=() if ask_first else layer.feature_tables,
        max_bytes=settings.max_page_geometry_bytes,
    )
    if not ask_first:
        etag = etags.page_etag(layer, request, base, access, page.versions)
    links = _page_links(request, base, layer, paging, page, keyed=not output.sortby)
    head = json.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": page.number_matched,
            "numberReturned": page.number_returned,
            "links": links,
        },
        separators=(",", ":"),
    )
    body = f'{head[:-1]},"features":[{page.features}]}}'
    if wants_html(request):  # the same page of features, for a person
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        styles = Styles.load(settings.styles_path)
        page_html = pages.items(base, page_lang(request), layer, json.loads(body), path, styles)
        return html(page_html, etag)
    return Response(body, media_type=GEOJSON, headers={**_content_crs(output.crs), "ETag": etag})


def _content_crs(used: crs.Crs) -> dict[str, str]:
    """Part 2's header naming the CRS of a response's coordinates."""
    return {"Content-Crs": f"<{used.uri}>"}


@item_router.get(
    "/collections/{collection_id:not_tenure}/items/{feature_id}",
    summary="One feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, **HTML_CONTENT}, "description": "Feature"}},
)
async def item(
    request: Request,
    collection_id: CollectionId,
    feature_id: int,
    crs_value: CrsParam = None,
    lang: PageLang = None,
) -> Response:
    await check_request(request)
    async with reading(request) as (conn, access):  # who reads first (401), as on every route
        layer, response_crs = get_layer(collection_id), crs.parse(crs_value, "crs")
        return await _item(request, conn, layer, feature_id, access, response_crs)


async def _item(
    request: Request,
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    access: Access,
    response_crs: crs.Crs,
) -> Response:
    settings = request.app.state.settings
    salt, tables = etags.feature_inputs(layer, access)
    found = await query.item(
        conn,
        layer,
        feature_id,
        access,
        response_crs,
        salt=salt,
        tables=tables,
        held=() if wants_html(request) else etags.held(request),  # a page's: below
    )
    if found is None:
        raise NotFound(
            Said(f"no feature {feature_id}", f"no existe la entidad {feature_id}"), layer=layer.name
        )
    if found.text is None:  # the client's copy is current: the Feature was not built
        return etags.not_modified(found.etag)
    base = base_url(request, settings)
    if wants_html(request):
        etag = etags.feature_page(found.etag, request, access)
        if etags.fresh(request, etag):
            return etags.not_modified(etag, request)
        styles = Styles.load(settings.styles_path)
        feature = json.loads(found.text + "}")
        history = None
        if layer.name == "parcels":  # its tenure changes, under its properties
            history = await audit.tenure_history(conn, feature_id, access)
        page_html = pages.item(base, page_lang(request), layer, feature, styles, history)
        return html(page_html, etag)
    links = [
        _link(f"{base}/collections/{layer.name}/items/{feature_id}", "self", GEOJSON),
        _link(f"{base}/collections/{layer.name}", "collection", "application/json"),
    ]
    return Response(
        f'{found.text},"links":{json.dumps(links)}}}',
        media_type=GEOJSON,
        headers={"ETag": found.etag, **_content_crs(response_crs)},
    )
