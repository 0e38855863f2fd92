"""Adding registry layers and simple overlays to a map, each as one map layer per theme.

A layer up to ``Page.tile_threshold`` features goes inline as the GeoJSON PostGIS built. A
bigger one is drawn from vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``, ST_AsMVT) when
served, or from inline geobuf, simplified and snapped to ~1 m, when standalone. Past
``Page.overview_threshold`` areas and lines in a standalone file show as a pre-drawn picture
(maps/overview.py), their geobuf decoded only once the map is zoomed in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import folium
from psycopg import AsyncConnection

from geo_comuna.features.query import Filters
from geo_comuna.layers import Layer
from geo_comuna.maps import data
from geo_comuna.maps.elements import Data, ThemedLayer, js, legend_section, theme_legend
from geo_comuna.maps.overview import Overview, overview
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import Styles

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
) -> int:
    """Every theme of ``layer`` as a map layer with its legend section; the feature count."""
    themes = styles.themes(layer)
    n = await data.count(conn, layer, filters)
    names = styles.wanted_properties(layer)
    if n <= page.tile_threshold:
        kind = "geojson"
        holder = Data.from_geojson(await data.geojson(conn, layer, filters, names))
        holder.add_to(m)
        source = holder.get_name()
    elif page.standalone:
        # keep a file for 100,000 parcels under 10 MB: only the attributes that colour it
        names = [t.by for t in themes]
        kind = "sliced"
        big = n > page.overview_threshold and layer.geometry_type != "Point"
        blob = await data.geobuf(conn, layer, filters, names)
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
        names = styles.slim_properties(layer)  # what /tiles/ carries
        kind = "tiles"
        query = {"v": await data.layer_version(conn, layer)}
        if filters.commune_id is not None:
            query["commune"] = filters.commune_id
        # {z}/{x}/{y} are filled in by the browser
        source = js(f"{page.base}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf?{urlencode(query)}")
        page.uses_tiles = True
    for theme in themes:
        spec = styles.spec(theme, page.lang)
        if kind != "geojson":
            spec["fields"]["popup"] = [f for f in spec["fields"]["popup"] if f["name"] in names]
        name = f"{styles.legend_title(theme, page.lang)} ({count_label(n, page.lang)})"
        ThemedLayer(
            name, spec, kind, sources[theme.by] if kind == "overview" else source, show=theme.show
        ).add_to(m)
        legend.append(theme_legend(styles, theme, page.lang, shown=theme.show))
    return n


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
