"""A commune's package for field work over HTTP (maps/package.py): the same zip as
`geo-comuna package`, built in the server's scratch directory and sent from the open file,
as exports are (api/transfer.py).

It holds what its reader may read, as an export does: an anonymous reader's package has no
members-only column or position (parcel notes, residents, each home), a commune member's or
an admin's has everything of the commune.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from geo_comuna.api.deps import Conn, ReaderAccess, ScratchDep, SettingsDep
from geo_comuna.api.transfer import _chunks
from geo_comuna.features.query import require_commune
from geo_comuna.maps import data
from geo_comuna.maps.package import build_package

router = APIRouter(tags=["import/export"])
ZIP = "application/zip"


@router.get(
    "/communes/{commune}/package",
    summary="A commune's package for QGIS and QField (zip)",
    response_class=StreamingResponse,
    responses={200: {"content": {ZIP: {}}}},
)
async def commune_package(
    conn: Conn,
    settings: SettingsDep,
    scratch: ScratchDep,
    access: ReaderAccess,
    commune: Annotated[str, Path(description="commune id or registry code")],
) -> StreamingResponse:
    """One GeoPackage with every layer of the commune (each feature with its ``id`` and
    ``version``, for the sync; the map styles in its ``layer_styles`` table), QGIS projects
    with drop-downs for coded values in Spanish and English, the offline map, the report and
    a README."""
    commune_id = await require_commune(conn, commune)
    name = f"comuna-{await data.file_code(conn, commune_id)}.zip"
    with scratch.holding(name, name) as target:
        await build_package(conn, commune_id, target, settings, access)
        # sent from the open file: the scratch directory is gone before the first byte
        out = open(target, "rb")  # closed by _chunks
    size = os.fstat(out.fileno()).st_size
    return StreamingResponse(
        _chunks(out),
        media_type=ZIP,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(size),
        },
    )
