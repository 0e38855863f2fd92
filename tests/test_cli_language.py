"""The CLI speaks its user's language: with a Spanish locale (or --lang es) its refusals,
progress and messages are in Spanish, with an English one in English; the HTTP API keeps
English, the reasons' own words. Typed errors carry both (errors.Said), also across the child
processes that repair geometries."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo_comuna import errors
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.cli import app as cli_app
from geo_comuna.errors import GeoComunaError, InvalidGeometry, Said
from tests.analysis_factories import timing_out
from tests.live import CLI
from tests.test_io_errors import CASES

SPANISH = {"LANG": "es_VE.UTF-8"}
ENGLISH = {"LANG": "en_US.UTF-8"}
#: English words that a Spanish message must not hold outside names and a library's own text
ENGLISH_WORDS = re.compile(r"\b(feature|layer|the|must|cannot|not a|does not|is not|has no)\b")


def _kinds() -> list[type[GeoComunaError]]:
    found, todo = [], [GeoComunaError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def test_every_kind_of_error_has_a_spanish_title() -> None:
    """Each kind errors.py defines has its own (others may share their parent's)."""
    kinds = [k for k in _kinds() if k.__module__ == errors.__name__]
    assert len({kind.title_es for kind in kinds}) == len(kinds) > 15


def test_a_reason_keeps_its_spanish_across_a_process() -> None:
    exc = InvalidGeometry(
        Said("ring 0 crosses itself", "el anillo 0 se cruza a sí mismo"), feature=3, layer="parcels"
    )
    back = pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own bytes)
    assert back.said("es") == "capa parcels, entidad 3: el anillo 0 se cruza a sí mismo"
    assert back.message == str(back) == "layer parcels, feature 3: ring 0 crosses itself"
    assert errors.said(back.reason, "en") == "ring 0 crosses itself"
    assert errors.said("plain", "es") == "plain"


def test_cli_refusals_follow_the_locale_and_lang() -> None:
    runner = CliRunner()
    args = ["sync", "X", "x.gpkg", "--ours", "--theirs"]
    spanish = runner.invoke(cli_app, args, env=SPANISH)
    english = runner.invoke(cli_app, args, env=ENGLISH)
    asked = runner.invoke(cli_app, [*args, "--lang", "en"], env=SPANISH)
    assert spanish.exit_code == english.exit_code == asked.exit_code == 2
    assert "--ours y --theirs se excluyen" in spanish.stderr
    assert "--ours and --theirs exclude each other" in english.stderr == asked.stderr
    # the next command in the same process does not inherit the last one's --lang
    again = runner.invoke(cli_app, args, env=SPANISH)
    assert "se excluyen" in again.stderr


