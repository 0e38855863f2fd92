"""Only a build hook; the project is described in pyproject.toml.

Building (a wheel, or an editable install) first copies the web libraries from node_modules/
into the package (scripts/vendor_assets.py), so a wheel always carries what its maps and API
docs load and needs no checkout and no CDN."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

VENDOR_SCRIPT = Path(__file__).resolve().parent / "scripts" / "vendor_assets.py"


class BuildPyWithWebAssets(build_py):
    def run(self) -> None:
        if VENDOR_SCRIPT.is_file():  # absent in a source distribution, which has the copies
            subprocess.run([sys.executable, str(VENDOR_SCRIPT)], check=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithWebAssets})
