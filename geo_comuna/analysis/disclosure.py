"""What a reader outside a commune gets of an analysis whose features are its homes
(``Analysis.features_of``): applied to the result at the boundary, after ``run``, by every
surface that shows one (the API, analysis maps, the report), so that analyses stay pure.

The public view keeps the summary, with its ``by_sector`` blocks under features/disclosure.py's
rule (small sectors withheld, and the next smallest when only one is); its features are one
per sector shown (kind ``sector``, at the centre of the sector's homes, with the block's
figures) plus the group features that cover at least MIN_GROUP homes (transformer sites),
without properties naming one home; its CSV rows are the sector blocks. No position nor
resident count of a single home is in it. With parameters the reader chose, it holds no
residents figure at all (``for_reader``'s ``chosen``).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import Access
from geo_comuna.analysis.base import Analysis, FeaturesOf, Result, answer
from geo_comuna.errors import Said
from geo_comuna.features import disclosure
from geo_comuna.layers import MIN_GROUP

#: a public view's warning, in both languages
PUBLIC_VIEW = (
    "Resultados por sector: cada vivienda, con su posición y sus habitantes, solo la ven los "
    "usuarios de la comuna.",
    "Results per sector: each home, with its position and residents, is shown to the "
    "commune's own users only.",
)


def hidden_from(analysis: Analysis, commune_id: int, access: Access) -> bool:
    """Does this reader get the public view of the analysis' result for this commune?"""
    of = analysis.features_of
    return of is not None and of.layer.restricted and not access.member_of(commune_id)


#: a group feature's point for readers outside the commune, in degrees: ~110 m. A transformer
#: site is the residents-weighted median of its homes, which lands on a home when one home
#: outweighs the others; a grid point says where the cluster is, not where anyone lives.
SITE_GRID = 0.001


def _public_groups(features: list[dict[str, Any]], of: FeaturesOf) -> list[dict[str, Any]]:
    """The features that stand for several homes (transformer sites), as outsiders see them:
    groups under MIN_GROUP withheld, with the next smallest when only one is (the summary's
    totals would give it away), no property naming one home, the point on a coarse grid."""
    if not of.groups:  # iterating column-wise features makes a dict of each: 0.3 s cold
        return []
    grouped = [f for f in features if (f.get("properties") or {}).get("kind") in of.groups]
    hidden = disclosure.withheld([f["properties"].get(of.count) or 0 for f in grouped])
    out = []
    for feature, withheld in zip(grouped, hidden, strict=True):
        if withheld:
            continue
        kept = {k: v for k, v in feature["properties"].items() if k not in of.pointers}
        geometry = feature.get("geometry")
        if geometry and geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            snapped = [round(round(c / SITE_GRID) * SITE_GRID, 6) for c in (lon, lat)]
            geometry = {"type": "Point", "coordinates": snapped}
        out.append({**feature, "geometry": geometry, "properties": kept})
    return out


def guard_groups(summary: dict[str, Any], count: str = "dwellings") -> dict[str, Any]:
    """A copy of ``summary`` in which no residents figure describes fewer than MIN_GROUP
    homes, directly or by subtraction. In every block (the summary, each sector's, each nested
    group such as ``over_steps``) a key naming ``count`` (``dwellings``,
    ``dwellings_without_piped``, ``clustered_dwellings``) is a group of homes, and the same
    key with ``residents`` in its place holds their residents. Those residents (and any
    share of them) are withheld when the group holds 1 to MIN_GROUP - 1 homes, or when the
    rest of its block does: the block's own total minus the group (for a nested block, the
    enclosing block's total). Also withheld: the residents of two groups of one block whose
    homes differ by 1 to MIN_GROUP - 1 (one inside the other, ``over_steps`` inside
    ``flagged``: their difference is those homes' residents), and a commune-wide figure when
    only one sector's is withheld (the others' sum taken from it gives that one)."""
    out = _guard(summary, count, None)
    _one_sector_withheld(out, count)
    return out


def _guard(block: Any, count: str, enclosing: int | None) -> Any:
    if isinstance(block, list):
        return [_guard(item, count, enclosing) for item in block]
    if not isinstance(block, dict):
        return block
    own = block.get(count) if isinstance(block.get(count), int) else None
    out = {
        key: _guard(value, count, own if own is not None else enclosing)
        if isinstance(value, dict | list)
        else value
        for key, value in block.items()
    }
    for key, homes in block.items():
        if count not in key or not isinstance(homes, int) or isinstance(homes, bool):
            continue
        whole = enclosing if key == count else own
        rest = whole - homes if whole is not None else 0
        if 0 < homes < MIN_GROUP or 0 < rest < MIN_GROUP:
            residents = key.replace(count, "residents")
            for name in out:
                if residents in name and not isinstance(out[name], dict | list):
                    out[name] = None
    _siblings(out, count)
    return out


def _groups_of(block: dict[str, Any], count: str) -> list[dict[str, Any]]:
    """The block's nested groups of homes: {count: n, "residents": m} (``over_steps``)."""
    return [
        v
        for v in block.values()
        if isinstance(v, dict) and isinstance(v.get(count), int) and "residents" in v
    ]


