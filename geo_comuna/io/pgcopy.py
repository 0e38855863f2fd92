"""PostgreSQL's binary COPY rows for an import, built by Arrow: each column's values in
PostgreSQL's binary form, geometry as EWKB (SRID 4326), whole rows joined in one pass.

Numbers and dates are not printed and parsed again, and a file's WKB is sent as GDAL read it
whenever validation changed nothing (its 5-byte header rewritten to say SRID 4326, a Polygon
promoted to a one-part MultiPolygon by a header): a third less work for PostgreSQL than CSV
with hex geometry, and ~0.4 s less client work per 200,000 polygons than writing the WKB
again.

Why not psycopg's own binary COPY (``copy.set_types`` + ``write_row``, geometry from
``shapely.to_wkb(include_srid=True)``): on bench/import_parcels.py (200,000 parcels, 3 runs
each, 2026-12-03, load average ~8) it took the import from 0.94x of ogr2ogr's time to 1.72x,
with 3.80 s of client CPU against 2.46 s. It needs a Python tuple per feature, every value a
Python object, a ``write_row`` call per feature on the event loop and every geometry written
again; this encoder costs a few Arrow kernels per piece in the worker thread (bench/README.md).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo_comuna.features.attributes import ARROW_TYPES
from geo_comuna.features.validate import Checked
from geo_comuna.layers import Layer

_SRID = 4326
_SRID_FLAG = 0x20000000
_PLAIN_TYPES = range(1, 8)  # 2-D Point ... GeometryCollection, no Z, M or SRID flags


def _ewkb_heads() -> dict[bytes, bytes]:
    """WKB header (byte order + type) of each plain 2-D type -> the EWKB header that says the
    same with SRID 4326."""
    heads = {}
    for order, endian in ((b"\x01", "little"), (b"\x00", "big")):
        for kind in _PLAIN_TYPES:
            heads[order + kind.to_bytes(4, endian)] = (
                order + (kind | _SRID_FLAG).to_bytes(4, endian) + _SRID.to_bytes(4, endian)
            )
    return heads


_EWKB_HEADS = _ewkb_heads()
_POLYGON_HEADS = {b"\x01\x03\x00\x00\x00", b"\x00\x00\x00\x00\x03"}
#: a MultiPolygon with SRID 4326 holding one part: the part's own WKB follows
_ONE_POLYGON = (
    b"\x01"
    + (6 | _SRID_FLAG).to_bytes(4, "little")
    + _SRID.to_bytes(4, "little")
    + (1).to_bytes(4, "little")
)


@dataclass
class Source:
    """Geometries as decoded from a file, and the WKB they were decoded from (as GDAL read
    it, Arrow binary, or bytes objects)."""

    geometries: np.ndarray
    wkb: pa.Array | np.ndarray


_HEAD_KEYS = pa.array(list(_EWKB_HEADS), pa.binary())
#: what replaces each plain header: the EWKB one; in a MultiPolygon layer a Polygon's header
#: is kept behind a one-part MultiPolygon's, which promotes it
_NEW_HEADS = {
    geometry: pa.array(
        [
            _ONE_POLYGON + head if geometry == "MultiPolygon" and head in _POLYGON_HEADS else ewkb
            for head, ewkb in _EWKB_HEADS.items()
        ],
        pa.binary(),
    )
    for geometry in ("Point", "LineString", "MultiPolygon")
}
_SAME = np.frompyfunc(operator.is_, 2, 1)


def _ewkb_parts(
    layer: Layer, geoms: np.ndarray, source: Source | None = None
) -> tuple[pa.Array, pa.Array]:
    """Each geometry's EWKB as two pieces: a new header and the rest of its WKB. Joining them
    is left to copy_rows, which joins whole rows in one pass."""
    present = ~shapely.is_missing(geoms)
    same = np.zeros(len(geoms), dtype=bool)
    if source is not None:
        same = present & _SAME(geoms, source.geometries).astype(bool)
    wkbs = None
    if source is not None and same.all():  # validation changed nothing: the bytes as read
        data = pa.array(source.wkb, type=pa.binary())  # no copy when they are Arrow already
    else:
        wkbs = np.full(len(geoms), None, dtype=object)
        if same.any():
            wkbs[same] = np.asarray(source.wkb, dtype=object)[same]
        data = pa.array(wkbs, type=pa.binary())
    heads = pc.index_in(pc.binary_slice(data, 0, 5), value_set=_HEAD_KEYS)  # null: not plain
    plain = heads.is_valid().to_numpy(zero_copy_only=False)
    fresh = np.flatnonzero(present & ~plain)  # changed, or a Z/M/SRID header as read
    if fresh.size:
        if wkbs is None:
            wkbs = data.to_numpy(zero_copy_only=False)
        wkbs[fresh] = shapely.to_wkb(geoms[fresh], output_dimension=2, byte_order=1)
        data = pa.array(wkbs, type=pa.binary())
        heads = pc.index_in(pc.binary_slice(data, 0, 5), value_set=_HEAD_KEYS)
    body = pc.binary_slice(data, 5, 2**31 - 1)  # to the end (no stop: an Arrow error)
    return pc.take(_NEW_HEADS[layer.geometry_type], heads), body


def ewkb(layer: Layer, geoms: np.ndarray, source: Source | None = None) -> pa.Array:
    """EWKB with SRID 4326, in the layer's geometry type (a Polygon becomes a one-part
    MultiPolygon by a header, not by building a new geometry), as an Arrow binary array.

    Where a geometry is still the very object decoded from ``source`` (validation changed
    nothing) and that WKB is plain 2-D, its bytes are sent as they came instead of being
    written again: writing 200,000 polygons costs ~0.4 s. Headers are rewritten by Arrow's
    kernels, not byte string by byte string."""
    return pc.binary_join_element_wise(*_ewkb_parts(layer, geoms, source), b"")


#: PostgreSQL's binary COPY: signature, flags and header extension; the end-of-data marker
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
#: big-endian layouts of the column types the layers use
_FIXED = {"integer": ">i4", "number": ">f8", "date": ">i4", "boolean": "u1"}
_PG_EPOCH = 10_957  # 2000-01-01 in days since 1970-01-01


def _lengths(sizes: np.ndarray) -> pa.Array:
    """Binary COPY's field lengths (-1 for NULL) as 4-byte big-endian strings."""
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4), len(sizes), [None, pa.py_buffer(sizes.astype(">i4").tobytes())]
    ).cast(pa.binary())


