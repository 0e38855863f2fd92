"""The parcel sheet as a PDF (maps/sheet/): read as the parcel itself is read, by whoever may
read it; its holders, rights and documents as far as the reader may see them.

Where those records come from is a dependency, ``records_provider`` (the store's registry,
maps/sheet/records.py ``registered``), overridden like any other dependency."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

from geo_comuna.api.deps import Conn, LabelLang, Reader, SettingsDep
from geo_comuna.api.hosts import base_url
from geo_comuna.maps import sheet
from geo_comuna.maps.sheet import RecordsProvider

router = APIRouter(tags=["land records"])
PDF = "application/pdf"


def records_provider() -> RecordsProvider:
    """Who tells a sheet a parcel's holders, rights and documents (maps/sheet/records.py)."""
    return sheet.REGISTERED


@router.get(
    "/collections/parcels/items/{feature_id}/sheet.pdf",
    summary="A parcel's printable sheet (A4 PDF)",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "the sheet, one A4 page or more"}},
)
async def parcel_sheet(
    request: Request,
    settings: SettingsDep,
    conn: Conn,
    feature_id: int,
    user: Reader,
    provider: Annotated[RecordsProvider, Depends(records_provider)],
    lang: LabelLang,
) -> Response:
    """The parcel's map with its neighbours, north arrow and scale; area (ha) and perimeter
    (m), geodesic; its vertices in REGVEN / UTM of its zone (EPSG:2201-2203); its boundaries
    by side; tenure history; holders, rights and documents as far as the reader may see them;
    a QR code to its record. ``lang=es`` or ``en`` (default: the browser's, else es). 404
    where there is no such parcel."""
    base = base_url(request, settings) or f"http://{settings.host}:{settings.port}"
    code, pdf = await sheet.parcel_sheet(conn, feature_id, user, lang, base, provider)
    name = quote(f"{'ficha' if lang == 'es' else 'sheet'}-{code or feature_id}.pdf")
    return Response(
        pdf,
        media_type=PDF,
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{name}",
            "Vary": "Accept-Language",
        },
    )
