"""`geo-comuna dem`: elevation models per commune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import Lang, die, group_lang, load_settings, run
from geo_comuna.errors import Said

dem_app = typer.Typer(
    help="Elevation models (DEMs) per commune, for terrain analyses and hillshades.",
    no_args_is_help=True,
    callback=group_lang,
)


@dem_app.command("add")
def dem_add(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    file: Annotated[
        Path, typer.Argument(help="single-band GeoTIFF in any CRS, elevations in metres")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="name to keep it under (default: the file "
            "name without suffix); replaces a DEM of that "
            "name"
        ),
    ] = None,
    lang: Lang = None,
) -> None:
    """Store a DEM for a commune (in the database: backups hold it)."""
    from geo_comuna.accounts import local_admin, writing
    from geo_comuna.features.query import require_commune
    from geo_comuna.io import dems

    settings = load_settings()
    if not file.is_file():
        die(Said(f"{file}: no such file", f"{file}: no existe el archivo"), 2)

    async def work(conn: Any) -> list[dict]:
        commune_id = await require_commune(conn, commune)
        async with writing(conn, local_admin(), row_security=False):
            added = await dems.register(conn, commune_id, file, name)
        return [d for d in await dems.listing(conn, commune_id) if d["id"] == added.id]

    typer.echo(json.dumps(run(work, settings)[0], indent=2, default=str))


@dem_app.command("list")
def dem_list(
    commune: Annotated[str | None, typer.Argument(help="commune code or id (default: all)")] = None,
    lang: Lang = None,
) -> None:
    """The DEMs stored (name, CRS, cell size in m, lon/lat bounds), the one analyses use
    first."""
    from geo_comuna.features.query import require_commune
    from geo_comuna.io import dems

    async def work(conn: Any) -> list[dict]:
        commune_id = None
        if commune is not None:
            commune_id = await require_commune(conn, commune)
        return await dems.listing(conn, commune_id)

    typer.echo(json.dumps(run(work, load_settings()), indent=2, default=str))


@dem_app.command("remove")
def dem_remove(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    dem_id: Annotated[int, typer.Argument(help="the DEM's id (geo-comuna dem list)")],
    lang: Lang = None,
) -> None:
    """Remove one of a commune's DEMs; analyses then use the next one, if any."""
    from geo_comuna.accounts import local_admin, writing
    from geo_comuna.features.query import require_commune
    from geo_comuna.io import dems

    async def work(conn: Any) -> bool:
        commune_id = await require_commune(conn, commune)
        async with writing(conn, local_admin(), row_security=False):
            return await dems.remove(conn, commune_id, dem_id)

    if not run(work, load_settings()):
        die(Said(f"{commune} has no DEM {dem_id}", f"{commune} no tiene el MDE {dem_id}"), 1)
    typer.echo(json.dumps({"removed": dem_id}))
