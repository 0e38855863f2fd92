"""What each feature of a package was when the package was made: its base, for the sync's
three-way comparison (maps/sync.py).

With only the package and the server, a feature changed on the server since the package was
made was a conflict on every field where the two differ, those the field team never touched
included: a team that answered "write the package's values" put back the old values of
another team's edits. The package therefore carries, in its table ``geo_comuna_base``, each
feature's properties as written (JSON) and a digest of its geometry; the sync then knows which
fields the team changed (the package against its base) and which the server changed (the
server against the same base). Only a field both changed is a conflict.

The digest is of the geometry normalised (shapely.normalize: ring starts and orientation, part
order), in WKB: what PostGIS gave and what GDAL reads back of an untouched feature digest
alike, and a vertex moved by any amount changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo_comuna.errors import InvalidFile, Said
from geo_comuna.maps.package_tables import GEOMETRY_COLUMN, ID_COLUMN

#: the package's table of bases: layer, id, properties (JSON), geometry digest
BASE_TABLE = "geo_comuna_base"


def digest(geometry: Any) -> str | None:
    """The geometry's digest (None for none): 16 hex digits of its normalised WKB."""
    return digests(np.array([geometry], dtype=object))[0]


def digests(geometries: np.ndarray) -> list[str | None]:
    """digest() of each of ``geometries``, normalised and written as WKB at once."""
    wkbs = shapely.to_wkb(shapely.normalize(geometries))
    return [None if w is None else hashlib.blake2b(w, digest_size=8).hexdigest() for w in wkbs]


def _json(value: Any) -> Any:
    """A property as JSON keeps it: dates as ISO text, a decimal as a number (the sync
    compares numbers as floats), other values as they are."""
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


@dataclass
class Bases:
    """The bases of a package's features as the package is written, layer by layer, kept as
    Arrow arrays (a few hundred bytes a feature), not Python objects."""

    chunks: list[pa.RecordBatch] = field(default_factory=list)

    def add(self, layer: str, batch: pa.RecordBatch, names: Iterable[str]) -> None:
        """One batch of a layer as it goes to GDAL (maps/package.write_layer): blocking, for a
        worker thread."""
        columns = {name: batch.column(name).to_pylist() for name in names}
        geometries = shapely.from_wkb(batch.column(GEOMETRY_COLUMN).to_numpy(zero_copy_only=False))
        values = [
            json.dumps({name: _json(column[i]) for name, column in columns.items()})
            for i in range(batch.num_rows)
        ]
        self.chunks.append(
            pa.record_batch(
                {
                    "layer": pa.array([layer] * batch.num_rows, pa.string()),
                    "feature": batch.column(ID_COLUMN).cast(pa.int64()),
                    "properties": pa.array(values, pa.string()),
                    "geometry_digest": pa.array(digests(geometries), pa.string()),
                }
            )
        )

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.chunks, SCHEMA)


SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("feature", pa.int64()),
        ("properties", pa.string()),
        ("geometry_digest", pa.string()),
    ]
)


@dataclass(frozen=True)
class Base:
    """One feature as the package was made: its properties and its geometry's digest."""

    properties: dict[str, Any]
    geometry: str | None


#: the most a feature's base may take as JSON text: a feature's properties take a few KB, and
#: one parsed here holds the server's event loop while it is
MAX_BASE_CHARS = 1_000_000


def _properties(text: Any, layer: str, fid: int) -> dict[str, Any]:
    """A feature's base properties from the package, or a refusal naming it: found from
    outside, a base edited to 'not json', '[1,2]' or 100,000 nested brackets was a 500."""
    found: Any = None
    if isinstance(text, str) and len(text) <= MAX_BASE_CHARS:
        try:
            found = json.loads(text)
        except (ValueError, RecursionError):
            found = None
    if not isinstance(found, dict):
        raise InvalidFile(
            Said(
                f"the package's {BASE_TABLE} row of this feature is damaged (not the "
                "properties geo-comuna wrote): download the package again",
                f"la fila de {BASE_TABLE} de esta entidad en el paquete está dañada (no son "
                "los atributos que escribió geo-comuna): descargue el paquete de nuevo",
            ),
            layer=layer,
            feature=fid,
        )
    return found


class PackageBases:
    """A package's ``geo_comuna_base`` table, looked up by layer and feature id. Only the
    features the sync asks about (those changed on the server since) are made into Python
    objects; a layer's ids are sorted once, when it is first asked about."""

    def __init__(self, table: pa.Table | None = None) -> None:
        self._table = table
        self._index: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._alias: dict[tuple[str, int], int] = {}

    def alias(self, layer: str, fid: int, base_of: int) -> None:
        """Feature ``fid`` is compared against the base of the package's feature ``base_of``
        (a feature of the package that a copy's sync added again under a new id)."""
        self._alias[layer, fid] = base_of

    def __bool__(self) -> bool:
        return self._table is not None and self._table.num_rows > 0

    def get(self, layer: str, fid: int) -> Base | None:
        if not self:
            return None
        fid = self._alias.get((layer, fid), fid)
        ids, rows = self._layer(layer)
        at = int(np.searchsorted(ids, fid))
        if at == len(ids) or ids[at] != fid:
            return None
        row = int(rows[at])
        props = self._table.column("properties")[row].as_py()  # type: ignore[union-attr]
        geometry = self._table.column("geometry_digest")[row].as_py()  # type: ignore[union-attr]
        return Base(_properties(props, layer, fid), geometry)

    def _layer(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        if layer not in self._index:
            table = self._table
            assert table is not None
            mask = pc.equal(table.column("layer"), layer).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(mask)
            ids = table.column("feature").to_numpy()[rows]
            order = np.argsort(ids, kind="stable")
            self._index[layer] = (ids[order], rows[order])
        return self._index[layer]
