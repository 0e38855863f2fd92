"""The web libraries a map page (and the API docs) load, and how: linked from the app's own
/static/ or inlined.

Nothing comes from a CDN. Third-party files are installed from npm at set-up (package.json at
the repository root pins them; scripts/setup.sh runs ``npm ci``) and copied from node_modules/
into the package by scripts/vendor_assets.py, so they ship inside the wheel: one folder per npm
package under ``Settings.web_assets_dir`` (default geo_comuna/maps/vendor/), served under
/static/<package>/... and read from there to inline into standalone HTML. Our own runtime
(geo_comuna/maps/static/) is served under /static/geo_comuna/.

A map uses Leaflet only, with circle markers instead of icon markers, so jQuery, Bootstrap,
Font Awesome and Leaflet.awesome-markers (folium's defaults) are not needed at all.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from geo_comuna.errors import GeoComunaError
from geo_comuna.settings import Settings

OWN_STATIC = Path(__file__).resolve().parent / "static"
OWN = "geo_comuna"
STATIC_PREFIX = "/static"
#: the npm packages served, each from its folder under Settings.web_assets_dir
VENDORED = ("leaflet", "leaflet.vectorgrid", "pbf", "geobuf", "swagger-ui-dist", "redoc")
#: the npm package of the parcel sheets' fonts (maps/sheet/fonts.py): copied beside those,
#: read from the package's own copy, never served
FONTS = "dejavu-fonts-ttf"
#: the copies inside the package (Settings.web_assets_dir's default)
PACKAGE_ASSETS: Path = Settings.model_fields["web_assets_dir"].default


@functools.lru_cache(maxsize=64)
def _digest(path: Path) -> str | None:
    """The first 12 hex digits of a file's SHA-256; None when it is not there."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def static_dirs(web_assets_dir: Path) -> dict[str, Path]:
    """URL package name -> the directory served under /static/<name>/."""
    return {**{name: web_assets_dir / name for name in VENDORED}, OWN: OWN_STATIC}


class MapAssetsMissing(GeoComunaError):
    """The web libraries are not installed (the copies from npm are missing)."""

    status, code = 500, "map-assets-missing"


@dataclass(frozen=True)
class Asset:
    package: str
    file: str

    def path(self, web_assets_dir: Path = PACKAGE_ASSETS) -> Path:
        return static_dirs(web_assets_dir)[self.package] / self.file

    @property
    def url(self) -> str:
        return self.url_in(PACKAGE_ASSETS)

    def url_in(self, web_assets_dir: Path) -> str:
        """Where the app serves it, named by the content it serves from ``web_assets_dir``
        (``?v=``): a browser keeps it for a year (api/maps.mount_static) and asks again
        only when the file changed."""
        path = f"{STATIC_PREFIX}/{self.package}/{self.file}"
        digest = _digest(self.path(web_assets_dir))
        return f"{path}?v={digest}" if digest else path

    @property
    def is_css(self) -> bool:
        return self.file.endswith(".css")

    def read(self, web_assets_dir: Path = PACKAGE_ASSETS) -> str:
        path = self.path(web_assets_dir)
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            raise MapAssetsMissing(
                f"web library file {path} is missing; run scripts/setup.sh (it runs `npm ci` "
                "and copies the libraries into the package)"
            ) from None


LEAFLET = (Asset("leaflet", "leaflet.css"), Asset("leaflet", "leaflet.js"))
#: vector tiles (served maps) and in-browser tiling of decoded geobuf (standalone big layers)
VECTORGRID = (Asset("leaflet.vectorgrid", "Leaflet.VectorGrid.bundled.min.js"),)
GEOBUF = (Asset("pbf", "pbf.js"), Asset("geobuf", "geobuf.js"))
RUNTIME = (Asset(OWN, "geo_comuna_maps.css"), Asset(OWN, "geo_comuna_maps.js"))
#: the API docs pages (api/openapi.py)
SWAGGER_UI = (
    Asset("swagger-ui-dist", "swagger-ui-bundle.js"),
    Asset("swagger-ui-dist", "swagger-ui.css"),
    Asset("swagger-ui-dist", "favicon-32x32.png"),
)
REDOC = (Asset("redoc", "redoc.standalone.js"),)


def needed(*, tiles: bool = False, geobuf: bool = False) -> list[Asset]:
    out = [*LEAFLET]
    if tiles or geobuf:
        out += VECTORGRID
    if geobuf:
        out += GEOBUF
    return out + list(RUNTIME)


_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|https?:|/)([^)'\"]+)\1\)")


def _inline_css(asset: Asset, web_assets_dir: Path) -> str:
    """The stylesheet with its relative url(...) images turned into data: URIs."""
    root = static_dirs(web_assets_dir)[asset.package].resolve()

    def data_uri(match: re.Match[str]) -> str:
        target = (asset.path(web_assets_dir).parent / match.group(2)).resolve()
        if not target.is_file() or root not in target.parents:
            return match.group(0)
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return f"url(data:{mime};base64,{base64.b64encode(target.read_bytes()).decode()})"

    return _CSS_URL.sub(data_uri, asset.read(web_assets_dir))


def tags(
    assets: list[Asset], *, inline: bool, base: str = "", web_assets_dir: Path = PACKAGE_ASSETS
) -> str:
    """<link>/<script> tags for the page head; with ``inline`` the files' contents, so the page
    needs no network at all. ``web_assets_dir``: Settings.web_assets_dir."""
    out = []
    for asset in assets:
        if not inline:
            if not asset.path(web_assets_dir).is_file():
                asset.read(web_assets_dir)  # raises MapAssetsMissing with the fix
            href = f"{base}{asset.url_in(web_assets_dir)}"
            out.append(
                f'<link rel="stylesheet" href="{href}"/>'
                if asset.is_css
                else f'<script src="{href}"></script>'
            )
        elif asset.is_css:
            css = _inline_css(asset, web_assets_dir)
            out.append("<style>" + css.replace("</style", r"<\/style") + "</style>")
        else:
            # a literal "</script" inside a library would end the element early
            js = asset.read(web_assets_dir)
            out.append("<script>" + js.replace("</script", r"<\/script") + "</script>")
    return "\n".join(out)
