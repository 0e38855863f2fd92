"""Every command's --help ends with examples (cli/examples.py), and every example is a
command line the command accepts: its options exist and its values parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from geo_comuna.cli import app
from geo_comuna.cli.examples import EXAMPLES


def commands() -> dict[str, Any]:
    """Every command by its full name ("import", "db status")."""
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in root.commands.items():
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
