"""Screenshots of the 5 de Marzo and El Maizal commune maps, the national map and the pages for
people, for the README (docs/img/*.png).

    .venv/bin/python docs/make_screenshots.py

Uses the embedded database of the settings (GEO_COMUNA_DATA_DIR, default .geo_comuna/), loads
the sample territories if they are missing, serves the app on a free 127.0.0.1 port and takes
each map with Debian's headless Chromium (the harness of tests/maps/), as the communes' own
users see them (each home): through a token made for the run and revoked after it. Each PNG
must stay under 300 KB; the viewport is shrunk until it does.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geo_comuna.settings import Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "maps"))

import harness  # noqa: E402

IMG = REPO / "docs" / "img"
MAX_BYTES = 300_000
SHOTS = {
    "map-5-de-marzo.png": "/maps/communes/5-DE-MARZO?lang=es&embed=true",
    "map-el-maizal.png": "/maps/communes/EL-MAIZAL?lang=en&embed=true",
    "map-national.png": "/maps/national?lang=es&embed=true",
    "page-home-es.png": "/?lang=es",
    "page-parcels-en.png": "/collections/parcels/items?commune=EL-MAIZAL&limit=50&f=html&lang=en",
}
SIZES = [(1100, 720), (960, 640), (840, 560), (720, 480)]


def member_token(conninfo: str, name: str) -> str:
    """A viewer of both communes, for the screenshots only."""
    from psycopg import AsyncConnection

    from geo_comuna import accounts

    async def add() -> str:
        async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
            _, token = await accounts.add_user(conn, name, "viewer", ["5-DE-MARZO", "EL-MAIZAL"])
            return token

    return asyncio.run(add())


def revoke(conninfo: str, name: str) -> None:
    from psycopg import AsyncConnection

    from geo_comuna import accounts

    async def gone() -> None:
        async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await accounts.revoke(conn, name)

    asyncio.run(gone())


def main() -> None:
    from geo_comuna.db.pool import resolve_conninfo
    from geo_comuna.settings import Settings

    settings = Settings()
    conninfo = resolve_conninfo(settings)
    cli = REPO / ".venv" / "bin" / "geo-comuna"
    import psycopg

    with psycopg.connect(conninfo) as conn:
        have = (
            conn.execute("SELECT to_regclass('communes') IS NOT NULL").fetchone()[0]
            and conn.execute("SELECT count(*) FROM communes WHERE code = '5-DE-MARZO'").fetchone()[
                0
            ]
        )
    if not have:
        subprocess.run([str(cli), "load-sample"], check=True)
    IMG.mkdir(parents=True, exist_ok=True)
    name = f"screenshots-{secrets.token_hex(4)}"
    headers = {"Authorization": f"Bearer {member_token(conninfo, name)}"}
    try:
        take(settings, conninfo, headers)
    finally:
        revoke(conninfo, name)


def take(settings: Settings, conninfo: str, headers: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    from geo_comuna.api.app import create_app

    with (
        harness.serve(create_app(settings, conninfo=conninfo)) as base,
        sync_playwright() as playwright,
    ):
        browser = harness.launch(playwright)
        for name, path in SHOTS.items():
            for width, height in SIZES:
                context = browser.new_context(
                    viewport={"width": width, "height": height}, extra_http_headers=headers
                )
                tab = context.new_page()
                if path.startswith("/maps/"):
                    visit = harness.open_map(tab, base + path, screenshot=IMG / name)
                else:  # a page for people: no map to wait for
                    visit = harness.watch(tab)
                    tab.goto(base + path, wait_until="load")
                    tab.screenshot(path=str(IMG / name))
                context.close()
                if visit.errors:
                    sys.exit(f"{path}: console errors {visit.errors}")
                size = (IMG / name).stat().st_size
                if size <= MAX_BYTES:
                    print(f"wrote {IMG / name} ({width}x{height}, {size // 1000} KB)")
                    break
            else:
                sys.exit(f"{name} stays over {MAX_BYTES // 1000} KB even at {width}x{height}")
        browser.close()


if __name__ == "__main__":
    main()
