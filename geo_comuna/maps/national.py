"""The national overview: states shaded by how many communes they hold, every commune by
status (outline and a marker visible at country scale), and the exchange network between
communes as lines whose width grows with the monthly volume, over a dark casing so the pale
products (milk, eggs) stay visible. It shows no dwellings: a commune's families and
population are its registry record, the same for every reader.

Like Venezuela's official maps, it shows the Guayana Esequiba hatched as the *Zona en
Reclamación* (data/boundaries/ve_claim_guayana_esequiba.geojson, drawn from its published
limits: see SOURCE.md there), and names the states and communes. It is fitted to the states
and the claim area, so the country fills the frame."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from psycopg import AsyncConnection

from geo_comuna.features.query import Filters
from geo_comuna.layers import LAYERS
from geo_comuna.maps import data
from geo_comuna.maps.draw import add_labels, add_layer, count_label
from geo_comuna.maps.elements import Data, ThemedLayer, legend_section, theme_legend
from geo_comuna.maps.page import Page, finish, new_map
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles


async def national_map(conn: AsyncConnection, page: Page, styles: Styles | None = None) -> str:
    styles = styles or Styles.load(page.styles_path)
    claim = claim_area()
    m = new_map(page, styles, _with_claim(await data.national_bounds(conn), claim), whole=False)
    legend: list[str] = []
    _add_states(m, page, styles, await data.state_communes(conn), legend)
    claim_name = _add_claim(m, page, styles, claim, legend)
    communes = LAYERS["communes"]
    await add_layer(m, conn, page, styles, communes, Filters(), legend)
    _add_commune_points(m, page, styles, await data.commune_points(conn))
    await _add_exchanges(m, conn, page, styles, legend)
    names = json.loads(await data.national_labels(conn))
    names["features"].insert(0, claim_name)
    add_labels(m, page, "names", json.dumps(names, ensure_ascii=False))
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


#: the claim area's outline, shipped with the package (data/boundaries/SOURCE.md)
CLAIM_FILE = "ve_claim_guayana_esequiba.geojson"


@cache
def claim_area() -> dict[str, Any]:
    """The Guayana Esequiba claim area (a FeatureCollection of one polygon)."""
    text = files("geo_comuna.data").joinpath("boundaries").joinpath(CLAIM_FILE).read_text("utf-8")
    return json.loads(text)


def _with_claim(
    bounds: tuple[float, float, float, float] | None, claim: dict[str, Any]
) -> tuple[float, float, float, float] | None:
    """The states' extent grown to hold the claim area too."""
    if bounds is None:
        return None
    xs, ys = [], []
    for feature in claim["features"]:
        for ring in feature["geometry"]["coordinates"]:
            for x, y in ring:
                xs.append(x)
                ys.append(y)
    w, s, e, n = bounds
    return min(w, *xs), min(s, *ys), max(e, *xs), max(n, *ys)


def _add_claim(
    m, page: Page, styles: Styles, claim: dict[str, Any], legend: list[str]
) -> dict[str, Any]:
    """The claim area hatched and outlined with a dashed line; the label feature naming it
    (first in rank: where names collide, it keeps its own)."""
    style = styles.overlay("claim_area")
    colour = style.get("color", "#b2182b")
    title = style.get("legend", {}).get(
        page.lang, page.t("Zona en Reclamación", "Guayana Esequiba (claim area)")
    )
    name = page.t("Zona en Reclamación", "Guayana Esequiba (claim area)")
    features = [{**f, "properties": {**f["properties"], "label": name}} for f in claim["features"]]
    spec: dict[str, Any] = {
        "id": "claim-area",
        "layer": "claim-area",
        "lang": page.lang,
        "geometry": "MultiPolygon",
        "by": None,
        "color": colour,
        "fallback": colour,
        "hatch": colour,
        "stroke": {"color": colour, "weight": style.get("weight", 1.5), "dash": "6 4"},
        "fields": {
            "tooltip": [{"name": "label", "label": page.t("Territorio", "Territory")}],
            "popup": [
                {"name": "label", "label": page.t("Territorio", "Territory")},
                {"name": "name", "label": page.t("Nombre", "Name")},
            ],
        },
    }
    holder = Data.from_geojson(json.dumps({"type": "FeatureCollection", "features": features}))
    holder.add_to(m)
    ThemedLayer(title, spec, "geojson", holder.get_name()).add_to(m)
    legend.append(
        legend_section(spec["id"], "", [(colour, title)], "MultiPolygon", shown=True).replace(
            'class="gc-swatch ', 'class="gc-swatch gc-hatched '
        )
    )
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": CLAIM_LABEL_AT},
        "properties": {"label": name, "kind": "claim", "rank": 0},
    }


#: where the claim area's name goes (lon, lat): its widest part, between the Cuyuní and the
#: Rupununi savannas
CLAIM_LABEL_AT = [-59.55, 5.6]


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
                {"name": "communes", "label": page.t("Comunas", "Communes")},
            ],
            "popup": [
                *styles.fields(states, "popup", page.lang),
                {"name": "communes", "label": page.t("Comunas", "Communes")},
                {"name": "active", "label": page.t("Activas", "Active")},
                {"name": "registered", "label": page.t("Registradas", "Registered")},
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
    # the fields a point carries (found from outside: "Superficie (ha) —" where the outline's
    # popup gives it; the area stays the outline's)
    spec["fields"]["popup"] = [
        f for f in spec["fields"]["popup"] if f["name"] not in ("states", "area_ha")
    ] + [{"name": "state", "label": label}]
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
    names = await data.exchange_commune_names(conn)
    for theme in styles.themes(exchanges):
        spec = styles.spec(theme, page.lang)
        for which in spec["fields"].values():  # a commune by its name, not its code
            for field in which:
                if field["name"] in ("from_commune", "to_commune"):
                    field["values"] = names
        if width and span:
            spec["width_by"] = {**width, "lo": span[0], "hi": span[1]}
        casing = style.get("casing")
        if casing:
            spec["casing"] = casing
        name = f"{styles.legend_title(theme, page.lang)} ({count_label(n, page.lang)})"
        ThemedLayer(name, spec, "geojson", holder.get_name(), show=theme.show).add_to(m)
        present = await data.values_present(conn, exchanges, theme.by)
        legend.append(theme_legend(styles, theme, page.lang, shown=theme.show, present=present))
