"""What an analysis map draws around the analysis' own features so that it answers its
question: the layers it was computed from (water mains and tanks, every parcel) under them,
and the lines of the answer (each project's pipe, each home's walk, each transformer site to
the homes it serves) between those and the features.

maps/styles.json says what, per analysis: ``context`` lists registry layers (``layer``, an
optional ``where`` on allowed values, a colour and an es/en legend, or ``themed`` for the
registry's own themes); ``lines`` styles the lines (``by``: the property coloured with the
features' ramp and classes, else one ``color``). Lines end at homes, whose positions are
members-only: a reader outside the commune gets none (the result's public view has none, and
the site-to-home links are drawn only from a member's result).
"""

from __future__ import annotations

import json
from typing import Any

import folium
from psycopg import AsyncConnection

from geo_comuna.features.query import Filters
from geo_comuna.layers import LAYERS
from geo_comuna.maps import data
from geo_comuna.maps.draw import add_layer, count_label, goes_inline, shows_homes
from geo_comuna.maps.elements import Data, ThemedLayer, legend_section
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles


async def add_context(
    m: folium.Map,
    conn: AsyncConnection,
    page: Page,
    styles: Styles,
    name: str,
    commune_id: int,
    legend: list[str],
) -> None:
    """The registry layers the analysis' style names, each shown (and none that is empty)."""
    for n, item in enumerate(styles.analysis_style(name).get("context", [])):
        layer = LAYERS[item["layer"]]
        if not shows_homes(layer, page, commune_id):
            continue  # members-only positions: not for this reader
        filters = Filters(commune_id=commune_id, properties=item.get("where", {}))
        if item.get("themed"):
            await add_layer(m, conn, page, styles, layer, filters, legend, show=True)
            continue
        count = await data.count(conn, layer, filters, page.access)
        if not count:
            continue
        if not await goes_inline(conn, page, layer, filters, count):
            # too many features or vertices to go inline: the registry's own drawing
            await add_layer(m, conn, page, styles, layer, filters, legend, show=True)
            continue
        names = data.readable_names(layer, item.get("popup", []), page.access)
        title = item["legend"][page.lang]
        colour = item.get("color", FALLBACK_COLOUR)
        spec: dict[str, Any] = {
            "id": f"context-{name}-{n}",
            "layer": layer.name,
            "lang": page.lang,
            "title": title,
            "geometry": layer.geometry_type,
            "by": None,
            "color": colour,
            "fallback": colour,
            "stroke": item.get("stroke", {"color": "#333333", "weight": 1}),
            "fill_opacity": item.get("fill_opacity", 0.8),
            "radius": item.get("radius", 6),
            "fields": {
                "tooltip": styles.fields(layer, "tooltip", page.lang, names),
                "popup": styles.fields(layer, "popup", page.lang, names),
            },
        }
        holder = Data.from_geojson(await data.geojson(conn, layer, filters, names, page.access))
        holder.add_to(m)
        label = f"{title} ({count_label(count, page.lang)})"
        ThemedLayer(label, spec, "geojson", holder.get_name()).add_to(m)
        swatch = item.get("swatch", layer.geometry_type)
        legend.append(legend_section(spec["id"], "", [(colour, title)], swatch, shown=True))


def site_links(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A line from each transformer site to every home of its cluster (electricity-gaps)."""
    sites = {
        f["properties"]["cluster"]: f["geometry"]["coordinates"]
        for f in features
        if f["properties"].get("kind") == "transformer_site" and f.get("geometry")
    }
    return [
        {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [sites[p["cluster"]], f["geometry"]["coordinates"]],
            },
            "properties": {"cluster": p["cluster"]},
        }
        for f in features
        if (p := f["properties"]).get("kind") == "dwelling" and p.get("cluster") in sites
    ]


def add_lines(
    m: folium.Map,
    page: Page,
    styles: Styles,
    name: str,
    lines: list[dict[str, Any]],
    main: dict[str, Any],
    entries: list[tuple[str, str]],
    legend: list[str],
) -> None:
    """The answer's lines, coloured like the features (``main``: their spec, ``entries``: its
    legend's classes) by the property the style names, or in one colour; with their legend
    section."""
    style = styles.analysis_style(name).get("lines")
    if not style or not lines:
        return
    title = style["legend"][page.lang]
    spec: dict[str, Any] = {
        "id": f"analysis-{name}-lines",
        "layer": name,
        "lang": page.lang,
        "title": title,
        "geometry": "LineString",
        "by": None,
        "colors": {},
        "fallback": FALLBACK_COLOUR,
        "stroke": {"weight": style.get("weight", 2), "opacity": style.get("opacity", 0.9)},
        "labels": main.get("labels", {}),
        "fields": {"tooltip": None, "popup": None},
    }
    by = style.get("by")
    if by and by == main.get("by") and main.get("ramp"):
        spec.update(by=by, ramp=main["ramp"], breaks=main["breaks"])
        fields = [f for f in main["fields"]["tooltip"] or [] if f["name"] == by]
        spec["fields"] = {"tooltip": fields or None, "popup": fields or None}
    else:
        colour = style.get("color", FALLBACK_COLOUR)
        spec["color"] = colour
        # one colour: its legend entry says what a line is (the title said again did not)
        entries = [(colour, style.get("entry", {}).get(page.lang, title))]
        labels = main.get("labels", {})
        fields = [{"name": n, "label": labels.get(n, n)} for n in style.get("popup", [])]
        spec["fields"] = {"tooltip": fields, "popup": fields}
    holder = Data.from_geojson(
        json.dumps({"type": "FeatureCollection", "features": lines}, default=str)
    )
    holder.add_to(m)
    ThemedLayer(
        f"{title} ({count_label(len(lines), page.lang)})", spec, "geojson", holder.get_name()
    ).add_to(m)
    legend.append(legend_section(spec["id"], title, entries, "LineString", shown=True))
