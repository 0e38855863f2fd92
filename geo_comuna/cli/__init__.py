"""The geo-comuna command line: serve, db, load-sample, import, export, analyze, map, dem,
users, backup, restore, package, sync, sheet. One module per command group."""

from __future__ import annotations

import gc
import sys

import typer

from geo_comuna.cli import help_es, usage
from geo_comuna.cli.analyze import analyze
from geo_comuna.cli.app import app
from geo_comuna.cli.common import die, file_trouble, language, spoken_from
from geo_comuna.cli.db import db_app
from geo_comuna.cli.dem import dem_app
from geo_comuna.cli.examples import add_examples
from geo_comuna.cli.maps import map_app
from geo_comuna.cli.package import package
from geo_comuna.cli.sheets import sheet
from geo_comuna.cli.sync import sync
from geo_comuna.cli.users import users_app

app.add_typer(db_app, name="db")
app.add_typer(map_app, name="map")
app.add_typer(users_app, name="users")
app.add_typer(dem_app, name="dem")
app.command("package")(package)
app.command("analyze")(analyze)
app.command("sync")(sync)
app.command("sheet")(sheet)
add_examples(app)


def main() -> None:
    """The console script. When a command is done, the objects it made are frozen out of the
    garbage collector, so Python's teardown does not walk them all again: its collections over
    the objects of the import command's libraries (GDAL, PROJ, Arrow, numpy, psycopg...) took
    0.7-1.0 s on a busy 2-CPU machine, 0.1 s once frozen (bench/README.md). Unlike leaving
    with os._exit, exit handlers still run and output is flushed as usual."""
    code: object = 1
    spoken_from(sys.argv[1:])
    command = typer.main.get_command(app)
    if language() == "es":
        help_es.in_spanish(command)
    else:
        help_es.headed(command, "en")
    try:
        code = command(standalone_mode=False)  # usage errors come here, to be said in Spanish
    except typer.TyperException as exc:  # click's errors (typer carries its own click)
        usage.show(exc) if usage.usage_error(exc) else exc.show()
        code = exc.exit_code
    except typer.Abort:
        typer.echo("Aborted!", err=True)
    except OSError as exc:  # a file or folder the command cannot read or write: no traceback
        try:
            die(file_trouble(exc), 2)
        except typer.Exit as done:
            code = done.exit_code
    finally:
        gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
