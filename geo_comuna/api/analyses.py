"""One router for every analysis in analysis/registry.py:
``GET /communes/{commune}/analyses/{name}?f=json|geojson|csv&<parameters>``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from geo_comuna import work
from geo_comuna.analysis import disclosure
from geo_comuna.analysis.base import parse_params, refuse_csv_only, to_json
from geo_comuna.analysis.registry import all_analyses, get_analysis
from geo_comuna.api.deps import Commune, CommuneRef, Conn, ReaderAccess
from geo_comuna.api.negotiation import asked_lang
from geo_comuna.api.parameters import own_parameters, single_values
from geo_comuna.maps import data

router = APIRouter(tags=["analyses"])
Fmt = Annotated[str, Query(alias="f", pattern="^(json|geojson|csv)$")]


@router.get("/communes/{commune}/analyses", summary="Analyses available for a commune")
async def list_analyses(commune: CommuneRef) -> dict[str, Any]:
    # the same list for every commune: its links carry the commune as written, looked up
    # when an analysis runs
    return {
        "analyses": [
            {
                "name": a.name,
                "title": {"es": a.title_es, "en": a.title_en},
                "href": f"/communes/{commune}/analyses/{a.name}",
                "parameters": a.params.model_json_schema(),
            }
            for a in all_analyses().values()
        ]
    }


#: the route's own parameters beside the analysis' (lang: checked with every route's)
ROUTE_TAKES = frozenset({"f", "lang"})


@router.get("/communes/{commune}/analyses/{name}", summary="Run an analysis")
@own_parameters  # the analysis' own (parse_params)
async def run_analysis(
    request: Request,
    commune_id: Commune,
    name: str,
    conn: Conn,
    access: ReaderAccess,
    f: Fmt = "json",
) -> Response:
    """Parameters are the analysis' own (see the list endpoint for names, units and
    defaults); ``f`` picks JSON (summary and features), GeoJSON or CSV. An analysis of homes
    gives readers outside the commune its summary and per-sector figures, without any home's
    position or residents (the commune's users and admins get every home)."""
    analysis = get_analysis(name)
    values = single_values(request, ROUTE_TAKES)
    params = parse_params(analysis.params, values, ROUTE_TAKES)
    refuse_csv_only(analysis.params, values, f)
    result = await disclosure.answer_for(analysis, conn, commune_id, params, access)
    if f == "csv":  # named by the commune's code (found from outside: water-hookups-1.csv)
        named = f"{name}-{await data.file_code(conn, commune_id)}.csv"
        return Response(
            await work.cpu(result.csv),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{named}"'},
        )
    if f == "geojson":
        lang = asked_lang(request)
        body = await work.cpu(
            lambda: to_json(result.feature_collection(as_written=True, lang=lang))
        )
        return Response(body, media_type="application/geo+json")
    body = {
        "analysis": name,
        "commune_id": commune_id,
        "parameters": params.model_dump(mode="json"),
        "summary": result.said_summary(asked_lang(request)),
        "warnings": result.said_warnings(asked_lang(request)),
        "features": result.features,
    }
    return Response(await work.cpu(to_json, body), media_type="application/json")
