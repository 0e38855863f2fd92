"""What every analysis shares: its description, its result shape, how its parameters are read
from text (a query string, the CLI's key=value pairs) and how its queries are loaded.

An analysis package defines ``Params`` (a pydantic model: every field with a default, bounds
and a description giving its unit), ``async def run(conn, commune_id, params) -> Result`` and
``ANALYSIS``, its entry in analysis/registry.py; the API route, the CLI command and the map
all derive from that entry. An analysis whose features are homes says so (``features_of``):
readers outside the commune then get analysis/disclosure.py's public view of its result.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection
from pydantic import BaseModel, ValidationError

from geo_comuna import work
from geo_comuna.errors import GeoComunaError, InvalidInput, Said, pydantic_reason, said
from geo_comuna.io.formulas import neutralise
from geo_comuna.layers import Layer


def said_in(value: Any, lang: str) -> Any:
    """``value`` (a summary: dicts and lists of numbers and words) with every Said in it said in
    ``lang``: a water answer asked in Spanish noted its optimum in English."""
    if isinstance(value, dict):
        return {key: said_in(item, lang) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [said_in(item, lang) for item in value]
    return said(value, lang) if isinstance(value, Said) else value


@dataclass
class Result:
    """``summary`` is JSON; ``features`` are GeoJSON Feature dicts in lon/lat (for ?f=geojson
    and maps); ``rows`` are flat records for CSV (default: the features' properties), whose
    text cells are made safe to open in a spreadsheet (io/formulas.py). ``lines`` are GeoJSON
    Feature dicts drawing how the answer runs (a project's pipe, a home's walk): they end at
    homes, so analysis/disclosure.py's public view leaves them out."""

    summary: dict[str, Any]
    #: a list, or a sequence writing its own JSON column-wise (toolkit/features.py)
    features: Sequence[dict[str, Any]] | None = None
    rows: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)
    #: a list, a sequence writing its own JSON (toolkit/features.py LineFeatures), or a
    #: function that draws them the first time they are read (``drawn_lines``): most answers
    #: (JSON, CSV, reports) never read them
    lines: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]] | None = None

    def said_warnings(self, lang: str) -> list[str]:
        """The warnings in ``lang`` (es or en)."""
        return [said(warning, lang) for warning in self.warnings]

    def said_summary(self, lang: str) -> dict[str, Any]:
        """The summary with its notes in ``lang`` (es or en): its numbers as they are."""
        return said_in(self.summary, lang)

    def drawn_lines(self) -> Sequence[dict[str, Any]] | None:
        """``lines``, drawn now if they were left to draw (then kept: an answer may be read
        again from the cache). CPU work: call it off the event loop."""
        if callable(self.lines):
            self.lines = self.lines()
        return self.lines

    def feature_collection(self, *, as_written: bool = False, lang: str = "en") -> dict[str, Any]:
        """The GeoJSON FeatureCollection, features as dicts, warnings in ``lang``;
        ``as_written`` leaves column-wise features as they are, for ``to_json`` to write
        without a dict per feature. Draws the lines: call it off the event loop."""
        features = self.features or []
        collection = {
            "type": "FeatureCollection",
            "features": features if as_written else list(features),
            "summary": self.said_summary(lang),
            "warnings": self.said_warnings(lang),
        }
        lines = self.drawn_lines()
        if lines is not None:
            collection["lines"] = lines
        return collection

    def csv(self) -> str:
        rows = (
            self.rows
            if self.rows is not None
            else [{"id": f.get("id"), **f["properties"]} for f in self.features or []]
        )
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore")
            writer.writeheader()
            # text only: a negative number stays a number
            writer.writerows(
                {k: neutralise(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in rows
            )
        return out.getvalue()


def to_json(body: Any) -> bytes:
    """``body`` as JSON (UTF-8), as ``json.dumps(body, default=str)`` would write it, but
    in a fraction of the time: features that write their own JSON (``json_array()``,
    toolkit/features.py) go in as written, and what JSON has no type for is its text.
    NaN, which JSON does not have, is written null."""
    return orjson.dumps(
        body,
        default=_as_json,
        option=orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS,
    )


def _as_json(value: Any) -> Any:
    if hasattr(value, "json_array"):
        return orjson.Fragment(value.json_array())
    if isinstance(value, float):  # numpy's float64: a float to json.dumps too
        return float(value)
    return str(value)


async def commune_code(conn: AsyncConnection, commune_id: int) -> str:
    """How people know a commune, for a refusal to name it: its code (found from outside:
    "commune 10 has no working water main"), its id where it has none."""
    cur = await conn.execute("SELECT code FROM communes WHERE id = %s", (commune_id,))
    row = await cur.fetchone()
    return str(row[0] if row and row[0] else commune_id)


@cache
def sql_text(package: str, name: str) -> str:
    """A query of ``package``'s own sql/ folder (package data; pass ``__package__``). Values
    are bound with %(name)s, never formatted in."""
    return resources.files(package).joinpath("sql", name).read_text("utf-8")


Runner = Callable[[AsyncConnection, int, Any], Awaitable[Result]]


@dataclass(frozen=True)
class FeaturesOf:
    """The result's features are features of ``layer`` (one per dwelling), carrying what its
    read rules keep from readers outside the commune. Features whose ``kind`` property is one
    of ``groups`` stand for several of them instead (a transformer site and its cluster):
    those covering at least MIN_GROUP (property ``count``) stay public, without ``pointers``
    (properties that name one feature of the layer). The summary's ``by_sector`` blocks
    count the layer's features under ``count`` too."""

    layer: Layer
    groups: tuple[str, ...] = ()
    count: str = "dwellings"
    pointers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis:
    name: str  # URL and CLI name, e.g. "water-hookups"
    title_es: str
    title_en: str
    params: type[BaseModel]
    run: Runner
    #: the tables it reads: its answer is kept while their versions are unchanged
    reads: tuple[str, ...]
    spatial: bool = True  # has features (GeoJSON / CSV / map)
    features_of: FeaturesOf | None = None
    #: the table whose rows in the commune its work grows with (a report runs the analysis
    #: with the fewest first: see maps/report.py)
    grows_with: str | None = None


async def answer(
    analysis: Analysis, conn: AsyncConnection, commune_id: int, params: BaseModel
) -> Result:
    """``analysis.run``, or the same answer from the app's cache when none of the tables it
    reads has been written since (work.cache; the CLI computes every time). A cached Result
    is shared: callers must not change it."""
    cache = work.cache()
    if cache is None:
        return await work.within_deadline(analysis.run(conn, commune_id, params))
    key = ("analysis", analysis.name, commune_id, params.model_dump_json())
    return await cache.get_or_compute(
        conn,
        key,
        analysis.reads,
        lambda: work.within_deadline(analysis.run(conn, commune_id, params)),
    )


log = logging.getLogger("geo_comuna.analysis")


class Unfinished(GeoComunaError):
    """An analysis that did not finish (the statement timeout cancelled one of its queries,
    or it failed), with the reason in Spanish and English: a page or a package says so in its
    reader's language rather than leave the analysis out."""

    status, code = 503, "analysis-unfinished"

    def __init__(self, name: str, es: str, en: str) -> None:
        super().__init__(en)
        self.name, self.es, self.en = name, es, en

    def told(self, lang: str) -> str:
        return self.es if lang == "es" else self.en


def unfinished(name: str, exc: Exception) -> Unfinished:
    """``exc``, raised by analysis ``name``, as an Unfinished saying why in both languages."""
    if isinstance(exc, Unfinished):
        return exc
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return Unfinished(
            name,
            "no terminó: una de sus consultas pasó del tiempo máximo que la base de datos da a "
            "una consulta (GEO_COMUNA_STATEMENT_TIMEOUT_MS)",
            "it did not finish: one of its queries went past the most time the database gives "
            "a query (GEO_COMUNA_STATEMENT_TIMEOUT_MS)",
        )
    if isinstance(exc, GeoComunaError):  # TooSlow among them: the request's time ran out
        return Unfinished(name, exc.said("es"), exc.said("en"))
    return Unfinished(
        name, "falló al calcularse (ver el registro)", "it failed to run (see the log)"
    )


@dataclass
class Once:
    """Answers kept for one piece of work that asks for the same ones several times (a
    package: its report and the report's maps, in two languages). Each is computed once and
    so is each failure: an analysis that cannot finish is tried once, not once per page, and
    ``failed`` names it so the package can say so. An analysis' failure is raised as
    Unfinished; answers come through ``inner`` (the app's cache) when there is one.
    Installed with work.caching(); answer() and the other cached reads use it unchanged."""

    inner: Any = None
    #: analysis name -> why it has no answer
    failed: dict[str, Unfinished] = field(default_factory=dict)
    _kept: dict[Any, tuple[Any, Exception | None]] = field(default_factory=dict)

    async def get_or_compute(
        self,
        conn: AsyncConnection,
        key: Any,
        tables: Iterable[str],
        compute: Callable[[], Awaitable[Any]],
    ) -> Any:
        if key not in self._kept:
            try:
                value = await (
                    compute()
                    if self.inner is None
                    else self.inner.get_or_compute(conn, key, tables, compute)
                )
                self._kept[key] = (value, None)
            except Exception as exc:
                if not (isinstance(key, tuple) and key[:1] == ("analysis",)):
                    raise
                if not isinstance(exc, GeoComunaError | psycopg.errors.QueryCanceled):
                    log.exception("analysis %s failed", key[1])
                why = unfinished(key[1], exc)
                self.failed[key[1]] = why
                self._kept[key] = (None, why)
        value, failure = self._kept[key]
        if failure is not None:
            raise failure
        return value


#: a refusal's two languages
LANGS = ("en", "es")


def refuse_csv_only(params_model: type, given: Iterable[str], fmt: str) -> None:
    """A parameter that shapes only the CSV's rows (``x-csv-only`` in its field's schema,
    an OpenAPI extension: water hookups' max_projects) given for another output is refused,
    not ignored (found from outside: max_projects=5 still gave every project in JSON and
    GeoJSON)."""
    only = [
        name
        for name in given
        if (field := params_model.model_fields.get(name)) is not None
        and isinstance(field.json_schema_extra, dict)
        and field.json_schema_extra.get("x-csv-only")
    ]
    if only and fmt != "csv":
        names = ", ".join(only)
        raise InvalidInput(
            Said(
                f"{names} shapes the CSV's rows only (f=csv, --csv), not the {fmt} answer, "
                "which has them all",
                f"{names} da forma solo a las filas del CSV (f=csv, --csv), no a la respuesta "
                f"{fmt}, que las tiene todas",
            )
        )


def parse_params(
    params_model: type, values: dict[str, str], route_takes: Iterable[str] = ()
) -> Any:
    """Text values (a query string, the CLI's key=value pairs) -> the analysis' parameters
    model; InvalidInput (400) naming what is wrong (and ``route_takes``, the parameters of the
    route itself, in the list of what it takes)."""
    known = set(params_model.model_fields)
    unknown = sorted(set(values) - known)
    if unknown:
        listed, takes = ", ".join(unknown), ", ".join(sorted(known))
        also = f"; the route also takes {', '.join(sorted(route_takes))}" if route_takes else ""
        also_es = f"; la ruta toma además {', '.join(sorted(route_takes))}" if route_takes else ""
        raise InvalidInput(
            Said(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {listed}; this analysis "
                f"takes {takes}{also}",
                f"parámetro{'s' if len(unknown) > 1 else ''} desconocido"
                f"{'s' if len(unknown) > 1 else ''} {listed}; este análisis toma {takes}{also_es}",
            )
        )
    try:
        return params_model.model_validate(values)
    except ValidationError as exc:
        en, es = ("; ".join(pydantic_reason(e, lang) for e in exc.errors()) for lang in LANGS)
        raise InvalidInput(
            Said(f"invalid parameters: {en}", f"parámetros no válidos: {es}")
        ) from None
