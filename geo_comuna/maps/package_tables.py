"""The names a commune package's GeoPackage uses: written by maps/package.py, read back by
maps/sync_read.py. Kept apart from both so that the sync's reader, which runs in a child
process for an upload, loads no more than it needs."""

from __future__ import annotations

from geo_comuna.layers.model import Layer, commune_ref

GPKG = "comuna.gpkg"
#: the table of the GeoPackage saying what the package is of (read back by the sync)
INFO_TABLE = "geo_comuna_package"
#: the table commune references point to: its own layer is the commune itself
COMMUNE_TABLE = commune_ref().table
GEOMETRY_COLUMN = "geom"
#: columns every feature of a package carries besides its properties (maps/package.py)
ID_COLUMN = "id"
VERSION_COLUMN = "version"


def clipped(layer: Layer) -> bool:
    """Is ``layer`` context around the commune rather than the commune's own (the states)?
    Its features are cut to the commune's outline, since a field worker needs only the
    part of a state that the commune's land lies in."""
    return layer.table != COMMUNE_TABLE and not any(
        r.table == COMMUNE_TABLE for r in layer.references
    )
