"""One map per analysis, built generically from the analysis' Result.features (GeoJSON Feature
dicts from PostGIS) and its entry under ``analyses`` in maps/styles.json.

The style names the property to colour by: numbers get graduated colours (quantile classes
over the result, ``ramp``), other values categorical ones (``colors`` or the ``palette``).
When the analysis is not installed, or fails, the map still opens (commune outline, state
lines) with a clear message instead of the layer.

Around them, maps/answers.py draws what the analysis was computed from (mains, tanks, every
parcel) and the lines of its answer (pipes, walks, transformer sites to their homes).

An analysis of homes drawn for a reader outside the commune shows analysis/disclosure.py's
public view: one point per sector, styled by the analysis' ``sectors`` entry in the style file,
and no line (lines end at homes).
"""

from __future__ import annotations

import bisect
import json
import logging
from typing import Any

import orjson
import shapely
from psycopg import AsyncConnection
from pydantic import BaseModel

from geo_comuna import work
from geo_comuna.analysis import disclosure
from geo_comuna.analysis.base import Unfinished
from geo_comuna.analysis.registry import all_analyses, no_such_analysis
from geo_comuna.errors import GeoComunaError, NotFound
from geo_comuna.maps import answers, basemap, data
from geo_comuna.maps.commune import add_boundary, commune_links
from geo_comuna.maps.draw import count_label
from geo_comuna.maps.elements import Data, ThemedLayer, legend_section
from geo_comuna.maps.page import Page, finish, new_map
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles, domains, quantile_breaks

log = logging.getLogger("geo_comuna.maps")
#: analyses that need the commune's DEM: without one a report has nothing of them to say,
#: and the maps index offers no link to their map (all but one led to a page saying so)
NEEDS_DEM = frozenset({"terrain"})
MAX_CATEGORIES = 12


def known(name: str, styles: Styles) -> bool:
    """An analysis the registry has, or one the style file expects (not installed yet)."""
    return name in all_analyses() or name in styles.raw.get("analyses", {})


def analysis_title(name: str, styles: Styles, lang: str) -> str:
    analysis = all_analyses().get(name)
    if analysis is not None:
        return analysis.title_es if lang == "es" else analysis.title_en
    legend = styles.analysis_style(name).get("legend") or {}
    return legend.get(lang, name)


async def analysis_map(
    conn: AsyncConnection,
    commune_id: int,
    name: str,
    page: Page,
    params: BaseModel | None = None,
    styles: Styles | None = None,
) -> str:
    styles = styles or Styles.load(page.styles_path)
    if not known(name, styles):
        raise NotFound(no_such_analysis(name))
    info = await data.commune_info(conn, commune_id)
    m = new_map(page, styles, info.bounds)
    legend: list[str] = []
    await basemap.add_hillshade(m, conn, page, styles, info, legend)
    await add_boundary(m, conn, page, styles, commune_id, legend)
    title = f"{info.name} — {analysis_title(name, styles, page.lang)}"
    features, lines, note = await _features(conn, commune_id, name, params, page)
    analysis = all_analyses().get(name)
    sectors = analysis is not None and disclosure.hidden_from(analysis, commune_id, page.access)
    # parameters of the reader's choosing: the public view withholds every residents figure
    # (disclosure.for_reader). Found from outside: the water map was then coloured by one,
    # every sector grey, its popups said the wrong reason, and the map said nothing of it
    chosen = sectors and params is not None and not disclosure.published(analysis, params)
    await answers.add_context(m, conn, page, styles, name, commune_id, legend)
    if features is not None:
        if sectors:
            note = page.t(*disclosure.PUBLIC_VIEW)
            if chosen:
                note = f"{note} {page.t(*disclosure.CHOSEN_PARAMETERS)}"
            lines = None  # they end at homes (the public view has none; kept safe here too)
        elif name == "electricity-gaps":
            lines = answers.site_links(features)
        elif lines and "chosen_greedy" in lines[0]["properties"]:
            # a budget was given: the projects it takes (every project was drawn, the budget
            # ignored: ?budget_m=500 drew the page it drew without)
            lines = [line for line in lines if line["properties"]["chosen_greedy"]]
            # and their homes only: every home colored by its rank read as funded (found from
            # outside: the legend's classes described homes whose pipes were not drawn)
            taken = {line["properties"].get("project") for line in lines}
            beyond = sum(f["properties"].get("project") not in taken for f in features)
            features = [f for f in features if f["properties"].get("project") in taken]
            chosen = page.t(
                f"Dentro del presupuesto: {len(lines)} proyectos (elección voraz); "
                f"{beyond} viviendas más sin agua por tubería quedan fuera de él.",
                f"Within the budget: {len(lines)} projects (greedy choice); "
                f"{beyond} more homes without piped water are beyond it.",
            )
            note = chosen if note is None else f"{note} {chosen}"
        if features:
            spec, entries = analysis_spec(
                name, features, styles, page.lang, sectors=sectors, chosen=chosen
            )
            answers.add_lines(m, page, styles, name, lines or [], spec, entries, legend)
            holder = Data.from_geojson(
                json.dumps(
                    {"type": "FeatureCollection", "features": _on_top(features, spec)},
                    default=str,
                )
            )
            holder.add_to(m)
            label = f"{spec['title']} ({count_label(len(features), page.lang)})"
            ThemedLayer(label, spec, "geojson", holder.get_name()).add_to(m)
            legend.append(
                legend_section(spec["id"], spec["title"], entries, spec["geometry"], shown=True)
            )
        else:
            note = page.t(
                "El análisis no devolvió entidades para esta comuna.",
                "The analysis returned no features for this commune.",
            )
    asked = None if params is None else params.model_dump(mode="json", exclude_defaults=True)
    links = commune_links(page, info.code, name, asked)
    return finish(m, page, legend, title=title, links=links, note=note)


