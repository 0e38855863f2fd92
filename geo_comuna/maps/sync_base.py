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
from typing import Any

import pyarrow as pa
import shapely

from geo_comuna.maps.qgis import GEOMETRY_COLUMN, ID_COLUMN

#: the package's table of bases: layer, id, properties (JSON), geometry digest
BASE_TABLE = "geo_comuna_base"


def digest(geometry: Any) -> str | None:
    """The geometry's digest (None for none): 16 hex digits of its normalised WKB."""
    if geometry is None:
        return None
    wkb = shapely.to_wkb(shapely.normalize(geometry))
    return hashlib.blake2b(wkb, digest_size=8).hexdigest()


def _json(value: Any) -> Any:
    """A property as JSON keeps it: dates as ISO text, other values as they are."""
    return value.isoformat() if hasattr(value, "isoformat") else value


@dataclass
class Bases:
    """The bases of a package's features as the package is written, layer by layer."""

    layers: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    digests: list[str | None] = field(default_factory=list)

    def add(self, layer: str, batch: pa.RecordBatch, names: Iterable[str]) -> None:
        """One batch of a layer as it goes to GDAL (maps/package.write_layer): blocking, for a
        worker thread."""
        ids = batch.column(ID_COLUMN).to_pylist()
        columns = {name: batch.column(name).to_pylist() for name in names}
        geometries = shapely.from_wkb(batch.column(GEOMETRY_COLUMN).to_numpy(zero_copy_only=False))
        self.layers += [layer] * batch.num_rows
        self.ids += ids
        self.values += [
            json.dumps({name: _json(column[i]) for name, column in columns.items()})
            for i in range(batch.num_rows)
        ]
        self.digests += [digest(g) for g in geometries]

    def table(self) -> dict[str, pa.Array]:
        return {
            "layer": pa.array(self.layers, pa.string()),
            "feature": pa.array(self.ids, pa.int64()),
            "properties": pa.array(self.values, pa.string()),
            "geometry_digest": pa.array(self.digests, pa.string()),
        }


@dataclass(frozen=True)
class Base:
    """One feature as the package was made: its properties and its geometry's digest."""

    properties: dict[str, Any]
    geometry: str | None


def read_bases(table: pa.Table) -> dict[tuple[str, int], Base]:
    """The package's ``geo_comuna_base`` table, by (layer, feature id)."""
    rows = zip(
        table.column("layer").to_pylist(),
        table.column("feature").to_pylist(),
        table.column("properties").to_pylist(),
        table.column("geometry_digest").to_pylist(),
        strict=True,
    )
    return {(layer, int(fid)): Base(json.loads(props), geom) for layer, fid, props, geom in rows}
