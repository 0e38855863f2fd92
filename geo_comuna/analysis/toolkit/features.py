"""An analysis' point features held as columns: what a hundred thousand dwellings cost to answer.

One dict per dwelling and ``json.dumps`` over them took ~1.5 s of a 100,000-dwelling answer,
more than its shortest paths. ``PointFeatures`` keeps the ids, coordinates and each property
as one column, and writes the GeoJSON array column by column: each column encoded once by
orjson, the features put together by slicing into one list of pieces and one join. It is
still a sequence of GeoJSON Feature dicts for whoever reads it as one (maps, CSV, the public
view, tests): those are built on first use, with the same values the JSON carries.

Coordinates are lon/lat (WGS 84) rounded to 7 decimals as PostGIS' ``ST_AsGeoJSON(geom, 7)``
rounds them: correctly, from the exact binary value (Python's ``round``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import orjson


def round7(values: np.ndarray) -> np.ndarray:
    """``round(v, 7)`` of every value, as Python's correctly rounded ``round`` gives it, without
    a Python call per value: numpy's ``rint(v * 1e7) / 1e7`` agrees unless ``v * 1e7`` lies so
    near a half that its own rounding error may have crossed it; those few are redone with
    ``round``. (The division by 1e7, exact, rounds once: the double nearest the decimal.)"""
    values = np.asarray(values, float)
    scaled = values * 1e7
    out = np.rint(scaled) / 1e7
    # |scaled - exact product| <= |scaled| 2^-53; 2^-50 leaves room. Past 2^52 (and NaN,
    # infinities) there is no fraction to round and ``round`` knows best.
    with np.errstate(invalid="ignore"):
        frac = scaled - np.floor(scaled)
    unsure = (np.abs(frac - 0.5) <= np.abs(scaled) * 2.0**-50) | ~(np.abs(scaled) < 2.0**52)
    for i in np.flatnonzero(unsure).tolist():
        out[i] = round(float(values[i]), 7)
    return out


def _texts(column: Sequence[Any]) -> np.ndarray:
    """Each value's JSON text as one row of a (values, width) byte array, padded with NUL
    bytes (never part of JSON text: orjson escapes NUL inside strings). Numbers, booleans and
    nulls come from one orjson call cut at its commas; a column holding text (which may hold
    commas) encodes each distinct value once and picks the rows by value."""
    whole = orjson.dumps(column, default=_scalar)
    if b'"' in whole:
        seen: dict[tuple[type, Any], int] = {}
        codes = np.fromiter(
            (seen.setdefault((type(v), v), len(seen)) for v in column), np.int64, len(column)
        )
        texts = [orjson.dumps(v, default=_scalar) for _, v in seen]
        table = np.zeros((len(texts), max(map(len, texts))), np.uint8)
        for k, text in enumerate(texts):
            table[k, : len(text)] = np.frombuffer(text, np.uint8)
        return table[codes]
    body = np.frombuffer(whole, np.uint8)[1:-1]
    comma = body == ord(",")
    ends = np.flatnonzero(comma)
    length = np.diff(ends, prepend=-1, append=len(body)) - 1  # of each value's text
    text = body[~comma]
    width = int(length.max())
    out = np.zeros(len(length) * width, np.uint8)
    # each byte goes to its value's row, at its place in the value
    first = np.cumsum(length) - length
    at = np.repeat(np.arange(len(length)) * width - first, length) + np.arange(len(text))
    out[at] = text
    return out.reshape(len(length), width)


def _scalar(value: Any) -> Any:
    """numpy's scalars as the Python numbers they hold."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class PointFeatures(Sequence[dict[str, Any]]):
    """GeoJSON Point features with one value per feature in each column: ``ids``, ``lon`` and
    ``lat`` (degrees, WGS 84, rounded here to 7 decimals) and ``properties`` (name -> list of
    JSON values: int, float, bool, str or None; their order is the properties' order).
    ``before`` are ready-made features listed first (a few group features)."""

    def __init__(
        self,
        ids: Sequence[Any],
        lon: np.ndarray,
        lat: np.ndarray,
        properties: dict[str, Sequence[Any]],
        before: Sequence[dict[str, Any]] = (),
    ) -> None:
        n = len(ids)
        if len(lon) != n or len(lat) != n or any(len(v) != n for v in properties.values()):
            raise ValueError("every column must have one value per feature")
        self.ids = list(ids)
        self.lon = round7(lon).tolist()
        self.lat = round7(lat).tolist()
        self.properties = {k: list(v) for k, v in properties.items()}
        self.before = list(before)
        self._dicts: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.before) + len(self.ids)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.as_list()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.as_list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PointFeatures | list):
            return self.as_list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def as_list(self) -> list[dict[str, Any]]:
        """The features as dicts (built once, then kept)."""
        if self._dicts is None:
            names = list(self.properties)
            columns = [self.properties[k] for k in names]
            self._dicts = [
                *self.before,
                *(
                    {
                        "type": "Feature",
                        "id": i,
                        "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": dict(zip(names, values, strict=True)),
                    }
                    for i, x, y, *values in zip(self.ids, self.lon, self.lat, *columns, strict=True)
                ),
            ]
        return self._dicts

    def json_array(self) -> bytes:
        """The JSON array of the features, written column by column: every feature is one
        row of a byte array, each value in a slot as wide as the widest in its column and
        each fixed part of the text (keys, brackets) in its own slot; the padding goes in
        one pass at the end."""
        head = b"".join(orjson.dumps(f) + b"," for f in self.before)
        if not self.ids:
            return b"[" + head[:-1] + b"]"
        rows = _slotted(
            [
                b'{"type":"Feature","id":',
                self.ids,
                b',"geometry":{"type":"Point","coordinates":[',
                self.lon,
                b",",
                self.lat,
                b']},"properties":{',
                *_property_parts(self.properties),
                b"}},",
            ],
            len(self.ids),
        )
        rows[-1, -1] = 0  # no comma after the last feature
        return b"[" + head + rows[rows != 0].tobytes() + b"]"