def _field(kind: str, values: pa.Array) -> list[pa.Array]:
    """One checked column as binary COPY fields: each value's byte length (-1 for NULL), then
    its bytes in PostgreSQL's binary form (null for NULL), as pieces that copy_rows joins."""
    if kind == "text":
        payload = values.cast(pa.binary())
        return [_lengths(pc.fill_null(pc.binary_length(payload), -1).to_numpy()), payload]
    null = values.is_null().to_numpy(zero_copy_only=False)
    valid = pa.array(~null).buffers()[1]  # Arrow keeps validity as this very bitmap
    layout = np.dtype(_FIXED[kind])
    if kind == "date":
        days = values.cast(pa.date32()).cast(pa.int32())
        numbers = pc.fill_null(days, _PG_EPOCH).to_numpy() - _PG_EPOCH
    else:
        filler = False if kind == "boolean" else 0
        numbers = values.cast(ARROW_TYPES[kind]).fill_null(filler).to_numpy(zero_copy_only=False)
    data = pa.py_buffer(numbers.astype(layout).tobytes())
    payload = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(layout.itemsize), len(values), [valid, data]
    ).cast(pa.binary())
    return [_lengths(np.where(null, -1, layout.itemsize)), payload]


def _geometry_field(layer: Layer, geoms: np.ndarray, source: Source | None) -> list[pa.Array]:
    head, body = _ewkb_parts(layer, geoms, source)
    size = pc.add(pc.binary_length(head), pc.binary_length(body))
    return [_lengths(pc.fill_null(size, -1).to_numpy()), head, body]


def copy_rows(
    layer: Layer, checked: Checked, refs: dict[str, list], source: Source | None = None
) -> memoryview:
    """Rows of PostgreSQL's binary COPY (between COPY_HEADER and COPY_TRAILER) in the order of
    features.write.columns(layer): references, attributes, geometry. A view of Arrow's own
    buffer, not a copy of it (a piece's ~1 MB per 5,000 parcels held once, not twice)."""
    parts = [
        p for r in layer.references for p in _field("integer", pa.array(refs[r.column], pa.int64()))
    ]
    for a in layer.attributes:
        parts += _field(a.type, checked.attributes[a.name])
    parts += _geometry_field(layer, checked.geometries, source)
    count = len(layer.references) + len(layer.attributes) + 1
    rows = pc.binary_join_element_wise(
        pa.scalar(count.to_bytes(2, "big"), type=pa.binary()),
        *parts,
        b"",
        null_handling="replace",  # a NULL's bytes: none, its length says -1
        null_replacement=b"",
    )
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1)
    return memoryview(rows.buffers()[2][offsets[0] : offsets[-1]])
