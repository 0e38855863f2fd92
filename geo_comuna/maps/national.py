"""The national overview: states shaded by how many communes they hold, every commune by
status (outline and a marker visible at country scale), and the exchange network between
communes as lines whose width grows with the monthly volume. It shows no dwellings: a
commune's families and population are its registry record, the same for every reader."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from geo_comuna.features.query import Filters
from geo_comuna.layers import LAYERS
from geo_comuna.maps import data
from geo_comuna.maps.draw import add_layer, count_label
from geo_comuna.maps.elements import Data, ThemedLayer, legend_section, theme_legend
from geo_comuna.maps.page import Page, finish, new_map
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles


async def national_map(conn: AsyncConnection, page: Page, styles: Styles | None = None) -> str:
    styles = styles or Styles.load(page.styles_path)
    m = new_map(page, styles, await data.national_bounds(conn))
    legend: list[str] = []
    _add_states(m, page, styles, await data.state_communes(conn), legend)
    communes = LAYERS["communes"]
    await add_layer(m, conn, page, styles, communes, Filters(), legend)
    _add_commune_points(m, page, styles, await data.commune_points(conn))
    await _add_exchanges(m, conn, page, styles, legend)
    title = page.t("Comunas de Venezuela", "Venezuela's communes")
    links = (
        []
        if page.standalone
        else [
            (
                "EN" if page.lang == "es" else "ES",
                f"{page.base}/maps/national?lang={'en' if page.lang == 'es' else 'es'}",
            ),
            (
                page.t("Descargar HTML", "Download HTML"),
                f"{page.base}/maps/national?lang={page.lang}&standalone=true",
            ),
            (
                page.t("Insertar", "Embed"),
                f"{page.base}/maps/national/embed-snippet?lang={page.lang}",
            ),
        ]
    )
    return finish(m, page, legend, title=title, links=links)


def _add_states(m, page: Page, styles: Styles, geojson: str, legend: list[str]) -> None:
    style = styles.overlay("state_communes")
    states = LAYERS["states"]
    breaks, ramp = style.get("breaks", []), style.get("ramp", [FALLBACK_COLOUR])
    title = style.get("legend", {}).get(page.lang, "Communes per state")
    n = page.t("comunas", "communes")
    spec: dict[str, Any] = {
        "id": "state-communes",
        "layer": "states",
        "lang": page.lang,
        "title": title,
        "geometry": "MultiPolygon",
        "by": "communes",
        "colors": {},
        "ramp": ramp,
        "breaks": breaks,
        "fallback": FALLBACK_COLOUR,
        "stroke": style.get("stroke", {}),
        "fill_opacity": style.get("fill_opacity", 0.5),
        "fields": {
            "tooltip": [
                {"name": "name", "label": styles.field_label(states, "name", page.lang)},
                {"name": "communes", "label": n},
            ],
            "popup": [
                *styles.fields(states, "popup", page.lang),
                {"name": "communes", "label": n},
                {"name": "active", "label": page.t("activas", "active")},
                {"name": "registered", "label": page.t("registradas", "registered")},
            ],
        },
    }
    entries = []
    for i, colour in enumerate(ramp):
        if i < len(breaks):
            low = 0 if i == 0 else breaks[i - 1] + 1
            label = f"{low}" if low == breaks[i] else f"{low}–{breaks[i]}"
        else:
            label = f"> {breaks[-1]}" if breaks else ""
        one = page.t("comuna", "commune")
        entries.append((colour, f"{label} {one if label == '1' else n}"))
    holder = Data.from_geojson(geojson)
    holder.add_to(m)
    ThemedLayer(title, spec, "geojson", holder.get_name()).add_to(m)
    legend.append(legend_section(spec["id"], title, entries, "MultiPolygon", shown=True))


def _add_commune_points(m, page: Page, styles: Styles, geojson: str) -> None:
    """Markers coloured like the commune outlines (same theme, shares its legend)."""
    communes = LAYERS["communes"]
    theme = styles.theme(communes)
    spec = styles.spec(theme, page.lang)
    spec.update(id=f"{theme.id}-points", geometry="Point")
    label = page.t("Estado", "State")
    spec["fields"]["tooltip"] = [*spec["fields"]["tooltip"], {"name": "state", "label": label}]
    spec["fields"]["popup"] = [f for f in spec["fields"]["popup"] if f["name"] != "states"] + [
        {"name": "state", "label": label}
    ]
    holder = Data.from_geojson(geojson)
    holder.add_to(m)
    name = page.t("Comunas (marcadores)", "Communes (markers)")
    ThemedLayer(name, spec, "geojson", holder.get_name()).add_to(m)


async def _add_exchanges(
    m, conn: AsyncConnection, page: Page, styles: Styles, legend: list[str]
) -> None:
    exchanges = LAYERS["exchanges"]
    style = styles.layer_style(exchanges)
    width = style.get("width_by")
    span = await data.value_range(conn, exchanges, width["attribute"]) if width else None
    n = await data.count(conn, exchanges, Filters(), page.access)
    if n == 0:  # no exchange yet: no layer and no legend for it
        return
    holder = Data.from_geojson(
        await data.geojson(
            conn, exchanges, Filters(), styles.wanted_properties(exchanges), page.access
        )
    )
    holder.add_to(m)
    for theme in styles.themes(exchanges):
        spec = styles.spec(theme, page.lang)
        if width and span:
            spec["width_by"] = {**width, "lo": span[0], "hi": span[1]}
        name = f"{styles.legend_title(theme, page.lang)} ({count_label(n, page.lang)})"
        ThemedLayer(name, spec, "geojson", holder.get_name(), show=theme.show).add_to(m)
        legend.append(theme_legend(styles, theme, page.lang, shown=theme.show))
