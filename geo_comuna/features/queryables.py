"""What a reader may filter and sort a layer by, derived from the registry: its attributes,
its references (``commune`` by code, ``parcel`` by id), its geometry, and what PostGIS works
out of each feature as one number or text (``area_ha``, ``length_m``, ``parcel_code``: "the
parcels over 10 ha" is a planner's first question; the geodesic area is computed for every
feature the other conditions leave).

Each queryable carries the SQL reading it from alias ``t``, so that a filter (features/cql.py)
or a sort key (features/output.py) never writes a name the registry did not declare.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.errors import Forbidden, InvalidInput, Said
from geo_comuna.layers import Layer
from geo_comuna.layers.model import Derived, Domain

GEOMETRY = "geometry"


@dataclass(frozen=True)
class Queryable:
    name: str
    #: text, integer, number, date, boolean or geometry
    type: str
    #: the value over alias ``t``
    expr: sql.Composable
    #: readable only by the users of the feature's commune and admins
    members: bool = False
    domain: Domain | None = None
    #: a reference given by code: (its column, the referenced table, the code's column)
    code_of: tuple[str, str, str] | None = None


def find(layer: Layer, name: str) -> Queryable | None:
    if name == GEOMETRY:
        return Queryable(GEOMETRY, "geometry", sql.SQL("t.geom"), layer.geometry_read == "members")
    ref = layer.reference(name)
    if ref is not None:
        column = sql.SQL("t.{}").format(sql.Identifier(ref.column))
        if ref.key == "id":
            return Queryable(name, "integer", column)
        expr = sql.SQL("(SELECT r.{} FROM {} r WHERE r.id = {})").format(
            sql.Identifier(ref.key), sql.Identifier(ref.table), column
        )
        return Queryable(name, "text", expr, code_of=(ref.column, ref.table, ref.key))
    attr = layer.attribute(name)
    if attr is None:
        derived = next((d for d in computed(layer) if d.name == name), None)
        if derived is None:
            return None
        return Queryable(name, DERIVED_TYPES[derived.type], sql.SQL(f"({derived.sql})"))
    column = sql.SQL("t.{}").format(sql.Identifier(attr.name))
    return Queryable(name, attr.type, column, attr.read == "members", attr.domain)


#: a derived property's JSON Schema type -> a queryable's
DERIVED_TYPES = {"number": "number", "string": "text"}


def computed(layer: Layer) -> list[Derived]:
    """The layer's derived properties that are one value a feature (not a list)."""
    return [d for d in layer.derived if d.type in DERIVED_TYPES]


def computed_names(layer: Layer) -> list[str]:
    return [d.name for d in computed(layer)]


def computed_values(layer: Layer, name: str, raw: str) -> list[Any]:
    """``?area_ha=12.5,3`` (any of them): the values of a derived property as given."""
    derived = next(d for d in computed(layer) if d.name == name)
    values = [v.strip() for v in raw.split(",")]
    if derived.type == "string":
        return values
    try:
        numbers = [Decimal(v) for v in values]
    except InvalidOperation:
        numbers = []
    if len(numbers) != len(values) or not all(n.is_finite() for n in numbers):
        raise InvalidInput(
            Said(
                f"query parameter {name!r}: {raw!r} is not a number (or numbers separated by "
                "commas)",
                f"parámetro {name!r}: {raw!r} no es un número (ni números separados por comas)",
            ),
            layer=layer.name,
        )
    return numbers


def names(layer: Layer, access: Access) -> list[str]:
    """The properties this reader may filter by, in schema order (queryables' own order)."""
    return [
        name for name in layer.property_names if access.anywhere or not layer.members_only(name)
    ] + [d.name for d in computed(layer)]


def resolve(layer: Layer, access: Access, name: str, what: str) -> Queryable:
    """The queryable ``name``, or a 400 listing what the reader may use, or a 403 for a
    members-only one the reader may read in no commune."""
    found = find(layer, name)
    if found is None or found.type == "geometry" and what == "sortby":
        known = names(layer, access) + ([] if what == "sortby" else [GEOMETRY])
        que = {"filter": "filtro", "sortby": "sortby"}.get(what, what)
        raise InvalidInput(
            Said(
                f"{what}: unknown property {name!r}; {layer.name} has {', '.join(known)}",
                f"{que}: no existe el campo {name!r}; {layer.name} tiene {', '.join(known)}",
            ),
            layer=layer.name,
        )
    if found.members and found.type != "geometry" and not access.anywhere:
        raise Forbidden(
            Said(
                f"{what}: {name} of {layer.name} can be read, and so filtered and sorted by, "
                "only by the users of the feature's commune and admins; send such a user's "
                "token (Authorization: Bearer <token>)",
                f"{what}: {name} de {layer.name} solo lo leen, y por tanto solo filtran y "
                "ordenan por él, los usuarios de la comuna de la entidad y los administradores; "
                "envíe el token de uno de ellos (Authorization: Bearer <token>)",
            ),
            layer=layer.name,
        )
    return found
