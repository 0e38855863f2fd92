"""`geo-comuna sheet`: parcel sheets as PDF files, one parcel's or a whole commune's.

Like a map file, a sheet is made to be handed around, so it shows what everyone may read
(no notes of history changes, holders and rights as an anonymous reader sees them) unless
``--members`` asks for everything (then it is for the commune's own people only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import cli_lang, die, load_settings, progress, run, tell
from geo_comuna.errors import Said


def sheet(
    parcel: Annotated[
        str | None, typer.Argument(help="the parcel's id, or its code with --commune")
    ] = None,
    commune: Annotated[
        str | None,
        typer.Option(help="commune code or id: every parcel's sheet (or the parcel PARCEL's)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="folder for a commune's sheets and index.pdf; file for one sheet"
        ),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="es or en: the sheets' language (default es), and the messages' (default: "
            "the locale's)",
        ),
    ] = None,
    members: Annotated[
        bool,
        typer.Option(
            "--members",
            help="print what only a commune's own users may read too (history notes, holders' "
            "names); without it the sheets show what everyone may read",
        ),
    ] = False,
) -> None:
    """A parcel's printable sheet (A4 PDF): map, area, perimeter, vertices in REGVEN / UTM,
    linderos, tenure history, holders and documents, QR code. With --commune and no PARCEL,
    one sheet per parcel of the commune and an index, in the folder --out."""
    from geo_comuna.accounts import local_admin
    from geo_comuna.features.query import require_commune
    from geo_comuna.maps import sheet as sheets

    if lang is not None:
        cli_lang(lang)  # checked; the messages speak it too
    lang = lang or "es"  # the sheets are Spanish first, whatever the locale
    if parcel is None and commune is None:
        die(
            Said(
                "name a parcel (its id, or its code with --commune) or a commune (--commune)",
                "indique una parcela (su id, o su código con --commune) o una comuna (--commune)",
            ),
            2,
        )
    if parcel is None and out is None:
        die(
            Said(
                "a commune's sheets need a folder: --out DIR",
                "las fichas de una comuna necesitan una carpeta: --out DIR",
            ),
            2,
        )
    settings = load_settings()
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    if not settings.public_url:  # a sheet handed out points its reader to this address
        tell(
            Said(
                f"note: the sheets' QR codes point to {base}, this machine; set "
                "GEO_COMUNA_PUBLIC_URL to the address people reach the service at",
                f"nota: los códigos QR de las fichas apuntan a {base}, esta máquina; defina "
                "GEO_COMUNA_PUBLIC_URL con la dirección donde la gente llega al servicio",
            ),
            err=True,
            fg=typer.colors.YELLOW,
        )
    user = local_admin() if members else None

    async def one(conn: Any) -> tuple[Path, int]:
        parcel_id = await _parcel_id(conn, parcel, commune)  # type: ignore[arg-type]
        code, pdf = await sheets.parcel_sheet(conn, parcel_id, user, lang, base)
        path = out or Path(sheets.file_name(code, parcel_id, set()))
        if path.is_dir():
            path = path / sheets.file_name(code, parcel_id, set())
        path.write_bytes(pdf)
        return path, len(pdf)

    async def batch(conn: Any) -> list[Path]:
        commune_id = await require_commune(conn, commune)  # type: ignore[arg-type]
        return await sheets.commune_sheets(
            conn,
            commune_id,
            commune,
            user,
            lang,
            base,
            out,
            progress=progress,  # type: ignore[arg-type]
        )

    if parcel is not None:
        path, size = run(one, settings)
        tell(Said(f"wrote {path} ({size / 1e3:.0f} kB)", f"escrita {path} ({size / 1e3:.0f} kB)"))
        return
    written = run(batch, settings)
    n = len(written) - 1
    tell(
        Said(
            f"wrote {n} sheets and {written[-1]} in {out}",
            f"escritas {n} fichas y {written[-1]} en {out}",
        )
    )


async def _parcel_id(conn: Any, parcel: str, commune: str | None) -> int:
    """A parcel by id (digits), or by code within --commune."""
    from geo_comuna.errors import InvalidInput, NotFound
    from geo_comuna.features.query import require_commune

    if commune is None:
        if not (parcel.isascii() and parcel.isdigit()):
            raise InvalidInput(
                Said(
                    f"parcel {parcel!r}: give its id, or its code with --commune",
                    f"parcela {parcel!r}: indique su id, o su código con --commune",
                )
            )
        return int(parcel)
    commune_id = await require_commune(conn, commune)
    cur = await conn.execute(
        "SELECT id FROM parcels WHERE commune_id = %s AND code = %s", (commune_id, parcel)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(
                f"no parcel with code {parcel!r} in commune {commune!r}",
                f"no hay ninguna parcela con código {parcel!r} en la comuna {commune!r}",
            ),
            layer="parcels",
        )
    return row[0]
