"""The terrain analysis' one parameter: what counts as steep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # NaN is no number, not one out of range

    slope_threshold_pct: float = Field(
        30.0,
        gt=0,
        le=1000,
        description="slope (%, 100 * rise / run) above which ground counts as steep; "
        "steep_share_pct is the parcel's area share above it",
    )