def test_every_import_refusal_in_spanish(own_db: str, tmp_path: Path) -> None:
    """Each bad file of test_io_errors through `geo-comuna import` with a Spanish locale: the
    error's kind, the feature and the reason in Spanish; nothing is written (the exit says)."""
    titles = {kind.title_es for kind in _kinds()}
    env = {**os.environ, "GEO_COMUNA_DATABASE_URL": own_db, **SPANISH}

    def refuse(case: object) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / re.sub(r"\W", "-", case.id)
        folder.mkdir()
        command = [*CLI, "import", case.layer, str(case.build(folder)), *case.options()]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(refuse, CASES))
    wrong = []
    for case, run in zip(CASES, runs, strict=True):
        said = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""
        problems = []
        if run.returncode == 0:
            problems.append("exit 0")
        if not any(said.startswith(f"error ({t}): ") for t in titles):
            problems.append("no Spanish kind")
        if case.feature and f"entidad {case.feature}:" not in said:
            problems.append(f"no 'entidad {case.feature}:'")
        if ENGLISH_WORDS.search(said):
            problems.append(f"English words {ENGLISH_WORDS.findall(said)}")
        if problems:
            wrong.append(f"{case.id}: {', '.join(problems)} in {said!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("env", [SPANISH, ENGLISH], ids=["es", "en"])
def test_progress_follows_the_locale(own_db: str, tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "parcels.gpkg"
    run = CliRunner().invoke(
        cli_app,
        ["export", "parcels", str(out), "--commune", "EL-MAIZAL"],
        env={"GEO_COMUNA_DATABASE_URL": own_db, **env},
    )
    assert run.exit_code == 0, run.stderr
    word = "exportando parcels como gpkg" if env is SPANISH else "exporting parcels as gpkg"
    assert word in run.stderr
    # and what was written, in words (the JSON on stdout is for programs)
    n = json.loads(run.stdout)["features"]
    done = f"{n} entidades escritas en" if env is SPANISH else f"{n} features written to"
    assert f"parcels: {done} {out}" in run.stderr, run.stderr


@pytest.mark.parametrize("env", [SPANISH, ENGLISH], ids=["es", "en"])
def test_a_query_past_the_statement_timeout_is_said_not_a_traceback(
    own_db: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`geo-comuna analyze land-recovery` of 100 parcels of 50,000 vertices ended in a Python
    traceback when a query passed the statement timeout: now the command says so, in its
    user's language, and how to give it more time (exit 2)."""
    monkeypatch.setitem(
        all_analyses(), "land-recovery", timing_out(all_analyses()["land-recovery"])
    )
    run = CliRunner().invoke(
        cli_app,
        ["analyze", "land-recovery", "EL-MAIZAL"],
        env={"GEO_COMUNA_DATABASE_URL": own_db, **env},
    )
    assert run.exit_code == 2, (run.exception, run.stderr)
    said = "una consulta tardó más" if env is SPANISH else "a query took longer"
    assert said in run.stderr and "GEO_COMUNA_STATEMENT_TIMEOUT_MS=" in run.stderr


@pytest.mark.parametrize(
    ("args", "spanish", "english"),
    [
        (["import", "--bogus"], "no existe la opción --bogus", "No such option: --bogus"),
        (["import", "parcels"], "falta el argumento 'file'", "Missing argument"),
        (
            ["import", "parcels", "/no/such.gpkg"],
            "no existe el archivo '/no/such.gpkg'",
            "does not exist",
        ),
        (["imprt"], "no existe el comando 'imprt'; ¿quiso decir 'import'?", "No such command"),
        (["export", "parcels", "x.gpkg", "--crs"], "la opción '--crs' necesita un valor", "--crs"),
        (["db", "status", "a", "b"], "sobran argumentos: a b", "unexpected extra"),
    ],
    ids=["option", "argument", "file", "command", "value", "extra"],
)
def test_usage_errors_follow_the_locale(args: list[str], spanish: str, english: str) -> None:
    """Click's own usage errors are English only: the console script says them again."""
    for env, usage, said in ((SPANISH, "Uso: ", spanish), (ENGLISH, "Usage: ", english)):
        run = subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
        )
        assert run.returncode == 2, run.stderr
        assert said in run.stderr, run.stderr
        # click gives a missing option value no command context, so no usage line
        assert (usage in run.stderr) == ("--crs" not in args), run.stderr
        assert "Traceback" not in run.stderr


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every command of the click tree under ``group``, by its path of names."""
    found = []
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_every_command_takes_lang() -> None:
    """export, package, backup, restore, db, dem and users took no --lang: they could only
    follow the locale."""
    import typer.main

    from geo_comuna.cli import app as root  # with every group added (cli/__init__)

    commands = _commands(typer.main.get_command(root))
    assert len(commands) > 20
    lacking = [
        " ".join(path)
        for path, command in commands
        if not any("--lang" in getattr(p, "opts", []) for p in command.params)
    ]
    assert lacking == []


@pytest.mark.parametrize(
    ("env", "args", "said"),
    [
        (SPANISH, ["users", "list", "--lang", "en", "--bogus"], "No such option: --bogus"),
        (ENGLISH, ["users", "list", "--bogus", "--lang=es"], "no existe la opción --bogus"),
        (ENGLISH, ["backup", "--lang", "es"], "falta el argumento 'file'"),
        (SPANISH, ["db", "status", "--lang", "en", "extra"], "unexpected extra"),
    ],
    ids=["option-en", "option-es", "argument-es", "extra-en"],
)
def test_usage_errors_follow_lang_over_the_locale(
    env: dict[str, str], args: list[str], said: str
) -> None:
    """A usage error is found before the command runs: it followed the locale whatever
    --lang said."""
    run = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )
    assert run.returncode == 2, run.stderr
    assert said in run.stderr, run.stderr


def test_lang_speaks_a_command_that_follows_the_locale_otherwise(tmp_path: Path) -> None:
    """`dem add` of a missing file, Spanish locale, --lang en: said in English."""
    run = CliRunner().invoke(
        cli_app,
        ["dem", "add", "EL-MAIZAL", str(tmp_path / "none.tif"), "--lang", "en"],
        env=SPANISH,
    )
    assert run.exit_code == 2 and "no such file" in run.stderr, run.stderr
    run = CliRunner().invoke(
        cli_app, ["dem", "add", "EL-MAIZAL", str(tmp_path / "none.tif")], env=SPANISH
    )
    assert run.exit_code == 2 and "no existe el archivo" in run.stderr, run.stderr


def test_lang_before_the_command_speaks_its_output() -> None:
    """Found from outside: `geo-comuna --lang en analyze ...` printed its tables in Spanish
    (only its errors followed); the global --lang is the command's unless it gives its own."""
    for args, said in (
        (["--lang", "en", "analyze", "--list"], "Water hookups"),
        (["analyze", "--list"], "Conexiones de agua"),
        (["--lang", "es", "analyze", "--list", "--lang", "en"], "Water hookups"),
    ):
        run = CliRunner().invoke(cli_app, args, env=SPANISH)
        assert run.exit_code == 0 and said in run.stdout, (args, run.stdout)


@pytest.mark.parametrize(
    ("args", "spanish", "english"),
    [
        (["analyze", "nope", "X"], "no hay ningún análisis llamado 'nope'", "no analysis named"),
        (
            ["analyze", "terrain", "X", "-p", "foo=1"],
            "parámetro desconocido foo; este análisis toma",
            "unknown parameter foo; this analysis takes",
        ),
        (
            ["analyze", "water-hookups", "X", "-p", "budget_m=abc"],
            "parámetros no válidos: «budget_m» debe ser un número",
            "invalid parameters: budget_m",
        ),
    ],
    ids=["name", "unknown", "invalid"],
)
def test_analysis_refusals_follow_the_language(args: list[str], spanish: str, english: str) -> None:
    """They were English whatever the language (the refusal's title was Spanish)."""
    for lang, said in (("es", spanish), ("en", english)):
        run = CliRunner().invoke(cli_app, [*args, "--lang", lang])
        assert run.exit_code == 2 and said in run.stderr, run.stderr


def test_the_samples_loaded_are_counted_in_words() -> None:
    """`serve --load-sample` said 'territorios de muestra cargados: states 25, ...,
    dwellings 1895': the layers' codes and numbers ungrouped."""
    from geo_comuna.cli.app import _counted

    counts = {"states": 25, "dwellings": 1895, "parties": 8, "dems": 1}
    assert _counted(counts, "es") == (
        "Estados 25, Viviendas 1.895, Sujetos de derecho 8, modelos de elevación 1"
    )
    assert _counted(counts, "en") == "States 25, Dwellings 1,895, Parties 8, elevation models 1"
