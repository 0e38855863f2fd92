"""The offline map and the report of a commune package, opened from the unzipped folder in a
real headless Chromium with the network cut off: no console errors, every layer drawn. The
package numbers folium's element ids (maps/page.py steady_ids), so this is also what shows
the pages still work with them. A missing Chromium fails, never skips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from geo_comuna.api.app import create_app
from geo_comuna.maps.package import MAPS, REPORTS
from geo_comuna.settings import Settings
from tests.maps.harness import READY_JS, offline, open_map, serve, watch

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "package"
MAP_LAYERS = {"es": "Parcelas por tenencia", "en": "Parcels by tenure"}


def test_package_pages_work_offline(
    db_conninfo: str, settings: Settings, browser: Any, tmp_path: Path
) -> None:
    with serve(create_app(settings, conninfo=db_conninfo)) as base:
        r = httpx.get(f"{base}/communes/EL-MAIZAL/package", timeout=120)
    assert r.status_code == 200, r.text[:2000]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        zf.extractall(tmp_path)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    blocked = offline(context)
    context.set_offline(True)
    for lang, name in MAPS.items():
        visit = open_map(
            context.new_page(), (tmp_path / name).as_uri(), screenshot=ARTIFACTS / f"map-{lang}.png"
        )
        assert visit.errors == [] and visit.failed == [], (name, visit.errors, visit.failed)
        assert any(label.startswith(MAP_LAYERS[lang]) for label in visit.state["layers"]), name
        assert visit.state["paths"] > 100, name
    for lang, name in REPORTS.items():
        page = context.new_page()
        visit = watch(page)
        page.goto((tmp_path / name).as_uri(), wait_until="load")
        frames = page.frames[1:]
        assert frames, name
        for frame in frames:
            frame.wait_for_function(READY_JS, timeout=30_000)
        assert visit.errors == [] and visit.failed == [], (name, visit.errors, visit.failed)
        page.screenshot(path=str(ARTIFACTS / f"report-{lang}.png"), full_page=True)
    assert blocked == []
    context.close()
