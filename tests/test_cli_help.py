"""Every command's --help ends with examples (cli/examples.py), and every example is a
command line the command accepts: its options exist and its values parse. Every help is
said in Spanish too (cli/help_es.py)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from geo_comuna.cli import app, help_es
from geo_comuna.cli.examples import EXAMPLES

CLI = [str(Path(sys.executable).parent / "geo-comuna")]


def root() -> Any:
    return typer.main.get_command(app)


def commands() -> dict[str, Any]:
    """Every command by its full name ("import", "db status")."""
    found: dict[str, Any] = {}
    for name, command in root().commands.items():
        if hasattr(command, "commands"):  # a group: db, map, users, dem
            for sub, leaf in command.commands.items():
                found[f"{name} {sub}"] = leaf
        else:
            found[name] = command
    return found


def test_every_command_has_examples() -> None:
    assert set(commands()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_help_shows_examples_the_command_accepts(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the files the examples read exist
    shown = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "Ejemplos" in shown.output
    command = commands()[name]
    for example in EXAMPLES[name]:
        words = shlex.split(example)
        assert words[: 1 + len(name.split())] == ["geo-comuna", *name.split()], example
        assert example.split("geo-comuna ", 1)[1] in " ".join(shown.output.split())
        args = words[1 + len(name.split()) :]
        for word in args:  # the example's input files, as a person would have them
            if re.fullmatch(r"[\w.-]+\.(gpkg|csv|dump|tif|zip)", word):
                (tmp_path / word).touch()
        command.make_context(name, args)  # raises on an unknown option or a bad value


def test_every_help_has_its_spanish() -> None:
    """Each help text of the command tree has its Spanish in cli/help_es.py, and the catalogue
    holds nothing else: an English help changed without its Spanish fails here."""
    shown = {help_es.folded(getattr(owner, name)) for owner, name in help_es.helps(root())}
    assert shown - set(help_es.SPANISH) == set(), "help texts without their Spanish"
    assert set(help_es.SPANISH) - shown == set(), "Spanish of help texts no command has"


def help_of(*args: str) -> str:
    """The console script's --help, as a person's terminal shows it (English locale: the
    language comes from --lang)."""
    env = {**os.environ, "LANG": "en_US.UTF-8", "COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    done = subprocess.run(
        [*CLI, *args, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


@pytest.mark.parametrize("where", [["import", "--lang", "es"], ["--lang", "es", "import"]])
def test_help_in_spanish(where: list[str]) -> None:
    shown = help_of(*where)
    assert "Uso: geo-comuna import [OPCIONES]" in shown
    assert help_es.SPANISH[help_es.folded(commands()["import"].help)] in shown
    for words in ("Argumentos", "Opciones", "[obligatorio]", "Muestra esta ayuda y termina."):
        assert words in shown
    assert "Ejemplos:" in shown
    for english in ("Usage:", "Options", "Import a file", "Show this message", "Examples"):
        assert english not in shown
    english = help_of("import", "--lang", "en")
    assert "Examples:" in english and "Ejemplos" not in english and "Opciones" not in english


def test_help_of_a_group_in_spanish_and_in_english() -> None:
    spanish, english = help_of("users", "--lang", "es"), help_of("users", "--lang", "en")
    assert "Uso: geo-comuna users [OPCIONES] COMANDO [ARGS]" in spanish
    assert "Cuentas: tokens para lectores, editores y administradores." in spanish
    assert "Revoca al instante el token de un usuario." in spanish
    assert "Usage: geo-comuna users [OPTIONS] COMMAND [ARGS]" in english
    assert "Accounts: tokens for viewers, editors and admins." in english
    assert "Comandos" not in english and "Cuentas" not in english
