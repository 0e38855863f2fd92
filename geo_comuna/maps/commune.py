"""The commune map: boundary and the state lines it crosses, with the states' names on
either side and the commune's own name, then every layer the registry
draws on it (``Layer.commune_map``: parcels by tenure, greenhouses, water mains, power lines,
paths with stairways, dwellings by water and by electricity, production units, facilities).

A reader outside the commune sees the dwellings per sector (the registry's Aggregate) instead
of one point per home, and no members-only property (residents, notes). On top, the parcels
with recorded rights (popup: rights and holders, named only for the commune's editors and
admins, as PostgreSQL decides: tenure/records.py) and, for those, the document photos where
their EXIF places them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from psycopg import AsyncConnection

from geo_comuna.features.query import Filters
from geo_comuna.layers import COMMUNES, commune_map_layers
from geo_comuna.maps import basemap, data
from geo_comuna.maps.draw import (
    add_aggregate,
    add_labels,
    add_layer,
    add_overlay,
    overlay_spec,
    shows_homes,
)
from geo_comuna.maps.page import Page, finish, new_map
from geo_comuna.maps.styles import Styles
from geo_comuna.tenure import records


async def commune_map(
    conn: AsyncConnection, commune_id: int, page: Page, styles: Styles | None = None
) -> str:
    """The commune map as one HTML page."""
    styles = styles or Styles.load(page.styles_path)
    info = await data.commune_info(conn, commune_id)
    m = new_map(page, styles, info.bounds)
    legend: list[str] = []
    await basemap.add_hillshade(m, conn, page, styles, info, legend)
    await add_boundary(m, conn, page, styles, commune_id, legend)
    filters = Filters(commune_id=commune_id)
    notes = []
    for layer in commune_map_layers():  # bottom to top: areas, lines, points
        if shows_homes(layer, page, commune_id):
            await add_layer(m, conn, page, styles, layer, filters, legend)
        else:
            notes.append(await add_aggregate(m, conn, page, styles, layer, commune_id, legend))
    notes.append(await add_records(m, conn, page, styles, info.code, commune_id, legend))
    # on top: which state lies on each side of the lines (El Maizal: Lara or Portuguesa)
    add_labels(m, page, "names", await data.state_labels(conn, commune_id))
    note = " ".join(n for n in notes if n) or None
    return finish(m, page, legend, title=info.name, links=commune_links(page, info.code), note=note)


async def add_boundary(
    m, conn: AsyncConnection, page: Page, styles: Styles, commune_id: int, legend: list[str]
) -> None:
    """The commune's outline (popup: its registry record) and the state lines around it."""
    spec = overlay_spec(
        "boundary",
        page,
        styles.overlay("boundary"),
        "MultiPolygon",
        {
            "tooltip": styles.fields(COMMUNES, "tooltip", page.lang),
            "popup": styles.fields(COMMUNES, "popup", page.lang),
        },
    )
    outline = await data.geojson(
        conn,
        COMMUNES,
        Filters(commune_id=commune_id),
        styles.wanted_properties(COMMUNES),
        page.access,
    )
    title = styles.overlay("boundary").get("legend", {}).get(page.lang, "Commune")
    add_overlay(m, page, spec, title, outline, legend)
    state = page.t("Estado", "State")
    spec = overlay_spec(
        "state-lines",
        page,
        styles.overlay("state_lines"),
        "LineString",
        {
            "tooltip": [{"name": "name", "label": state}],
            "popup": [
                {"name": "name", "label": state},
                {"name": "code", "label": page.t("Código", "Code")},
            ],
        },
    )
    title = styles.overlay("state_lines").get("legend", {}).get(page.lang, "State lines")
    add_overlay(m, page, spec, title, await data.state_lines(conn, commune_id), legend)


async def add_records(
    m,
    conn: AsyncConnection,
    page: Page,
    styles: Styles,
    code: str,
    commune_id: int,
    legend: list[str],
) -> str | None:
    """The parcels with recorded rights (their holders in the popup) and the photos' positions,
    as the page's reader may see them; nothing is added where there is nothing to show. Past
    the inline budget of a layer (page.tile_threshold features, page.inline_vertices), each
    parcel is a point; past page.overview_threshold, they are left out, and the note (what
    this returns) says where they are listed. Found from outside: 10,000 parcels with rights
    made a page of 41 MB, their shapes inline whatever their number."""
    parcels, vertices = await records.holdings_size(conn, page.reader, commune_id)
    title = styles.overlay("holdings").get("legend", {}).get(page.lang, "Rights")
    if parcels > page.overview_threshold:
        listed = f"{page.base}/collections/rights/items?commune={quote(code, safe='')}"
        count = f"{parcels:,}"
        return page.t(
            f"{title}: {count.replace(',', '.')} parcelas con derechos, demasiadas para "
            f"dibujarlas en este mapa; la lista: {listed}",
            f"{title}: {count} parcels with rights, too many to draw on this map; the list: "
            f"{listed}",
        )
    points = not page.fits_inline(parcels, vertices)
    if parcels:
        holdings = await records.commune_holdings(
            conn, page.reader, commune_id, page.lang, points=points
        )
        code_field = {"name": "code", "label": page.t("Código", "Code")}
        rights = {"name": "rights", "label": page.t("Derechos", "Rights")}
        holders = {"name": "holders", "label": page.t("Titulares", "Holders")}
        spec = overlay_spec(
            "holdings",
            page,
            styles.overlay("holdings"),
            "Point" if points else "MultiPolygon",
            {"tooltip": [code_field], "popup": [code_field, rights, holders]},
        )
        if points:
            title = page.t(f"{title} (un punto por parcela)", f"{title} (a point per parcel)")
        add_overlay(m, page, spec, title, holdings, legend)
    photos = await records.photo_positions(conn, page.reader, commune_id)
    if photos["features"]:
        label = {"name": "title", "label": page.t("Documento", "Document")}
        taken = {"name": "taken_at", "label": page.t("Tomada el", "Taken on")}
        spec = overlay_spec(
            "photos",
            page,
            styles.overlay("photos"),
            "Point",
            {"tooltip": [label], "popup": [label, taken]},
        )
        title = styles.overlay("photos").get("legend", {}).get(page.lang, "Photos")
        add_overlay(m, page, spec, title, json.dumps(photos), legend)
    return None


def commune_links(
    page: Page, code: str, analysis: str | None = None, asked: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """Title-bar links of a served commune page (none in a standalone file). On an
    ``analysis``' map, the other language, the file and the snippet are of that map, with
    the parameters ``asked`` (those not at their defaults): they led to the commune map,
    and the other language lost the analysis and its budget."""
    if page.standalone:
        return []
    base = f"{page.base}/maps/communes/{quote(code, safe='')}"
    if analysis is not None:
        base += f"/{quote(analysis, safe='')}"

    def url(path: str, **query: str) -> str:
        return f"{path}?{urlencode({**(asked or {}), **query})}"

    other = "en" if page.lang == "es" else "es"
    return [
        (other.upper(), url(base, lang=other)),
        (
            page.t("Informe", "Report"),
            f"{page.base}/communes/{quote(code, safe='')}/report?lang={page.lang}",
        ),
        (page.t("Descargar HTML", "Download HTML"), url(base, lang=page.lang, standalone="true")),
        (page.t("Insertar", "Embed"), url(f"{base}/embed-snippet", lang=page.lang)),
    ]
