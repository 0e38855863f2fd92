"""How a map becomes a page: language, embed and standalone modes, the basemap, the head.

- served (default): libraries linked from the app's own /static/ (no CDN), big layers as
  vector tiles from /tiles/;
- ``embed``: the same page without the title bar, made to fill an <iframe>;
- ``standalone``: one self-contained file, every script, style and feature inlined, that works
  with no network at all (big layers as inline geobuf, no tile basemap).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import folium
from markupsafe import escape

from geo_comuna.accounts import PUBLIC, Access, User
from geo_comuna.maps import assets
from geo_comuna.maps.elements import Basemap, Done, Legend, MetricScale, Note, raw_html
from geo_comuna.maps.styles import STYLES_PATH, Styles

Lang = Literal["es", "en"]
#: a layer with more features than this is drawn from vector tiles (served) or inline geobuf
#: (standalone) instead of inline GeoJSON
TILE_THRESHOLD = 5_000
#: ... or more vertices than this (~2 MB of GeoJSON coordinates): 100 parcels of 50,000
#: vertices each made a served map of 108 MB
INLINE_VERTICES = 100_000
#: standalone areas and lines with more features than this show as a picture until zoomed in
OVERVIEW_THRESHOLD = 20_000


@dataclass
class Page:
    lang: Lang = "es"
    embed: bool = False
    standalone: bool = False
    #: URL prefix of the app for links and tiles ("" = same origin)
    base: str = ""
    tile_url: str | None = None
    tile_threshold: int = TILE_THRESHOLD
    inline_vertices: int = INLINE_VERTICES
    overview_threshold: int = OVERVIEW_THRESHOLD
    #: who the page is for: which communes' members-only data it may show (none by default)
    access: Access = PUBLIC
    #: who the page is for, for the land records, whose personal data PostgreSQL shows only
    #: to the record's commune's editors and admins (tenure/records.py); None: anonymous
    reader: User | None = None
    #: Settings.styles_path and Settings.web_assets_dir (default: the package's own)
    styles_path: Path = STYLES_PATH
    web_assets_dir: Path = assets.PACKAGE_ASSETS
    #: filled while building: which libraries the page needs
    uses_tiles: bool = field(default=False)
    uses_geobuf: bool = field(default=False)

    def fits_inline(self, features: int, vertices: int) -> bool:
        """May a layer of so many features and vertices go inline as GeoJSON? Past either
        budget it is drawn otherwise (tiles, geobuf, points)."""
        return features <= self.tile_threshold and vertices <= self.inline_vertices

    def t(self, es: str, en: str) -> str:
        return es if self.lang == "es" else en


#: OpenStreetMap's credit in each language (its attribution guidelines allow a translation)
_OSM = '<a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
OSM_ATTRIBUTION = {"es": f"&copy; colaboradores de {_OSM}", "en": f"&copy; {_OSM} contributors"}


def attribution(tile_url: str, lang: str) -> str:
    """The credit a basemap's tiles must carry: OpenStreetMap's for its tiles (its tile usage
    policy asks for it), else the tile server's host name (escaped: Leaflet shows it as HTML)."""
    host = urlsplit(tile_url.replace("{s}", "a")).hostname or ""
    if host == "openstreetmap.org" or host.endswith(".openstreetmap.org"):
        return OSM_ATTRIBUTION[lang]
    return str(escape(host or tile_url))


