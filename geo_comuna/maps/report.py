"""The commune report: summary figures (area and people per state, land by tenure, dwellings
by water and electricity, each installed analysis' summary), the commune and analysis maps,
print styles. Served, it embeds the maps as <iframe>s of the app's embed pages; downloaded,
it is one file with every map inlined (iframe srcdoc of the standalone pages).

Every value reaches the HTML through Jinja2 with autoescaping on.

For a reader outside the commune the figures of residents (a members-only property) are shown
only for groups of at least MIN_GROUP homes (features/disclosure.py's rule; "—" otherwise),
analyses of homes are summarised per sector, and the maps are those the reader would see.

The served page is kept per version of every table it reads (work.cache), per language,
address and reader class (the commune's users and admins, or everyone else: what a page shows
depends on nothing else, see ``_reader_class``), so a repeat costs one query of versions. Its
"generated" date is then when its figures were computed, which is still what they say.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.analysis import disclosure as analysis_disclosure
from geo_comuna.analysis.base import Analysis, Once, Unfinished, answer, unfinished
from geo_comuna.analysis.figures import figures
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.errors import GeoComunaError, NotFound, Said, TooSlow
from geo_comuna.features import breakdown, disclosure
from geo_comuna.layers import LAYERS
from geo_comuna.maps import data
from geo_comuna.maps.analysis_map import NEEDS_DEM, analysis_map, analysis_title
from geo_comuna.maps.commune import commune_map
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.templating import day, environment, number

log = logging.getLogger("geo_comuna.maps")
#: analyses summarised in the report, in this order, when installed (terrain where the
#: commune has a DEM: report_analyses)
REPORT_ANALYSES = ("land-recovery", "water-hookups", "electricity-gaps", "stair-access", "terrain")

WORDS = {
    "es": dict(
        report="Informe",
        code="Código",
        founded="fundada",
        area="superficie",
        population="habitantes (registro)",
        families="familias",
        parcels="parcelas",
        dwellings="viviendas",
        residents="habitantes",
        states_touched="estados que toca",
        by_state="Por estado",
        state="Estado",
        land="Tierra: parcelas por tenencia",
        no_parcels="La comuna no tiene parcelas registradas.",
        no_dwellings="La comuna no tiene viviendas registradas.",
        withheld="—: habitantes de menos de 3 viviendas, o que una resta entre cifras daría; "
        "solo los ven los usuarios de la comuna.",
        tenure="Tenencia",
        recovered="con fecha de recuperación",
        utilities="Servicios: brechas de agua y electricidad",
        analyses="Análisis",
        maps="Mapas",
        footer="Generado el",
        source="Fuente",
        commune_map="Mapa de la comuna",
        download="Descargar (un archivo HTML)",
        print="Imprimir",
        other="English",
    ),
    "en": dict(
        report="Report",
        code="Code",
        founded="founded",
        area="area",
        population="people (registry)",
        families="families",
        parcels="parcels",
        dwellings="dwellings",
        residents="residents",
        states_touched="states touched",
        by_state="By state",
        state="State",
        land="Land: parcels by tenure",
        no_parcels="The commune has no parcels recorded.",
        no_dwellings="The commune has no homes recorded.",
        withheld="—: residents of fewer than 3 homes, or that a subtraction between figures "
        "would give; shown to the commune's own users only.",
        tenure="Tenure",
        recovered="with a recovery date",
        utilities="Utilities: water and electricity gaps",
        analyses="Analyses",
        maps="Maps",
        footer="Generated",
        source="Source",
        commune_map="Commune map",
        download="Download (one HTML file)",
        print="Print",
        other="Español",
    ),
}


async def _commune(conn: AsyncConnection, commune_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, code, name, kind, status, founded, families, population, "
            "source FROM communes WHERE id = %s",
            (commune_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(f"no commune with id {commune_id}", f"no existe la comuna con id {commune_id}")
        )
    return row


async def _analysis_summaries(
    conn: AsyncConnection,
    commune_id: int,
    analyses: list[Analysis],
    lang: str,
    styles: Styles,
    access: Access,
) -> list[dict[str, Any]]:
    """One after another: side by side on the request's connection they took as long
    (bench/README.md, the report), their computations holding the interpreter in turn. Each
    gets an equal share of the time left (work.in_shares), the smallest first: one that
    cannot finish in a commune of 200,000 parcels took the whole request's time, and every
    analysis after it said it had run out of time too. Listed in ``analyses``' order."""
    summaries = {
        analysis.name: await _analysis_summary(conn, commune_id, analysis, lang, styles, access)
        for analysis in work.in_shares(await smallest_first(conn, commune_id, analyses))
    }
    return [summaries[analysis.name] for analysis in analyses]


async def answer_all(conn: AsyncConnection, commune_id: int) -> None:
    """The report's analyses, the smallest first, each within its share of the time left
    (work.in_shares), kept in the cache installed with work.caching (an analysis.base.Once)
    for the pages that show them: an answer, or why there is none. A commune of 200,000
    parcels took 11-18 s of land recovery, and its package was a 503 when the request's time
    then ran out drawing its maps; now what does not fit is left out, and the pages say so."""
    analyses = await smallest_first(conn, commune_id, await report_analyses(conn, commune_id))
    for analysis in work.in_shares(analyses):
        with contextlib.suppress(Unfinished):  # kept by the cache, said by the pages
            await answer(analysis, conn, commune_id, analysis.params())


