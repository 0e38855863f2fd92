"""A sheet as an A4 PDF (reportlab's page layout), and a batch's index. Pure: from a
ParcelSheet already read to bytes, so it runs off the event loop (work.cpu).

Text is set in DejaVu Sans, which holds most scripts' letters (maps/sheet/fonts.py says
which, where it comes from, and what stands in for it). Every text from the store goes through
``_text`` (escaped: a parcel code like "<b>" is printed, not read as markup). A sheet that
does not fit one page (a parcel of well over a hundred vertices) runs on to the next.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus import TableStyle as Style

from geo_comuna.maps.sheet.fonts import BOLD, SANS, printable
from geo_comuna.maps.sheet.fonts import MONO as MONO_FONT
from geo_comuna.maps.sheet.linderos import Lindero, Side, named
from geo_comuna.maps.sheet.plan import Plan, QrCode
from geo_comuna.maps.sheet.reads import ParcelSheet
from geo_comuna.maps.sheet.records import shown
from geo_comuna.maps.sheet.words import record_label, value_label, why, words
from geo_comuna.maps.templating import day

MARGIN = 12 * mm
WIDTH = A4[0] - 2 * MARGIN
MAP_WIDTH, MAP_HEIGHT = 118 * mm, 100 * mm
QR_SIZE = 30 * mm
#: vertex rows side by side: three blocks of (number, easting, northing)
VERTEX_BLOCKS = 3

TITLE = ParagraphStyle("title", fontName=BOLD, fontSize=15, leading=18)
SUBTITLE = ParagraphStyle("subtitle", fontName=SANS, fontSize=10, leading=13)
HEADING = ParagraphStyle(
    "heading", fontName=BOLD, fontSize=10, leading=13, spaceBefore=5, spaceAfter=2
)
BODY = ParagraphStyle("body", fontName=SANS, fontSize=8, leading=10)
SMALL = ParagraphStyle("small", fontName=SANS, fontSize=6.5, leading=8)
#: what a reader must not miss: an overlap with another parcel
WARNING = ParagraphStyle(
    "warning", fontName=BOLD, fontSize=8, leading=10, textColor=colors.Color(0.7, 0.1, 0.1)
)
MONO = ParagraphStyle("mono", fontName=MONO_FONT, fontSize=6.5, leading=8)
GRID = Style(
    [
        ("FONT", (0, 0), (-1, -1), SANS, 7.5),
        ("FONT", (0, 0), (-1, 0), BOLD, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.Color(0.6, 0.6, 0.6)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
)
NUMBERS = Style([("ALIGN", (0, 1), (-1, -1), "RIGHT")])


def _text(value: Any) -> str:
    """A value from the store as Paragraph text: escaped, and as the fonts print it."""
    return escape(printable("" if value is None else str(value)))


def _p(value: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(_text(value), style)


def _fixed(value: float, places: int, lang: str, grouped: bool = True) -> str:
    """A number with ``places`` decimals as the sheet's language writes it, as the report
    does: es 1.956,56, en 1,956.56 (a Spanish reader took 24.3370 ha for 243,370 ha);
    coordinates ungrouped."""
    text = f"{value:,.{places}f}" if grouped else f"{value:.{places}f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "es" else text


def sheet_pdf(sheet: ParcelSheet, lang: str, url: str, today: dt.date | None = None) -> bytes:
    """The sheet of one parcel, A4, in ``lang`` (es or en); ``url`` is its record's address,
    printed and in the QR code."""
    w = words(lang)
    today = today or dt.date.today()
    code = sheet.code if sheet.code is not None else f"#{sheet.id}"
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 8,
        title=f"{w['sheet']} {code}",
        author="geo_comuna",
        lang=lang,
        # the same parcel gives the same bytes (no creation time or random id inside):
        # a HEAD and its GET, or two downloads, agree
        invariant=True,
    )
    zone = w["zone"].format(zone=sheet.zone, srid=sheet.srid)

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(SANS, 6.5)
        canvas.drawString(
            MARGIN,
            MARGIN - 2,
            f"{w['crs']}: {zone} · {w['generated'].format(day=day(lang)(today))}",
        )
        canvas.restoreState()

    story: list[Any] = [
        _p(f"{w['sheet']} {code}", TITLE),
        _p(
            f"{w['commune']} {sheet.commune_name} ({sheet.commune_code})"
            if sheet.commune_code
            else w["no_commune"],
            SUBTITLE,
        ),
        Spacer(1, 4),
        Table(
            [[Plan(sheet, MAP_WIDTH, MAP_HEIGHT, w), _facts(sheet, w, lang, zone, url)]],
            colWidths=[MAP_WIDTH + 4, WIDTH - MAP_WIDTH - 4],
            style=Style(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (0, 0), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ]
            ),
        ),
        KeepTogether([_p(w["linderos"], HEADING), _linderos(sheet, w, lang)]),
        _p(w["rule"], SMALL),
        *(
            _p(w["overlaps"].format(code=named(o), ha=_fixed(o["m2"] / 10_000, 4, lang)), WARNING)
            for o in sheet.overlaps
        ),
        # the vertex table may run on to the next page (its heading row repeated there) rather
        # than leave the first one half empty
        _p(w["vertices"], HEADING),
        _vertices(sheet, w, lang),
        KeepTogether([_p(w["history"], HEADING), _history(sheet, w, lang)]),
    ]
    for section in ("holders", "rights", "documents"):
        if sheet.records.get(section):
            story.append(KeepTogether([_p(w[section], HEADING), _records(sheet, section, w, lang)]))
        else:  # one line: a section's heading and "none" ran a sheet onto a second page
            story.append(Paragraph(f"<b>{_text(w[section])}:</b> {_text(w['no_records'])}", BODY))
    doc.build(
        story,
        onFirstPage=footer,
        onLaterPages=footer,
        canvasmaker=functools.partial(_Counted, said=w["page"]),
    )
    return out.getvalue()


class _Counted(Canvas):
    """A canvas that numbers each page with the count of pages, once it knows it: "Página 1"
    alone did not say that a second page followed (found from outside)."""

    def __init__(self, *args: Any, said: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._said = said
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._pages:
            self.__dict__.update(state)
            self.saveState()
            self.setFont(SANS, 6.5)
            self.drawRightString(
                A4[0] - MARGIN,
                MARGIN - 2,
                self._said.format(n=self._pageNumber, total=len(self._pages)),
            )
            self.restoreState()
            super().showPage()
        super().save()


def _facts(sheet: ParcelSheet, w: dict[str, str], lang: str, zone: str, url: str) -> Table:
    # plain strings where nothing wraps: a Paragraph costs its markup's parsing
    rows = [
        [_p(w["area"]), f"{_fixed(sheet.area_ha, 4, lang)} ha"],
        [_p(w["perimeter"]), f"{_fixed(sheet.perimeter_m, 2, lang)} m"],
        [w["tenure"], value_label("tenure", sheet.tenure, lang)],
        [w["land_use"], value_label("land_use", sheet.land_use, lang) or "—"],
        [w["recovered_on"], day(lang)(sheet.recovered_on)],
        [w["crs"], _p(zone)],
    ]
    facts = Table(rows, colWidths=[24 * mm, WIDTH - MAP_WIDTH - 28 * mm], style=GRID)
    facts.setStyle(
        Style(
            [
                ("FONT", (0, 0), (-1, 0), SANS, 7.5),
                ("BACKGROUND", (0, 0), (-1, -1), colors.white),
                ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.93, 0.93, 0.93)),
            ]
        )
    )
    return Table(
        [[facts], [QrCode(url, QR_SIZE)], [_p(f"{w['url']}: {url}", SMALL)]],
        style=Style([("LEFTPADDING", (0, 0), (-1, -1), 2), ("ALIGN", (0, 1), (0, 1), "CENTER")]),
    )


#: stretches a cell lists before it counts the rest: a shape of 16,000 jagged vertices gave
#: one cell taller than a page, which the PDF could not lay out (found from outside: a 500)
STRETCHES_SHOWN = 40


def stretches(sides: list[Side], w: dict[str, str]) -> str:
    """Sides as vertex stretches, a chain of sides as one: "1–4, 6–7" for 1–2, 2–3, 3–4, 6–7;
    past STRETCHES_SHOWN, how many more."""
    runs: list[list[int]] = []
    for side in sides:
        if runs and runs[-1][1] == side.start:
            runs[-1][1] = side.end
        else:
            runs.append([side.start, side.end])
    text = ", ".join(f"{a}–{b}" for a, b in runs[:STRETCHES_SHOWN])
    if len(runs) > STRETCHES_SHOWN:
        text += " " + w["more_stretches"].format(n=len(runs) - STRETCHES_SHOWN)
    return text


def neighbour_text(
    lindero: Lindero, w: dict[str, str], overlapping: frozenset[str] = frozenset()
) -> str:
    """Whom a side borders, in words: "parcela EM-P002"; when it borders several, each with
    its stretches: "parcela EM-P030 (1–2, 6–7); sin colindante registrado (8–9)"; a parcel
    sharing its ground (``overlapping``, by code) said so: "parcela EM-P027 (se superpone)"."""
    neighbours = lindero.neighbours
    names = []
    for kind, name, sides in neighbours:
        if kind == "parcel":
            text = w["parcel_overlapping" if name in overlapping else "parcel_n"].format(code=name)
        elif kind == "road":
            text = w["road_named"].format(name=name) if name else w["road"]
        elif kind == "commune_limit":
            text = w["commune_limit"]
        else:
            text = w["none"]
        if len(neighbours) > 1:
            text += f" ({stretches(sides, w)})"
        names.append(text)
    return "; ".join(names)


def _linderos(sheet: ParcelSheet, w: dict[str, str], lang: str) -> Table:
    rows: list[list[Any]] = [[w["side"], w["sides_col"], w["length"], w["borders"]]]
    overlapping = frozenset(named(o) for o in sheet.overlaps)
    for lindero in sheet.linderos:
        rows.append(
            [
                w[f"{lindero.facing}_side"],
                _p(stretches(lindero.sides, w)),
                _fixed(lindero.length_m, 2, lang),
                _p(neighbour_text(lindero, w, overlapping)),
            ]
        )
    table = Table(rows, colWidths=[18 * mm, 52 * mm, 22 * mm, WIDTH - 92 * mm], repeatRows=1)
    table.setStyle(GRID)
    table.setStyle(Style([("ALIGN", (2, 1), (2, -1), "RIGHT")]))
    return table


def _vertices(sheet: ParcelSheet, w: dict[str, str], lang: str) -> Table:
    """The vertices three to a row, in order along each row: a table that runs on to the next
    page then goes on where it stopped."""
    header = [w["vertex"], w["easting"], w["northing"]] * VERTEX_BLOCKS
    rows: list[list[Any]] = [header]
    for start in range(0, len(sheet.vertices), VERTEX_BLOCKS):
        row: list[Any] = []
        for v in sheet.vertices[start : start + VERTEX_BLOCKS]:
            row += [
                str(v.number),
                _fixed(v.easting, 2, lang, grouped=False),
                _fixed(v.northing, 2, lang, grouped=False),
            ]
        rows.append(row + [""] * (3 * VERTEX_BLOCKS - len(row)))
    block = WIDTH / VERTEX_BLOCKS
    table = Table(
        rows,
        colWidths=[8 * mm, block / 2 - 4 * mm, block / 2 - 4 * mm] * VERTEX_BLOCKS,
        repeatRows=1,
    )
    table.setStyle(GRID)
    table.setStyle(NUMBERS)
    return table


def _history(sheet: ParcelSheet, w: dict[str, str], lang: str) -> Any:
    if not sheet.history:
        return _p(w["no_history"])
    rows: list[list[Any]] = [[w["date"], w["before"], w["after"], w["note"]]]
    days = [h["changed_at"].date() for h in sheet.history]
    for h in sheet.history:
        when = _text(day(lang)(h["changed_at"].date()))
        if days.count(h["changed_at"].date()) > 1:  # their order, as the page gives it
            when += f"<br/>{h['changed_at'].astimezone(dt.UTC):%H:%M} UTC"
        rows.append(
            [
                Paragraph(when, BODY),
                _p(value_label("tenure", h["from_status"], lang) or w["first"]),
                _p(value_label("tenure", h["to_status"], lang) or w["deleted"]),
                _p(why(h, lang)),
            ]
        )
    table = Table(rows, colWidths=[38 * mm, 30 * mm, 30 * mm, WIDTH - 98 * mm], repeatRows=1)
    table.setStyle(GRID)
    return table


#: the columns a section shows, of those its records carry, in this order
RECORD_COLUMNS = {
    "holders": ("name", "kind", "id_number", "share", "since", "party_id", "id"),
    # by id first: the tenure history names a right by it (found from outside)
    "rights": ("id", "kind", "status", "party", "holder", "share", "start", "end"),
    "documents": ("title", "kind", "sha256"),
}


def _records(sheet: ParcelSheet, section: str, w: dict[str, str], lang: str) -> Any:
    found = sheet.records.get(section) or []
    if not found:
        return _p(w["no_records"])
    columns = [c for c in RECORD_COLUMNS[section] if any(c in r for r in found)]
    if not columns:  # records of another shape: their plain values
        columns = [k for k, v in found[0].items() if not isinstance(v, (dict, list))]
    rows: list[list[Any]] = [[record_label(c, lang) for c in columns]]
    for record in found:
        rows.append(
            [
                _p(shown(section, c, record.get(c), lang), MONO if c == "sha256" else BODY)
                for c in columns
            ]
        )
    table = Table(rows, repeatRows=1)
    table.setStyle(GRID)
    return table


def index_pdf(
    sheets: list[tuple[ParcelSheet, str]], title: str, lang: str, today: dt.date | None = None
) -> bytes:
    """A batch's index: each parcel's code, tenure, area and file (``sheets``: the sheet and
    its file's name), the file name a link to it beside the index."""
    w = words(lang)
    today = today or dt.date.today()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{w['index']} {title}",
        author="geo_comuna",
        lang=lang,
        # the same parcel gives the same bytes (no creation time or random id inside):
        # a HEAD and its GET, or two downloads, agree
        invariant=True,
    )
    # the area's heading wraps in its column ("Superficie (geodésica) (ha)" ran into the next)
    rows: list[list[Any]] = [[w["parcel"], w["tenure"], _p(w["area"] + " (ha)"), w["file"]]]
    total = 0.0
    for sheet, name in sheets:
        total += sheet.area_ha
        rows.append(
            [
                _p(sheet.code if sheet.code is not None else f"#{sheet.id}"),
                value_label("tenure", sheet.tenure, lang),
                _fixed(sheet.area_ha, 4, lang),
                Paragraph(f'<link href="{escape(name)}">{escape(name)}</link>', BODY),
            ]
        )
    table = Table(rows, colWidths=[40 * mm, 40 * mm, 34 * mm, WIDTH - 114 * mm], repeatRows=1)
    table.setStyle(GRID)
    table.setStyle(Style([("ALIGN", (2, 1), (2, -1), "RIGHT")]))
    doc.build(
        [
            _p(f"{w['index']}: {title}", TITLE),
            _p(
                f"{w['count'].format(n=len(sheets))} · {_fixed(total, 4, lang)} ha · "
                + w["generated"].format(day=day(lang)(today)),
                SUBTITLE,
            ),
            Spacer(1, 6),
            table,
        ]
    )
    return out.getvalue()
