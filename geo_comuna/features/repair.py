"""GEOS MakeValid (the algorithm of PostGIS' ST_MakeValid) for geometries to repair, run by
features/validate.py in a child process (work.isolated): its time grows with the number of
self-crossings, not of vertices, so no input limit bounds it and only a process can be stopped.
This module imports nothing but shapely and numpy, so the child starts quickly."""

from __future__ import annotations

import numpy as np
import shapely


def make_valid(geoms: np.ndarray, dimension: int) -> list[shapely.Geometry | None]:
    """Each geometry made valid, keeping only its parts of ``dimension`` (0 points, 1 lines, 2
    polygons): polygons as one MultiPolygon, a point or line only when exactly one part is
    left; None when nothing valid of that dimension remains."""
    out: list[shapely.Geometry | None] = []
    for geom in geoms:
        fixed = shapely.make_valid(geom)
        parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dimension]
        if dimension == 2:
            polygons = [q for p in parts for q in shapely.get_parts(p)]
            fixed = shapely.MultiPolygon(polygons) if polygons else None
        else:
            fixed = parts[0] if len(parts) == 1 else None
        out.append(None if fixed is None or fixed.is_empty or not fixed.is_valid else fixed)
    return out