async def report_analyses(conn: AsyncConnection, commune_id: int) -> list[Analysis]:
    """The analyses the commune's report summarises, in its order: those installed, terrain
    only where the commune has a DEM (the commune map says how to add one)."""
    installed = all_analyses()
    names = [name for name in REPORT_ANALYSES if name in installed]
    if NEEDS_DEM.intersection(names):
        cur = await conn.execute(
            "SELECT EXISTS (SELECT FROM dems WHERE commune_id = %s)", (commune_id,)
        )
        if not (await cur.fetchone())[0]:
            names = [name for name in names if name not in NEEDS_DEM]
    return [installed[name] for name in names]


async def smallest_first(
    conn: AsyncConnection, commune_id: int, analyses: list[Analysis]
) -> list[Analysis]:
    """``analyses`` in the order to run them within shares of one request's time (work.
    in_shares): the one with the fewest rows of what it grows with in the commune first (ties
    in the given order). The last gets what the others left: run first, land recovery of a
    commune of 200,000 parcels (11-14 s) had a quarter of a report's 20 s, and a report
    lacked it while the three analyses after it took a second together."""
    tables = sorted({a.grows_with for a in analyses if a.grows_with is not None})
    counts: dict[str, int] = {}
    if tables:  # one statement: each table's rows in the commune
        counted = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, count(*) FROM {} WHERE commune_id = %(commune)s").format(
                sql.Literal(table), sql.Identifier(table)
            )
            for table in tables
        )
        cur = await conn.execute(counted, {"commune": commune_id})
        counts = dict(await cur.fetchall())
    return sorted(analyses, key=lambda a: counts.get(a.grows_with, 0))


async def _analysis_summary(
    conn: AsyncConnection,
    commune_id: int,
    analysis: Analysis,
    lang: str,
    styles: Styles,
    access: Access,
) -> dict[str, Any]:
    name = analysis.name
    entry: dict[str, Any] = {"name": name, "title": analysis_title(name, styles, lang)}
    try:
        result = await analysis_disclosure.answer_for(
            analysis, conn, commune_id, analysis.params(), access
        )
        # each figure on one line: "18.579,3 m" broke between number and unit on a phone
        entry["summary"] = [
            (label, text.replace(" ", "\u00a0"))
            for label, text in figures(name, result.summary, lang, number(lang))
        ]
    except Exception as exc:  # one broken analysis must not take the report down
        if not isinstance(exc, GeoComunaError | psycopg.errors.QueryCanceled):
            log.exception("analysis %s failed for commune %s", name, commune_id)  # a fault
        why = Unfinished(name, *_OUT_OF_TIME) if isinstance(exc, TooSlow) else unfinished(name, exc)
        entry["error"] = f"no disponible: {why.es}" if lang == "es" else f"not available: {why.en}"
    return entry


#: an analysis stopped at the end of its share of the report's time (work.share), es and en
_OUT_OF_TIME = (
    "no terminó en su parte del tiempo que puede tomar un informe (GEO_COMUNA_COMPUTE_SECONDS)",
    "it did not finish in its share of the time a report may take (GEO_COMUNA_COMPUTE_SECONDS)",
)


def _reads() -> list[str]:
    """Every table a report reads: the registry's layers and what its analyses read."""
    installed = all_analyses()
    analyses = (installed[name].reads for name in REPORT_ANALYSES if name in installed)
    return sorted(set(LAYERS).union(*analyses))


def _reader_class(commune_id: int, access: Access) -> bool:
    """What tells readers of a served report apart: whether they may read the commune's
    members-only data (residents of small groups, each home in an analysis). Its other
    figures are everyone's, and its maps are <iframe>s asking as their own reader."""
    return access.member_of(commune_id)


class _Incomplete(Exception):  # noqa: N818 (not an error: a page not to keep)
    """A page one of whose analyses failed or did not finish in time: shown, never kept (the
    next reader's request may well finish)."""

    def __init__(self, html: str) -> None:
        self.html = html


async def report(
    conn: AsyncConnection, commune_id: int, page: Page, styles: Styles | None = None
) -> str:
    """The report page; with ``page.standalone`` every map is inlined (one file). The served
    page is kept while no table it reads is written (work.cache); the file, megabytes with
    its maps, is built each time (its analyses still come from the cache)."""
    styles = styles or Styles.load(page.styles_path)
    if page.standalone:
        # its maps run the analyses too, before the summaries: the analyses are answered
        # first, in half the time left, and kept with their failures for the maps and the
        # summaries. Land recovery that could not finish in a commune of 100 parcels of
        # 50,000 vertices took the file's whole time inside its map, and the file was a 503
        with work.caching(Once(work.cache())):
            with work.share(2):
                await answer_all(conn, commune_id)
            return (await _report(conn, commune_id, page, styles))[0]
    cache = work.cache()
    if cache is None:
        return (await _report(conn, commune_id, page, styles))[0]

    async def build() -> str:
        html, complete = await _report(conn, commune_id, page, styles)
        if not complete:
            raise _Incomplete(html)
        return html

    # the Styles object is a new one when its file changes: keyed by identity, kept alive
    key = ("report", commune_id, page.lang, page.base, _reader_class(commune_id, page.access))
    try:
        return await cache.get_or_compute(conn, (*key, styles), _reads(), build)
    except _Incomplete as incomplete:
        return incomplete.html


