"""What lies under the layers when no tile basemap is configured (GEO_COMUNA_TILE_URL unset) or
reachable: the commune's DEM hillshade when it has a DEM, else the plain background colour of
maps/styles.json. Either way the map reads offline.

The hillshade comes from geo_comuna/analysis/toolkit/hillshade.py (served at
GET /communes/{commune}/hillshade.png); a standalone file carries the PNG inline.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import folium
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.toolkit.hillshade import commune_hillshade
from geo_comuna.io import dems
from geo_comuna.maps.data import CommuneInfo
from geo_comuna.maps.elements import ThemedLayer, js, legend_section
from geo_comuna.maps.page import Page
from geo_comuna.maps.styles import Styles


async def _render(conn: AsyncConnection, commune_id: int) -> tuple[bytes, tuple] | None:
    """(PNG bytes, lon/lat bounds w, s, e, n) of the commune's hillshade (Web Mercator, as
    Leaflet overlays it; clipped to the commune), or None when the commune has no DEM.
    Rendered once per DEM and boundary through the work's cache: a package's map and report
    pages, in two languages, each drew it again, and with a DEM of 25 million cells the
    package passed its deadline for good (found from outside)."""
    found = await dems.for_commune(conn, commune_id)
    if found is None:
        return None

    async def render() -> tuple[bytes, tuple]:
        png, bounds = await commune_hillshade(conn, commune_id, found)
        return png, tuple(bounds)

    cache = work.cache()
    if cache is None:
        return await render()
    # the DEM by its bytes (a DEM replaced under the same id is another), the boundary by the
    # communes' version
    digest = hashlib.blake2b(found.tiff, digest_size=16).hexdigest()
    key = ("hillshade", commune_id, found.id, digest)
    return await cache.get_or_compute(conn, key, ("communes",), render)


async def add_hillshade(
    m: folium.Map,
    conn: AsyncConnection,
    page: Page,
    styles: Styles,
    info: CommuneInfo,
    legend: list[str],
) -> bool:
    """The hillshade as an image layer under everything; False when there is none."""
    rendered = await _render(conn, info.id)
    if rendered is None:
        return False
    png, (w, s, e, n) = rendered
    if page.standalone:
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    else:
        url = f"{page.base}/communes/{quote(info.code, safe='')}/hillshade.png"
    style = styles.overlay("hillshade")
    title = style.get("legend", {}).get(page.lang, "Hillshade")
    spec = {"id": "hillshade", "layer": "hillshade", "lang": page.lang}
    source = f"{js(url)}, {js([[s, w], [n, e]])}, {js(style.get('opacity', 0.55))}"
    ThemedLayer(title, spec, "image", source).add_to(m)
    legend.append(legend_section("hillshade", "", [("#9a9a9a", title)], "MultiPolygon", shown=True))
    return True
