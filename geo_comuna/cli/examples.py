"""Examples for every command's --help, in one catalogue: what a person types first, with the
sample communes (`geo-comuna load-sample`). tests/test_cli_help.py checks that every command
has its examples and that each names its own command."""

from __future__ import annotations

from typing import Any

from geo_comuna.cli.help_es import EXAMPLES_BOTH

EXAMPLES: dict[str, list[str]] = {
    "serve": [
        "geo-comuna serve --load-sample",
        "geo-comuna serve --host 0.0.0.0 --port 8000 --workers 2",
    ],
    "load-sample": ["geo-comuna load-sample"],
    "import": [
        "geo-comuna import parcels levantamiento.gpkg --commune EL-MAIZAL",
        "geo-comuna import dwellings casas.csv --crs EPSG:2202",
        "geo-comuna import parcels encuesta.gpkg --commune EL-MAIZAL --rename uso=land_use",
        "geo-comuna import parcels comuna.gpkg --upsert",
    ],
    "export": [
        "geo-comuna export parcels parcelas.gpkg --commune EL-MAIZAL",
        "geo-comuna export all el_maizal.gpkg --commune EL-MAIZAL",
        "geo-comuna export parcels parcelas.zip --format shp --crs EPSG:2202",
    ],
    "backup": ["geo-comuna backup respaldo.dump"],
    "restore": ["geo-comuna restore respaldo.dump"],
    "package": [
        "geo-comuna package EL-MAIZAL --out el-maizal.zip",
        "geo-comuna package EL-MAIZAL --out publico.zip --public",
    ],
    "analyze": [
        "geo-comuna analyze --list",
        "geo-comuna analyze land-recovery EL-MAIZAL",
        "geo-comuna analyze water-hookups 5-DE-MARZO -p budget_m=500 --lang en",
        "geo-comuna analyze stair-access 5-DE-MARZO --csv --out escaleras.csv",
    ],
    "sync": [
        "geo-comuna sync EL-MAIZAL comuna.gpkg --dry-run",
        "geo-comuna sync EL-MAIZAL el-maizal.zip",
        "geo-comuna sync EL-MAIZAL comuna.gpkg --theirs",
    ],
    "sheet": [
        "geo-comuna sheet EM-P016 --commune EL-MAIZAL --out ficha.pdf",
        "geo-comuna sheet --commune EL-MAIZAL --out fichas/",
    ],
    "db start": ["geo-comuna db start"],
    "db stop": ["geo-comuna db stop"],
    "db status": ["geo-comuna db status"],
    "db upgrade": ["geo-comuna db upgrade"],
    "map commune": [
        "geo-comuna map commune 5-DE-MARZO --out mapa.html",
        "geo-comuna map commune EL-MAIZAL --out map.html --lang en",
    ],
    "map analysis": ["geo-comuna map analysis water-hookups 5-DE-MARZO --out agua.html"],
    "map national": ["geo-comuna map national --out venezuela.html"],
    "users add": [
        'geo-comuna users add "Mesa técnica" --role editor --commune EL-MAIZAL',
        'geo-comuna users add "Consejo comunal" --role viewer --commune 5-DE-MARZO',
    ],
    "users rotate": ['geo-comuna users rotate "Mesa técnica"'],
    "users list": ["geo-comuna users list"],
    "users revoke": ['geo-comuna users revoke "Mesa técnica"'],
    "dem add": ["geo-comuna dem add 5-DE-MARZO relieve.tif"],
    "dem list": ["geo-comuna dem list 5-DE-MARZO"],
    "dem remove": ["geo-comuna dem remove 5-DE-MARZO 3"],
}


def epilog(lines: list[str]) -> str:
    # click rewraps a paragraph: one paragraph per example keeps each on its own line
    return f"{EXAMPLES_BOTH}\n\n" + "\n\n".join(f"  {line}" for line in lines)


def add_examples(app: Any) -> None:
    """Give every command of ``app`` (a typer app with its groups) its examples."""
    for prefix, typer_app in [("", app)] + [
        (f"{group.name} ", group.typer_instance) for group in app.registered_groups
    ]:
        for command in typer_app.registered_commands:
            name = prefix + (command.name or command.callback.__name__.replace("_", "-"))
            if name in EXAMPLES:
                command.epilog = epilog(EXAMPLES[name])