async def _report(
    conn: AsyncConnection, commune_id: int, page: Page, styles: Styles
) -> tuple[str, bool]:
    """The page, and whether every analysis in it gave its answer."""
    lang = page.lang
    t = WORDS[lang]
    commune = await _commune(conn, commune_id)
    communes = LAYERS["communes"]
    commune["kind_label"] = styles.value_label(
        communes.attribute("kind").domain, commune["kind"], lang
    )
    commune["status_label"] = styles.value_label(
        communes.attribute("status").domain, commune["status"], lang
    )
    rows = await breakdown.communes(conn, [commune_id], page.access)
    parcels = LAYERS["parcels"]
    tenure = await data.tenure_summary(conn, commune_id)
    for row in tenure:
        row["label"] = styles.value_label(parcels.attribute("tenure").domain, row["tenure"], lang)
    utilities = await _utilities(conn, commune_id, lang, styles, page.access)
    code = quote(commune["code"], safe="")
    maps = [await _map_frame(conn, commune_id, None, t["commune_map"], page, styles)]
    analyses = await report_analyses(conn, commune_id)
    for analysis in analyses:
        title = analysis_title(analysis.name, styles, lang)
        maps.append(await _map_frame(conn, commune_id, analysis.name, title, page, styles))
    links = (
        []
        if page.standalone
        else [
            (page.t("Inicio", "Home"), f"{page.base}/?lang={lang}"),
            (t["download"], f"{page.base}/communes/{code}/report?lang={lang}&download=true"),
            (
                t["other"],
                f"{page.base}/communes/{code}/report?lang={'en' if lang == 'es' else 'es'}",
            ),
        ]
    )
    summaries = await _analysis_summaries(conn, commune_id, analyses, lang, styles, page.access)
    html = (
        environment()
        .get_template("report.html")
        .render(
            lang=lang,
            t=t,
            num=number(lang),
            commune=commune,
            breakdown=rows[0] if rows else {"area_ha": None, "states": []},
            parcels_total=sum(r["parcels"] for r in tenure),
            tenure=tenure,
            dwellings_total=sum(r["dwellings"] for r in utilities[0]["rows"]) if utilities else 0,
            utilities=utilities,
            analyses=summaries,
            maps=maps,
            links=links,
            day=day(lang),
            generated=datetime.now(UTC).date(),  # a day: a package made twice is the same
        )
    )
    return html, not any("error" in a for a in summaries)


def _withhold_residents(rows: list[dict[str, Any]], commune_id: int, access: Access) -> None:
    """Residents of groups of homes (``dwellings`` each) set to None where a reader outside
    the commune may not see them (features/disclosure.py's rule)."""
    if LAYERS["dwellings"].members_only("residents") and not access.member_of(commune_id):
        disclosure.withhold(rows, "dwellings", ["residents"])


async def _utilities(
    conn: AsyncConnection, commune_id: int, lang: str, styles: Styles, access: Access
) -> list[dict[str, Any]]:
    dwellings = LAYERS["dwellings"]
    summary = await data.utility_summary(conn, commune_id)
    out = []
    for column, rows in summary.items():
        _withhold_residents(rows, commune_id, access)
        attr = dwellings.attribute(column)
        total = sum(r["dwellings"] for r in rows) or 1
        for r in rows:
            r["label"] = styles.value_label(attr.domain, r["value"], lang)
            r["pct"] = round(100 * r["dwellings"] / total, 1)
        out.append({"title": attr.title.get(lang), "rows": rows})
    return out


async def _map_frame(
    conn: AsyncConnection,
    commune_id: int,
    analysis: str | None,
    title: str,
    page: Page,
    styles: Styles,
) -> dict[str, Any]:
    if page.standalone:
        inner = Page(
            lang=page.lang,
            embed=True,
            standalone=True,
            base=page.base,
            tile_threshold=page.tile_threshold,
            inline_vertices=page.inline_vertices,
            overview_threshold=page.overview_threshold,
            access=page.access,
            styles_path=page.styles_path,
            web_assets_dir=page.web_assets_dir,
        )
        html = (
            await commune_map(conn, commune_id, inner, styles)
            if analysis is None
            else await analysis_map(conn, commune_id, analysis, inner, styles=styles)
        )
        return {"title": title, "srcdoc": html, "src": None}
    path = f"/maps/communes/{commune_id}" + (f"/{quote(analysis)}" if analysis else "")
    return {"title": title, "srcdoc": None, "src": f"{page.base}{path}?embed=true&lang={page.lang}"}
