"""The web libraries ship inside the package (copied from npm by scripts/vendor_assets.py) and
are served from where Settings.web_assets_dir says."""

from __future__ import annotations

import hashlib
import re
import runpy
import shutil
from pathlib import Path

import pytest
from psycopg import AsyncConnection

import geo_comuna
from geo_comuna.maps import assets
from geo_comuna.settings import Settings
from tests.conftest import api_client

ROOT = Path(__file__).resolve().parents[2]
PAGES = (*assets.LEAFLET, *assets.VECTORGRID, *assets.GEOBUF, *assets.SWAGGER_UI, *assets.REDOC)


def test_every_library_a_page_links_is_copied_into_the_package() -> None:
    copied = runpy.run_path(str(ROOT / "scripts" / "vendor_assets.py"))["FILES"]
    assert set(copied) == {*assets.VENDORED, assets.FONTS}
    assert Path(geo_comuna.__file__).parent in assets.PACKAGE_ASSETS.parents
    for asset in PAGES:
        assert asset.path().is_file(), asset
        assert asset.path() == Settings().web_assets_dir / asset.package / asset.file


@pytest.mark.anyio
async def test_the_libraries_come_from_the_configured_folder(
    conn: AsyncConnection, tmp_path: Path
) -> None:
    """GEO_COMUNA_WEB_ASSETS_DIR (a Debian package's copy, say) replaces the package's."""
    shutil.copytree(assets.PACKAGE_ASSETS, tmp_path, dirs_exist_ok=True)
    (tmp_path / "leaflet" / "leaflet.js").write_text("/* ours */", encoding="utf-8")
    async with api_client(conn, Settings(web_assets_dir=tmp_path)) as client:
        r = await client.get("/static/leaflet/leaflet.js")
        assert r.status_code == 200 and r.text == "/* ours */"
        page = await client.get("/maps/communes/5-DE-MARZO", params={"standalone": "true"})
        assert page.status_code == 200 and "/* ours */" in page.text


@pytest.mark.anyio
async def test_pages_name_their_files_by_content_and_the_browser_keeps_them(
    conn: AsyncConnection, settings: Settings
) -> None:
    """Found from outside: every view of a map asked again for its 4-6 files (ETag, no
    max-age): ~0.5 s at 400 ms of latency. A page names each file with its content's digest,
    which the browser keeps for a year; a new file is a new name."""
    async with api_client(conn, settings) as client:
        page = (await client.get("/maps/communes/5-DE-MARZO")).text
        linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
        assert linked and all("?v=" in link for link in linked), linked
        for link in linked:
            path, _, digest = link.partition("?v=")
            r = await client.get(link)
            assert r.status_code == 200, link
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert hashlib.sha256(r.content).hexdigest()[:12] == digest, link
            bare = await client.get(path)
            assert bare.headers["cache-control"] == "no-cache", path
