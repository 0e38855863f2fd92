"""A commune's DEMs over HTTP: upload one, list them, and the hillshade PNG for the maps.

The upload body is limited by api/app.py's BodyLimit (paths ending in /dems). The client's
filename is never used as a path: the file is saved as ``dem.tif`` in the server's scratch
directory (api/scratch.py: removed however the request ends; errors name the client's file).
The name the DEM is kept under comes from ``name`` or a cleaned-up stem of the filename.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from geo_comuna.accounts import writing
from geo_comuna.analysis.toolkit.dem import dem_for
from geo_comuna.analysis.toolkit.hillshade import Params as HillshadeParams
from geo_comuna.analysis.toolkit.hillshade import commune_hillshade
from geo_comuna.api.deps import (
    ONE_FILE,
    Commune,
    Conn,
    ScratchDep,
    Writer,
    only_form_fields,
    unless_gone,
)
from geo_comuna.api.scratch import client_name
from geo_comuna.errors import Forbidden, InvalidInput, NotFound, Said
from geo_comuna.io import dems

router = APIRouter(tags=["terrain"])
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CHUNK = 1 << 20


def _dem_name(name: str | None, filename: str | None) -> str:
    """``name`` as given (checked), else the client's file stem with odd characters dropped."""
    if name is not None:
        if not _NAME.fullmatch(name):
            raise InvalidInput(
                Said(
                    f"name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a "
                    "letter or digit",
                    f"nombre {name!r}: use de 1 a 64 letras, dígitos, '_', '.' o '-', empezando "
                    "por una letra o un dígito",
                )
            )
        return name
    stem = PurePosixPath(PureWindowsPath(filename or "").name).stem
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:64]
    return cleaned or "dem"


def _save(source: BinaryIO, path: Path) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


@router.post("/communes/{commune}/dems", status_code=201, summary="Upload a DEM")
async def upload_dem(
    request: Request,
    conn: Conn,
    user: Writer,
    commune_id: Commune,
    scratch: ScratchDep,
    file: Annotated[
        UploadFile, File(description="single-band GeoTIFF, any CRS, elevations in metres")
    ],
    name: Annotated[
        str | None,
        Query(
            description="name to keep it under (default: the "
            "file's name); a DEM of that name is "
            "replaced"
        ),
    ] = None,
) -> dict[str, Any]:
    """Store a DEM for the commune (editors: their communes only). Analyses and the
    hillshade use the DEM that covers most of the commune, the finest of those that cover it
    alike. Refused: cells coarser than 1 km, no elevation at all, elevations no ground has."""
    if not user.may_write or (user.role == "editor" and commune_id not in user.communes):
        raise Forbidden(
            Said(
                f"user {user.name!r} may not add DEMs to commune {commune_id}",
                f"el usuario {user.name!r} no puede agregar MDE a la comuna {commune_id}",
            )
        )
    await only_form_fields(request, ONE_FILE)
    label = _dem_name(name, file.filename)
    try:
        with scratch.holding(client_name(file.filename, "dem.tif"), "dem.tif") as path:
            await asyncio.to_thread(_save, file.file, path)
            async with writing(conn, user):
                registering = dems.register(conn, commune_id, path, label, isolated=True)
                added = await unless_gone(request, registering)
    finally:
        await file.close()
    return next(d for d in await dems.listing(conn, commune_id) if d["id"] == added.id)


@router.get("/communes/{commune}/dems", summary="A commune's DEMs")
async def list_dems(conn: Conn, commune_id: Commune) -> dict[str, Any]:
    """Name, CRS, cell size (m), lon/lat bounds and size of each DEM, the one analyses use
    first."""
    return {"dems": await dems.listing(conn, commune_id)}


@router.delete(
    "/communes/{commune}/dems/{dem_id}", status_code=204, summary="Remove one of a commune's DEMs"
)
async def remove_dem(conn: Conn, user: Writer, commune_id: Commune, dem_id: int) -> Response:
    """Editors of the commune and admins; the analyses then use the next DEM, if any."""
    if not user.may_write or (user.role == "editor" and commune_id not in user.communes):
        raise Forbidden(
            Said(
                f"user {user.name!r} may not remove DEMs of commune {commune_id}",
                f"el usuario {user.name!r} no puede quitar MDE de la comuna {commune_id}",
            )
        )
    async with writing(conn, user):
        if not await dems.remove(conn, commune_id, dem_id):
            raise NotFound(
                Said(
                    f"commune {commune_id} has no DEM {dem_id}",
                    f"la comuna {commune_id} no tiene el MDE {dem_id}",
                )
            )
    return Response(status_code=204)


@router.get(
    "/communes/{commune}/hillshade.png",
    summary="Hillshade of the commune's DEM",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def hillshade(
    conn: Conn, commune_id: Commune, params: Annotated[HillshadeParams, Query()]
) -> Response:
    """A grey + alpha PNG (transparent off the DEM and, unless ``clip=false``, outside the
    commune) for a Leaflet ``L.imageOverlay``; its lon/lat corners are in the ``X-Bounds``
    header as ``west,south,east,north``."""
    dem = await dem_for(conn, commune_id)
    png, bounds = await commune_hillshade(conn, commune_id, dem, params)
    return Response(
        png,
        media_type="image/png",
        headers={"X-Bounds": ",".join(f"{b:.7f}" for b in bounds), "Cache-Control": "max-age=300"},
    )
