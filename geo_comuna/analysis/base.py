"""What every analysis shares: its result shape and how it is registered.

An analysis module defines ``Params`` (a pydantic model: every field with a default, bounds
and a description giving its unit) and ``async def run(conn, commune_id, params) -> Result``.
It is listed once in analysis/registry.py; the API route, the CLI command and the map all
derive from that entry.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel

from geo_comuna import work
from geo_comuna.io.formulas import neutralise


@dataclass
class Result:
    """``summary`` is JSON; ``features`` are GeoJSON Feature dicts in lon/lat (for ?f=geojson
    and maps); ``rows`` are flat records for CSV (default: the features' properties), whose
    text cells are made safe to open in a spreadsheet (io/formulas.py)."""

    summary: dict[str, Any]
    features: list[dict[str, Any]] | None = None
    rows: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)

    def feature_collection(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": self.features or [],
            "summary": self.summary,
            "warnings": self.warnings,
        }

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


Runner = Callable[[AsyncConnection, int, Any], Awaitable[Result]]


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


async def answer(
    analysis: Analysis, conn: AsyncConnection, commune_id: int, params: BaseModel
) -> Result:
    """``analysis.run``, or the same answer from the app's cache when none of the tables it
    reads has been written since (work.cache; the CLI computes every time). A cached Result
    is shared: callers must not change it."""
    cache = work.cache()
    if cache is None:
        return await analysis.run(conn, commune_id, params)
    key = ("analysis", analysis.name, commune_id, params.model_dump_json())
    return await cache.get_or_compute(
        conn, key, analysis.reads, lambda: analysis.run(conn, commune_id, params)
    )
