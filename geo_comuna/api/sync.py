"""Field edits back over HTTP: ``POST /communes/{commune}/sync`` with the commune's package
(its .gpkg, or the .zip `GET /communes/{commune}/package` gave), the same service as
`geo-comuna sync` (maps/sync.py). The upload goes through the server's scratch directory as
imports do (api/transfer.py; limited by api/app.py's BodyLimit like them); the client's file
name is kept only for messages and the audit, never as a path.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from geo_comuna.api.deps import (
    LANGS,
    ONE_FILE,
    Conn,
    ScratchDep,
    SettingsDep,
    Writer,
    only_form_fields,
)
from geo_comuna.api.scratch import client_name
from geo_comuna.api.transfer import _save
from geo_comuna.errors import InvalidFile, Said
from geo_comuna.features.query import require_commune
from geo_comuna.maps.sync import may_sync, report_json, sync_file
from geo_comuna.maps.sync_summary import summary

router = APIRouter(tags=["import/export"])


@router.post(
    "/communes/{commune}/sync",
    summary="Bring a commune package's field edits back",
    responses={
        200: {"description": "nothing written: a dry run, or nothing changed"},
        201: {"description": "the edits written, with their diff"},
    },
)
async def commune_sync(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    scratch: ScratchDep,
    user: Writer,
    commune: Annotated[str, Path(description="commune id or registry code")],
    file: Annotated[
        UploadFile, File(description="the package's comuna.gpkg, or the package's .zip")
    ],
    dry_run: Annotated[
        bool,
        Query(description="answer the diff and check every write as the sync would, write nothing"),
    ] = False,
    repair: Annotated[
        bool,
        Query(description="make invalid geometries valid (ST_MakeValid) and report each change"),
    ] = False,
    delete_missing: Annotated[
        bool, Query(description="delete the commune's features the package no longer has")
    ] = False,
    conflicts: Annotated[
        Literal["ours", "theirs"] | None,
        Query(
            description="a feature changed both on the server and in the package: 'ours' "
            "writes the package's values, 'theirs' keeps the server's; unset, it is reported "
            "and left unwritten"
        ),
    ] = None,
    lang: Annotated[
        str | None,
        Query(
            pattern=LANGS,
            description="es or en: the answer also carries `summary`, the diff as lines a "
            "person reads in that language (what `geo-comuna sync` prints, its options named "
            "as the page GET /communes/{commune}/sync labels them when it sends the request, "
            "else as this query's parameters)",
        ),
    ] = None,
) -> JSONResponse:
    """Features with an ``id`` update the stored ones that differ, features without one are
    new, stored features the package lacks are deleted with ``delete_missing``; a feature
    changed on the server since the package was made is a conflict (both versions, field by
    field). One transaction: a refused feature (named by layer and id) writes nothing."""
    commune_id = await require_commune(conn, commune)
    may_sync(user, commune_id, commune)  # before reading a byte of the upload
    await only_form_fields(request, ONE_FILE)
    name = client_name(file.filename)
    suffix = ".zip" if name.lower().endswith(".zip") else ".gpkg"
    try:
        with scratch.holding(name, f"upload{suffix}") as path:
            await asyncio.to_thread(_save, file.file, path)
            if path.stat().st_size == 0:
                raise InvalidFile(Said(f"{name} is empty", f"{name} está vacío"))
            report = await sync_file(
                conn,
                commune_id,
                path,
                path.parent,
                settings,
                user,
                name,
                isolated=True,  # an upload: GDAL reads it in a process killed when slow
                dry_run=dry_run,
                delete_missing=delete_missing,
                resolve=conflicts,
                repair=repair,
                lang=lang or "es",
            )
    finally:
        await file.close()
    body: dict[str, Any] = report_json(report)
    if lang is not None:
        # the page's own request names its options as the page labels them; curl or a
        # script, as the query's parameters (found from outside: a curl user read 'tick
        # "Delete the features..."')
        body["summary"] = summary(report, lang, "page" if _from_a_page(request) else "api")
    return JSONResponse(body, status_code=201 if report.written else 200)


def _from_a_page(request: Request) -> bool:
    """Did a browser send it from this server's page? It says so (Sec-Fetch-Site), or, over
    plain HTTP on a network address where it does not, its POST names the page's origin."""
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == request.headers.get("host")
