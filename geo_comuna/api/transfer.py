"""File import and export over HTTP for every layer: the same services as the CLI
(io/importer.py, io/exporter.py), with uploads and downloads going through temporary files.

The upload body is limited by api/app.py's BodyLimit (paths ending in /import). The client's
filename is never used as a path: only its suffix, which tells the format.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from geo_comuna.api.deps import Conn, LayerDep, ReaderAccess, SettingsDep, Writer
from geo_comuna.features.query import require_commune
from geo_comuna.io.exporter import check_crs, export_layer
from geo_comuna.io.formats import FORMATS, get_format
from geo_comuna.io.importer import ImportReport, import_file

router = APIRouter(tags=["import/export"])
#: scratch directories of uploads, exports and DEMs; a killed server leaves its own behind
SCRATCH_PREFIXES = ("geo_comuna-upload-", "geo_comuna-export-", "geo_comuna-dem-")


def sweep_scratch(max_age_s: float = 6 * 3600) -> int:
    """Remove scratch directories older than ``max_age_s`` (left by a killed server; a live
    request's are far younger). Called at start-up; returns how many went."""
    cutoff = time.time() - max_age_s
    gone = 0
    for prefix in SCRATCH_PREFIXES:
        for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            try:
                if path.is_dir() and path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
                    gone += 1
            except OSError:  # raced with another server's sweep
                continue
    return gone


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
Commune = Annotated[str | None, Query(description="commune id or registry code")]


def _client_name(filename: str | None) -> str:
    """The last component of the client's filename, for messages only (either slash)."""
    return PureWindowsPath(PurePosixPath(filename or "upload").name).name or "upload"


def _suffix(filename: str | None) -> str:
    suffix = PurePosixPath(_client_name(filename)).suffix
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


def _save(source: BinaryIO, path: Path) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


@router.get(
    "/collections/{collection_id}/export",
    summary="Download a layer as a file",
    response_class=FileResponse,
    responses={200: {"content": {f.media_type: {} for f in FORMATS.values()}}},
)
async def export_file(
    conn: Conn,
    layer: LayerDep,
    access: ReaderAccess,
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
    commune: Commune = None,
) -> FileResponse:
    """The layer's features (only one commune's with ``commune``) with every output property
    the reader may read (members-only ones: of the reader's communes only); a CSV carries the
    geometry as WKT and no CRS: re-import it with ``crs``."""
    format_ = get_format(fmt)
    check_crs(format_, crs)  # refuse before any work
    commune_id = None
    if commune is not None:
        commune_id = await require_commune(conn, commune)
    scratch = Path(tempfile.mkdtemp(prefix="geo_comuna-export-"))
    try:
        report = await export_layer(
            conn, layer, scratch, format_, crs=crs, commune_id=commune_id, access=access
        )
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        report.file,
        media_type=format_.media_type,
        filename=Path(report.file).name,
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )


@router.post(
    "/collections/{collection_id}/import",
    status_code=201,
    response_model=ImportReport,
    summary="Import a file into a layer",
)
async def import_upload(
    conn: Conn,
    layer: LayerDep,
    settings: SettingsDep,
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
) -> ImportReport:
    """All features or none: the first bad one is named by its 1-based position."""
    scratch = Path(tempfile.mkdtemp(prefix="geo_comuna-upload-"))
    try:
        path = scratch / f"upload{_suffix(file.filename)}"
        await asyncio.to_thread(_save, file.file, path)
        report = await import_file(
            conn, layer, path, settings, crs=crs, commune=commune, repair=repair, user=user
        )
    finally:
        await file.close()
        shutil.rmtree(scratch, ignore_errors=True)
    report.file = _client_name(file.filename)
    return report
