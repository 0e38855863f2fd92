"""Which projects first: residents served per metre of pipe, and the choice under a budget
(greedy, against the exact optimum: analysis/toolkit/budget.py).

Pipe in metres; a budget in money is turned into metres by ``cost_per_m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geo_comuna.analysis.toolkit import budget
from geo_comuna.analysis.toolkit.network import Dwellings
from geo_comuna.analysis.water_hookups.params import Params
from geo_comuna.analysis.water_hookups.pipes import Pipes, Rise


def rank_projects(residents: np.ndarray, pipe_m: np.ndarray) -> np.ndarray:
    """Order of projects, best first: residents served per metre of pipe (ties: shorter)."""
    per_m = residents / np.maximum(pipe_m, 1e-9)
    return np.lexsort((pipe_m, -per_m))


@dataclass(frozen=True)
class Ranking:
    """Per project (network branches first, as in ``Pipes``): what it serves, what it costs,
    and its place in the ranking."""

    n_network: int
    dwellings: np.ndarray
    residents: np.ndarray
    pipe_m: np.ndarray
    needs_pumping: np.ndarray  # dwellings that need pumping
    max_rise_m: np.ndarray  # NaN: no rise known
    order: np.ndarray  # project indexes, best first
    rank: np.ndarray  # per project, 1 for the best


def rank_all(dw: Dwellings, pipes: Pipes, rise: Rise, head_threshold_m: float) -> Ranking:
    """Sum every project's dwellings, then rank the projects."""
    proj, n_proj = pipes.project, len(pipes.project_pipe_m)
    residents = np.bincount(proj, weights=dw.residents, minlength=n_proj)
    homes = np.bincount(proj, minlength=n_proj)
    pumped = np.bincount(proj, weights=rise.needs_pumping(head_threshold_m), minlength=n_proj)
    max_rise = np.full(n_proj, np.nan)
    np.fmax.at(max_rise, proj, rise.rise_m)
    order = rank_projects(residents, pipes.project_pipe_m)
    rank = np.empty(n_proj, np.int64)
    rank[order] = np.arange(1, n_proj + 1)
    return Ranking(
        pipes.n_network, homes, residents, pipes.project_pipe_m, pumped, max_rise, order, rank
    )


def whole_metres(pipe_m: np.ndarray) -> np.ndarray:
    """What a budget pays for a project's pipe: whole metres (4.59 m of pipe costs 5)."""
    return np.ceil(np.asarray(pipe_m) - 1e-9).astype(np.int64)


def choose(
    ranking: Ranking, params: Params
) -> tuple[dict[str, Any] | None, np.ndarray | None, np.ndarray | None]:
    """Under the budget, if one is given: its summary, the greedy choice and the exact optimum
    (None when there are too many projects). Costs are whole metres of pipe."""
    budget_m = params.budget_metres()
    if budget_m is None:
        return None, None, None
    costs = whole_metres(ranking.pipe_m)
    info, greedy, exact = budget.budget_summary(costs, ranking.residents, ranking.order, budget_m)
    if params.cost_per_m is not None:
        info["cost_per_m"] = params.cost_per_m
        info["greedy"]["cost"] = round(info["greedy"]["pipe_m"] * params.cost_per_m, 2)
    return info, greedy, exact