def _siblings(block: dict[str, Any], count: str) -> None:
    """Withhold, in place, the residents of two groups whose homes differ by 1 to
    MIN_GROUP - 1 (found from outside: flagged 26 homes / 129 people beside over_steps 25 /
    127, the one home's residents hidden under over_minutes were 129 - 127)."""
    groups = _groups_of(block, count)
    for a in groups:
        for b in groups:
            if a is not b and 0 < abs(a[count] - b[count]) < MIN_GROUP:
                a["residents"] = b["residents"] = None


def _one_sector_withheld(summary: dict[str, Any], count: str) -> None:
    """Withhold, in place, a commune-wide group's residents when exactly one sector's are."""
    sectors = [s for s in summary.get("by_sector") or [] if isinstance(s, dict)]
    for key, group in summary.items():
        if not isinstance(group, dict) or not isinstance(group.get(count), int):
            continue
        hidden = [
            s
            for s in sectors
            if isinstance(s.get(key), dict) and s[key].get(count) and s[key]["residents"] is None
        ]
        if len(hidden) == 1:
            group["residents"] = None


def _flat(block: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A sector block as one level of properties: {"minutes": {"median": 3}} -> minutes_median."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: the public view's further warning when the reader chose the parameters, in both languages
CHOSEN_PARAMETERS = (
    "Con parámetros distintos de los publicados, los habitantes solo los ven los usuarios de "
    "la comuna: se muestran las viviendas.",
    "With parameters other than the published ones, residents are shown to the commune's own "
    "users only: homes are counted.",
)


def published(analysis: Analysis, params: Any) -> bool:
    """Are ``params`` the analysis' defaults, the ones its result is published with?"""
    return bool(params.model_dump() == analysis.params().model_dump())


def _without_residents(block: Any) -> Any:
    """``block`` with every residents figure (a key naming residents) withheld."""
    if isinstance(block, list):
        return [_without_residents(item) for item in block]
    if not isinstance(block, dict):
        return block
    return {
        key: _without_residents(value)
        if isinstance(value, dict | list)
        else (None if "residents" in key else value)
        for key, value in block.items()
    }


async def for_reader(
    conn: AsyncConnection,
    analysis: Analysis,
    commune_id: int,
    result: Result,
    access: Access,
    chosen: bool = False,
) -> Result:
    """``result`` as this reader may read it: whole for the commune's users and admins, else
    the public view (see the module's docstring).

    ``chosen``: the reader chose parameters other than the published ones. The public view
    then withholds every residents figure, keeping the homes' counts: a group's residents,
    public at the published parameters, differ between two readings at nearby parameters
    (a clustering radius of 8 m and of 10 m) by the residents of the homes that joined it,
    one home's residents (found from outside: 37 such pairs in 5 de Marzo)."""
    of = analysis.features_of
    if of is None or not hidden_from(analysis, commune_id, access):
        return result
    summary = guard_groups(result.summary, of.count)
    if chosen:
        summary = _without_residents(summary)
    blocks = summary.get("by_sector") or []
    hidden = disclosure.withheld([b.get(of.count) or 0 for b in blocks])
    shown = [b for b, h in zip(blocks, hidden, strict=True) if not h]
    if "by_sector" in summary:
        summary["by_sector"] = shown
        summary["sectors_withheld"] = sum(hidden)
        # an outsider's CSV rows are the sectors (found from outside: it said "viviendas")
        summary["csv_rows"] = Said("sectors", "sectores")
    groups = await disclosure.groups(conn, of.layer, commune_id)
    features: list[dict[str, Any]] = []
    for n, block in enumerate(shown, start=1):
        centre = groups.by_value.get(block.get("sector"))
        if centre is not None:
            features.append(
                {
                    "type": "Feature",
                    "id": f"sector-{n}",
                    "geometry": centre["geometry"],
                    "properties": {"kind": "sector", **_flat(block)},
                }
            )
    features += _public_groups(result.features or [], of)
    if chosen:
        features = _without_residents(features)
    notes = [PUBLIC_VIEW, CHOSEN_PARAMETERS] if chosen else [PUBLIC_VIEW]
    return Result(
        summary=summary,
        features=features,
        rows=[_flat(b) for b in shown],
        warnings=[*result.warnings, *(Said(en, es) for es, en in notes)],
    )


async def answer_for(
    analysis: Analysis, conn: AsyncConnection, commune_id: int, params: Any, access: Access
) -> Result:
    """``answer`` as this reader may read it (``for_reader``). The public view is the same
    for every reader outside the commune, so it is kept beside the answer, per version of
    the tables the analysis reads (work.cache): building it turns every home into a dict and
    reads the sectors' centres, ~0.1 s for 5 de Marzo, which the report, the analysis' map
    and the API would otherwise each pay on every request. The answer is computed (or found)
    inside, after the versions are read, so the view is never older than its key."""
    cache = work.cache()
    chosen = not published(analysis, params)
    if cache is None or not hidden_from(analysis, commune_id, access):
        result = await answer(analysis, conn, commune_id, params)
        return await for_reader(conn, analysis, commune_id, result, access, chosen)

    async def public() -> Result:
        result = await answer(analysis, conn, commune_id, params)
        return await for_reader(conn, analysis, commune_id, result, access, chosen)

    key = ("public-view", analysis.name, commune_id, params.model_dump_json())
    tables = (*analysis.reads, analysis.features_of.layer.name)  # type: ignore[union-attr]
    return await cache.get_or_compute(conn, key, tables, public)
