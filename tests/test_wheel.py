"""The package installs anywhere: a wheel built from the checkout, installed into a fresh
virtualenv, run from a folder where the checkout cannot be imported, serves a map with its
libraries from /static/, the API docs with theirs, and loads the samples. Styles, samples and
web libraries are package data; nothing is looked up beside the checkout.

The fresh virtualenv sees this one's libraries (geopandas, fastapi…) through a .pth file rather
than installing them again: only geo_comuna itself comes from the wheel."""

from __future__ import annotations

import json
import re
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.live import clean_env, serving

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the freshly built wheel installed (no dependencies from it)."""
    top = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(top), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = top.glob("geo_comuna-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for inside in (
        "geo_comuna/maps/styles.json",
        "geo_comuna/maps/vendor/leaflet/leaflet.js",
        "geo_comuna/maps/vendor/swagger-ui-dist/swagger-ui-bundle.js",
        "geo_comuna/maps/vendor/redoc/redoc.standalone.js",
        "geo_comuna/maps/vendor/dejavu-fonts-ttf/DejaVuSans.ttf",  # the sheets' letters
        "geo_comuna/data/samples/communes.geojson",
        "geo_comuna/data/boundaries/ve_states.geojson",
    ):
        assert inside in names, inside
    env = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (packages,) = env.glob("lib/python3*/site-packages")
    # this environment's libraries, but not its geo_comuna (an editable install's finder is
    # only switched on by its own .pth file, which a listed folder does not run)
    (packages / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install"]
        + ["--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
    )
    return env


def outside(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment in which only the installed package can be imported."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    return {"PYTHONPATH": str(empty), **extra}


def test_the_installed_package_is_the_wheel(venv: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import geo_comuna; print(geo_comuna.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(**outside(tmp_path)),
    )
    assert probe.returncode == 0, probe.stderr
    location = Path(probe.stdout.strip())
    assert venv in location.parents and ROOT not in location.parents


def test_load_sample_from_the_wheel(venv: Path, own_db: str, tmp_path: Path) -> None:
    loaded = subprocess.run(
        [str(venv / "bin" / "geo-comuna"), "load-sample"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(**outside(tmp_path, GEO_COMUNA_DATABASE_URL=own_db)),
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    counts = json.loads(loaded.stdout[loaded.stdout.index("{") :])
    (shipped,) = venv.glob("lib/python3*/site-packages/geo_comuna/data/samples/communes.geojson")
    assert counts["communes"] == len(json.loads(shipped.read_text())["features"]) > 0
    assert counts["states"] > 0 and counts["dems"] == 1


def test_serve_a_map_and_the_docs_from_the_wheel(venv: Path, own_db: str, tmp_path: Path) -> None:
    cli = [str(venv / "bin" / "geo-comuna")]
    with serving(own_db, tmp_path / "serve.log", cli, cwd=tmp_path, **outside(tmp_path)) as (
        _,
        base,
    ):
        for page, libraries in (
            ("/maps/communes/5-DE-MARZO", ("/static/leaflet/leaflet.js",)),
            ("/docs", ("/static/swagger-ui-dist/swagger-ui-bundle.js",)),
            ("/redoc", ("/static/redoc/redoc.standalone.js",)),
        ):
            r = httpx.get(f"{base}{page}", timeout=60)
            assert r.status_code == 200, (page, r.text[:500])
            linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text)
            # named by content (?v=): the wheel's own files
            assert set(libraries) <= {url.partition("?v=")[0] for url in linked}, (page, linked)
            for url in linked:
                got = httpx.get(f"{base}{url}", timeout=10)
                assert got.status_code == 200 and got.content, url
