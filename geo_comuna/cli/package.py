"""`geo-comuna package`: a commune's package for field work (maps/package.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import Lang, load_settings, progress, run, tell
from geo_comuna.errors import Said


def package(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    out: Annotated[Path, typer.Option("--out", help="zip file to write (replaced once complete)")],
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="only what everyone may read (no parcel notes, residents or home positions), "
            "as an anonymous download of GET /communes/{c}/package has it",
        ),
    ] = False,
    lang: Lang = None,
) -> None:
    """A commune's package for QGIS and QField: one GeoPackage with every layer (each feature
    with its id and version, for the sync), the map styles, QGIS projects with drop-downs for
    coded values, the offline map and the report, in Spanish and English. Whoever runs the
    CLI holds the database: the package holds everything, members-only data too, so it is
    for the commune's own people, unless --public."""
    from geo_comuna.accounts import EVERYWHERE, PUBLIC
    from geo_comuna.features.query import require_commune
    from geo_comuna.maps.package import build_package

    settings = load_settings()

    async def work(conn: Any) -> Any:
        commune_id = await require_commune(conn, commune)
        progress(Said(f"packaging {commune}", f"empaquetando {commune}"))
        return await build_package(
            conn, commune_id, out, settings, PUBLIC if public else EVERYWHERE, progress
        )

    report = run(work, settings)
    size = f"{out.stat().st_size / 1e6:.1f}"
    missing = len(report.unfinished)
    tell(  # for people (stderr); the JSON on stdout is for programs
        Said(
            f"package written: {out} ({len(report.files)} files, {size} MB)"
            + (
                f"; {missing} analyses could not be computed (README.txt says why)"
                if missing
                else ""
            ),
            f"paquete escrito: {out} ({len(report.files)} archivos, {size.replace('.', ',')} MB)"
            + (
                f"; {missing} análisis no se pudieron calcular (README.txt dice por qué)"
                if missing
                else ""
            ),
        ),
        err=True,
    )
    typer.echo(json.dumps(report.__dict__, indent=2, ensure_ascii=False))
