"""Transformer sites: one per cluster part, the residents-weighted geometric median of its
homes (median.py: PostGIS' ``ST_GeometricMedian`` step for step; a part whose homes all have
0 residents is weighted evenly), with how far its farthest home lies (geodesic metres, as
``ST_Distance(geography)`` measures) and which home is nearest to it (by PostGIS' ``<->`` in
degrees, the lower id on a tie).

sql/sites.sql brings the sites to WGS 84 and measures them to the power lines in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_comuna.analysis.electricity import median
from geo_comuna.analysis.toolkit import network


@dataclass(frozen=True)
class Sites:
    """The parts' sites, one per cluster key (ascending), and their homes."""

    key: np.ndarray  # cluster key per site
    members: np.ndarray  # the clustered homes' positions in the dwellings' arrays
    group: np.ndarray  # each member's site (index into key)
    dwellings: np.ndarray
    residents: np.ndarray
    x: np.ndarray  # the site in the commune's UTM zone (m)
    y: np.ndarray


def place(key: np.ndarray, x: np.ndarray, y: np.ndarray, residents: np.ndarray) -> Sites:
    """A site per cluster key (``key`` -1: no cluster) of homes at ``x``/``y`` (UTM, in id
    order, as PostGIS collected them) with ``residents``."""
    members = np.flatnonzero(key >= 0)
    keys, group = np.unique(key[members], return_inverse=True)
    k = len(keys)
    people = np.maximum(np.asarray(residents, np.int64)[members], 0)
    total = np.bincount(group, people, k).astype(np.int64)
    weight = np.where(total[group] > 0, people, 1).astype(float)
    sx, sy = median.medians(x[members], y[members], weight, group, k)
    return Sites(keys, members, group, np.bincount(group, minlength=k), total, sx, sy)


def reach_and_nearest(
    sites: Sites, lon: np.ndarray, lat: np.ndarray, ids: np.ndarray, at: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per site at ``at`` (lon, lat in WGS 84): the geodesic distance to its farthest home (m)
    and the id of its nearest home, from the homes' ``lon``/``lat``/``ids`` (sorted by id)."""
    m, g = sites.members, sites.group
    site_lon, site_lat = at[0][g], at[1][g]
    reach = np.full(len(sites.key), -np.inf)
    np.maximum.at(reach, g, network.geodesic_m(site_lon, site_lat, lon[m], lat[m]))
    h, v = site_lon - lon[m], site_lat - lat[m]
    planar = np.sqrt(h * h + v * v)
    order = np.lexsort((ids[m], planar, g))  # by site, nearest first, then lowest id
    first = order[np.r_[True, g[order][1:] != g[order][:-1]]]
    return reach, ids[m][first]
