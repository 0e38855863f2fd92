"""`geo-comuna sync`: a commune package's field edits back into the store (maps/sync.py)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import cli_lang, die, load_settings, progress, run
from geo_comuna.errors import Said

#: what a person reads, in each language of --lang
TEXT = {
    "es": {
        "dry": "Simulación: no se escribió nada.",
        "written": "{n} {features} (auditoría: «sync {file}»).",
        "features": ("entidad escrita", "entidades escritas"),
        "nothing": "Nada que cambiar: el paquete coincide con la base de datos.",
        "added": ("nueva", "nuevas"),
        "changed": ("cambiada", "cambiadas"),
        "deleted": ("borrada", "borradas"),
        "missing": (
            "ausente del paquete (no borrada; use --delete-missing)",
            "ausentes del paquete (no borradas; use --delete-missing)",
        ),
        "conflicts": ("conflicto", "conflictos"),
        "synced": (
            "nueva ya guardada por una sincronización anterior",
            "nuevas ya guardadas por una sincronización anterior",
        ),
        "newer": (
            "nueva en el servidor desde que se hizo el paquete (se conserva)",
            "nuevas en el servidor desde que se hizo el paquete (se conservan)",
        ),
        "conflict": "  conflicto {layer} {id}: versión del paquete {ours}, del servidor {theirs}",
        "gone": "  conflicto {layer} {id}: borrada en el servidor desde que se hizo el paquete",
        "field": "    {name}: paquete {ours} / servidor {theirs}",
        "unresolved": "{n} {conflicts} sin escribir: --theirs conserva lo del servidor, "
        "--ours escribe lo del paquete.",
        "ours": "resuelto: se escribió lo del paquete",
        "theirs": "resuelto: se conservó lo del servidor",
        "repaired": "  reparada {layer} {feature}: {reason} (área {pct})",
        "geometry": "Geometría",
        "moved": "movida",
        "empty": "(vacío)",
    },
    "en": {
        "dry": "Dry run: nothing was written.",
        "written": "{n} {features} (audit: 'sync {file}').",
        "features": ("feature written", "features written"),
        "nothing": "Nothing to change: the package matches the database.",
        "added": ("added", "added"),
        "changed": ("changed", "changed"),
        "deleted": ("deleted", "deleted"),
        "missing": ("missing from the package (not deleted; use --delete-missing)",) * 2,
        "conflicts": ("conflict", "conflicts"),
        "synced": ("new but stored by an earlier sync already",) * 2,
        "newer": ("added on the server since the package was made (kept)",) * 2,
        "conflict": "  conflict {layer} {id}: package version {ours}, server version {theirs}",
        "gone": "  conflict {layer} {id}: deleted on the server since the package was made",
        "field": "    {name}: package {ours} / server {theirs}",
        "unresolved": "{n} {conflicts} left unwritten: --theirs keeps the server's values, "
        "--ours writes the package's.",
        "ours": "settled: the package's values written",
        "theirs": "settled: the server's values kept",
        "repaired": "  repaired {layer} {feature}: {reason} (area {pct})",
        "geometry": "Geometry",
        "moved": "moved",
        "empty": "(empty)",
    },
}


def counted(n: int, words: tuple[str, str]) -> str:
    """ "1 conflicto", "2 conflictos": the number and the word it takes."""
    return f"{n} {words[0] if n == 1 else words[1]}"


def _repaired(t: dict[str, Any], repair: dict[str, Any]) -> str:
    pct = repair.get("area_change_pct")
    return t["repaired"].format(
        layer=repair["layer"],
        feature=repair["feature"],
        reason=repair["reason"],
        pct="?" if pct is None else f"{pct:+g} %",
    )


def _titled(layer: str, field: str | None, lang: str) -> str:
    """A layer's or a field's title in ``lang``, the name in the file beside a layer's (what
    QGIS and the GeoPackage show): 'Parcelas (parcels)', 'Tenencia'. The summary said the
    codes alone."""
    from geo_comuna.layers import LAYERS

    found = LAYERS.get(layer)
    if found is None:
        return field or layer
    if field is None:
        return f"{found.title.get(lang)} ({layer})"
    return found.field_title(field, lang)


def _value(layer: str, field: str, value: Any, lang: str, codes: dict | None = None) -> Any:
    """A coded value by its label in ``lang`` ('Abandonada (recuperable)'), a feature a
    reference names by id with its code beside ('12 (EM-P001)', from SyncReport.codes), else
    as it is."""
    from geo_comuna.layers import LAYERS

    found = LAYERS.get(layer)
    reference = found.reference(field) if found is not None else None
    if reference is not None and value in (codes or {}).get(reference.table, {}):
        return f"{value} ({codes[reference.table][value]})"  # type: ignore[index]
    attribute = found.attribute(field) if found is not None else None
    domain = getattr(attribute, "domain", None)
    if domain is not None and isinstance(value, str) and value in domain.values:
        return domain.values[value].get(lang)
    return value


def summary(report: Any, lang: str) -> list[str]:
    """The report as lines a person reads, in ``lang``."""
    t = TEXT[lang]
    lines = []
    for name, diff in report.layers.items():
        if diff:
            lines += _layer_lines(name, diff, report, t, lang)
    lines += [_repaired(t, r) for r in report.repairs]
    if not lines:
        lines.append(t["nothing"])
    if report.unresolved:
        n = report.unresolved
        lines.append(t["unresolved"].format(n=n, conflicts=t["conflicts"][n != 1]))
    if report.dry_run:
        lines.append(t["dry"])
    elif report.written:
        n = report.written
        lines.append(t["written"].format(n=n, features=t["features"][n != 1], file=report.file))
    return lines


def _layer_lines(name: str, diff: Any, report: Any, t: dict, lang: str) -> list[str]:
    """One layer's counts, then each change (the feature's id and code, each field's value
    before and after: '30 (EM-P001): Tenencia: Ocupada → En disputa') and each conflict."""
    deleted = t["deleted"] if report.delete_missing else t["missing"]
    counts = [
        counted(len(diff.added), t["added"]),
        counted(len(diff.changed), t["changed"]),
        counted(len(diff.missing), deleted),
        counted(len(diff.conflicts), t["conflicts"]),
    ]
    if diff.synced:
        counts.append(counted(len(diff.synced), t["synced"]))
    if diff.newer:
        counts.append(counted(len(diff.newer), t["newer"]))
    lines = [f"{_titled(name, None, lang)}: " + ", ".join(counts)]
    for change in diff.changed:
        which = f"{change.id} ({change.code})" if change.code else f"{change.id}"
        fields = "; ".join(
            _changed(name, f, pair, t, lang, report.codes) for f, pair in change.fields.items()
        )
        lines.append(f"  {which}: {fields}")
    for conflict in diff.conflicts:
        key = "gone" if conflict.server_version is None else "conflict"
        ours, theirs = conflict.package_version, conflict.server_version
        line = t[key].format(layer=name, id=conflict.id, ours=ours, theirs=theirs)
        if conflict.resolved:
            line += f" ({t[conflict.resolved]})"
        lines.append(line)
        for field, both in conflict.fields.items():
            ours, theirs = (
                _conflicting(name, field, both[k], t, lang, report.codes)
                for k in ("package", "server")
            )
            title = _titled(name, field, lang)
            lines.append(t["field"].format(name=title, ours=ours, theirs=theirs))
    return lines


def _changed(
    layer: str, field: str, pair: list[Any], t: dict, lang: str, codes: dict | None = None
) -> str:
    """A changed field as 'Tenencia: Ocupada → En disputa' (the server's value, then the
    package's), a moved geometry as 'Geometría: movida'."""
    title = _titled(layer, field, lang) if field != "geometry" else t["geometry"]
    if field == "geometry":
        return f"{title}: {t['moved']}"
    new, old = (_value(layer, field, v, lang, codes) for v in pair)
    return f"{title}: {_shown(old, t)} → {_shown(new, t)}"


def _shown(value: Any, t: dict) -> str:
    return t["empty"] if value is None or value == "" else str(value)


def _conflicting(layer: str, field: str, value: Any, t: dict, lang: str, codes: dict) -> str:
    """A conflict's value: a text quoted, so that its spaces show; an empty one said so (it
    printed None); a referenced feature with its code."""
    shown = _value(layer, field, value, lang, codes)
    if value is None or value == "":
        return t["empty"]
    return repr(shown) if isinstance(value, str) else str(shown)


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
    without an id are new. A feature changed on the server since the package was made is a
    conflict, reported with both versions and left unwritten unless --theirs or --ours. One
    transaction: a refused feature writes nothing. Exit code 3 when conflicts were left
    unwritten."""
    from geo_comuna.accounts import local_admin
    from geo_comuna.features.query import require_commune
    from geo_comuna.maps.sync import sync_file

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
            )

    report = run(work, settings)
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2, ensure_ascii=False))
    else:
        for line in summary(report, lang):
            typer.echo(line)
    if report.unresolved:
        raise typer.Exit(3)
