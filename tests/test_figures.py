"""The words of the analyses (analysis/figures.py) in the report and in `geo-comuna analyze`:
every figure any installed analysis gives on the sample communes has a label in both
languages, so no raw key, None or False reaches a person; numbers in the language's format;
machines still get the whole answer (--json, --geojson, --csv)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re

import httpx
import pytest
from psycopg import AsyncConnection
from typer.testing import CliRunner

from geo_comuna.analysis.base import answer
from geo_comuna.analysis.figures import FIGURES, NOT_SHOWN, figures, scalars, unlabelled
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.cli import app as cli_app
from geo_comuna.errors import Said
from geo_comuna.maps.templating import number

pytestmark = pytest.mark.anyio
#: a raw value, and a raw key
RAW = re.compile(r"\b(None|False|True|null|nan)\b")
#: English words a Spanish warning must not hold
ENGLISH = re.compile(r"\b(the|has|have|are|is|of|and|no DEM|dwellings|parcels)\b")
KEY = re.compile(r"\b[a-z]+_[a-z_]+\b")


async def test_every_figure_of_every_analysis_has_a_label(conn: AsyncConnection) -> None:
    cur = await conn.execute("SELECT id, code FROM communes ORDER BY code")
    seen: dict[str, set[str]] = {}
    warned: set[str] = set()
    for commune_id, code in await cur.fetchall():
        for name, analysis in all_analyses().items():
            try:
                result = await answer(analysis, conn, commune_id, analysis.params())
            except Exception:  # noqa: BLE001 (an analysis that needs data this commune lacks)
                continue
            assert unlabelled(name, result.summary) == [], (name, code)
            # warnings know their Spanish: `analyze` printed them in English under
            # "Advertencias" (the API keeps the English, the string itself)
            for warning in result.warnings:
                assert isinstance(warning, Said), (name, code, warning)
                assert not ENGLISH.search(warning.es), (name, code, warning.es)
            warned.update(result.warnings)
            seen.setdefault(name, set()).update(k for k, _ in scalars(result.summary))
            for lang in ("es", "en"):
                for label, value in figures(name, result.summary, lang, number(lang)):
                    assert not KEY.search(label) and not RAW.search(value), (name, label, value)
    assert set(seen) == set(all_analyses()), "every analysis ran on some sample commune"
    assert len(warned) >= 3  # the samples lack DEMs, roads, lines: warnings were checked
    # a budget's figures (water hookups under 500 m of pipe, at 12 a metre)
    water = all_analyses()["water-hookups"]
    cur = await conn.execute("SELECT id FROM communes WHERE code = '5-DE-MARZO'")
    marzo = (await cur.fetchone())[0]
    params = water.params.model_validate({"budget_m": 500, "cost_per_m": 12})
    result = await answer(water, conn, marzo, params)
    assert unlabelled("water-hookups", result.summary) == []
    seen["water-hookups"].update(k for k, _ in scalars(result.summary))
    # the catalogue names no key that no analysis gives (a renamed key leaves no stale label)
    for name, labels in FIGURES.items():
        # (the exact optimum under a budget is given for few projects only)
        stale = {k for k in set(labels) - seen.get(name, set()) if "optimum." not in k}
        assert not stale - NOT_SHOWN, (name, stale)


def test_figures_follow_the_language() -> None:
    summary = {"parcels": 1234, "area_ha": 2299.99, "crosses_state_line": True, "budget": None}
    es = dict(figures("land-recovery", summary, "es", number("es")))
    en = dict(figures("land-recovery", summary, "en", number("en")))
    assert es == {
        "Parcelas": "1.234",
        "Superficie de las parcelas": "2.299,99 ha",
        "Atraviesa un límite estatal": "sí",
    }
    assert en["Area of the parcels"] == "2,299.99 ha" and en["Crosses a state line"] == "yes"
    # hectares with their two decimals always, as the report's tables write them (found from
    # outside: "1.921 ha" beside "2.051,78 ha")
    whole = {"area_ha": 2051.78, "recovered_area_ha": 1920.9976}
    es = dict(figures("land-recovery", whole, "es", number("es")))
    assert es["Superficie recuperada"] == "1.921,00 ha", es
    assert dict(figures("land-recovery", {"area_ha": 3.0}, "en", number("en"))) == {
        "Area of the parcels": "3.00 ha"
    }
    # slivers a request did not look for: said, not left out as if none applied
    unknown = {"parcels": 3, "conflicts": {"overlap": 0, "sliver": None}}
    es = dict(figures("land-recovery", unknown, "es", number("es")))
    en = dict(figures("land-recovery", unknown, "en", number("en")))
    assert es["Franjas angostas entre parcelas"].startswith("no buscadas: demasiados vértices")
    assert en["Slivers between parcels"].startswith("not looked for: too many vertices")
    assert es["Parcelas superpuestas"] == "0" and not RAW.search(" ".join(es.values()))


def test_cli_analyze_prints_a_table_and_gives_machines_the_rest(own_db: str) -> None:
    runner = CliRunner()
    env = {"GEO_COMUNA_DATABASE_URL": own_db, "LANG": "es_VE.UTF-8", "LC_ALL": ""}
    table = runner.invoke(cli_app, ["analyze", "stair-access", "5-DE-MARZO"], env=env)
    assert table.exit_code == 0, table.stderr
    assert "Mediana de minutos a pie hasta la vía" in table.stdout
    assert len(table.stdout) < 4000  # a short table, not 14 KB of JSON
    assert not re.search(r"\b(None|False|True)\b|[a-z]+_[a-z]+\b", table.stdout)
    whole = runner.invoke(
        cli_app, ["analyze", "stair-access", "5-DE-MARZO", "--json", "--lang", "en"], env=env
    )
    summary = json.loads(whole.stdout)["summary"]
    median = number("es")(summary["minutes"]["median"])
    assert re.search(
        rf"Mediana de minutos a pie hasta la vía\s+{re.escape(median)} min", table.stdout
    )
    english = runner.invoke(
        cli_app, ["analyze", "stair-access", "5-DE-MARZO"], env={**env, "LANG": "en_US.UTF-8"}
    )
    assert "Median walk to a road" in english.stdout
    # found from outside: max_projects shaped nothing a table or JSON shows, and was taken
    ignored = runner.invoke(
        cli_app, ["analyze", "water-hookups", "5-DE-MARZO", "-p", "max_projects=5"], env=env
    )
    assert ignored.exit_code == 2 and "solo a las filas del CSV" in ignored.stderr
    rows = runner.invoke(cli_app, ["analyze", "stair-access", "5-DE-MARZO", "--csv"], env=env)
    assert len(list(csv.DictReader(io.StringIO(rows.stdout)))) == summary["dwellings"]
    both = runner.invoke(cli_app, ["analyze", "stair-access", "5-DE-MARZO", "--csv", "--json"])
    assert both.exit_code == 2 and "one output format" in both.stderr


async def test_cli_geojson_is_the_apis(own_db: str, client: httpx.AsyncClient) -> None:
    """`analyze --geojson` wrote the pipe and walk lines as "<...LineFeatures object at
    0x...>": it is now what ?f=geojson answers, lines included."""
    env = {"GEO_COMUNA_DATABASE_URL": own_db, "LANG": "en_US.UTF-8", "LC_ALL": ""}
    for name in ("water-hookups", "stair-access"):
        args = ["analyze", name, "5-DE-MARZO", "--geojson"]
        run = await asyncio.to_thread(CliRunner().invoke, cli_app, args, env=env)
        assert run.exit_code == 0, run.stderr
        cli = json.loads(run.stdout)
        served = await client.get(f"/communes/5-DE-MARZO/analyses/{name}?f=geojson")
        api = served.json()
        assert isinstance(cli["lines"], list) and cli["lines"], name
        assert all(line["geometry"]["coordinates"] for line in cli["lines"])
        assert cli["lines"] == api["lines"] and cli["features"] == api["features"], name


def test_cli_analyze_warns_in_its_language(own_db: str) -> None:
    env = {"GEO_COMUNA_DATABASE_URL": own_db, "LC_ALL": ""}
    args = ["analyze", "land-recovery", "EL-MAIZAL"]
    spanish = CliRunner().invoke(cli_app, args, env={**env, "LANG": "es_VE.UTF-8"})
    assert spanish.exit_code == 0, spanish.stderr
    assert "Advertencias:" in spanish.stdout
    assert "la comuna no tiene modelo de elevación" in spanish.stdout
    assert "the commune has no DEM" not in spanish.stdout
    english = CliRunner().invoke(cli_app, [*args, "--lang", "en"], env=env)
    assert "the commune has no DEM: candidates are scored without slope" in english.stdout


def test_cli_analyze_list() -> None:
    listed = CliRunner().invoke(cli_app, ["analyze", "--list", "--lang", "en"])
    assert listed.exit_code == 0
    for name, analysis in all_analyses().items():
        assert name in listed.stdout and analysis.title_en in listed.stdout
    missing = CliRunner().invoke(cli_app, ["analyze", "--lang", "es"])
    assert missing.exit_code == 2 and "--list" in missing.stderr
