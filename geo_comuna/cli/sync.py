"""`geo-comuna sync`: a commune package's field edits back into the store (maps/sync.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import cli_lang, die, load_settings, progress, run
from geo_comuna.errors import Said
from geo_comuna.maps.sync_summary import summary


def sync(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    file: Annotated[Path, typer.Argument(help="the package's comuna.gpkg, or the package's .zip")],
    delete_missing: Annotated[
        bool,
        typer.Option(
            "--delete-missing",
            help="delete the commune's features the package no longer has "
            "(without it they are only reported)",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="print the differences and check every write as the sync would, write nothing",
        ),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="make invalid geometries valid (ST_MakeValid), each change reported"
        ),
    ] = False,
    theirs: Annotated[
        bool,
        typer.Option(
            "--theirs",
            help="on a conflict (changed on the server and in the package) keep the "
            "server's values",
        ),
    ] = False,
    ours: Annotated[
        bool,
        typer.Option(
            "--ours",
            help="on a conflict (changed on the server and in the package) write the "
            "package's values over the server's",
        ),
    ] = False,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="es or en (default: the locale's, Spanish unless English)"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the whole diff as JSON instead of the summary")
    ] = False,
) -> None:
    """Bring a commune package's field edits back (made with geo-comuna package, edited in
    QGIS or QField): features with an id update the stored ones that differ, features
    without an id are new. A field changed both in the package and on the server since the
    package was made is a conflict, reported with both values and left unwritten unless
    --theirs or --ours; a field changed on one side only takes that side's value. One
    transaction: a refused feature writes nothing. Exit code 3 when conflicts were left
    unwritten."""
    from geo_comuna.accounts import local_admin
    from geo_comuna.features.query import require_commune
    from geo_comuna.maps.sync import report_json, sync_file

    lang = cli_lang(lang)
    if ours and theirs:
        die(Said("--ours and --theirs exclude each other", "--ours y --theirs se excluyen"), 2)
    if not file.is_file():
        die(
            Said(f"{file} does not exist or is not a file", f"{file} no existe o no es un archivo"),
            2,
        )
    settings = load_settings()

    async def work(conn: Any) -> Any:
        commune_id = await require_commune(conn, commune)
        progress(Said(f"reading {file.name}", f"leyendo {file.name}"))
        with tempfile.TemporaryDirectory(prefix="geo_comuna-sync-") as scratch:
            return await sync_file(
                conn,
                commune_id,
                file,
                Path(scratch),
                settings,
                local_admin(),
                dry_run=dry_run,
                delete_missing=delete_missing,
                resolve="ours" if ours else "theirs" if theirs else None,
                repair=repair,
                progress=progress,
                lang=lang,
            )

    report = run(work, settings)
    if as_json:
        typer.echo(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    else:
        for line in summary(report, lang):
            typer.echo(line)
    if report.unresolved:
        raise typer.Exit(3)
