"""The floors of the house hold: imports point down only, no circles, no web framework below
api/ (the contracts are in pyproject.toml, [tool.importlinter]).

lint-imports reads the source without running it, so these tests need no database. It runs
in a subprocess from the directory holding the package, which it puts first on sys.path: the
code checked is the code of this checkout, not an installed copy. Each contract is also shown
to fail, on a copy of the package with one bad import added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package under ``root`` with the contracts of ``root``."""
    script = Path(sys.executable).with_name("lint-imports")
    assert script.exists(), "import-linter is not installed (pip install -e '.[test]')"
    return subprocess.run(
        [str(script), "--config", str(root / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_house_keeps_its_floors() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's Python sources and the contracts, to break on purpose."""
    root = tmp_path_factory.mktemp("house")

    def not_python(folder: str, names: list[str]) -> set[str]:
        return {
            n
            for n in names
            if n == "__pycache__" or (not n.endswith(".py") and not Path(folder, n).is_dir())
        }

    shutil.copytree(ROOT / "geo_comuna", root / "geo_comuna", ignore=not_python)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


#: a module added to the copy -> what lint-imports must then say
BREAKS = {
    "upward": (
        {"db/_upward.py": "from geo_comuna.api import app\n"},
        ["Imports point down only BROKEN", "geo_comuna.db._upward -> geo_comuna.api.app"],
    ),
    "between-services": (
        {"features/_files.py": "from geo_comuna.io import sniff\n"},
        ["Imports point down only BROKEN", "geo_comuna.features._files -> geo_comuna.io.sniff"],
    ),
    "circle": (
        {
            "layers/_ring_a.py": "from geo_comuna.layers import _ring_b\n",
            "layers/_ring_b.py": "from geo_comuna.layers import _ring_a\n",
        },
        ["No circles between packages or between sibling modules BROKEN", "_ring_"],
    ),
    "unplaced": (
        {"newcomer.py": "from geo_comuna import errors\n"},
        ["Imports point down only BROKEN", "newcomer"],
    ),
    "cli-into-router": (
        {"cli/_router.py": "from geo_comuna.api import features\n"},
        ["The CLI calls services, not HTTP routers", "geo_comuna.cli._router -> geo_comuna.api"],
    ),
    "web-in-service": (
        {"features/_web.py": "from fastapi import HTTPException\n"},
        ["nothing knows a web or command-line framework BROKEN", "geo_comuna.features._web"],
    ),
}


@pytest.mark.parametrize("kind", list(BREAKS))
def test_a_broken_floor_is_caught(copy: Path, kind: str) -> None:
    added, expected = BREAKS[kind]
    for name, text in added.items():
        (copy / "geo_comuna" / name).write_text(text)
    try:
        done = lint_imports(copy)
    finally:
        for name in added:
            (copy / "geo_comuna" / name).unlink()
    assert done.returncode != 0, done.stdout
    for words in expected:
        assert words in done.stdout, done.stdout
