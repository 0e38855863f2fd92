"""Recovery candidates: abandoned or idle parcels read by candidates.sql, their mean slope on the
commune's DEM (toolkit/slope.py), their score, and the best of them.

Measuring a parcel's distance to a road on the spheroid is the costly step (~30-50 µs a
road: a commune of 200,000 parcels has ~66,000 candidates with 8 roads each in reach, 18 s),
and only the best ``max_candidates`` carry theirs. So best() measures only what can change
them. The planar distances of the KNN search bound each road's geodesic distance (bounds():
within 3 % up to 13 degrees from the equator, plus how far edges bow), and a candidate's
score is at most what its nearest road's lower bound would give. Candidates are measured
best bound first, and only the roads that can be their nearest, until the best
``max_candidates`` are all measured and no bound can pass them. The answer is the one
measuring every road gives: the same ranks, scores and distances.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.analysis.base import sql_text
from geo_comuna.analysis.land_recovery.params import Params
from geo_comuna.analysis.land_recovery.summary import ha
from geo_comuna.analysis.toolkit.slope import terrain_of
from geo_comuna.errors import InvalidInput, Said
from geo_comuna.io import dems

#: WGS 84, the spheroid of PostGIS' geography
A = 6_378_137.0
E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
#: its least and greatest radius of curvature (m): meridian at the equator, either at a pole
M_MIN, N_MAX = A * (1 - E2), A / math.sqrt(1 - E2)
#: metres PostGIS' distance may lose to its tolerances, either way
NOISE_M = 0.01


def bow(length_deg: np.ndarray) -> np.ndarray:
    """How far (degrees, in lon/lat) an edge this long, a great-circle arc in geography, can
    stray from the straight segment between its ends: at most L² sin φ cos φ / 8 radians,
    for an east-west edge; four times that, for margin (L in radians)."""
    return np.radians(length_deg) * length_deg / 4


def bounds(
    degrees: np.ndarray, box: np.ndarray, bowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (m) of PostGIS' geodesic distance between a parcel and a road
    whose planar distance in lon/lat is ``degrees``, the parcel within ``box`` (rows of west,
    south, east, north) and the edges of both bowing ``bowed`` degrees at most (bow()).

    On the spheroid ds² = M² dφ² + N² cos²φ dλ², which lies between k_lo² and k_hi² times
    dφ² + dλ², with k_lo = min(M, N cos φ) and k_hi = max(M, N) = N over the latitudes a path
    crosses. A path from the parcel to the road spans at least ``degrees - bowed`` in lon/lat,
    and the straight one ``degrees + bowed`` at most; PostGIS measures on the spheroid
    between the points nearest on the sphere, at most k_hi / R times their sphere distance.
    The latitudes are the parcel's widened by as far as such a path can reach. Near the
    antimeridian lon/lat distances mean nothing: no bounds (0, inf)."""
    reach = (degrees + 2 * bowed) * N_MAX / M_MIN
    south = np.clip(box[:, 1] - reach, -90, 90)
    north = np.clip(box[:, 3] + reach, -90, 90)
    low_abs = np.where((south <= 0) & (north >= 0), 0.0, np.minimum(abs(south), abs(north)))
    high_abs = np.maximum(abs(south), abs(north))
    m_low, _ = _radii(low_abs)
    _, n_high = _radii(high_abs)
    k_low = np.radians(np.minimum(m_low, n_high * np.cos(np.radians(high_abs))))
    k_high = np.radians(n_high)
    low = np.maximum(k_low * np.maximum(degrees - bowed, 0) - NOISE_M, 0)
    high = k_high * (degrees + bowed) + NOISE_M
    wraps = (box[:, 0] - reach <= -180) | (box[:, 2] + reach >= 180)
    return np.where(wraps, 0.0, low), np.where(wraps, np.inf, high)


