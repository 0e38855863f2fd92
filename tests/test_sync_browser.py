"""The page that sends a field package back (GET /communes/{c}/sync), in a real headless
Chromium, as a field team uses it: pick the edited comuna.gpkg, type an editor's token,
check (the change listed in Spanish, nothing written), write (the change stored); a package
with bad values lists every refusal, in Spanish, and writes nothing. Screenshots in
tests/artifacts/sync/. A missing Chromium fails, never skips."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from geo_comuna import accounts
from geo_comuna.api.app import create_app
from geo_comuna.layers import LAYERS
from geo_comuna.maps.styles import Styles
from geo_comuna.settings import Settings
from tests.maps.harness import serve, watch

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "sync"
COMMUNE = "EL-MAIZAL"
TENURE = LAYERS["parcels"].attribute("tenure").domain


def editor_token(conninfo: str) -> str:
    async def add() -> str:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            return (await accounts.add_user(conn, "mesa-tecnica", "editor", [COMMUNE]))[1]
        finally:
            await conn.close()

    # Playwright's sync API keeps an event loop on this thread: work on another one
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, add()).result()


def ogr_sql(gpkg: Path, statement: str) -> None:
    done = subprocess.run(["ogrinfo", "-q", str(gpkg), "-sql", statement], capture_output=True)
    assert done.returncode == 0, done.stderr


def tenures(conninfo: str, ids: list[int]) -> list[str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT tenure FROM parcels WHERE id = ANY(%s) ORDER BY id", (ids,))
        return [tenure for (tenure,) in rows]


def result(tab: Any, kind: str) -> str:
    tab.wait_for_selector(f"#result.{kind} h2", timeout=60_000)
    return tab.inner_text("#result")


def test_a_field_team_sends_its_package_back(
    browser: Any, own_db: str, settings: Settings, tmp_path: Path
) -> None:
    token = editor_token(own_db)
    with psycopg.connect(own_db) as conn:
        (a, code, was), (b, _, b_was), (c, _, c_was) = conn.execute(
            "SELECT p.id, p.code, p.tenure FROM parcels p JOIN communes c ON c.id = "
            "p.commune_id WHERE c.code = %s ORDER BY p.id LIMIT 3",
            (COMMUNE,),
        ).fetchall()
    now = "disputed" if was != "disputed" else "occupied"
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="es-VE")
    tab = context.new_page()
    visit = watch(tab)
    with serve(create_app(settings, conninfo=own_db)) as base:
        package = httpx.get(f"{base}/communes/{COMMUNE}/package", timeout=120)
        assert package.status_code == 200, package.text[:500]
        with zipfile.ZipFile(io.BytesIO(package.content)) as zf:
            zf.extract("comuna.gpkg", tmp_path)
        gpkg = tmp_path / "comuna.gpkg"
        ogr_sql(gpkg, f"UPDATE parcels SET tenure = '{now}' WHERE id = {a}")

        # reached from the communes' index, as a person gets there
        tab.goto(f"{base}/communes")
        tab.click(f"a[href$='/communes/{COMMUNE}/sync?lang=es']")
        assert tab.inner_text("h1") == "Devolver el paquete de campo"
        tab.set_input_files("input[name=file]", str(gpkg))
        assert tab.is_disabled("#write")
        # no token, then a wrong one: said in Spanish, nothing sent or nothing done
        tab.click("#check")
        assert "Escriba el token de un editor de la comuna." in result(tab, "bad")
        tab.fill("input[name=token]", "gc_no-such-token")
        tab.click("#check")
        assert "token desconocido o revocado" in result(tab, "bad")
        tab.fill("input[name=token]", token)

        tab.click("#check")
        checked = result(tab, "good")
        assert checked.startswith("Revisado: esto es lo que se guardaría"), checked
        said = Styles.load().value_label
        change = f"{a} ({code}): Tenencia: {said(TENURE, was, 'es')} → {said(TENURE, now, 'es')}"
        assert change in checked and "Simulación: no se guardó nada." in checked, checked
        assert tenures(own_db, [a]) == [was]  # a check writes nothing
        tab.screenshot(path=str(ARTIFACTS / "checked-es.png"), full_page=True)

        tab.click("#write")
        tab.wait_for_function(
            "() => document.querySelector('#result h2').textContent === 'Guardado'"
        )
        written = tab.inner_text("#result")
        assert change in written and "1 entidad guardada" in written, written
        assert tenures(own_db, [a]) == [now]
        assert tab.is_disabled("#write")  # written once: the next file is checked first
        # the same file again: nothing to change, and nothing to write (found from outside:
        # "Guardar" was offered after a check that found nothing)
        tab.set_input_files("input[name=file]", str(gpkg))
        tab.click("#check")
        again = result(tab, "good")
        assert "Nada que cambiar" in again, again
        assert tab.is_disabled("#write")

        # a bad value in two other parcels (the package's copy of the first is a conflict
        # now: the server has changed it since): both named, in Spanish, nothing written
        ogr_sql(gpkg, f"UPDATE parcels SET tenure = 'inventada' WHERE id IN ({b}, {c})")
        tab.set_input_files("input[name=file]", str(gpkg))
        tab.click("#check")
        refused = result(tab, "bad")
        assert refused.startswith("No se guardó nada"), refused
        for fid in (b, c):
            assert f"  - capa parcels, entidad {fid}: campo «Tenencia» (tenure)" in refused, refused
        assert "no es ninguno de" in refused and "Ocupada" in refused  # Spanish, and the labels
        assert tenures(own_db, [a, b, c]) == [now, b_was, c_was]
        tab.screenshot(path=str(ARTIFACTS / "refused-es.png"), full_page=True)

        # on a phone: nothing wider than the screen, the buttons within reach
        tab.set_viewport_size({"width": 390, "height": 844})
        assert tab.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert tab.locator("#check").bounding_box()["x"] + 10 < 390
        tab.screenshot(path=str(ARTIFACTS / "refused-phone-es.png"), full_page=True)
    # the refusals' own 401 and 422 are the only console errors the page caused
    assert all(re.search("status of (401|422)", e) for e in visit.errors), visit.errors
    context.close()
