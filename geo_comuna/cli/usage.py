"""A command line used wrongly (an unknown command or option, a missing argument, a bad
value), said in the command's language: click's own messages are English only, so in
Spanish its usage errors are said again from what each error holds (the parameter, the
option, what click offers instead). English keeps click's words."""

from __future__ import annotations

import re
from typing import Any

import typer

from geo_comuna.cli.common import language

#: click's words for a value its types refuse, and theirs in Spanish
_VALUES = [
    (
        re.compile(r"^(File|file|Directory|directory|Path|path) '(.*)' does not exist\.?$"),
        lambda m: f"no existe {_THING[m[1].lower()]} '{m[2]}'",
    ),
    (
        re.compile(r"^(File|file|Directory|directory|Path|path) '(.*)' is a directory\.?$"),
        lambda m: f"'{m[2]}' es una carpeta",
    ),
    (
        re.compile(r"^'(.*)' is not a valid integer( range)?\.?$"),
        lambda m: f"'{m[1]}' no es un número entero válido",
    ),
    (
        re.compile(r"^'(.*)' is not a valid float( range)?\.?$"),
        lambda m: f"'{m[1]}' no es un número válido",
    ),
    (
        re.compile(r"^(.*) is not in the range (.*)\.?$"),
        lambda m: f"{m[1]} está fuera del rango {m[2]}",
    ),
    (re.compile(r"^'(.*)' is not one of (.*)\.?$"), lambda m: f"'{m[1]}' no es uno de {m[2]}"),
]
_THING = {"file": "el archivo", "directory": "la carpeta", "path": "la ruta"}
#: click's other usage messages, and theirs in Spanish
_USAGE = [
    (
        re.compile(r"^No such command '(.*)'\.(?: Did you mean '(.*)'\?)?$"),
        lambda m: f"no existe el comando '{m[1]}'" + (f"; ¿quiso decir '{m[2]}'?" if m[2] else ""),
    ),
    (
        re.compile(r"^Option '(.*)' requires an argument\.?$"),
        lambda m: f"la opción '{m[1]}' necesita un valor",
    ),
    (
        re.compile(r"^Option '(.*)' requires (\d+) arguments\.?$"),
        lambda m: f"la opción '{m[1]}' necesita {m[2]} valores",
    ),
    (re.compile(r"^Missing command\.?$"), lambda m: "falta el comando"),
    (
        re.compile(r"^Got unexpected extra argument(?:s|\(s\))? \((.*)\)$"),
        lambda m: f"sobran argumentos: {m[1]}" if " " in m[1] else f"sobra un argumento: {m[1]}",
    ),
]


def _value(message: str, known: list[Any] = _VALUES) -> str:
    """``message`` in Spanish when it is one of ``known``; else as click said it."""
    for pattern, spanish in known:
        found = pattern.match(message.strip())
        if found:
            return spanish(found)
    return message


def _option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _name(param: Any) -> str:
    if param is None:
        return "?"
    if _option(param) and getattr(param, "opts", None):
        return "/".join(param.opts)
    return f"'{getattr(param, 'human_readable_name', None) or param.name}'"


def _is(exc: Exception, kind: str) -> bool:
    """Typer carries its own copy of click: its errors are told by their class' name."""
    return any(k.__name__ == kind for k in type(exc).__mro__)


def usage_error(exc: Exception) -> bool:
    return _is(exc, "UsageError")


def spanish(exc: Any) -> str:
    """The error's message in Spanish."""
    if _is(exc, "NoSuchOption"):
        said = f"no existe la opción {exc.option_name}"
        if exc.possibilities:
            said += f"; ¿quiso decir {', '.join(sorted(exc.possibilities))}?"
        return said
    if _is(exc, "MissingParameter"):
        kind = "la opción" if _option(exc.param) else "el argumento"
        return f"falta {kind} {_name(exc.param)}"
    if _is(exc, "BadParameter"):
        return f"valor no válido para {_name(exc.param)}: {_value(exc.message)}"
    return _value(exc.message, _USAGE)


def show(exc: Any) -> None:
    """Print a usage error as click would, in Spanish when the command speaks Spanish."""
    if language() != "es" or _is(exc, "NoArgsIsHelpError"):
        exc.show()
        return
    if exc.ctx is not None:
        usage = exc.ctx.get_usage().replace("Usage:", "Uso:", 1)
        usage = usage.replace("[OPTIONS]", "[OPCIONES]").replace("COMMAND [ARGS]", "COMANDO [ARGS]")
        typer.echo(usage, err=True)
        command = exc.ctx.command_path
        typer.echo(f"Use '{command} --help' para ver la ayuda.", err=True)
    typer.secho(f"error: {spanish(exc)}", err=True, fg=typer.colors.RED)
