"""Electricity gaps' parameters: how dwellings chain into clusters and how many one
transformer site serves."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Electricity-gap parameters (metres, dwellings)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cluster_radius_m: float = Field(
        60.0,
        ge=1,
        le=1000,
        description="DBSCAN reach (m): dwellings this close chain into one "
        "cluster; about the reach of a low-voltage network from one transformer",
    )
    min_cluster_size: int = Field(
        5,
        ge=1,
        le=10_000,
        description="DBSCAN core size: a dwelling with at least this many "
        "gap dwellings (itself included) within the radius starts a cluster; smaller groups "
        "are isolated",
    )
    dwellings_per_site: int = Field(
        80,
        ge=1,
        le=10_000,
        description="target dwellings per transformer site: a DBSCAN "
        "cluster of n dwellings is cut by k-means into ceil(n / this) parts (k-means parts are "
        "not equal in size)",
    )
