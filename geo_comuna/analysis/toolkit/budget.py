"""Choosing projects under a budget: the greedy rule planners can follow by hand, the exact
0/1-knapsack optimum to measure it against, and a bound on how far from the optimum it can be.

Costs and the budget are whole units (metres of pipe): a project of 12.3 m costs 13.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geo_comuna.errors import Said

#: the exact optimum is computed up to this many projects
EXACT_MAX_PROJECTS = 30


def greedy_choice(
    costs: np.ndarray, values: np.ndarray, order: np.ndarray, budget: int
) -> np.ndarray:
    """Take projects in ``order`` while they fit (a project that does not fit is skipped and
    the next tried). Costs and budget are whole metres."""
    chosen = np.zeros(len(costs), bool)
    left = budget
    for i in order.tolist():  # over projects, not dwellings
        if costs[i] <= left:
            chosen[i] = True
            left -= int(costs[i])
    return chosen


def exact_choice(costs: np.ndarray, values: np.ndarray, budget: int) -> np.ndarray:
    """The 0/1 knapsack optimum by dynamic programming over whole metres: O(projects x budget)
    time, a projects x budget table of booleans to read the choice back."""
    cap = int(min(budget, costs.sum()))
    best = np.zeros(cap + 1)
    took = np.zeros((len(costs), cap + 1), bool)
    for i, (c, v) in enumerate(zip(costs.tolist(), values.tolist(), strict=True)):
        if c > cap:
            continue
        candidate = best[: cap + 1 - c] + v
        better = candidate > best[c:]
        took[i, c:] = better
        best[c:] = np.where(better, candidate, best[c:])
    chosen = np.zeros(len(costs), bool)
    w = cap
    for i in range(len(costs) - 1, -1, -1):
        if took[i, w]:
            chosen[i] = True
            w -= int(costs[i])
    return chosen


def fractional_bound(costs: np.ndarray, values: np.ndarray, budget: int) -> float:
    """Upper bound on any choice's residents (Dantzig's): projects by residents per whole
    metre, the best first, the last one in part. Its own order, not the greedy's: the
    greedy ranks by the metres of pipe, the budget pays whole metres, and a bound taken in
    the greedy's order was below what the greedy served (found from outside: 22.8 beside 23,
    at 121 of the budgets 1 to 2,999 m in 5 de Marzo)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values / costs
    order = np.argsort(-np.nan_to_num(ratio, nan=-1.0), kind="stable")
    cum = np.cumsum(costs[order])
    full = int(np.searchsorted(cum, budget, side="right"))
    bound = float(values[order][:full].sum())
    if full < len(order):
        spent = float(cum[full - 1]) if full else 0.0
        bound += float(values[order][full]) * (budget - spent) / float(costs[order][full])
    return bound


def budget_summary(
    costs: np.ndarray, values: np.ndarray, order: np.ndarray, budget: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Greedy choice, and the exact optimum when small enough, with the gap between them."""
    greedy = greedy_choice(costs, values, order, budget)
    out: dict[str, Any] = {
        "budget_m": budget,
        "greedy": {
            "projects": int(greedy.sum()),
            "pipe_m": int(costs[greedy].sum()),
            "residents": int(values[greedy].sum()),
        },
        "upper_bound_residents": round(fractional_bound(costs, values, budget), 1),
        "optimum": None,
        "gap_residents": None,
        "gap_pct": None,
    }
    exact = None
    if len(costs) <= EXACT_MAX_PROJECTS:
        exact = exact_choice(costs, values, budget)
        best = int(values[exact].sum())
        gap = best - out["greedy"]["residents"]
        out.update(
            optimum={
                "projects": int(exact.sum()),
                "pipe_m": int(costs[exact].sum()),
                "residents": best,
            },
            gap_residents=gap,
            gap_pct=round(100.0 * gap / best, 2) if best else 0.0,
        )
    else:
        out["optimum_note"] = Said(
            f"{len(costs)} projects: the exact optimum is computed up to "
            f"{EXACT_MAX_PROJECTS}; upper_bound_residents bounds the gap",
            f"{len(costs)} proyectos: el óptimo exacto se calcula hasta "
            f"{EXACT_MAX_PROJECTS}; upper_bound_residents acota la diferencia",
        )
    return out, greedy, exact
