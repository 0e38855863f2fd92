"""`geo-comuna map`: maps as self-contained HTML files.

A file is made to be handed around, so it shows what everyone may read (dwellings per sector,
no residents nor notes) unless ``--members`` asks for everything (then it is for the
commune's own people only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import cli_lang, group_lang, load_settings, progress, run, tell
from geo_comuna.errors import Said

map_app = typer.Typer(
    help="Maps as one self-contained HTML file each (work offline).",
    no_args_is_help=True,
    callback=group_lang,
)


def _write_map(build: Callable[[Any], Awaitable[str]], out: Path) -> None:
    html = run(build, load_settings())
    out.write_text(html, encoding="utf-8")
    size = f"{len(html.encode()) / 1e6:.2f}"
    es = size.replace(".", ",")  # 0,22 MB
    tell(Said(f"wrote {out} ({size} MB)", f"escrito {out} ({es} MB)"))


def _map_page(lang: str | None, members: bool = False) -> Any:
    from geo_comuna.accounts import EVERYWHERE, PUBLIC
    from geo_comuna.maps.page import Page

    if lang is not None:
        cli_lang(lang)  # checked; the messages speak it too
    lang = lang or "es"  # the maps are Spanish first, whatever the locale
    settings = load_settings()
    return Page(
        lang=lang,
        standalone=True,
        tile_threshold=settings.map_tile_threshold,
        access=EVERYWHERE if members else PUBLIC,
        styles_path=settings.styles_path,
        web_assets_dir=settings.web_assets_dir,
    )


MapOut = Annotated[Path, typer.Option("--out", help="HTML file to write (replaced)")]
MapLang = Annotated[
    str | None,
    typer.Option(
        "--lang",
        help="es or en: the map's language (default es), and the messages' (default: the locale's)",
    ),
]
Members = Annotated[
    bool,
    typer.Option(
        "--members",
        help="draw what only a commune's own users may read too (each home, residents, "
        "notes); without it the file shows what everyone may read",
    ),
]


@map_app.command("commune")
def map_commune(
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    out: MapOut,
    lang: MapLang = None,
    analysis: Annotated[
        str | None, typer.Option(help="an analysis map instead, e.g. water-hookups")
    ] = None,
    members: Members = False,
) -> None:
    """A commune's map (or one analysis' map) as one self-contained HTML file."""
    from geo_comuna.features.query import require_commune
    from geo_comuna.maps.analysis_map import analysis_map
    from geo_comuna.maps.commune import commune_map

    page = _map_page(lang, members)

    async def build(conn: Any) -> str:
        commune_id = await require_commune(conn, commune)
        part = f"{commune}" + (f" / {analysis}" if analysis else "")
        progress(Said(f"drawing {part}", f"dibujando {part}"))
        if analysis:
            return await analysis_map(conn, commune_id, analysis, page)
        return await commune_map(conn, commune_id, page)

    _write_map(build, out)


@map_app.command("analysis")
def map_analysis(
    name: Annotated[str, typer.Argument(help="analysis, e.g. water-hookups")],
    commune: Annotated[str, typer.Argument(help="commune code or id")],
    out: MapOut,
    lang: MapLang = None,
    members: Members = False,
) -> None:
    """One analysis' map of a commune as one self-contained HTML file."""
    map_commune(commune, out, lang, name, members)


@map_app.command("national")
def map_national(out: MapOut, lang: MapLang = None) -> None:
    """The national map (communes by state and status, exchanges) as one HTML file."""
    from geo_comuna.maps.national import national_map

    page = _map_page(lang)
    _write_map(lambda conn: national_map(conn, page), out)
