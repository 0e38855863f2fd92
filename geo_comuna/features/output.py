"""How a page of features comes out: the CRS of its coordinates (``crs``), its order
(``sortby``) and which properties it carries (``properties``).

Read rules: sorting by a members-only property is refused (403) for a reader who may read it
in no commune, and otherwise sorts only the rows the reader may read it in (the order of the
others would tell their values); asking for a members-only property is refused the same way,
and it stays absent from the rows the reader may not read it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.errors import Forbidden, InvalidInput, Said
from geo_comuna.features.crs import CRS84, Crs
from geo_comuna.features.queryables import resolve
from geo_comuna.layers import Layer

MAX_SORT_KEYS = 8


@dataclass(frozen=True)
class Output:
    crs: Crs = CRS84
    #: (property, descending), applied before the id
    sortby: tuple[tuple[str, bool], ...] = ()
    #: the properties to include; None: all the reader may read
    properties: tuple[str, ...] | None = None

    def key(self) -> tuple:
        return (self.crs.uri, self.sortby, self.properties)


def output_names(layer: Layer) -> list[str]:
    """Every property a feature of ``layer`` may carry, in its order."""
    return [
        *(r.name for r in layer.references),
        *(a.name for a in layer.attributes),
        *(d.name for d in layer.derived),
    ]


#: what sortby takes besides the queryables: the feature's id (``sortby=-id``: the newest
#: first, found from outside refused)
ID_KEY = "id"


def parse_sortby(layer: Layer, access: Access, value: str | None) -> tuple[tuple[str, bool], ...]:
    """``sortby=name,-recovered_on,+code``: queryables or the id, ascending unless ``-``."""
    if value is None or not value.strip():
        return ()
    keys: list[tuple[str, bool]] = []
    for raw in value.split(","):
        item = raw.strip()
        descending = item.startswith("-")
        name = item[1:].strip() if item[:1] in "+-" and item else item
        if not name:
            raise InvalidInput(
                Said(f"sortby {value!r}: an empty key", f"sortby {value!r}: una clave vacía"),
                layer=layer.name,
            )
        if name != ID_KEY:
            resolve(layer, access, name, "sortby")
        if any(k == name for k, _ in keys):
            raise InvalidInput(
                Said(f"sortby {value!r}: {name} twice", f"sortby {value!r}: {name} dos veces"),
                layer=layer.name,
            )
        keys.append((name, descending))
    if len(keys) > MAX_SORT_KEYS:
        raise InvalidInput(
            Said(
                f"sortby takes at most {MAX_SORT_KEYS} keys",
                f"sortby admite como máximo {MAX_SORT_KEYS} claves",
            ),
            layer=layer.name,
        )
    return tuple(keys)


def parse_properties(layer: Layer, access: Access, value: str | None) -> tuple[str, ...] | None:
    """``properties=tenure,area_ha``: only these (id and geometry always come);
    ``properties=`` (empty): none."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = output_names(layer)
    for name in names:
        if name not in known:
            readable = [n for n in known if access.anywhere or not layer.members_only(n)]
            raise InvalidInput(
                Said(
                    f"properties: unknown property {name!r}; {layer.name} has "
                    f"{', '.join(readable)}",
                    f"properties: campo desconocido {name!r}; {layer.name} tiene "
                    f"{', '.join(readable)}",
                ),
                layer=layer.name,
            )
        if layer.members_only(name) and not access.anywhere:
            raise Forbidden(
                Said(
                    f"properties: {name} of {layer.name} is read only by the users of the "
                    "feature's commune and admins; send such a user's token "
                    "(Authorization: Bearer <token>)",
                    f"properties: {name} de {layer.name} solo lo pueden leer los usuarios de la "
                    "comuna de la entidad y los administradores; envíe el token de uno de esos "
                    "usuarios (Authorization: Bearer <token>)",
                ),
                layer=layer.name,
            )
    return tuple(dict.fromkeys(names))


def order_sql(layer: Layer, access: Access, output: Output) -> tuple[sql.Composable, bool]:
    """ORDER BY keys over alias ``t`` (the id last, so pages never overlap), and whether
    they name a members-only property (then only rows the reader may read it in qualify)."""
    keys: list[sql.Composable] = []
    private = False
    for name, descending in output.sortby:
        direction = "DESC NULLS LAST" if descending else "ASC NULLS LAST"
        if name == ID_KEY:
            keys.append(sql.SQL("t.id {}").format(sql.SQL(direction)))
            continue
        found = resolve(layer, access, name, "sortby")
        private = private or found.members
        keys.append(sql.SQL("{} {}").format(found.expr, sql.SQL(direction)))
    keys.append(sql.SQL("t.id"))
    return sql.SQL(", ").join(keys), private
