"""Folium elements drawn by the geo_comuna runtime (static/geo_comuna_maps.js).

Feature data goes into the page as the text PostGIS built (GeoJSON) or as base64 geobuf: never
parsed and re-serialised in Python. Everything put inside a <script> goes through ``js()``,
which escapes "<" so no property value can close the script element; the runtime escapes
every value again when it builds a tooltip or popup.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium.elements import ElementAddToElement
from jinja2 import Template
from markupsafe import escape

from geo_comuna.maps.styles import Styles, Theme


def js(value: Any) -> str:
    """A JSON value as a JavaScript literal that is safe inside <script>."""
    return safe_json(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def safe_json(text: str) -> str:
    """JSON text (e.g. from PostGIS) made safe inside <script>: "<" becomes \\u003c, which
    JSON and JavaScript read back as "<" (it can only occur inside strings)."""
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


class Raw(Element):
    """Text put into the page as is. branca compiles every rendered script and HTML snippet
    as a Jinja2 template again, which would evaluate any "{{ }}" in feature data (and costs
    seconds for megabytes of data); this element renders to its text without that."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class Script(MacroElement):
    """A MacroElement whose ``script`` macro output goes into the page uncompiled."""

    def render(self, **kwargs: Any) -> None:
        script = self._template.module.__dict__["script"]
        self.get_root().script.add_child(Raw(script(self, kwargs)), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class MetricScale(Script):
    """The scale bar in metres and kilometres only (folium's own adds feet and miles)."""

    _template = Template("""{% macro script(this, kwargs) %}
        L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
    {% endmacro %}""")


class Data(Script):
    """A JavaScript variable holding a layer's data, shared by the layer's themes."""

    _template = Template("""{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.expression }};
    {% endmacro %}""")

    def __init__(self, expression: str) -> None:
        super().__init__()
        self._name = "gc_data"
        self.expression = expression

    @classmethod
    def from_geojson(cls, text: str) -> Data:
        return cls(safe_json(text))

    @classmethod
    def from_geobuf(cls, blob: bytes, *, lazy: bool = False) -> Data:
        """Decoded as the page loads, or with ``lazy`` a function decoding it on first call."""
        call = f'GeoComuna.geobuf("{base64.b64encode(blob).decode("ascii")}")'
        return cls(f"GeoComuna.later(function () {{ return {call}; }})" if lazy else call)


class ThemedLayer(folium.map.Layer):
    """One themed map layer, listed in the layer control.

    ``kind``: "geojson" (inline data), "sliced" (inline geobuf, tiled in the browser; built on
    first display), "overview" (``source`` is {image, bounds, detail_zoom}, then the lazily
    decoded geobuf, sliced once zoomed in to ``detail_zoom``), "tiles" (vector tiles from the
    app's /tiles/ URL), "labels" (names as text, ``source`` points with properties label and
    rank; overlapping ones hidden by rank) or "image" (an overlay such as the hillshade;
    ``source`` is [url, bounds, opacity]).
    """

    _template = Template("""{% macro script(this, kwargs) %}
        {%- if this.kind == "geojson" %}
        var {{ this.get_name() }} = GeoComuna.geojson({{ this.spec }}, {{ this.source }});
        {%- elif this.kind == "sliced" %}
        var {{ this.get_name() }} = GeoComuna.lazy({{ this.spec }}, function () {
            return GeoComuna.sliced({{ this.spec }}, {{ this.source }}); });
        {%- elif this.kind == "overview" %}
        var {{ this.get_name() }} = GeoComuna.overview({{ this.spec }}, {{ this.source }});
        {%- elif this.kind == "labels" %}
        var {{ this.get_name() }} = GeoComuna.labels({{ this.spec }}, {{ this.source }});
        {%- elif this.kind == "tiles" %}
        var {{ this.get_name() }} = GeoComuna.tiles({{ this.spec }}, {{ this.source }});
        {%- else %}
        var {{ this.get_name() }} = GeoComuna.image({{ this.spec }}, {{ this.source }});
        {%- endif %}
    {% endmacro %}""")

    def __init__(
        self, name: str, spec: dict[str, Any], kind: str, source: str, *, show: bool = True
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "gc_layer"
        self.spec_dict = spec
        self.spec = js(spec)
        self.kind = kind
        self.source = source

    def render(self, **kwargs: Any) -> None:
        if self.show:
            self.add_child(
                ElementAddToElement(
                    element_name=self.get_name(), element_parent_name=self._parent.get_name()
                ),
                name=self.get_name() + "_add",
            )
        Script.render(self, **kwargs)


class Legend(Script):
    """The legend control: a section per themed layer (swatch + label per value), in the
    page's language; a section shows while its layer is on. A button folds it away (the
    legend must not hide the map it explains)."""

    _template = Template("""{% macro script(this, kwargs) %}
        GeoComuna.legend({{ this._parent.get_name() }}, {{ this.html }}, {{ this.words }});
    {% endmacro %}""")

    def __init__(self, sections: list[str], lang: str = "es") -> None:
        super().__init__()
        self._name = "gc_legend"
        self.html = js("".join(sections))
        words = (
            {"show": "Leyenda ▸", "hide": "Leyenda ▾ (ocultar)"}
            if lang == "es"
            else {"show": "Legend ▸", "hide": "Legend ▾ (hide)"}
        )
        self.words = js(words)


class Basemap(folium.map.Layer):
    """The online basemap (maps/page.py): offered in the layer control, off until asked for,
    switched off again with a note when its tiles cannot load."""

    _template = Template("""{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = GeoComuna.basemap({{ this._parent.get_name() }},
            {{ this.url }}, {{ this.options }}, {{ this.words }});
    {% endmacro %}""")

    def __init__(self, name: str, url: str, attribution: str, offline: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=False)
        self._name = "gc_basemap"
        self.url = js(url)
        self.options = js({"attribution": attribution, "maxZoom": 21, "maxNativeZoom": 19})
        self.words = js({"offline": offline})

    def render(self, **kwargs: Any) -> None:
        Script.render(self, **kwargs)


#: a colour as styles.json writes it
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


def legend_section(
    spec_id: str,
    title: str,
    entries: list[tuple[str, str]],
    geometry: str,
    *,
    shown: bool,
    fill_opacity: float | None = None,
) -> str:
    """HTML of one legend section; every text is escaped here. ``fill_opacity``: an area's
    swatch is filled as the map fills the areas (found from outside: full-strength swatches
    beside areas drawn at 0.6 over the background were another colour, 20-29 apart)."""
    shape = {"Point": "gc-point", "LineString": "gc-line", "MultiLineString": "gc-line"}.get(
        geometry, ""
    )

    def fill(colour: str) -> str:
        if shape or fill_opacity is None or not _HEX.fullmatch(colour):
            return colour
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{fill_opacity:g})"

    items = "".join(
        f'<li><span class="gc-swatch {shape}" style="background:{escape(fill(colour))};'
        f'border-top-color:{escape(colour)}"></span>{escape(label)}</li>'
        for colour, label in entries
    )
    off = "" if shown else " gc-off"
    heading = f"<h4>{escape(title)}</h4>" if title else ""
    return (
        f'<section class="gc-legend-section{off}" data-gc-layer="{escape(spec_id)}">'
        f"{heading}<ul>{items}</ul></section>"
    )


def theme_legend(
    styles: Styles, theme: Theme, lang: str, *, shown: bool, present: set[str] | None = None
) -> str:
    return legend_section(
        theme.id,
        styles.legend_title(theme, lang),
        styles.legend_entries(theme, lang, present),
        theme.layer.geometry_type,
        shown=shown,
        fill_opacity=styles.layer_style(theme.layer).get("fill_opacity"),
    )


class Done(Script):
    """Last script of the page: tells the runtime every layer has been added."""

    _template = Template("""{% macro script(this, kwargs) %}
        GeoComuna.done();
    {% endmacro %}""")

    def __init__(self) -> None:
        super().__init__()
        self._name = "gc_done"


class Note(Script):
    """A message on the map (e.g. "analysis not available"), escaped."""

    _template = Template("""{% macro script(this, kwargs) %}
        (function () {
            var note = L.control({position: "topright"});
            note.onAdd = function () {
                var div = L.DomUtil.create("div", "gc-note leaflet-control");
                div.textContent = {{ this.text }};
                div.setAttribute("role", "status");
                return div;
            };
            note.addTo({{ this._parent.get_name() }});
        })();
    {% endmacro %}""")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "gc_note"
        self.text = js(text)


def raw_html(html: str) -> Raw:
    return Raw(html)
