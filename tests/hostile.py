"""What the hostile-input tests share (tests/test_hostile_*.py): the answer every request
must get (2xx, or a 4xx application/problem+json, never a 5xx), a row count to show a refused
write left nothing behind, and the hypothesis strategies of random GeoJSON geometries and
JSON values used on the write and the import path."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from geo_comuna.layers import LAYERS
from tests.factories import LAT, LON

PARCELS = LAYERS["parcels"]
PROBLEM = "application/problem+json"
#: shared by every property test: bounded, no deadline (a database is involved), no example
#: database written into the repository
BOUNDED = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def rows(conn: AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (our own names)
    return (await cur.fetchone())[0]


def as_json(body: Any) -> bytes:
    """JSON as any client may send it: lone surrogates escaped (\\ud800), not refused."""
    return json.dumps(body).encode()


def assert_answer(r: httpx.Response) -> None:
    """2xx, or 4xx problem+json with a detail; a write error names the feature."""
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM), r.text
        problem = r.json()
        assert problem["status"] == r.status_code and problem["detail"]
        if problem["type"].endswith(("invalid-geometry", "invalid-attribute")):
            assert problem.get("feature") is not None, problem


# ---------------------------------------------------------------- strategies

#: NaN-free, but anything from subnormal to 1e308; and places inside the service area
any_number = st.floats(allow_nan=False, allow_infinity=False)
near = st.tuples(st.floats(LON - 0.01, LON + 0.01), st.floats(LAT - 0.01, LAT + 0.01))
position = st.one_of(near.map(list), st.lists(any_number, max_size=4))
points = st.lists(position, max_size=7)  # too few, unclosed, repeated, crossing...
closed = st.lists(near.map(list), min_size=3, max_size=7).map(lambda p: [*p, p[0]])
ring = st.one_of(points, closed)  # closed rings with random vertices often self-intersect
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), any_number, st.text(max_size=20))
json_any = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _geometry(kind: str, coordinates: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates}


geometries = st.one_of(
    st.builds(_geometry, st.just("Point"), position),
    st.builds(_geometry, st.just("LineString"), points),
    st.builds(_geometry, st.just("Polygon"), st.lists(ring, max_size=3)),
    st.builds(_geometry, st.just("MultiPolygon"), st.lists(st.lists(ring, max_size=3), max_size=3)),
    # wrong nesting, wrong or made-up types, coordinates of any shape
    st.builds(
        _geometry,
        st.sampled_from(
            ["Point", "Polygon", "MultiPolygon", "MultiPoint", "GeometryCollection", "Circle", ""]
        ),
        json_any,
    ),
    st.builds(
        lambda gs: {"type": "GeometryCollection", "geometries": gs},
        st.lists(
            st.builds(_geometry, st.just("Polygon"), st.lists(closed, max_size=2)), max_size=2
        ),
    ),
    json_any,
)
