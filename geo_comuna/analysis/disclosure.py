"""What a reader outside a commune gets of an analysis whose features are its homes
(``Analysis.features_of``): applied to the result at the boundary, after ``run``, by every
surface that shows one (the API, analysis maps, the report), so that analyses stay pure.

The public view keeps the summary, with its ``by_sector`` blocks under features/disclosure.py's
rule (small sectors withheld, and the next smallest when only one is); its features are one
per sector shown (kind ``sector``, at the centre of the sector's homes, with the block's
figures) plus the group features that cover at least MIN_GROUP homes (transformer sites),
without properties naming one home; its CSV rows are the sector blocks. No position nor
resident count of a single home is in it.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from geo_comuna.accounts import Access
from geo_comuna.analysis.base import Analysis, Result
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


def _flat(block: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A sector block as one level of properties: {"minutes": {"median": 3}} -> minutes_median."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


async def for_reader(
    conn: AsyncConnection, analysis: Analysis, commune_id: int, result: Result, access: Access
) -> Result:
    """``result`` as this reader may read it: whole for the commune's users and admins, else
    the public view (see the module's docstring)."""
    of = analysis.features_of
    if of is None or not hidden_from(analysis, commune_id, access):
        return result
    summary = dict(result.summary)
    blocks = summary.get("by_sector") or []
    hidden = disclosure.withheld([b.get(of.count) or 0 for b in blocks])
    shown = [b for b, h in zip(blocks, hidden, strict=True) if not h]
    if "by_sector" in summary:
        summary["by_sector"] = shown
        summary["sectors_withheld"] = sum(hidden)
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
    for feature in result.features or []:
        props = feature.get("properties") or {}
        if props.get("kind") in of.groups and (props.get(of.count) or 0) >= MIN_GROUP:
            kept = {k: v for k, v in props.items() if k not in of.pointers}
            features.append({**feature, "properties": kept})
    return Result(
        summary=summary,
        features=features,
        rows=[_flat(b) for b in shown],
        warnings=[*result.warnings, PUBLIC_VIEW[1]],
    )
