"""File import and export over HTTP for every layer: the same services as the CLI
(io/importer.py, io/exporter.py), with uploads and downloads going through the server's
scratch directory (api/scratch.py: removed however the request ends; errors name the client's
file, never ours).

The upload body is limited by api/app.py's BodyLimit (paths ending in /import). The client's
filename is never used as a path: only its suffix, which tells the format.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated, BinaryIO, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from geo_comuna.api.deps import (
    LANGS,
    ONE_FILE,
    ChangeNote,
    CommuneFilter,
    Conn,
    LayerDep,
    ReaderAccess,
    ScratchDep,
    SettingsDep,
    Writer,
    only_form_fields,
    unless_gone,
)
from geo_comuna.api.scratch import client_name
from geo_comuna.io.exporter import check_crs, export_layer
from geo_comuna.io.formats import FORMATS, get_format
from geo_comuna.io.importer import ImportReport, Mapping, import_file

router = APIRouter(tags=["import/export"])
#: a suffix we keep from an uploaded file's name: a dot and a few letters or digits
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")
_CHUNK = 1 << 20

Crs = Annotated[
    str | None,
    Query(
        description="CRS of the data when the file does not say "
        "(CSV, Shapefile without .prj), e.g. EPSG:2202"
    ),
]


def _suffix(filename: str | None) -> str:
    suffix = PurePosixPath(client_name(filename)).suffix
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


def _save(source: BinaryIO, path: Path) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


@router.get(
    "/collections/{collection_id}/export",
    summary="Download a layer as a file",
    response_class=StreamingResponse,
    responses={200: {"content": {f.media_type: {} for f in FORMATS.values()}}},
)
async def export_file(
    conn: Conn,
    layer: LayerDep,
    scratch: ScratchDep,
    access: ReaderAccess,
    commune_id: CommuneFilter,
    fmt: Annotated[
        str, Query(alias="format", description="geojson, gpkg, shp (zipped), kml or csv")
    ] = "gpkg",
    crs: Annotated[
        str,
        Query(
            description="CRS to write, e.g. EPSG:2202 (REGVEN / UTM 19N); "
            "GeoJSON and KML are EPSG:4326 only"
        ),
    ] = "EPSG:4326",
) -> StreamingResponse:
    """The layer's features (only one commune's with ``commune``) with every output property
    the reader may read (members-only ones: of the reader's communes only); a CSV carries the
    geometry as WKT and no CRS: re-import it with ``crs``."""
    format_ = get_format(fmt)
    check_crs(format_, crs)  # refuse before any work
    name = f"{layer.name}{format_.suffix}"
    with scratch.holding(name, name) as target:
        report = await export_layer(
            conn, layer, target, format_, crs=crs, commune_id=commune_id, access=access
        )
        # sent from the open file: the scratch directory is gone before the first byte, so a
        # client that hangs up (or a killed server) leaves nothing on disk
        out = open(report.file, "rb")  # closed by _chunks
    size = os.fstat(out.fileno()).st_size
    return StreamingResponse(
        _chunks(out),
        media_type=format_.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(size),
        },
    )


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    with source:
        while chunk := source.read(_CHUNK):
            yield chunk


@router.post(
    "/collections/{collection_id}/import",
    status_code=201,
    response_model=ImportReport,
    responses={
        200: {"model": ImportReport, "description": "A dry run, or an upsert that changed nothing"}
    },
    summary="Import a file into a layer",
)
async def import_upload(
    request: Request,
    response: Response,
    conn: Conn,
    layer: LayerDep,
    settings: SettingsDep,
    scratch: ScratchDep,
    user: Writer,
    file: Annotated[
        UploadFile,
        File(
            description="GeoJSON, GeoPackage, zipped Shapefile, KML "
            "or CSV; the name's suffix tells which"
        ),
    ],
    crs: Crs = None,
    commune: Annotated[
        str | None, Query(description="commune id or registry code for features without one")
    ] = None,
    repair: Annotated[
        bool,
        Query(description="make invalid geometries valid (ST_MakeValid) and report each change"),
    ] = False,
    mode: Annotated[
        Literal["insert", "upsert"],
        Query(
            description="what a feature whose natural key (a parcel's code within its commune, "
            "a commune's or state's code) is already stored does: insert refuses the import "
            "naming both features; upsert updates the stored feature (unchanged ones keep "
            "their version) and inserts the rest"
        ),
    ] = "insert",
    dry_run: Annotated[
        bool,
        Query(
            description="make the whole import, with every check, then undo it: the report "
            "says what it would write"
        ),
    ] = False,
    allow_copies: Annotated[
        bool,
        Query(
            description="add features the layer holds already instead of refusing the import "
            "(409): into a layer without a natural key, the same in every field and shape; into "
            "one with a key, without their key in the shape of a stored feature"
        ),
    ] = False,
    rename: Annotated[
        list[str] | None,
        Query(
            description="the file's column and the property it holds, "
            "e.g. rename=tenure_status:tenure (repeat for more columns)"
        ),
    ] = None,
    value_map: Annotated[
        list[str] | None,
        Query(
            alias="map",
            description="a property, the file's value and the code (or label) it means, "
            "e.g. map=land_use:maize=crops (repeat for more values)",
        ),
    ] = None,
    lang: Annotated[
        str, Query(pattern=LANGS, description="language of the value labels an error lists")
    ] = "es",
    note: ChangeNote = None,
) -> ImportReport:
    """All features or none: the first bad one is named by its 1-based position. Coded
    values may be given by code or by their Spanish or English label, in any case."""
    await only_form_fields(request, ONE_FILE)
    name = client_name(file.filename)
    mapping = Mapping.parse(layer, rename or [], value_map or [])
    try:
        with scratch.holding(name, f"upload{_suffix(file.filename)}") as path:
            await asyncio.to_thread(_save, file.file, path)
            importing = import_file(
                conn,
                layer,
                path,
                settings,
                crs=crs,
                commune=commune,
                repair=repair,
                user=user,
                mode=mode,
                mapping=mapping,
                lang=lang,
                allow_copies=allow_copies,
                dry_run=dry_run,
                note=note,
                isolated=True,  # an upload: GDAL reads it in a process killed when slow
            )
            report = await unless_gone(request, importing)
    finally:
        await file.close()
    report.file = name
    if dry_run or not report.inserted + report.updated:  # nothing was made or changed (as a sync)
        response.status_code = 200
    return report
