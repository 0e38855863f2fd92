"""Water hookups: how far each home without piped water is from a working main along the paths,
which homes one branch line can serve together, and which branches a budget should build first.

Lengths are geodesic metres. A pipe is assumed to follow the path network (pipes are laid under
roads, footpaths and stairways) from a *tap*: a path vertex within ``tap_reach_m`` of a working
or leaking main, or the vertex nearest to each such main. One Dijkstra from all taps at once
gives every dwelling its shortest pipe; the shortest-path tree groups dwellings into projects.
docs/analyses.md ("Water hookups") gives every formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_comuna.analysis import budget, network, registry
from geo_comuna.analysis import dem as dems
from geo_comuna.analysis.base import Analysis, Result
from geo_comuna.analysis.network import Attachment, Dwellings, Network, Tree, rounded
from geo_comuna.errors import NotFound


class Params(BaseModel):
    """Water-hookup parameters. Lengths in metres, money in any one currency."""

    model_config = ConfigDict(extra="forbid")

    max_connector_m: float = Field(
        50.0,
        gt=0,
        le=500,
        description="longest straight service line (m) from a dwelling to "
        "the path network; a dwelling farther away gets a straight line to the nearest main",
    )
    tap_reach_m: float = Field(
        10.0,
        ge=0,
        le=200,
        description="path vertices within this distance (m) of a working or "
        "leaking main are taps where a branch may start",
    )
    head_threshold_m: float = Field(
        0.0,
        ge=-100,
        le=300,
        description="needs_pumping when dwelling elevation - source "
        "elevation > this (m): the rise gravity (the main's residual head) still covers",
    )
    budget_m: float | None = Field(
        None, gt=0, le=10_000_000, description="metres of pipe available (budget mode)"
    )
    cost_per_m: float | None = Field(
        None, gt=0, le=1e6, description="cost of one metre of pipe, laid (money mode)"
    )
    budget_money: float | None = Field(
        None, gt=0, le=1e12, description="money available; needs cost_per_m (money mode)"
    )
    max_projects: int = Field(
        200,
        ge=1,
        le=100_000,
        description="projects listed, best ranked first (the budget choice still considers all)",
    )

    @model_validator(mode="after")
    def _one_budget(self) -> Params:
        if self.budget_money is not None and self.cost_per_m is None:
            raise ValueError("budget_money needs cost_per_m")
        if self.budget_money is not None and self.budget_m is not None:
            raise ValueError("give budget_m or budget_money, not both")
        return self

    def budget_metres(self) -> int | None:
        """The budget in whole metres of pipe, or None (ranking only)."""
        if self.budget_money is not None and self.cost_per_m is not None:
            return int(np.floor(self.budget_money / self.cost_per_m + 1e-9))
        return None if self.budget_m is None else int(np.floor(self.budget_m + 1e-9))


@dataclass(frozen=True)
class Taps:
    """Where mains meet the network: tap node, pipe from the main (m), point on the main."""

    node: np.ndarray
    offset_m: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


async def load_taps(
    conn: AsyncConnection, commune_id: int, net: Network, srid: int, reach_m: float
) -> Taps:
    cur = conn.cursor(binary=True)
    await cur.execute(network.sql_text("water_taps.sql"), {"commune": commune_id, "reach": reach_m})
    rows = await cur.fetchall()
    if not rows or not net.n_edges:
        return Taps(*(np.zeros(0, t) for t in (np.int64, float, float, float)))
    _, lon, lat, offset, mlon, mlat = (np.array(c, float) for c in zip(*rows, strict=True))
    keys = network.snap(
        np.concatenate([net.node_lon, lon]), np.concatenate([net.node_lat, lat]), srid
    )
    node_keys, vertex_keys = keys[: net.n_nodes], keys[net.n_nodes :]
    order = np.argsort(node_keys)
    pos = np.minimum(np.searchsorted(node_keys[order], vertex_keys), len(order) - 1)
    found = node_keys[order][pos] == vertex_keys  # every path vertex is a node; kept safe
    node = order[pos]
    return Taps(node[found], offset[found], mlon[found], mlat[found])


def source_tree(net: Network, taps: Taps) -> tuple[Tree, np.ndarray]:
    """Shortest pipes from a virtual root (node ``net.n_nodes``) through the taps over the
    undirected network; returns the tree and the weight of every input edge (segments a->b,
    then b->a, then root->tap)."""
    root = net.n_nodes
    tails = np.concatenate([net.a, net.b, np.full(len(taps.node), root)])
    heads = np.concatenate([net.b, net.a, taps.node])
    weights = np.concatenate([net.length_m, net.length_m, taps.offset_m])
    return network.shortest_tree(root + 1, tails, heads, weights, root), weights


@dataclass(frozen=True)
class Routes:
    """Per dwelling: network node where its pipe joins the tree (-1: none), the part of its own
    segment the pipe runs along (m), and its whole pipe length (connector included, m)."""

    entry: np.ndarray
    partial_m: np.ndarray
    length_m: np.ndarray

    @property
    def on_network(self) -> np.ndarray:
        return self.entry >= 0


def route(net: Network, att: Attachment, tree: Tree) -> Routes:
    """Each attached dwelling reaches the tree through the cheaper end of its segment."""
    if not net.n_edges:
        none = np.full(len(att.ids), -1, np.int64)
        return Routes(none, np.zeros(len(none)), np.full(len(none), np.nan))
    edge = np.maximum(att.edge, 0)
    a, b, seg_len = net.a[edge], net.b[edge], net.length_m[edge]
    via_a = tree.dist[a] + att.along_m
    via_b = tree.dist[b] + seg_len - att.along_m
    use_a = via_a <= via_b
    best = np.where(use_a, via_a, via_b)
    ok = att.attached & np.isfinite(best)
    entry = np.where(ok, np.where(use_a, a, b), -1)
    partial = np.where(ok, np.where(use_a, att.along_m, seg_len - att.along_m), 0.0)
    return Routes(entry, partial, np.where(ok, best + np.nan_to_num(att.connector_m), np.nan))


@dataclass(frozen=True)
class Projects:
    """Network projects: one per branch leaving a tap (see docs/analyses.md)."""

    key: np.ndarray  # tap * (n_nodes + 1) + first node of the branch
    tap: np.ndarray
    pipe_m: np.ndarray  # union of the tree edges used + own-segment pieces + connectors + offset
    of_dwelling: np.ndarray  # project index per dwelling (-1: not on the network)


def group_projects(
    net: Network, tree: Tree, weights: np.ndarray, att: Attachment, routes: Routes
) -> Projects:
    """Dwellings whose pipes leave the same tap by the same first edge form one project; its
    pipe is the union of the tree edges its dwellings use (shared stretches counted once)."""
    size = tree.root + 1
    is_tap = tree.pred == tree.root
    tap = network.top_ancestor(tree, is_tap)
    is_head = np.zeros(size, bool)
    has_pred = tree.pred >= 0
    is_head[has_pred] = is_tap[tree.pred[has_pred]]
    head = network.top_ancestor(tree, is_head)

    on = routes.on_network
    if not on.any():
        empty = np.zeros(0, np.int64)
        return Projects(empty, empty, np.zeros(0), np.full(len(on), -1, np.int64))
    entry, edge = routes.entry[on], att.edge[on]
    other = np.where(entry == net.a[edge], net.b[edge], net.a[edge])
    at_tap = is_tap[entry]
    # A dwelling joining right at a tap starts its own branch along its segment.
    dw_key = np.where(at_tap, entry * size + other, tap[entry] * size + head[entry])
    keys, proj = np.unique(dw_key, return_inverse=True)
    of_dwelling = np.full(len(routes.entry), -1, np.int64)
    of_dwelling[on] = proj
    pipe = np.zeros(len(keys))

    used = network.mark_paths(tree, entry[~at_tap])
    used &= ~is_tap  # a tap's own edge is the offset from the main, added per project below
    nodes = np.flatnonzero(used)
    node_proj = np.searchsorted(keys, tap[nodes] * size + head[nodes])
    np.add.at(pipe, node_proj, weights[tree.via[nodes]])

    # Pieces of dwellings' own segments: per (segment, end) the longest one, unless the whole
    # segment is already a tree edge in use.
    group = edge * 2 + (entry == net.b[edge])
    longest = np.zeros(2 * max(net.n_edges, 1))
    np.maximum.at(longest, group, routes.partial_m[on])
    covered = (tree.pred[other] == entry) & used[other] & (tree.via[other] % net.n_edges == edge)
    first = np.unique(group, return_index=True)[1]
    np.add.at(pipe, proj[first], np.where(covered[first], 0.0, longest[group[first]]))

    np.add.at(pipe, proj, np.nan_to_num(att.connector_m[on]))
    taps = keys // size
    pipe += tree.dist[taps]
    return Projects(keys, taps, pipe, of_dwelling)


def rank_projects(residents: np.ndarray, pipe_m: np.ndarray) -> np.ndarray:
    """Order of projects, best first: residents served per metre of pipe (ties: shorter)."""
    per_m = residents / np.maximum(pipe_m, 1e-9)
    return np.lexsort((pipe_m, -per_m))


async def straight_lines(
    conn: AsyncConnection, commune_id: int, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance (m) from each dwelling to the nearest working main, and the main's point."""
    if not len(ids):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    cur = conn.cursor(binary=True)
    await cur.execute(
        network.sql_text("water_straight.sql"),
        {"commune": commune_id, "ids": np.sort(ids).tolist()},
    )
    _, dist, lon, lat = (np.array(c, float) for c in zip(*await cur.fetchall(), strict=True))
    return dist, lon, lat