def _radii(lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spheroid's radii of curvature (m) at these latitudes: meridian, prime vertical."""
    w = np.sqrt(1 - E2 * np.sin(np.radians(lat_deg)) ** 2)
    return A * (1 - E2) / w**3, A / w


def score(
    c: dict[str, Any], params: Params, largest: float, road_distance_m: float | None
) -> tuple[float | None, dict[str, float]]:
    """A candidate's score and terms, with this distance to its nearest road (None: unknown).
    ``c`` has ``area_ha`` and ``mean_slope_pct`` (None: unknown); ``largest`` is the largest
    candidate's area_ha.

    Terms, each 0..1: area = area_ha / largest; slope = 1 - min(mean_slope_pct /
    max_slope_pct, 1); road = 1 - min(road_distance_m / max_road_distance_m, 1). Score = 100
    * sum(weight * term) / sum(weight) over the terms known for the candidate (an unknown
    term leaves the weighted mean, it does not count 0); None when no weighted term is known
    for it (the slope weighed alone, the parcel partly off the DEM): it cannot be scored, not
    even 0. The score never rises with the distance: best() bounds it with a distance's lower
    bound."""
    terms = {"area": (params.weight_area, c["area_ha"] / largest if largest > 0 else 0.0)}
    if c["mean_slope_pct"] is not None:
        terms["slope"] = (
            params.weight_slope,
            1 - min(c["mean_slope_pct"] / params.max_slope_pct, 1.0),
        )
    if road_distance_m is not None:
        terms["road"] = (
            params.weight_road,
            1 - min(road_distance_m / params.max_road_distance_m, 1.0),
        )
    weight = sum(w for w, _ in terms.values())
    value = round(100 * sum(w * t for w, t in terms.values()) / weight, 2) if weight > 0 else None
    return value, {name: t for name, (_, t) in terms.items()}


def _heap_key(value: float | None) -> float:
    """best()'s heap order: the highest score first, the candidates without one after all."""
    return math.inf if value is None else -value


#: the notes of candidates (in English, as the answer is; the map says them in its language:
#: styles.json's land-recovery values): partly off the DEM, and so not scored at all (score())
OFF_DEM = "not wholly on the DEM: scored without slope"
UNSCORED = "not wholly on the DEM and only the slope is weighed: not scored, not ranked"


@dataclass
class Roads:
    """Each candidate's roads in reach (None: there are no roads) and the bounds (m) of its
    distance to each, in the candidates' order."""

    ids: list[list[int] | None]
    low: list[np.ndarray | None]
    high: list[np.ndarray | None]

    def to_measure(self, i: int) -> list[int]:
        """The roads that can be candidate i's nearest: none starts farther than the nearest
        can end."""
        reach = self.high[i].min()
        return [r for r, low in zip(self.ids[i], self.low[i], strict=True) if low <= reach]


async def read_candidates(
    conn: AsyncConnection, commune_id: int, params: Params
) -> tuple[list[dict[str, Any]], Roads, list[str]]:
    """(candidate properties, their roads in reach, warnings); road_distance_m is still
    unknown (best() measures it)."""
    dem = await dems.for_commune(conn, commune_id)
    cur = await conn.execute(
        sql_text(__package__, "candidates.sql"), {"commune": commune_id, "shapes": dem is not None}
    )
    rows = await work.fetched(cur)
    warnings: list[str] = []
    slopes = np.full(len(rows), np.nan)
    if rows and dem is None:
        warnings.append(
            Said(
                "the commune has no DEM: candidates are scored without slope "
                "(add one with `geo-comuna dem add`)",
                "la comuna no tiene modelo de elevación: las candidatas se puntúan sin la "
                "pendiente (agregue uno con `geo-comuna dem add`)",
            )
        )
    elif rows:
        slopes = await work.cpu(_slopes, dem, rows, params.max_slope_pct, warnings)
    roads_known = not all(r[10] is None for r in rows)
    if rows and not roads_known:
        warnings.append(
            Said(
                "there are no roads (paths of kind 'road'): candidates are scored without road "
                "distance",
                "no hay vías (veredas de tipo 'road'): las candidatas se puntúan sin la "
                "distancia a una vía",
            )
        )
    if rows:
        _something_weighed(params, not np.isnan(slopes).all(), roads_known)
    candidates = await work.cpu(_candidates, rows, slopes, dem is not None)
    return candidates, await _roads(conn, rows), warnings


def _something_weighed(params: Params, slopes_known: bool, roads_known: bool) -> None:
    """A score is the weighted mean of the terms known for a candidate: when every weighted
    term is unknown in the commune, every score was 0 and the ranking followed the parcels'
    order (weight_slope alone, and no DEM). Refused, saying what each term needs."""
    weighed = (
        params.weight_area > 0
        or (params.weight_slope > 0 and slopes_known)
        or (params.weight_road > 0 and roads_known)
    )
    if not weighed:
        raise InvalidInput(
            Said(
                "every weighted term is unknown in this commune, so no candidate could be "
                "scored: slope needs a DEM under the parcels (geo-comuna dem add), road "
                "distance needs paths of kind 'road'; weigh the area (weight_area) or a term "
                "that is known",
                "todos los términos con peso son desconocidos en esta comuna, así que ningún "
                "candidato se podría puntuar: la pendiente necesita un MDE bajo las parcelas "
                "(geo-comuna dem add), la distancia a una vía necesita caminos de tipo 'road'; "
                "dé peso al área (weight_area) o a un término conocido",
            )
        )


def _slopes(dem: Any, rows: list[tuple], max_slope_pct: float, warnings: list[str]) -> np.ndarray:
    """Each candidate's mean slope (%) on the commune's DEM; NaN off it."""
    geoms = shapely.from_wkb([r[5] for r in rows])
    return terrain_of(dem, geoms, max_slope_pct, warnings)["mean_slope_pct"]


def _candidates(rows: list[tuple], slopes: np.ndarray, has_dem: bool) -> list[dict[str, Any]]:
    """candidates.sql's rows as candidates (~0.3 s for 66,666: on a worker)."""
    candidates = []
    for (pid, code, tenure, land_use, area_m2, *_), slope in zip(rows, slopes, strict=True):
        note = None
        if has_dem and np.isnan(slope):
            note = OFF_DEM
        candidates.append(
            {
                "kind": "candidate",
                "parcel_ids": [pid],
                "codes": [code],
                "tenure": tenure,
                "land_use": land_use,
                "area_m2": round(area_m2, 2),
                "area_ha": ha(area_m2),
                "mean_slope_pct": None if np.isnan(slope) else round(float(slope), 2),
                "road_distance_m": None,
                "note": note,
            }
        )
    return candidates


async def _roads(conn: AsyncConnection, rows: list[tuple]) -> Roads:
    """The roads in reach of candidates.sql's rows, with the bounds of their distances
    (worked out on the scope's workers: ~0.3 s for 66,666 candidates)."""
    reached = await work.cpu(_reached, rows)
    longest: dict[int, float] = {}
    if reached:
        cur = await conn.execute(sql_text(__package__, "roads.sql"), {"roads": reached})
        longest = dict(await cur.fetchall())
    return await work.cpu(_bounded, rows, longest)


def _reached(rows: list[tuple]) -> list[int]:
    """Every road in reach of candidates.sql's rows, once, in order (533,328 for 66,666)."""
    return sorted({i for r in rows if r[10] is not None for i in r[10]})


def _bounded(rows: list[tuple], longest: dict[int, float]) -> Roads:
    """_roads() for the rows and each road's longest segment (degrees)."""
    reached = [r for r in rows if r[10] is not None]
    ids: list[list[int] | None] = [r[10] for r in rows]
    low: list[np.ndarray | None] = [None] * len(rows)
    high: list[np.ndarray | None] = [None] * len(rows)
    if not reached:
        return Roads(ids, low, high)
    counts = [len(r[10]) for r in reached]
    boxes = np.array([r[6:10] for r in reached], dtype=float)
    diagonal = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    roads = [i for r in reached for i in r[10]]
    # a road deleted since the candidates were read: no bounds (it is not measured either)
    edge = np.array([longest.get(i, np.inf) for i in roads], dtype=float)
    bowed = np.repeat(bow(diagonal), counts) + bow(edge)
    degrees = np.array([d for r in reached for d in r[11]], dtype=float)
    lows, highs = bounds(degrees, np.repeat(boxes, counts, axis=0), bowed)
    edges = np.cumsum(counts)[:-1]
    at = (n for n, r in enumerate(rows) if r[10] is not None)
    for n, lo, hi in zip(at, np.split(lows, edges), np.split(highs, edges), strict=True):
        low[n], high[n] = lo, hi
    return Roads(ids, low, high)


async def best(
    conn: AsyncConnection, candidates: list[dict[str, Any]], roads: Roads, params: Params
) -> tuple[list[dict[str, Any]], int]:
    """The best ``max_candidates`` candidates, best first (ties by parcel id), each with its
    ``road_distance_m``, ``score``, ``rank`` and terms; and how many candidates were measured.

    A heap holds every candidate under its score's upper bound: its exact score once
    measured. The top of the heap, measured, is the next best: nothing left can score more.
    Unmeasured ones are taken from the top into a batch and measured together (one
    statement), then put back under their exact scores."""
    largest = max((c["area_ha"] for c in candidates), default=0.0)
    heap = await work.cpu(_bounded_scores, candidates, roads, params, largest)
    chosen: list[int] = []
    batch: list[int] = []
    count = 0
    while len(chosen) < params.max_candidates and (heap or batch):
        wanted = max(params.max_candidates - len(chosen), 64)
        if heap and not heap[0][2] and len(batch) < wanted:
            batch.append(heapq.heappop(heap)[3])
        elif batch:
            count += len(batch)
            for i, distance in await _measure(conn, candidates, roads, batch):
                c = candidates[i]
                c["road_distance_m"] = round(distance, 1)
                value = score(c, params, largest, c["road_distance_m"])[0]
                heapq.heappush(heap, (_heap_key(value), c["parcel_ids"][0], True, i))
            batch = []
        else:
            chosen.append(heapq.heappop(heap)[3])
    ranked = [candidates[i] for i in chosen]
    rank = 0
    for c in ranked:
        c["score"], terms = score(c, params, largest, c["road_distance_m"])
        for name in ("area", "slope", "road"):
            c[f"{name}_term"] = round(terms[name], 4) if name in terms else None
        if c["score"] is None:  # after every scored one (_heap_key)
            c["rank"], c["note"] = None, UNSCORED
        else:
            rank += 1
            c["rank"] = rank
    return ranked, count


def _bounded_scores(
    candidates: list[dict[str, Any]], roads: Roads, params: Params, largest: float
) -> list[tuple[float, int, bool, int]]:
    """best()'s heap: each candidate under its score's upper bound (its nearest road's lower
    bound), or its score where there are no roads to measure."""
    heap = []
    for i, c in enumerate(candidates):
        measured = roads.ids[i] is None  # no roads: the distance stays unknown
        nearest = None if measured else round(float(roads.low[i].min()), 1)
        value = score(c, params, largest, nearest)[0]
        heap.append((_heap_key(value), c["parcel_ids"][0], measured, i))
    heapq.heapify(heap)
    return heap


async def _measure(
    conn: AsyncConnection, candidates: list[dict[str, Any]], roads: Roads, batch: list[int]
) -> list[tuple[int, float]]:
    """(candidate, metres to its nearest road) for the candidates ``batch`` (positions), each
    measured on the spheroid to the roads that can be its nearest. A parcel deleted since
    it was read has none: it is left out."""
    pairs = [(candidates[i]["parcel_ids"][0], r, i) for i in batch for r in roads.to_measure(i)]
    cur = await conn.execute(
        sql_text(__package__, "measured.sql"),
        {"parcels": [p for p, _, _ in pairs], "roads": [r for _, r, _ in pairs]},
    )
    at = {p: i for p, _, i in pairs}
    return [(at[parcel], distance) for parcel, distance in await cur.fetchall()]


async def shapes(conn: AsyncConnection, ranked: list[dict[str, Any]]) -> dict[int, dict]:
    """The GeoJSON outline of each ranked candidate, by parcel id."""
    cur = await conn.execute(
        sql_text(__package__, "shapes.sql"), {"parcels": [c["parcel_ids"][0] for c in ranked]}
    )
    return dict(await cur.fetchall())
