"""The web libraries a map page loads, and how: linked from the app's own /static/ or inlined.

Nothing comes from a CDN. Third-party files are installed by ``npm ci`` (package.json at the
repository root, run by scripts/setup.sh) into node_modules/, served from there under
/static/<package>/..., and read from there to inline into standalone HTML. Our own runtime
(geo_comuna/maps/static/) is served under /static/geo_comuna/.

A map uses Leaflet only, with circle markers instead of icon markers, so jQuery, Bootstrap,
Font Awesome and Leaflet.awesome-markers (folium's defaults) are not needed at all.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from geo_comuna.errors import GeoComunaError

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
OWN_STATIC = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"

#: URL package name -> directory served under /static/<name>/
STATIC_DIRS: dict[str, Path] = {
    "leaflet": NODE_MODULES / "leaflet" / "dist",
    "leaflet.vectorgrid": NODE_MODULES / "leaflet.vectorgrid" / "dist",
    "pbf": NODE_MODULES / "pbf" / "dist",
    "geobuf": NODE_MODULES / "geobuf" / "dist",
    "geo_comuna": OWN_STATIC,
}


class MapAssetsMissing(GeoComunaError):
    """The map libraries are not installed (node_modules/ missing)."""

    status, code = 500, "map-assets-missing"


@dataclass(frozen=True)
class Asset:
    package: str
    file: str

    @property
    def path(self) -> Path:
        return STATIC_DIRS[self.package] / self.file

    @property
    def url(self) -> str:
        return f"{STATIC_PREFIX}/{self.package}/{self.file}"

    @property
    def is_css(self) -> bool:
        return self.file.endswith(".css")

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError:
            raise MapAssetsMissing(
                f"map library file {self.path} is missing; run scripts/setup.sh (it runs `npm ci`)"
            ) from None


LEAFLET = (Asset("leaflet", "leaflet.css"), Asset("leaflet", "leaflet.js"))
#: vector tiles (served maps) and in-browser tiling of decoded geobuf (standalone big layers)
VECTORGRID = (Asset("leaflet.vectorgrid", "Leaflet.VectorGrid.bundled.min.js"),)
GEOBUF = (Asset("pbf", "pbf.js"), Asset("geobuf", "geobuf.js"))
RUNTIME = (Asset("geo_comuna", "geo_comuna_maps.css"), Asset("geo_comuna", "geo_comuna_maps.js"))


def needed(*, tiles: bool = False, geobuf: bool = False) -> list[Asset]:
    out = [*LEAFLET]
    if tiles or geobuf:
        out += VECTORGRID
    if geobuf:
        out += GEOBUF
    return out + list(RUNTIME)


_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|https?:|/)([^)'\"]+)\1\)")


def _inline_css(asset: Asset) -> str:
    """The stylesheet with its relative url(...) images turned into data: URIs."""

    def data_uri(match: re.Match[str]) -> str:
        target = (asset.path.parent / match.group(2)).resolve()
        if not target.is_file() or STATIC_DIRS[asset.package].resolve() not in target.parents:
            return match.group(0)
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return f"url(data:{mime};base64,{base64.b64encode(target.read_bytes()).decode()})"

    return _CSS_URL.sub(data_uri, asset.read())


def tags(assets: list[Asset], *, inline: bool, base: str = "") -> str:
    """<link>/<script> tags for the page head; with ``inline`` the files' contents, so the page
    needs no network at all."""
    out = []
    for asset in assets:
        if not inline:
            if not asset.path.is_file():
                asset.read()  # raises MapAssetsMissing with the fix
            href = f"{base}{asset.url}"
            out.append(
                f'<link rel="stylesheet" href="{href}"/>'
                if asset.is_css
                else f'<script src="{href}"></script>'
            )
        elif asset.is_css:
            out.append("<style>" + _inline_css(asset).replace("</style", r"<\/style") + "</style>")
        else:
            # a literal "</script" inside a library would end the element early
            out.append("<script>" + asset.read().replace("</script", r"<\/script") + "</script>")
    return "\n".join(out)