async def sector_totals(conn: AsyncConnection, commune_id: int) -> dict[str, tuple[int, int]]:
    """All dwellings and residents per sector (piped ones included)."""
    cur = await conn.execute(
        "SELECT coalesce(sector, ''), count(*), coalesce(sum(residents), 0) FROM dwellings "
        "WHERE commune_id = %s GROUP BY 1",
        (commune_id,),
    )
    return {s: (int(n), int(r)) for s, n, r in await cur.fetchall()}


async def _elevation_rise(
    conn: AsyncConnection,
    commune_id: int,
    dw: Dwellings,
    src_lon: np.ndarray,
    src_lat: np.ndarray,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dwelling elevation, source elevation and rise (m, NaN where unknown) from the DEM."""
    nan = np.full(len(dw.ids), np.nan)
    dem = await dems.for_commune(conn, commune_id)
    if dem is None:
        warnings.append(
            "this commune has no DEM: elevations and needs_pumping are null "
            "(register a GeoTIFF DEM for the commune to get them)"
        )
        return nan, nan, nan
    z_home = dems.elevations(dem, dw.lon, dw.lat)
    z_src = dems.elevations(dem, src_lon, src_lat)
    unknown = int((np.isnan(z_home) | np.isnan(z_src)).sum())
    if unknown:
        warnings.append(
            f"{unknown} of {len(dw.ids)} dwellings or their sources lie outside "
            f"the DEM '{dem.name}': their needs_pumping is null"
        )
    return z_home, z_src, z_home - z_src


async def run(conn: AsyncConnection, commune_id: int, params: Params) -> Result:
    """Pipe length, branch project and pumping need for every dwelling without piped water;
    projects ranked by residents per metre, and chosen under a budget when one is given.
    CSV rows are the projects."""
    warnings: list[str] = []
    dw = await network.load_dwellings(conn, commune_id, without_piped=True)
    totals = await sector_totals(conn, commune_id)
    if not len(dw.ids):
        warnings.append(
            "this commune has no dwellings mapped"
            if not totals
            else "every mapped dwelling of this commune has piped water"
        )
        return Result(
            summary={"dwellings_without_piped_water": 0, "residents": 0, "projects": 0},
            features=[],
            rows=[],
            warnings=warnings,
        )
    cur = await conn.execute(
        "SELECT count(*) FROM water_mains WHERE commune_id = %s "
        "AND status IN ('working', 'leaking')",
        (commune_id,),
    )
    if not (await cur.fetchone())[0]:
        raise NotFound(
            f"commune {commune_id} has no working or leaking water main to connect "
            "to; map them in layer water_mains",
            layer="water_mains",
        )
    srid = await network.utm_srid(conn, commune_id)
    net = await network.load(conn, commune_id, srid)
    if not net.n_edges:
        warnings.append(
            "this commune has no paths mapped: every length is a straight line to the nearest main"
        )
    att = await network.attach(conn, net, commune_id, "dwellings", dw.ids, params.max_connector_m)
    taps = await load_taps(conn, commune_id, net, srid, params.tap_reach_m)
    tree, weights = source_tree(net, taps)
    routes = route(net, att, tree)
    projects = group_projects(net, tree, weights, att, routes)
    on = routes.on_network
    off = np.flatnonzero(~on)
    if len(off) and net.n_edges:
        warnings.append(
            f"{len(off)} dwellings are over {params.max_connector_m:g} m from the "
            "paths or on paths no main reaches: straight lines to the main"
        )

    # Where each dwelling's water comes from: its project's tap point on the main, or the
    # nearest point of the nearest main for a straight line.
    straight_m, straight_lon, straight_lat = await straight_lines(conn, commune_id, dw.ids[off])
    length = routes.length_m.copy()
    length[off] = straight_m
    src_lon, src_lat = np.zeros(len(dw.ids)), np.zeros(len(dw.ids))
    if on.any():  # the tap's point on the main: the row of the root -> tap leg used
        row = tree.via[projects.tap[projects.of_dwelling[on]]] - 2 * net.n_edges
        src_lon[on], src_lat[on] = taps.lon[row], taps.lat[row]
    src_lon[off], src_lat[off] = straight_lon, straight_lat
    z_home, z_src, rise = await _elevation_rise(conn, commune_id, dw, src_lon, src_lat, warnings)
    pumping = rise > params.head_threshold_m

    # Projects: network branches, then one straight-line project per unconnected dwelling.
    n_net = len(projects.key)
    proj = projects.of_dwelling.copy()
    proj[off] = n_net + np.arange(len(off))
    n_proj = n_net + len(off)
    residents = np.bincount(proj, weights=dw.residents, minlength=n_proj)
    homes = np.bincount(proj, minlength=n_proj)
    pipe = np.concatenate([projects.pipe_m, straight_m])
    pumped = np.bincount(proj, weights=pumping & ~np.isnan(rise), minlength=n_proj)
    max_rise = np.full(n_proj, np.nan)
    np.fmax.at(max_rise, proj, rise)
    order = rank_projects(residents, pipe)
    rank = np.empty(n_proj, np.int64)
    rank[order] = np.arange(1, n_proj + 1)

    budget_m = params.budget_metres()
    costs = np.ceil(pipe - 1e-9).astype(np.int64)
    chosen_greedy = chosen_exact = None
    budget_info = None
    if budget_m is not None:
        budget_info, chosen_greedy, chosen_exact = budget.budget_summary(
            costs, residents, order, budget_m
        )
        if params.cost_per_m is not None:
            budget_info["cost_per_m"] = params.cost_per_m
            budget_info["greedy"]["cost"] = round(
                budget_info["greedy"]["pipe_m"] * params.cost_per_m, 2
            )

    rows = project_rows(
        order[: params.max_projects],
        rank,
        n_net,
        homes,
        residents,
        pipe,
        pumped,
        max_rise,
        params.cost_per_m,
        chosen_greedy,
        chosen_exact,
    )

    features = [
        {
            "type": "Feature",
            "id": i,
            "geometry": g,
            "properties": {
                "residents": int(r),
                "water": w,
                "sector": s,
                "length_m": m,
                "connection": c,
                "connector_m": cm,
                "project": int(p),
                "elevation_m": zh,
                "source_elevation_m": zs,
                "elevation_diff_m": dz,
                "needs_pumping": None if dz is None else bool(dz > thr),
            },
        }
        for i, g, r, w, s, m, c, cm, p, zh, zs, dz, thr in zip(
            dw.ids.tolist(),
            dw.geometry,
            dw.residents.tolist(),
            dw.water,
            dw.sector,
            rounded(length),
            np.where(on, "network", "straight_line").tolist(),
            rounded(np.where(on, att.connector_m, np.nan)),
            rank[proj].tolist(),
            rounded(z_home),
            rounded(z_src),
            rounded(rise),
            [params.head_threshold_m] * len(dw.ids),
            strict=True,
        )
    ]

    summary = {
        "dwellings_without_piped_water": len(dw.ids),
        "residents": int(dw.residents.sum()),
        "on_network": int(on.sum()),
        "straight_line": len(off),
        "taps": len(np.unique(projects.tap)),
        "projects": n_proj,
        "pipe_m_all_projects": round(float(pipe.sum()), 1),
        "median_length_m": round(float(np.median(length)), 1),
        "needs_pumping": None
        if np.isnan(rise).all()
        else {
            "dwellings": int((pumping & ~np.isnan(rise)).sum()),
            "residents": int(dw.residents[pumping & ~np.isnan(rise)].sum()),
        },
        "by_sector": _by_sector(dw, length, totals),
        "budget": budget_info,
        "csv_rows": "projects, best ranked first",
    }
    return Result(summary=summary, features=features, rows=rows, warnings=warnings)


def project_rows(
    listed: np.ndarray,
    rank: np.ndarray,
    n_net: int,
    homes: np.ndarray,
    residents: np.ndarray,
    pipe: np.ndarray,
    pumped: np.ndarray,
    max_rise: np.ndarray,
    cost_per_m: float | None,
    chosen_greedy: np.ndarray | None,
    chosen_exact: np.ndarray | None,
) -> list[dict[str, Any]]:
    """The CSV rows: one per listed project (indexes in rank order)."""
    rows = []
    for i in listed.tolist():
        row: dict[str, Any] = {
            "project": int(rank[i]),
            "connection": "network" if i < n_net else "straight_line",
            "dwellings": int(homes[i]),
            "residents": int(residents[i]),
            "pipe_m": round(float(pipe[i]), 1),
            "residents_per_m": round(float(residents[i] / max(pipe[i], 1e-9)), 4),
            "needs_pumping": int(pumped[i]),
            "max_rise_m": None if np.isnan(max_rise[i]) else round(float(max_rise[i]), 1),
        }
        if cost_per_m is not None:
            row["cost"] = round(float(pipe[i]) * cost_per_m, 2)
        if chosen_greedy is not None:
            row["chosen_greedy"] = bool(chosen_greedy[i])
            row["chosen_optimum"] = None if chosen_exact is None else bool(chosen_exact[i])
        rows.append(row)
    return rows


def _by_sector(
    dw: Dwellings, length: np.ndarray, totals: dict[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Per sector: homes and residents in all, without piped water, and median pipe length."""
    sectors = np.array([s or "" for s in dw.sector])
    out = []
    for name, (homes, people) in sorted(totals.items()):
        mine = sectors == name
        without = int(dw.residents[mine].sum())
        out.append(
            {
                "sector": name or None,
                "dwellings": homes,
                "residents": people,
                "dwellings_without_piped": int(mine.sum()),
                "residents_without_piped": without,
                "share_residents_without_piped_pct": round(100 * without / people, 1)
                if people
                else None,
                "median_length_m": round(float(np.median(length[mine])), 1) if mine.any() else None,
            }
        )
    return out


registry.register(
    Analysis(
        name="water-hookups",
        title_es="Conexiones de agua",
        title_en="Water hookups",
        params=Params,
        run=run,
    )
)
