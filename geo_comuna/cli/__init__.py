"""The geo-comuna command line: serve, db, load-sample, import, export, analyze, map, dem,
users, backup, restore, package, sync. One module per command group."""

from __future__ import annotations

import os
import sys

from geo_comuna.cli.app import app
from geo_comuna.cli.db import db_app
from geo_comuna.cli.dem import dem_app
from geo_comuna.cli.maps import map_app
from geo_comuna.cli.package import package
from geo_comuna.cli.sync import sync
from geo_comuna.cli.users import users_app

app.add_typer(db_app, name="db")
app.add_typer(map_app, name="map")
app.add_typer(users_app, name="users")
app.add_typer(dem_app, name="dem")
app.command("package")(package)
app.command("sync")(sync)


def main() -> None:
    """The console script. When a command is done the process ends at once, skipping Python's
    teardown of pandas, GDAL, PROJ and the rest (~0.2 s after an import; bench/README.md):
    by then every command has closed its files and its database connection."""
    try:
        app()
        code: object = 0
    except KeyboardInterrupt:
        code = 130
    except SystemExit as done:
        code = done.code
    if code is not None and not isinstance(code, int):  # SystemExit("message")
        print(code, file=sys.stderr)
        code = 1
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (geo-comuna ... | head)
            pass
    os._exit(code or 0)


__all__ = ["app", "main"]
