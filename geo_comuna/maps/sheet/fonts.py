"""The sheets' fonts: DejaVu Sans (and its bold and mono), which hold the Latin letters of
every language written with them (Yanomami's ɨ, Wayuu's ü), Greek, Cyrillic, Hebrew and Arabic
(found from outside: "Hɨmɨ-7" printed as "H?m?-7", an Arabic code as black boxes); not Chinese
or the scripts of India, whose characters still print as boxes. They come from npm
(dejavu-fonts-ttf) into the package's vendor folder at set-up (scripts/vendor_assets.py), as
the maps' libraries do, and are embedded in each PDF as the subset it uses.

Where they are missing (a checkout before `npm ci`), the PDF's standard Helvetica and Courier
are used, which every viewer carries: their encoding (Windows-1252) holds Spanish, and a
character outside it is printed as "?" rather than lost silently (``printable``).
"""

from __future__ import annotations

from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from geo_comuna.maps.assets import FONTS as PACKAGE
from geo_comuna.maps.assets import PACKAGE_ASSETS

DEJAVU = PACKAGE_ASSETS / PACKAGE
#: our name of each font -> its file, and the standard font that stands in for it
FONTS = {
    "GC-Sans": ("DejaVuSans.ttf", "Helvetica"),
    "GC-Bold": ("DejaVuSans-Bold.ttf", "Helvetica-Bold"),
    "GC-Mono": ("DejaVuSansMono.ttf", "Courier"),
}


def _registered(folder: Path) -> bool:
    if not all((folder / file).is_file() for file, _ in FONTS.values()):
        return False
    for name, (file, _) in FONTS.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    return True


#: the DejaVu fonts are in use (else the standard ones, in Windows-1252)
UNICODE = _registered(DEJAVU)
SANS, BOLD, MONO = (name if UNICODE else standard for name, (_, standard) in FONTS.items())


def printable(text: str) -> str:
    """``text`` as the sheet's fonts print it: whole in DejaVu; in the standard fonts, each
    character outside Windows-1252 as "?"."""
    return text if UNICODE else text.encode("cp1252", "replace").decode("cp1252")
