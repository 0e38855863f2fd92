"""The geo-comuna command line: serve, db, load-sample, import, export, analyze, map, dem,
users, backup, restore. One module per command group."""

from __future__ import annotations

import sys

from geo_comuna.cli.app import app
from geo_comuna.cli.db import db_app
from geo_comuna.cli.dem import dem_app
from geo_comuna.cli.maps import map_app
from geo_comuna.cli.users import users_app

app.add_typer(db_app, name="db")
app.add_typer(map_app, name="map")
app.add_typer(users_app, name="users")
app.add_typer(dem_app, name="dem")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
