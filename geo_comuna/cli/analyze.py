"""`geo-comuna analyze`: a planning analysis for a commune, printed for a person (its figures
as a short table, labelled from analysis/figures.py in Spanish or English) or for a program
(--json, --geojson, --csv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_comuna.cli.common import cli_lang, die, load_settings, progress, run
from geo_comuna.errors import GeoComunaError, Said

TEXT = {
    "es": dict(
        list_head="Análisis disponibles (geo-comuna analyze NOMBRE COMUNA):",
        warnings="Advertencias",
        machines="Para programas: --json, --geojson o --csv.",
        need="indique el análisis y la comuna, o --list para ver los análisis",
        wrote="escrito",
    ),
    "en": dict(
        list_head="Analyses (geo-comuna analyze NAME COMMUNE):",
        warnings="Warnings",
        machines="For programs: --json, --geojson or --csv.",
        need="give the analysis and the commune, or --list to see the analyses",
        wrote="wrote",
    ),
}
FORMATS = ("json", "geojson", "csv")


def analyze(
    name: Annotated[
        str | None, typer.Argument(help="the analysis, e.g. water-hookups (--list names them)")
    ] = None,
    commune: Annotated[str | None, typer.Argument(help="commune code or id")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="analysis parameter as key=value (repeatable)"),
    ] = None,
    list_all: Annotated[
        bool, typer.Option("--list", help="list the analyses and their parameters")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the whole summary as JSON")] = False,
    as_geojson: Annotated[
        bool, typer.Option("--geojson", help="the answer's features as GeoJSON")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="the answer's rows as CSV")] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="json, geojson or csv (as the flags)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write to this file, not stdout")] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="es or en (default: the locale's, Spanish unless English)"),
    ] = None,
) -> None:
    """Run a planning analysis for a commune and print its figures as a short table, in
    Spanish or English; --json, --geojson and --csv give the whole answer to programs."""
    lang = cli_lang(lang)
    chosen = _format(as_json, as_geojson, as_csv, fmt)
    if list_all:
        typer.echo(_listing(lang))
        return
    if name is None or commune is None:
        die(TEXT[lang]["need"], 2)
    analysis, params = _analysis(name, param or [], chosen)

    async def work(conn: Any) -> Any:
        from geo_comuna.features.query import require_commune

        commune_id = await require_commune(conn, commune)
        progress(f"{name} · {commune}")
        return await analysis.run(conn, commune_id, params)

    result = run(work, load_settings())
    text = _text(analysis, result, chosen, commune, lang)
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{TEXT[lang]['wrote']} {out}")
    else:
        typer.echo(text)


def _format(as_json: bool, as_geojson: bool, as_csv: bool, fmt: str | None) -> str:
    """The one output asked for: a format for programs, or "table"."""
    flags = [f for f, on in zip(FORMATS, (as_json, as_geojson, as_csv), strict=True) if on]
    if fmt is not None:
        if fmt not in FORMATS:
            die(
                Said(
                    f"unknown format {fmt!r}; use json, geojson or csv",
                    f"formato desconocido {fmt!r}; use json, geojson o csv",
                ),
                2,
            )
        flags.append(fmt)
    if len(set(flags)) > 1:
        both = sorted(set(flags))
        die(
            Said(
                f"one output format at a time, not {' and '.join(both)}",
                f"un solo formato de salida a la vez, no {' y '.join(both)}",
            ),
            2,
        )
    return flags[0] if flags else "table"


def _analysis(name: str, param: list[str], chosen: str) -> tuple[Any, Any]:
    from geo_comuna.analysis.base import parse_params, refuse_csv_only
    from geo_comuna.analysis.registry import get_analysis

    try:
        analysis = get_analysis(name)
        values = dict(p.split("=", 1) for p in param if "=" in p)
        if len(values) != len(param):
            die(Said("parameters are key=value", "los parámetros son clave=valor"), 2)
        parsed = parse_params(analysis.params, values)
        refuse_csv_only(analysis.params, values, chosen)
        return analysis, parsed
    except GeoComunaError as exc:
        die(exc, 2)


def _listing(lang: str) -> str:
    from geo_comuna.analysis.registry import all_analyses

    lines = [TEXT[lang]["list_head"]]
    for analysis in all_analyses().values():
        title = analysis.title_es if lang == "es" else analysis.title_en
        lines.append(f"  {analysis.name:<18} {title}")
        lines.append(f"  {'':<18} -p {', '.join(analysis.params.model_fields) or '—'}")
    return "\n".join(lines)


def _text(analysis: Any, result: Any, chosen: str, commune: str, lang: str) -> str:
    if chosen == "csv":
        return result.csv()
    if chosen == "geojson":  # as f=geojson writes it: lines kept as arrays write themselves
        from geo_comuna.analysis.base import to_json

        return to_json(result.feature_collection(as_written=True, lang=lang)).decode()
    if chosen == "json":
        return json.dumps(
            {"summary": result.said_summary(lang), "warnings": result.said_warnings(lang)},
            default=str,
            indent=2,
            ensure_ascii=False,
        )
    from geo_comuna.analysis.figures import figures
    from geo_comuna.maps.templating import number

    title = analysis.title_es if lang == "es" else analysis.title_en
    rows = figures(analysis.name, result.summary, lang, number(lang))
    width = max((len(label) for label, _ in rows), default=0)
    lines = [f"{title} · {commune}", ""]
    lines += [f"  {label:<{width}}  {value:>14}" for label, value in rows]
    if result.warnings:
        lines += [
            "",
            f"{TEXT[lang]['warnings']}:",
            *(f"  - {w}" for w in result.said_warnings(lang)),
        ]
    lines += ["", TEXT[lang]["machines"]]
    return "\n".join(lines)