def drawable(features: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """``features`` as a map draws them: when their lines and areas have more than ``most``
    vertices in all, each of those simplified by ~1 m (data.QUANTUM_DEG, as a standalone
    file's big layers are), points as they are. Land recovery's candidates and overlaps in
    a commune of 100 parcels of 50,000 vertices made a map of 78 MB. The answer itself (its
    JSON, GeoJSON and CSV) keeps every vertex."""
    lined = [
        i
        for i, f in enumerate(features)
        if (f.get("geometry") or {}).get("type") not in (None, "Point", "MultiPoint")
    ]
    if not lined:
        return features
    shapes = shapely.from_geojson(
        [orjson.dumps(features[i]["geometry"], option=orjson.OPT_SERIALIZE_NUMPY) for i in lined]
    )
    if int(shapely.get_num_coordinates(shapes).sum()) <= most:
        return features
    simple = shapely.simplify(shapes, data.QUANTUM_DEG, preserve_topology=True)
    drawn = list(features)
    for i, text in zip(lined, shapely.to_geojson(simple), strict=True):
        drawn[i] = {**features[i], "geometry": orjson.loads(text)}
    return drawn


def _on_top(features: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The features drawn bigger or bolder (``radii``: transformer sites; ``weights``: slivers)
    last, so that they are on top."""
    bold, by = {**(spec.get("radii") or {}), **(spec.get("weights") or {})}, spec.get("by")
    if not bold or not by:
        return features
    return sorted(features, key=lambda f: str((f.get("properties") or {}).get(by)) in bold)


async def _features(
    conn: AsyncConnection, commune_id: int, name: str, params: BaseModel | None, page: Page
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None, str | None]:
    """The analysis' features and lines (those as this reader may read them), or None and the
    message to show instead."""
    analysis = all_analyses().get(name)
    if analysis is None:
        return (
            None,
            None,
            page.t(
                f"Análisis no disponible: «{name}» no está instalado.",
                f"Analysis not available: '{name}' is not installed.",
            ),
        )
    try:
        # half the time left: the map must still be drawn. Land recovery in a commune of 100
        # parcels of 50,000 vertices took 19 of the 20 s, and the map was a 503
        with work.share(2):
            result = await disclosure.answer_for(
                analysis, conn, commune_id, params or analysis.params(), page.access
            )
    except Unfinished as exc:
        return (
            None,
            None,
            page.t(f"Análisis no disponible: {exc.es}", f"Analysis not available: {exc.en}"),
        )
    except GeoComunaError as exc:
        said = getattr(exc, "people", None)  # what a page says to everyone (NoDem)
        return (
            None,
            None,
            page.t(
                f"Análisis no disponible: {said.es if said else exc.said('es')}",
                f"Analysis not available: {said if said else exc.said('en')}",
            ),
        )
    except Exception:  # a broken analysis must not take the map page down; logged in full
        log.exception("analysis %s failed for commune %s", name, commune_id)
        return (
            None,
            None,
            page.t(
                "Análisis no disponible: falló al calcularse (ver el registro).",
                "Analysis not available: it failed to run (see the log).",
            ),
        )
    if not analysis.spatial or result.features is None:
        return (
            None,
            None,
            page.t(
                "Este análisis no tiene geometría que mostrar.",
                "This analysis has no geometry to show.",
            ),
        )

    def as_dicts() -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Column-wise features and lines as dicts for the map (the lines drawn now)."""
        lines = result.drawn_lines()
        features = drawable(list(result.features or []), page.inline_vertices)
        return features, None if lines is None else list(lines)

    features, lines = await work.cpu(as_dicts)
    return features, lines, None


def _colour_property(style: dict[str, Any], features: list[dict[str, Any]]) -> str | None:
    present = {k for f in features for k in (f.get("properties") or {})}
    for candidate in (style.get("by"), "kind", "status"):
        if candidate and candidate in present:
            return candidate
    return None


def analysis_spec(
    name: str,
    features: list[dict[str, Any]],
    styles: Styles,
    lang: str,
    *,
    sectors: bool = False,
    chosen: bool = False,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The runtime spec and the legend entries (colour, label) for an analysis result
    (``sectors``: its public view, one point per sector; ``chosen``: of parameters the reader
    chose, whose residents figures are all withheld: coloured by the style's ``chosen``
    figure, and no residents in its popups)."""
    style = styles.analysis_style(name)
    if sectors:
        style = {**style, **style.get("sectors", {})}
    if chosen:
        style = {**style, **style.get("chosen", {})}
        style["popup"] = [n for n in style.get("popup") or [] if "residents" not in n] or None
    by = _colour_property(style, features)
    values = [(f.get("properties") or {}).get(by) for f in features] if by else []
    field_labels = {k: v.get(lang, k) for k, v in style.get("fields", {}).items()}
    geometry = next((f["geometry"]["type"] for f in features if f.get("geometry")), "Point")
    title = (style.get("legend") or {}).get(lang) or name
    spec: dict[str, Any] = {
        "id": f"analysis-{name}",
        "layer": name,
        "lang": lang,
        "title": title,
        "geometry": geometry,
        "by": by,
        "colors": {},
        "fallback": FALLBACK_COLOUR,
        "labels": field_labels,
        "fields": {
            "tooltip": _tooltip_fields(by, style, field_labels),
            "popup": _popup_fields(style, field_labels),
        },
    }
    for key in ("stroke", "fill_opacity", "radius", "radii", "weights", "outline"):
        if key in style:
            spec[key] = style[key]
    # coded values in the page's words, in every field that holds them (a popup listing
    # every property looks them up by name): "Tenencia: abandoned" was a code in Spanish
    spec["values"] = _value_words(style, by, lang, styles)
    for field in [*(spec["fields"]["tooltip"] or []), *(spec["fields"]["popup"] or [])]:
        if field["name"] in spec["values"]:
            field["values"] = spec["values"][field["name"]]
    return spec, _legend(spec, style, by, values, lang)


def _legend(
    spec: dict[str, Any], style: dict[str, Any], by: str | None, values: list[Any], lang: str
) -> list[tuple[str, str]]:
    """The legend's entries (colour, label) of an analysis map, the classes or values it
    colours by set in ``spec`` as the page draws them: numbers in quantile classes of the
    style's ramp, other values in its colours; features without a value in the fallback."""
    numeric = values and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None
    )
    entries: list[tuple[str, str]] = []
    if not by:
        colour = (style.get("palette") or [FALLBACK_COLOUR])[0]
        spec["color"] = colour
        return [(colour, spec["title"])]
    if numeric and style.get("ramp"):
        ramp = style["ramp"]
        known = sorted(v for v in values if v is not None)
        breaks = quantile_breaks(known, len(ramp))
        spec.update(ramp=ramp, breaks=breaks)
        for i, (lowest, highest) in enumerate(_class_ranges(known, breaks)):
            label = _num(lowest, lang)
            if highest != lowest:
                label += f" – {_num(highest, lang)}"
            entries.append((ramp[min(i, len(ramp) - 1)], label))
        others = False
    else:
        palette = style.get("palette") or [FALLBACK_COLOUR]
        every = sorted({str(v) for v in values if v is not None})
        colours, labels = style.get("colors", {}), style.get("labels", {})
        for i, value in enumerate(every[:MAX_CATEGORIES]):
            spec["colors"][value] = colours.get(value, palette[i % len(palette)])
            entries.append((spec["colors"][value], labels.get(value, {}).get(lang, value)))
        others = len(every) > MAX_CATEGORIES  # drawn in the fallback colour, as no value
    # found from outside: a water sector without a value was grey, and no legend said why
    if others:
        entries.append((FALLBACK_COLOUR, LEFT_OVER[lang][None in values]))
    elif None in values:
        entries.append((FALLBACK_COLOUR, NO_VALUE[lang]))
    return entries


#: the legend's entry for features drawn in the fallback colour: no value of the coloured
#: property; past MAX_CATEGORIES values, the others (and those without a value)
NO_VALUE = {"es": "sin dato", "en": "no value"}
LEFT_OVER = {
    "es": {False: "otros valores", True: "otros valores o sin dato"},
    "en": {False: "other values", True: "other values or no value"},
}


def _value_words(
    style: dict[str, Any], by: str | None, lang: str, styles: Styles
) -> dict[str, dict[str, str]]:
    """Each coded field of an analysis' features, its values as ``lang`` words them: a
    property named as a registry domain (tenure, land_use, water, electricity, gas) by the
    registry's labels, the analysis' own codes by its style's ``values``, and the coloured
    property by its legend's labels."""
    registry = domains()
    named = {*style.get("fields", {}), *(style.get("popup") or []), *([by] if by else [])}
    words: dict[str, dict[str, str]] = {}
    for name in sorted(named):
        if name in registry:
            domain = registry[name]
            words[name] = {v: styles.value_label(domain, v, lang) for v in domain.values}
        if name in style.get("values", {}):
            words[name] = {v: t.get(lang, v) for v, t in style["values"][name].items()}
    if by and style.get("labels"):
        words[by] = {v: t.get(lang, v) for v, t in style["labels"].items()}
    return words


def _class_ranges(known: list[float], breaks: list[float]) -> list[tuple[float, float]]:
    """The lowest and highest value drawn in each class (the page colours a value with the
    first class whose break it does not pass): a class of one value is labelled by it, not
    "1 – 1", and no label claims the class before's upper bound."""
    ranges, start = [], 0
    for upper in breaks:
        end = bisect.bisect_right(known, upper, lo=start)
        if end > start:
            ranges.append((known[start], known[end - 1]))
        start = end
    return ranges


def _popup_fields(style: dict[str, Any], labels: dict[str, str]) -> list[dict] | None:
    names = style.get("popup")
    if not names:
        return None  # every property
    return [{"name": n, "label": labels.get(n, n)} for n in names]


def _tooltip_fields(
    by: str | None, style: dict[str, Any], labels: dict[str, str]
) -> list[dict] | None:
    names = [n for n in [by, *(style.get("popup") or [])] if n]
    names = list(dict.fromkeys(names))[:3]
    return [{"name": n, "label": labels.get(n, n)} for n in names] or None


def _num(value: float, lang: str) -> str:
    """A legend's number as the page's language writes it (es-VE: 1.234,5; en: 1,234.5)."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "es" else text
