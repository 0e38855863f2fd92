#!/usr/bin/env python3
"""Copy the web libraries geo_comuna serves from node_modules/ into the package.

    python3 scripts/vendor_assets.py          # after `npm ci`; scripts/setup.sh runs both

Leaflet, VectorGrid, pbf and geobuf (maps), Swagger UI and ReDoc (the API docs pages) and the
DejaVu fonts (parcel sheets) come from npm, pinned by package-lock.json. The app serves them
under /static/<package>/ and never from a CDN, and a wheel installed anywhere must carry them:
so the files a page loads (and each package's licence) are copied into
geo_comuna/maps/vendor/<package>/, which is package data (pyproject.toml) and ignored by git
(code we did not write does not enter the repository). Building a wheel runs this too
(setup.py), so a wheel never lacks them.

With node_modules/ absent, copies already in place (a source distribution) are kept; with
neither, it stops and says to run `npm ci`. Standard library only: it runs inside the
isolated environment a wheel is built in.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "geo_comuna" / "maps" / "vendor"
#: npm package -> (folder inside it the URLs are relative to, files from that folder)
FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "leaflet": ("dist", ("leaflet.js", "leaflet.css", "images/*.png")),
    "leaflet.vectorgrid": ("dist", ("Leaflet.VectorGrid.bundled.min.js",)),
    "pbf": ("dist", ("pbf.js",)),
    "geobuf": ("dist", ("geobuf.js",)),
    "swagger-ui-dist": (
        ".",
        ("swagger-ui-bundle.js", "swagger-ui-bundle.js.LICENSE.txt", "swagger-ui.css")
        + ("favicon-32x32.png",),
    ),
    "redoc": ("bundles", ("redoc.standalone.js", "redoc.standalone.js.LICENSE.txt")),
    # the parcel sheets' fonts (maps/sheet/document.py): any language's letters, not only
    # Windows-1252's
    "dejavu-fonts-ttf": ("ttf", ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")),
}
#: licence and notice files, from each package's top folder
LEGAL = ("LICENSE*", "NOTICE*")


def wanted(package: str) -> list[tuple[Path, Path]]:
    """(source, target) of every file of ``package``; stops when one is missing."""
    folder, patterns = FILES[package]
    top = NODE_MODULES / package
    pairs = []
    for pattern in patterns:
        found = sorted((top / folder).glob(pattern))
        if not found:
            sys.exit(f"{top / folder / pattern} is missing: run `npm ci` (package-lock.json)")
        pairs += [(src, VENDOR / package / src.relative_to(top / folder)) for src in found]
    for pattern in LEGAL:
        pairs += [(src, VENDOR / package / src.name) for src in sorted(top.glob(pattern))]
    return pairs


def complete() -> bool:
    """Every package has a copy (its folder exists and is not empty)."""
    return all(any((VENDOR / package).glob("*")) for package in FILES)


def main() -> None:
    if not NODE_MODULES.is_dir():
        if complete():
            print(f"== web libraries: keeping the copies in {VENDOR}")
            return
        sys.exit(f"{NODE_MODULES} is missing: run `npm ci` first (scripts/setup.sh does)")
    pairs = [pair for package in FILES for pair in wanted(package)]
    shutil.rmtree(VENDOR, ignore_errors=True)  # nothing stale from an older version stays
    for src, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    size = sum(target.stat().st_size for _, target in pairs)
    print(f"== web libraries: {len(pairs)} files ({size / 1e6:.1f} MB) copied into {VENDOR}")


if __name__ == "__main__":
    main()