def _property_parts(properties: dict[str, Sequence[Any]]) -> list[bytes | Sequence[Any]]:
    """The parts of a ``"properties"`` object's members: each key's text, then its column."""
    parts: list[bytes | Sequence[Any]] = []
    for n, (name, column) in enumerate(properties.items()):
        key = orjson.dumps(name) + b":"
        parts += [b"," + key if n else key, column]
    return parts


def _slotted(parts: list[bytes | Sequence[Any]], n: int) -> np.ndarray:
    """``n`` rows of text, one per feature, as a byte array: each part in a slot of its own, a
    fixed text (bytes) alike in every row, a column's values each in its row (_texts), the
    slots padded with NUL bytes to the widest."""
    slots = [
        np.frombuffer(p, np.uint8)[None, :] if isinstance(p, bytes) else _texts(p) for p in parts
    ]
    rows = np.zeros((n, sum(s.shape[1] for s in slots)), np.uint8)
    start = 0
    for slot in slots:
        rows[:, start : start + slot.shape[1]] = slot
        start += slot.shape[1]
    return rows


def _unpadded(rows: np.ndarray) -> tuple[bytes, list[int]]:
    """The rows of ``_slotted`` without their padding, back to back, and where each starts
    (one more offset: the end)."""
    kept = rows != 0
    return rows[kept].tobytes(), [0, *np.cumsum(kept.sum(axis=1)).tolist()]


def _items(array: np.ndarray) -> tuple[bytes, list[int], list[int]]:
    """The JSON text of ``array`` (numbers, as orjson writes Python's floats) without its outer
    brackets, and where each of its items (first-axis rows) starts and ends in it."""
    whole = orjson.dumps(np.ascontiguousarray(array, float), option=orjson.OPT_SERIALIZE_NUMPY)
    body = np.frombuffer(whole, np.uint8)[1:-1]
    depth = np.cumsum((body == ord("[")).astype(np.int32) - (body == ord("]")))
    commas = np.flatnonzero((body == ord(",")) & (depth == 0))
    starts = np.concatenate([[0], commas + 1]).tolist()
    return whole[1:-1], starts, [*commas.tolist(), len(body)]


class LineFeatures(Sequence[dict[str, Any]]):
    """GeoJSON line features kept as arrays until someone reads them: ``coords`` holds every
    feature's coordinates one after the other (points (N, 2) for LineStrings, two-point pieces
    (N, 2, 2) for MultiLineStrings), ``stops`` where each feature's run ends, ``properties``
    one value per feature in each column. An analysis builds them in numpy; the dicts, a list
    per vertex, cost ~20x that and are made only for a map or ``f=geojson`` (bench/README.md,
    "Drawing the answer")."""

    def __init__(
        self,
        geometry_type: str,
        ids: Sequence[Any],
        coords: np.ndarray,
        stops: np.ndarray,
        properties: dict[str, Sequence[Any]],
    ) -> None:
        if len(stops) != len(ids) or any(len(v) != len(ids) for v in properties.values()):
            raise ValueError("every column must have one value per feature")
        self.geometry_type = geometry_type
        self.ids = list(ids)
        coords = np.asarray(coords, float)
        self.coords = round7(coords.ravel()).reshape(coords.shape)
        self.stops = np.asarray(stops, np.int64)
        self.properties = {k: list(v) for k, v in properties.items()}
        self._dicts: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.as_list()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.as_list())

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def as_list(self) -> list[dict[str, Any]]:
        """The features as dicts (built once, then kept)."""
        if self._dicts is None:
            coords = self.coords.tolist()  # once, then sliced: a tolist per feature is slower
            names = list(self.properties)
            columns = [self.properties[k] for k in names]
            stops = self.stops.tolist()
            starts = [0, *stops]
            self._dicts = [
                {
                    "type": "Feature",
                    "id": i,
                    "geometry": {"type": self.geometry_type, "coordinates": coords[a:b]},
                    "properties": dict(zip(names, values, strict=True)),
                }
                for i, a, b, *values in zip(
                    self.ids, starts, self.stops.tolist(), *columns, strict=False
                )
            ]
        return self._dicts

    def json_array(self) -> bytes:
        """The JSON array of the features without a dict or a list per feature or vertex
        (those took ~0.7 s of a 50,000-walk answer): the coordinates are one orjson text of
        the whole array, cut where each feature's rows begin and end; the rest of each
        feature is written column by column as PointFeatures writes it."""
        n = len(self.ids)
        if not n:
            return b"[]"
        kind = orjson.dumps(self.geometry_type)
        head, head_at = _unpadded(
            _slotted(
                [b'{"type":"Feature","id":', self.ids, b',"geometry":{"type":' + kind],
                n,
            )
        )
        tail, tail_at = _unpadded(
            _slotted([b'},"properties":{', *_property_parts(self.properties), b"}}"], n)
        )
        body, starts, ends = _items(self.coords) if len(self.coords) else (b"", [], [])
        out = []
        first = 0
        for i, stop in enumerate(self.stops.tolist()):
            coords = b"[" + body[starts[first] : ends[stop - 1]] + b"]" if stop > first else b"[]"
            out.append(
                head[head_at[i] : head_at[i + 1]]
                + b',"coordinates":'
                + coords
                + tail[tail_at[i] : tail_at[i + 1]]
            )
            first = stop
        return b"[" + b",".join(out) + b"]"
