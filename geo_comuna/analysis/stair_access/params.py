"""Stair-access parameters: the pace on stairways, the thresholds that flag a dwelling, how far
from the paths a point may be, and whether transit stops are destinations."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Stair-access parameters (seconds, minutes, steps, metres)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    step_seconds_up: float = Field(
        1.0,
        gt=0,
        le=10,
        description="seconds per step climbed on a stairway, on top of its "
        "horizontal length walked at the flat pace",
    )
    step_seconds_down: float = Field(0.7, gt=0, le=10, description="seconds per step walked down")
    max_minutes: float = Field(
        15.0, gt=0, le=600, description="flag dwellings whose walk out or back takes longer (min)"
    )
    max_steps: int = Field(
        200,
        ge=0,
        le=100_000,
        description="flag dwellings whose walk takes more steps, up or down, either way",
    )
    max_connector_m: float = Field(
        50.0,
        gt=0,
        le=500,
        description="farthest a dwelling or stop may be from the paths (m, "
        "walked straight); farther ones are unreachable",
    )
    transit_stops: bool = Field(
        True,
        description="transit stops (facilities) count as destinations, besides roads "
        "with vehicle access",
    )
