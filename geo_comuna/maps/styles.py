"""Map styles from styles.json, which planners edit without touching Python.

The file gives a colour for every allowed value of every domain in the layer registry, the
themes each layer is drawn by (one map layer per theme), legend titles in es/en, and which
attributes tooltips and popups show. Value labels default to the registry's domain labels and
may be overridden in the file. ``problems()`` checks the file against the registry (a test runs
it; a map request with a broken file answers 500 naming every problem).

The file is geo_comuna/maps/styles.json inside the package, or the one GEO_COMUNA_STYLES_PATH
names (an edited copy outside the installed package survives an upgrade). It is parsed and
checked once and kept while the file stays the same: a map request or a tile only looks at the
file's modification time and size, so an edit still shows on the next reload without every
tile reading and checking the whole file again.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from geo_comuna.errors import GeoComunaError
from geo_comuna.layers import LAYERS, Domain, Layer
from geo_comuna.settings import Settings

#: the package's own styles (Settings.styles_path's default)
STYLES_PATH: Path = Settings.model_fields["styles_path"].default
FALLBACK_COLOUR = "#999999"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
LANGS = ("es", "en")


class StyleError(GeoComunaError):
    """styles.json is unreadable or names something the registry does not have."""

    status, code = 500, "map-style-error"


@dataclass(frozen=True)
class Theme:
    """One way of colouring a layer: by the values of one domain attribute."""

    layer: Layer
    by: str
    index: int
    show: bool
    legend: dict[str, str] | None
    colours: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.layer.name}-{self.by}"


def domains() -> dict[str, Domain]:
    """Every domain the registry uses, by name."""
    return {
        a.domain.name: a.domain
        for layer in LAYERS.values()
        for a in layer.attributes
        if a.domain is not None
    }


def property_names(layer: Layer) -> list[str]:
    """Every property a feature of ``layer`` carries when read (references, attributes,
    derived)."""
    return [*layer.property_names, *(d.name for d in layer.derived)]


class Styles:
    """The parsed style file. Build with ``Styles.load()``."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @classmethod
    def load(cls, path: Path | None = None, *, check: bool = True) -> Styles:
        """The styles in ``path`` (default: the package's own; callers with settings pass
        ``settings.styles_path``), parsed and checked once per version of the file.

        The object is shared by every caller until the file changes: read it, never change
        it (copy ``raw`` to make a variant)."""
        path = path or STYLES_PATH
        try:
            stat = path.stat()
        except OSError as exc:
            raise StyleError(f"cannot read the map styles {path}: {exc}") from None
        return _parsed(path, stat.st_mtime_ns, stat.st_size, check)

    # -- lookups ------------------------------------------------------------------------------

    @property
    def background(self) -> str:
        return self.raw.get("background", "#eef0e6")

    def overlay(self, name: str) -> dict[str, Any]:
        return self.raw.get("overlays", {}).get(name, {})

    def layer_style(self, layer: Layer) -> dict[str, Any]:
        return self.raw.get("layers", {}).get(layer.style or layer.name, {})

    def themes(self, layer: Layer) -> list[Theme]:
        out = []
        for i, theme in enumerate(self.layer_style(layer).get("themes", [])):
            attr = layer.attribute(theme["by"])
            base = (
                dict(self.raw.get("domains", {}).get(attr.domain.name, {}))
                if (attr and attr.domain)
                else {}
            )
            base.update(theme.get("colors", {}))
            out.append(
                Theme(layer, theme["by"], i, theme.get("show", i == 0), theme.get("legend"), base)
            )
        return out

    def theme(self, layer: Layer, by: str | None = None) -> Theme:
        themes = self.themes(layer)
        if not themes:
            raise StyleError(f"the map styles have no theme for layer {layer.name}")
        return next((t for t in themes if t.by == by), themes[0])

    def value_label(self, domain: Domain, value: str, lang: str) -> str:
        override = self.raw.get("labels", {}).get(domain.name, {}).get(value)
        if override and lang in override:
            return override[lang]
        return domain.values[value].get(lang)

    def field_label(self, layer: Layer, name: str, lang: str) -> str:
        return layer.field_title(name, lang)

    def fields(
        self, layer: Layer, which: str, lang: str, names: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Tooltip or popup fields of a layer (or the ``names`` given): name, label and value
        labels (for domains)."""
        out = []
        for name in self.layer_style(layer).get(which, []) if names is None else names:
            field: dict[str, Any] = {"name": name, "label": self.field_label(layer, name, lang)}
            attr = layer.attribute(name)
            if attr is not None and attr.domain is not None:
                field["values"] = {
                    v: self.value_label(attr.domain, v, lang) for v in attr.domain.values
                }
            unit = layer.field_unit(name)
            if unit == "m":  # in m or km by its size (static/geo_comuna_maps.js)
                field["unit"] = unit
                field["label"] = field["label"].removesuffix(" (m)")
            elif (places := layer.field_places(name)) is not None:  # 0.2022 ha read "0,2"
                field["places"] = places
            if unit and unit != "m" and unit not in field["label"]:
                field["label"] = f"{field['label']} ({unit})"
            out.append(field)
        return out

    def legend_title(self, theme: Theme, lang: str) -> str:
        if theme.legend and lang in theme.legend:
            return theme.legend[lang]
        attr = theme.layer.attribute(theme.by)
        return f"{theme.layer.title.get(lang)} — {attr.title.get(lang) if attr else theme.by}"

    def legend_entries(
        self, theme: Theme, lang: str, present: set[str] | None = None
    ) -> list[tuple[str, str]]:
        """(colour, label) per allowed value, in the registry's order; only the values in
        ``present`` when given (a legend explains what the map shows, not every value)."""
        attr = theme.layer.attribute(theme.by)
        if attr is None or attr.domain is None:
            return []
        return [
            (theme.colours.get(v, FALLBACK_COLOUR), self.value_label(attr.domain, v, lang))
            for v in attr.domain.values
            if present is None or v in present
        ]

    def spec(self, theme: Theme, lang: str) -> dict[str, Any]:
        """What the browser runtime (static/geo_comuna_maps.js) draws a theme with."""
        style = self.layer_style(theme.layer)
        spec: dict[str, Any] = {
            "id": theme.id,
            "layer": theme.layer.name,
            "lang": lang,
            "title": self.legend_title(theme, lang),
            "geometry": theme.layer.geometry_type,
            "by": theme.by,
            "colors": theme.colours,
            "fallback": FALLBACK_COLOUR,
            "fields": {
                "tooltip": self.fields(theme.layer, "tooltip", lang),
                "popup": self.fields(theme.layer, "popup", lang),
            },
        }
        for key in ("stroke", "fill_opacity", "radius", "weights", "dash", "width_by"):
            if key in style:
                spec[key] = style[key]
        return spec

    def wanted_properties(self, layer: Layer) -> list[str]:
        """Properties a map needs from the database: theme attributes, tooltip and popup
        fields, the width attribute; in the registry's order."""
        style = self.layer_style(layer)
        wanted = {t["by"] for t in style.get("themes", [])}
        wanted |= set(style.get("tooltip", [])) | set(style.get("popup", []))
        if "width_by" in style:
            wanted.add(style["width_by"]["attribute"])
        return [n for n in property_names(layer) if n in wanted]

    def slim_properties(self, layer: Layer) -> list[str]:
        """What a big layer carries (vector tiles, standalone geobuf): the theme attributes
        and tooltip fields only, so 100,000 features stay quick to build and small."""
        style = self.layer_style(layer)
        slim = {t["by"] for t in style.get("themes", [])} | set(style.get("tooltip", []))
        return [n for n in self.wanted_properties(layer) if n in slim]

    # -- analyses -----------------------------------------------------------------------------

    def analysis_style(self, name: str) -> dict[str, Any]:
        analyses = self.raw.get("analyses", {})
        style = dict(analyses.get("default", {}))
        style.update(analyses.get(name, {}))
        return style

    # -- checks -------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Everything in the file that does not match the registry; empty when all is well."""
        out: list[str] = []
        out += self._domain_problems()
        for layer in LAYERS.values():
            out += self._layer_problems(layer)
        for name, style in self.raw.get("analyses", {}).items():
            out += _colour_problems(f"analyses.{name}", style.get("ramp", []))
            out += _colour_problems(f"analyses.{name}", style.get("palette", []))
        return out

    def _domain_problems(self) -> list[str]:
        out = []
        known = domains()
        colours = self.raw.get("domains", {})
        for name, domain in known.items():
            given = colours.get(name, {})
            missing = [v for v in domain.values if v not in given]
            if missing:
                out.append(f"domains.{name} has no colour for {missing}")
            extra = [v for v in given if v not in domain.values]
            if extra:
                out.append(f"domains.{name} colours values the registry does not allow: {extra}")
            out += _colour_problems(f"domains.{name}", given.values())
        out += [
            f"domains.{name} is not a domain of the registry"
            for name in colours
            if name not in known
        ]
        for name, values in self.raw.get("labels", {}).items():
            if name not in known:
                out.append(f"labels.{name} is not a domain of the registry")
                continue
            for value, label in values.items():
                if value not in known[name].values:
                    out.append(f"labels.{name}.{value} is not an allowed value")
                elif set(label) - set(LANGS):
                    out.append(f"labels.{name}.{value} has languages other than es/en")
        return out

    def _layer_problems(self, layer: Layer) -> list[str]:
        key = layer.style or layer.name
        style = self.raw.get("layers", {}).get(key)
        if style is None:
            return [f"layers.{key} is missing (layer {layer.name})"]
        out = []
        props = set(property_names(layer))
        themes = style.get("themes", [])
        if not themes:
            out.append(f"layers.{key} has no themes")
        for theme in themes:
            attr = layer.attribute(theme.get("by", ""))
            if attr is None or attr.domain is None:
                out.append(
                    f"layers.{key}: theme by {theme.get('by')!r} is not an attribute "
                    f"with allowed values of {layer.name}"
                )
                continue
            extra = [v for v in theme.get("colors", {}) if v not in attr.domain.values]
            if extra:
                out.append(f"layers.{key}: colours for values {attr.name} does not allow: {extra}")
            out += _colour_problems(f"layers.{key}", theme.get("colors", {}).values())
        for which in ("tooltip", "popup"):
            unknown = [n for n in style.get(which, []) if n not in props]
            if unknown:
                out.append(
                    f"layers.{key}.{which} names properties {layer.name} does not have: {unknown}"
                )
        width = style.get("width_by")
        if width is not None:
            attr = layer.attribute(width.get("attribute", ""))
            if attr is None or attr.type not in ("integer", "number"):
                out.append(f"layers.{key}.width_by must name a numeric attribute")
        if "stroke" in style and "color" in style["stroke"]:
            out += _colour_problems(f"layers.{key}.stroke", [style["stroke"]["color"]])
        if "aggregate" in style:
            out += _aggregate_problems(layer, key, style["aggregate"])
        return out


@lru_cache(maxsize=8)
def _parsed(path: Path, _mtime_ns: int, _size: int, check: bool) -> Styles:
    """The file parsed and checked; keyed by its modification time and size as well, so an
    edited file is read again (a few style files at most: the package's and a planner's)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StyleError(f"cannot read the map styles {path}: {exc}") from None
    styles = Styles(raw)
    if check:
        problems = styles.problems()
        if problems:
            raise StyleError(f"{path} has {len(problems)} problem(s): " + "; ".join(problems))
    return styles


def _aggregate_problems(layer: Layer, key: str, style: dict[str, Any]) -> list[str]:
    """The style of a layer's public groups names only the registry's figures of them."""
    if layer.aggregate is None:
        return [f"layers.{key}.aggregate: {layer.name} has no aggregate in the registry"]
    known = {layer.aggregate.by} | {m.name for m in layer.aggregate.figures}
    named = [style.get("by"), *style.get("tooltip", []), *style.get("popup", [])]
    unknown = [n for n in named if n is not None and n not in known]
    out = (
        [f"layers.{key}.aggregate names figures the registry has not: {unknown}"] if unknown else []
    )
    return out + _colour_problems(f"layers.{key}.aggregate", style.get("ramp", []))


def _colour_problems(where: str, colours: Any) -> list[str]:
    return [
        f"{where}: {c!r} is not a #rrggbb colour"
        for c in colours
        if not isinstance(c, str) or not _COLOUR.fullmatch(c)
    ]


def quantile_breaks(values: list[float], classes: int) -> list[float]:
    """Upper bounds of ``classes`` quantile classes (for graduated analysis colours)."""
    finite = sorted(v for v in values if isinstance(v, int | float) and math.isfinite(v))
    if not finite:
        return []
    breaks = []
    for i in range(1, classes + 1):
        breaks.append(finite[min(len(finite) - 1, math.ceil(i * len(finite) / classes) - 1)])
    return sorted(set(breaks))