def new_map(
    page: Page,
    styles: Styles,
    bounds: tuple[float, float, float, float] | None,
    *,
    whole: bool = True,
) -> folium.Map:
    """A folium map with no CDN libraries, fitted to lon/lat ``bounds`` (in quarter zoom
    steps, so a country fills the frame); an online basemap is offered (off until asked for,
    so nothing is fetched from elsewhere by default) only when GEO_COMUNA_TILE_URL names one
    and the page is not standalone. ``whole``: the bounds (a commune) are then fitted again
    into what the open panels leave of the map (geo_comuna_maps.js clearOfPanels); the
    country's map keeps its size under them."""
    if bounds is None:
        bounds = (-73.4, 0.6, -59.8, 12.2)  # Venezuela
    w, s, e, n = bounds
    m = folium.Map(
        location=[(s + n) / 2, (w + e) / 2],
        zoom_start=12,
        tiles=None,
        max_zoom=21,
        zoom_snap=0.25,
        zoom_delta=0.5,
    )
    MetricScale().add_to(m)
    # per instance: folium's class defaults point at CDNs; assets.tags() links our own copies
    m.default_js = []
    m.default_css = []
    if page.tile_url and not page.standalone:
        Basemap(
            page.t("Mapa base en línea", "Online basemap"),
            page.tile_url,
            attribution(page.tile_url, page.lang),
            page.t(
                "Mapa base no disponible (¿sin conexión?): el mapa sigue sin él.",
                "Basemap unavailable (offline?): the map carries on without it.",
            ),
        ).add_to(m)
    fit = folium.FitBounds([[s, w], [n, e]], padding=(12, 12))
    # no zoom animation: layers added during one would first fetch tiles at zoom_start
    fit.options["animate"] = False
    fit.options["gcWhole"] = whole
    m.add_child(fit)
    background = escape(styles.background)
    m.get_root().header.add_child(
        raw_html(f"<style>.leaflet-container{{background:{background}}}</style>"),
        name="gc_background",
    )
    return m


def finish(
    m: folium.Map,
    page: Page,
    legend_sections: list[str],
    *,
    title: str,
    links: list[tuple[str, str]] | None = None,
    note: str | None = None,
) -> str:
    """Legend, layer control, the last script, the head; the whole HTML page."""
    if note:
        Note(note).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Legend(legend_sections, page.lang).add_to(m)
    Done().add_to(m)
    root = m.get_root()
    head = assets.tags(
        assets.needed(tiles=page.uses_tiles, geobuf=page.uses_geobuf),
        inline=page.standalone,
        base=page.base,
        web_assets_dir=page.web_assets_dir,
    )
    meta = '<meta name="color-scheme" content="light"/><link rel="icon" href="data:,"/>'
    root.header.add_child(
        raw_html(f"{meta}<title>{escape(title)}</title>\n{head}"), name="gc_assets", index=0
    )
    if not page.embed:
        # the way back to the site, but from an offline file (its links would lead nowhere)
        home = (
            []
            if page.standalone
            else [(page.t("Inicio", "Home"), f"{page.base}/?lang={page.lang}")]
        )
        items = "".join(
            f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in home + (links or [])
        )
        root.html.add_child(
            raw_html(f'<div class="gc-bar"><h1>{escape(title)}</h1>{items}</div>'),
            name="gc_bar",
        )
    html = root.render()
    # folium's viewport forbids zooming the page on a phone (maximum-scale=1, user-scalable=
    # no): found from outside, a reader with low vision could not enlarge a legend (WCAG 1.4.4)
    html = _FIXED_VIEWPORT.sub(
        '<meta name="viewport" content="width=device-width, initial-scale=1.0"', html, 1
    )
    html = html.replace("<html>", f'<html lang="{page.lang}">', 1)
    return steady_ids(html, set(_element_ids(root)))


#: folium names each element of a page <kind>_<32 random hex digits>
_ELEMENT_ID = re.compile(r"_([0-9a-f]{32})(?![0-9a-f])")


def _element_ids(element: Any) -> Iterator[str]:
    """The ids of ``element`` and of every element under it (branca's tree)."""
    yield element._id
    for child in element._children.values():
        yield from _element_ids(child)


def steady_ids(html: str, ids: set[str]) -> str:
    """folium's random element ``ids`` numbered in order of first appearance instead: the
    same page for the same data, byte for byte. A package's files are steady (maps/package.py
    steady), and a page served again gets a 304 by its ETag (api/maps.py). Only the page's
    own elements' ids are numbered (the "_" matched, not looked behind for: a literal first
    character is searched for quickly, 0.8 against 7 ms a MB); found from outside, a value
    like "Cancha_d41d8cd98f00b204e9800998ecf8427e" was rewritten too."""
    numbered: dict[str, str] = {}

    def number(found: re.Match) -> str:
        if found[1] not in ids:
            return found[0]
        return "_" + numbered.setdefault(found[1], f"{len(numbered):032x}")

    return _ELEMENT_ID.sub(number, html)


_FIXED_VIEWPORT = re.compile(r'<meta name="viewport" content="[^"]*user-scalable=no[^"]*"')
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1.0"'
