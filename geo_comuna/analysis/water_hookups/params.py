"""Water-hookup parameters: reach of service lines and taps, the pumping threshold, and an
optional budget in metres of pipe or in money."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_comuna.errors import Said

#: the longest budget of pipe (m), given in metres or bought with budget_money
MAX_PIPE_M = 10_000_000


class Params(BaseModel):
    """Water-hookup parameters. Lengths in metres, money in any one currency."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
        None, gt=0, le=MAX_PIPE_M, description="metres of pipe available (budget mode)"
    )
    cost_per_m: float | None = Field(
        None, ge=0.01, le=1e6, description="cost of one metre of pipe, laid (money mode)"
    )
    budget_money: float | None = Field(
        None, gt=0, le=1e12, description="money available; needs cost_per_m (money mode)"
    )
    max_projects: int = Field(
        200,
        ge=1,
        le=100_000,
        description="projects listed in the CSV, best ranked first (the budget choice still "
        "considers all); with another output it is refused",
        json_schema_extra={"x-csv-only": True},
    )

    @model_validator(mode="after")
    def _one_budget(self) -> Params:
        if self.budget_money is not None and self.cost_per_m is None:
            raise ValueError(
                Said(
                    "budget_money needs cost_per_m (the cost of a metre of pipe)",
                    "budget_money necesita cost_per_m (lo que cuesta un metro de tubería)",
                )
            )
        if self.budget_money is not None and self.budget_m is not None:
            raise ValueError(
                Said(
                    "give budget_m or budget_money, not both",
                    "indique budget_m o budget_money, no los dos",
                )
            )
        if self.budget_money is not None and self.budget_money / self.cost_per_m > MAX_PIPE_M:
            most = f"{MAX_PIPE_M:,}"
            raise ValueError(
                Said(
                    f"budget_money / cost_per_m buys over {most} m of pipe",
                    f"budget_money / cost_per_m compra más de {most.replace(',', '.')} m de "
                    "tubería",
                )
            )
        return self

    @model_validator(mode="after")
    def _a_metre_at_least(self) -> Params:
        """A budget that buys no whole metre of pipe takes no project: refused, as 0 is
        (found from outside: budget_m=0.5 answered 0 projects and said nothing)."""
        if self.budget_metres() == 0:
            raise ValueError(
                Said(
                    "the budget buys less than a metre of pipe",
                    "el presupuesto no alcanza para un metro de tubería",
                )
            )
        return self

    def budget_metres(self) -> int | None:
        """The budget in whole metres of pipe, or None (ranking only)."""
        if self.budget_money is not None and self.cost_per_m is not None:
            return int(np.floor(self.budget_money / self.cost_per_m + 1e-9))
        return None if self.budget_m is None else int(np.floor(self.budget_m + 1e-9))
