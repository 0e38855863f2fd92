"""Adding registry layers and simple overlays to a map, each as one map layer per theme.

A layer up to ``Page.tile_threshold`` features and ``Page.inline_vertices`` vertices goes
inline as the GeoJSON PostGIS built. A bigger one is drawn from vector tiles
(``/tiles/{layer}/{z}/{x}/{y}.pbf``, ST_AsMVT) when served, or from inline geobuf,
simplified and snapped to ~1 m, when standalone. Past
``Page.overview_threshold`` areas and lines in a standalone file show as a pre-drawn picture
(maps/overview.py), their geobuf decoded only once the map is zoomed in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import folium
from psycopg import AsyncConnection

from geo_comuna.features import disclosure
from geo_comuna.features.query import Filters
from geo_comuna.layers import MIN_GROUP, Layer
from geo_comuna.maps import data
from geo_comuna.maps.elements import Data, ThemedLayer, js, legend_section, theme_legend
from geo_comuna.maps.overview import Overview, overview
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles

#: the runtime's fill opacity when the style file gives none (static/geo_comuna_maps.js)
DEFAULT_FILL_OPACITY = 0.6


def count_label(n: int, lang: str) -> str:
    text = f"{n:,}"
    return text.replace(",", ".") if lang == "es" else text


async def add_layer(
    m: folium.Map,
    conn: AsyncConnection,
    page: Page,
    styles: Styles,
    layer: Layer,
    filters: Filters,
    legend: list[str],
    *,
    show: bool | None = None,
) -> int:
    """Every theme of ``layer`` as a map layer with its legend section; the feature count
    (none of it for a layer with no feature here). ``show`` overrides the style file's
    choice of themes shown at first (an analysis map shows the layers it was computed from).
    Only what the page's reader may read: members-only properties they may read nowhere are
    neither fetched nor shown, nor are themes coloured by them."""
    access = page.access
    names = data.readable_names(layer, styles.wanted_properties(layer), access)
    themes = [t for t in styles.themes(layer) if t.by in names]
    n = await data.count(conn, layer, filters, access)
    if n == 0:  # an empty layer: nothing to switch on, nothing for the legend to explain
        return 0
    if await goes_inline(conn, page, layer, filters, n):
        kind = "geojson"
        holder = Data.from_geojson(await data.geojson(conn, layer, filters, names, access))
        holder.add_to(m)
        source = holder.get_name()
    elif page.standalone:
        # keep a file for 100,000 parcels under 10 MB: only the attributes that colour it
        names = [t.by for t in themes]
        kind = "sliced"
        big = n > page.overview_threshold and layer.geometry_type != "Point"
        blob = await data.geobuf(conn, layer, filters, names, access)
        holder = Data.from_geobuf(blob, lazy=big)
        holder.add_to(m)
        source = holder.get_name()
        page.uses_geobuf = True
        if big:
            pictures = await overview_of(conn, page, styles, layer, filters, themes)
            if pictures is not None:
                kind = "overview"
                sources = {
                    t.by: js(
                        {
                            "image": pictures.images[t.by],
                            "bounds": pictures.bounds,
                            "detail_zoom": pictures.detail_zoom,
                        }
                    )
                    + f", {source}"
                    for t in themes
                }
    else:
        # what /tiles/ carries (for the reader who fetches them)
        names = data.readable_names(layer, styles.slim_properties(layer), access)
        kind = "tiles"
        query = {"v": await data.layer_version(conn, layer)}
        if filters.commune_id is not None:
            query["commune"] = filters.commune_id
        # {z}/{x}/{y} are filled in by the browser
        source = js(f"{page.base}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf?{urlencode(query)}")
        page.uses_tiles = True
    for theme in themes:
        spec = styles.spec(theme, page.lang)
        for which in ("tooltip", "popup"):
            spec["fields"][which] = [f for f in spec["fields"][which] if f["name"] in names]
        name = f"{styles.legend_title(theme, page.lang)} ({count_label(n, page.lang)})"
        shown = theme.show if show is None else show
        ThemedLayer(
            name, spec, kind, sources[theme.by] if kind == "overview" else source, show=shown
        ).add_to(m)
        # the values this map shows: a commune of maize had every product listed
        present = await data.values_present(conn, layer, theme.by, filters.commune_id)
        legend.append(theme_legend(styles, theme, page.lang, shown=shown, present=present))
    return n


async def goes_inline(
    conn: AsyncConnection, page: Page, layer: Layer, filters: Filters, n: int
) -> bool:
    """Do the ``n`` features of ``layer`` here go inline as GeoJSON? Not past
    ``Page.tile_threshold`` features, nor past ``Page.inline_vertices`` vertices (counted
    only for a layer that has few enough features: a big one is never inline)."""
    if n > page.tile_threshold:
        return False
    if layer.geometry_type == "Point":
        return page.fits_inline(n, n)
    return page.fits_inline(n, await data.vertices(conn, layer, filters, page.access))


def shows_homes(layer: Layer, page: Page, commune_id: int) -> bool:
    """Does the page draw each feature of ``layer`` in this commune? Not where its positions
    are members-only and the page's reader is not one of the commune's (or an admin)."""
    return layer.geometry_read == "public" or page.access.member_of(commune_id)


async def add_aggregate(
    m: folium.Map,
    conn: AsyncConnection,
    page: Page,
    styles: Styles,
    layer: Layer,
    commune_id: int,
    legend: list[str],
) -> str | None:
    """The layer's public groups (features/disclosure.py) in place of its features, coloured
    by the figure the style file names; the message to show on the map, if any."""
    aggregate = layer.aggregate
    if aggregate is None:  # no public form: members-only positions are simply not drawn
        return None
    found = await disclosure.groups(conn, layer, commune_id)
    style = styles.layer_style(layer).get("aggregate", {})
    labels = {f.name: f.title.get(page.lang) for f in aggregate.figures}
    labels[aggregate.by] = styles.field_label(layer, aggregate.by, page.lang)

    def fields(names: list[str]) -> list[dict[str, Any]]:
        return [{"name": n, "label": labels[n]} for n in names if n in labels]

    ramp, breaks = style.get("ramp", [FALLBACK_COLOUR]), style.get("breaks", [])
    title = aggregate.title.get(page.lang)
    spec: dict[str, Any] = {
        "id": f"{layer.name}-{aggregate.by}",
        "layer": layer.name,
        "lang": page.lang,
        "title": title,
        "geometry": "Point",
        "by": style.get("by"),
        "colors": {},
        "ramp": ramp,
        "breaks": breaks,
        "fallback": FALLBACK_COLOUR,
        "fields": {
            "tooltip": fields(style.get("tooltip", [aggregate.by])),
            "popup": fields(style.get("popup", list(labels))),
        },
    }
    for key in ("stroke", "fill_opacity", "radius"):
        if key in style:
            spec[key] = style[key]
    holder = Data.from_geojson(found.collection)
    holder.add_to(m)
    ThemedLayer(
        f"{title} ({count_label(found.shown, page.lang)})", spec, "geojson", holder.get_name()
    ).add_to(m)
    unit = next((f.unit for f in aggregate.figures if f.name == spec["by"]), None) or ""
    entries = []
    for i, upper in enumerate(breaks):
        lower = "" if i == 0 else f"{breaks[i - 1]}–"
        entries.append((ramp[min(i, len(ramp) - 1)], f"{lower}{upper} {unit}".strip()))
    heading = f"{title} — {labels.get(spec['by'], '')}".rstrip(" —")
    legend.append(legend_section(spec["id"], heading, entries, "Point", shown=True))
    note = page.t(
        f"{layer.title.get('es')}: por {labels[aggregate.by].lower()}; cada una, con sus "
        "habitantes, solo la ven los usuarios de la comuna.",
        f"{layer.title.get('en')}: by {labels[aggregate.by].lower()}; each one, with its "
        "residents, is shown to the commune's own users only.",
    )
    if found.withheld:
        note += " " + page.t(
            f"No se muestran {found.withheld} grupo(s): los de menos de {MIN_GROUP} y, si es "
            "uno solo, también el menor de los demás.",
            f"{found.withheld} group(s) not shown: those under {MIN_GROUP}, and when that is "
            "one, the next smallest too.",
        )
    return note


async def overview_of(
    conn: AsyncConnection, page: Page, styles: Styles, layer: Layer, filters: Filters, themes: list
) -> Overview | None:
    """Pictures of a very big layer for a standalone file, one per theme."""
    specs = {t.by: styles.spec(t, page.lang) for t in themes}
    first = next(iter(specs.values()))
    return await overview(
        conn,
        layer,
        filters,
        {by: s["colors"] for by, s in specs.items()},
        page.access,
        fallback=first["fallback"],
        opacity=first.get("fill_opacity", DEFAULT_FILL_OPACITY),
    )


def overlay_spec(
    spec_id: str,
    page: Page,
    style: dict[str, Any],
    geometry: str,
    fields: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """A single-colour overlay (commune boundary, state lines) from maps/styles.json's
    ``overlays``."""
    colour = style.get("color", "#333333")
    stroke = {"color": colour, "weight": style.get("weight", 2)}
    if style.get("dash"):
        stroke["dash"] = style["dash"]
    return {
        "id": spec_id,
        "layer": spec_id,
        "lang": page.lang,
        "geometry": geometry,
        "by": None,
        "color": colour,
        "fallback": colour,
        "stroke": stroke,
        "fill_opacity": 0,
        "fields": fields,
    }


def add_overlay(
    m: folium.Map, page: Page, spec: dict[str, Any], title: str, geojson: str, legend: list[str]
) -> None:
    holder = Data.from_geojson(geojson)
    holder.add_to(m)
    ThemedLayer(title, spec, "geojson", holder.get_name()).add_to(m)
    legend.append(
        legend_section(spec["id"], "", [(spec["color"], title)], "LineString", shown=True)
    )


def add_labels(m: folium.Map, page: Page, spec_id: str, geojson: str) -> None:
    """Names as text (maps/sql/*_labels.sql: points with label, kind, rank), one layer in the
    layer control, no legend (the names say what they are)."""
    holder = Data.from_geojson(geojson)
    holder.add_to(m)
    spec = {"id": spec_id, "lang": page.lang, "rank": 0}
    ThemedLayer(page.t("Nombres", "Names"), spec, "labels", holder.get_name()).add_to(m)
