"""Land recovery's parameters: what counts as a map conflict, and how candidates are scored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_comuna.errors import Said


class Params(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # NaN is no number, not one out of range

    sliver_width_m: float = Field(
        1.0,
        ge=0.01,
        le=50,
        description="gaps between parcels narrower than this (m) are reported as slivers",
    )
    min_conflict_area_m2: float = Field(
        0.1,
        ge=0,
        le=10_000,
        description="overlaps, outside parts and slivers smaller than "
        "this (m²) are ignored as numerical noise",
    )
    max_slope_pct: float = Field(
        30.0,
        gt=0,
        le=500,
        description="mean slope (%) at which a candidate's slope term "
        "falls to 0 (flat ground scores 1)",
    )
    max_road_distance_m: float = Field(
        2000.0,
        gt=0,
        le=100_000,
        description="distance to the nearest road (m) at which a candidate's road term falls to 0",
    )
    weight_area: float = Field(1.0, ge=0, le=10, description="weight of the area term")
    weight_slope: float = Field(1.0, ge=0, le=10, description="weight of the slope term")
    weight_road: float = Field(1.0, ge=0, le=10, description="weight of the road term")
    max_candidates: int = Field(200, ge=1, le=10_000, description="candidates returned, best first")

    @model_validator(mode="after")
    def _some_weight(self) -> Params:
        if self.weight_area + self.weight_slope + self.weight_road <= 0:
            raise ValueError(
                Said(
                    "at least one of weight_area, weight_slope, weight_road must be above 0",
                    "al menos uno de weight_area, weight_slope, weight_road debe ser mayor que 0",
                )
            )
        return self
