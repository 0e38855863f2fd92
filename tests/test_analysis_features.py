"""Column-wise point features (analysis/toolkit/features.py) and the analyses' JSON writer
(analysis/base.py to_json): the JSON they write is the JSON one dict per feature and
json.dumps gave, value for value and type for type, on values chosen to break a writer that
cuts text at commas or rounds coordinates the quick way."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import orjson
import pytest

from geo_comuna.analysis.base import Result, to_json
from geo_comuna.analysis.toolkit.features import LineFeatures, PointFeatures, round7


def same_json(a: object, b: object) -> bool:
    """Equal once parsed, and of the same JSON types (1 and 1.0 differ)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def awkward() -> PointFeatures:
    lon = np.array([-66.123456749999999, -66.00000005, 0.0, -0.0, 179.99999999, -1e-9])
    lat = np.array([8.00000004999, 8.5, -0.0, 10.12345675, -89.99999995, 1e-12])
    return PointFeatures(
        [3, 7, 11, 12, 40, 2**40],
        lon,
        lat,
        {
            "sector": ["Norte, alto", 'El "Cerro"', None, "Ñaragua\n", "Norte, alto", ""],
            "metres": [1.5, None, 0.0, -0.0, 1e-7, 123456789.1],
            "steps": [1, 0, None, -3, 2**53, 7],
            "flagged": [True, False, None, True, False, False],
            "mixed": [1, True, "1", None, 1.0, "x,y"],
        },
        before=[{"type": "Feature", "id": "site-1", "geometry": None, "properties": {"n": 1}}],
    )


def test_round7_is_pythons_round() -> None:
    rng = np.random.default_rng(16)
    values = rng.uniform(-180, 180, 200_000)
    # values on both sides of the halves of the 7th decimal, where a quick rounding errs
    halves = (rng.integers(-(10**9), 10**9, 50_000) + 0.5) / 1e7
    values = np.concatenate(
        [values, halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf)]
    )
    values = np.concatenate([values, [0.0, -0.0, 1e300, -1e-300, math.inf, math.nan]])
    got = round7(values)
    want = np.array([round(float(v), 7) for v in values])
    same = (got == want) & (np.signbit(got) == np.signbit(want))
    assert (same | (np.isnan(got) & np.isnan(want))).all()


def test_point_features_write_what_their_dicts_are() -> None:
    features = awkward()
    dicts = features.as_list()
    assert len(features) == 7 and features[0]["id"] == "site-1" and features[1]["id"] == 3
    assert dicts[1]["geometry"]["coordinates"] == [
        round(-66.123456749999999, 7),
        round(8.00000004999, 7),
    ]
    assert dicts[2]["properties"]["sector"] == 'El "Cerro"'
    assert same_json(json.loads(features.json_array()), dicts)
    assert features == dicts and list(features) == dicts


def test_empty_and_propertyless_features() -> None:
    none = np.zeros(0)
    assert json.loads(PointFeatures([], none, none, {"a": []}).json_array()) == []
    assert not PointFeatures([], none, none, {})
    lone = PointFeatures([5], np.array([1.0]), np.array([2.0]), {})
    assert json.loads(lone.json_array()) == lone.as_list()
    with pytest.raises(ValueError, match="one value per feature"):
        PointFeatures([1, 2], np.zeros(2), np.zeros(2), {"a": [1]})


def test_line_features_write_what_their_dicts_are() -> None:
    rng = np.random.default_rng(18)
    counts = [3, 0, 2, 7, 1, 0, 2]  # vertices (rows) per feature: none, one, several
    stops = np.cumsum(counts)
    walks = rng.uniform(-67, -66, (int(stops[-1]), 2))
    walks[0] = [-66.123456749999999, -0.0]  # rounded as ST_AsGeoJSON(geom, 7) rounds
    props = {
        "metres": [1.5, None, 0.0, -0.0, 1e-7, 123456789.1, 2**53],
        "sector": ["Norte, alto", 'El "Cerro"', None, "Ñaragua\n", "", "x]y,[z", "ok"],
    }
    lines = LineFeatures("LineString", list(range(10, 17)), walks, stops, props)
    assert lines.json_array() == orjson.dumps(lines.as_list())
    assert lines.as_list()[1]["geometry"]["coordinates"] == []
    pipes = rng.uniform(8, 9, (5, 2, 2))  # MultiLineString: one two-point line per row
    multi = LineFeatures("MultiLineString", ["a", "b"], pipes, np.array([2, 5]), {})
    assert multi.json_array() == orjson.dumps(multi.as_list())
    assert json.loads(multi.json_array())[1]["geometry"]["coordinates"][2] == [
        [round(v, 7) for v in point] for point in pipes[4].tolist()
    ]
    empty = LineFeatures("LineString", [], np.zeros((0, 2)), np.zeros(0), {})
    assert empty.json_array() == b"[]"


def test_to_json_writes_what_json_dumps_wrote() -> None:
    features = awkward()
    when = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    result = Result(
        summary={"n": np.float64(2.5), "at": when, "cost": Decimal("1.10"), 3: "three"},
        features=features,
        warnings=["ñ"],
    )
    body = {"summary": result.summary, "features": result.features}
    plain = {"summary": result.summary, "features": features.as_list()}
    assert same_json(json.loads(to_json(body)), json.loads(json.dumps(plain, default=str)))
    collection = result.feature_collection(as_written=True)
    assert collection["features"] is features
    assert same_json(
        json.loads(to_json(collection)),
        json.loads(json.dumps(result.feature_collection(), default=str)),
    )
