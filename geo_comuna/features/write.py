"""Single-feature writes over any registry layer (the API's POST, PUT, PATCH, DELETE): one
statement each, with If-Match versions and the database's refusals as typed errors.

Every function expects validated input (features/validate.py, references resolved by
features/references.py) and runs inside the caller's transaction, so a failure anywhere
leaves nothing behind. Database refusals (unique codes, references still in use) come back
as typed errors naming the feature. Imports write in bulk instead (io/bulk.py), over the
same columns (``columns``) and refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import shapely
from psycopg import AsyncConnection, sql

from geo_comuna.db.refusals import SCOPE, check_refusal, scope_reason
from geo_comuna.errors import (
    OUTSIDE_COMMUNES,
    Conflict,
    Forbidden,
    InvalidAttribute,
    NotFound,
    Said,
)
from geo_comuna.features.query import ETAG_SQL
from geo_comuna.features.validate import Checked
from geo_comuna.layers import Layer
from geo_comuna.preconditions import NO_CONDITIONS, Preconditions

#: the row an import was writing when it was refused: the detail "feature N" (io/bulk.copy_in)
_FEATURE = re.compile(r"feature (\d+)")


def _labelled(detail: str | None) -> int | None:
    found = _FEATURE.fullmatch(detail or "")
    return int(found[1]) if found else None


#: the land records that keep their parcel from being deleted (migration 0032)
HELD_BY_RECORDS = frozenset({"rights_parcel_id_fkey", "documents_parcel_id_fkey"})


def holds_records(parcel: Any) -> Said:
    """Why a parcel holding land records is not deleted, and where they are listed: its id
    in the address where it is known (it read '{id}', found from outside)."""
    records = f"/collections/parcels/items/{parcel if isinstance(parcel, int) else '{id}'}/records"
    return Said(
        "it holds land records (rights or documents), which are not deleted with it: delete "
        "its rights or move them to another parcel, and delete its documents (DELETE "
        f"/documents/<document id>), first; GET {records} lists them",
        "tiene registros de tierra (derechos o documentos), que no se borran con ella: borre "
        "sus derechos o páselos a otra parcela, y borre sus documentos (DELETE "
        f"/documents/<id del documento>), antes; GET {records} los lista",
    )


@contextmanager
def refusals(layer: Layer, feature: Any = None) -> Iterator[None]:
    """Turn the database's integrity refusals into 4xx errors that say what was refused."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        detail = detail_es = exc.diag.message_detail or exc.diag.message_primary
        if exc.diag.constraint_name == f"{layer.table}_natural_key" and not exc.diag.message_detail:
            # row-level security keeps the key's values out of the database's message
            detail = (
                f"another {layer.name} feature has the same {' and '.join(layer.natural_key)}, "
                "which name one feature"
            )
            detail_es = (
                f"otra entidad de {layer.name} tiene los mismos {' y '.join(layer.natural_key)}, "
                "que identifican a una sola entidad"
            )
        raise Conflict(
            Said(f"already exists: {detail}", f"ya existe: {detail_es}"),
            feature=feature,
            layer=layer.name,
        ) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        if exc.diag.constraint_name in HELD_BY_RECORDS:  # migration 0032
            raise Conflict(holds_records(feature), feature=feature, layer=layer.name) from None
        detail = exc.diag.message_detail or exc.diag.message_primary
        raise Conflict(
            Said(
                f"still referenced or referencing a missing feature: {detail}",
                "todavía está referenciada por otra entidad o hace referencia a una entidad "
                f"que no existe: {detail}",
            ),
            feature=feature,
            layer=layer.name,
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        if exc.diag.constraint_name == SCOPE:  # refused with its reason (migration 0014)
            raise Forbidden(
                scope_reason(exc) or OUTSIDE_COMMUNES,
                feature=feature if feature is not None else _labelled(exc.diag.message_detail),
                layer=layer.name,
            ) from None
        raise Forbidden(
            Said(
                "outside the communes you may edit (row-level security refused the write)",
                "fuera de las comunas que puede editar (la seguridad a nivel de filas rechazó "
                "la escritura)",
            ),
            feature=feature,
            layer=layer.name,
        ) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise InvalidAttribute(check_refusal(exc), feature=feature, layer=layer.name) from None


def columns(layer: Layer) -> list[str]:
    """The columns a write gives, in this order: references, attributes, geometry."""
    return [r.column for r in layer.references] + [a.name for a in layer.attributes] + ["geom"]


def _rows(layer: Layer, checked: Checked, refs: dict[str, list]) -> list[list[Any]]:
    """Each feature's values as query parameters, in the order of ``columns``."""
    attrs = [checked.attributes[a.name].to_pylist() for a in layer.attributes]
    return [
        [refs[r.column][i] for r in layer.references]
        + [values[i] for values in attrs]
        + [None if geom is None else shapely.to_wkb(geom, include_srid=False)]
        for i, geom in enumerate(checked.geometries)
    ]


GEOM_PARAM = sql.SQL("ST_SetSRID(ST_GeomFromWKB(%s), 4326)")
#: degrees: vertices of a stored shape and of a written one that are closer are the same vertex
#: (~1 mm: an import's upsert, io/bulk.py, a PUT or PATCH, and the field package's sync,
#: maps/sync.py). PSAD56's way there and back (EPSG:4248, 24817-24821) moves a vertex by up
#: to 5e-9 degrees, and UTM's three decimals by half a millimetre: at 1e-9 every round trip
#: through them changed every feature (found from outside)
SHAPE_TOLERANCE = 1e-8


def kept_shape(stored: sql.Composable, new: sql.Composable) -> sql.Composed:
    """The shape an update writes: the stored one where the new one is the same shape (every
    vertex within SHAPE_TOLERANCE), else the new one. Round trips through other programs
    and CRSs move vertices by less than that, and a feature they leave in place keeps its
    coordinates exactly, so the place rule knows it unmoved (migration 0033: an editor may
    change what a feature an admin put outside the commune says, not move it)."""
    return sql.SQL(
        "CASE WHEN geo_comuna_same_shape({a}, {b}, {tolerance}) THEN {a} ELSE {b} END"
    ).format(a=stored, b=new, tolerance=sql.Literal(SHAPE_TOLERANCE))


#: how much of the larger of two areas they share to be one piece of ground twice
SAME_GROUND = 0.9


def same_ground(stored: sql.Composable, new: sql.Composable) -> sql.Composable:
    """The new shape lies on the stored one's ground: nine tenths of the larger area shared
    (found from outside: a copy a vertex added, or moved by a metre, was a second parcel
    beside the first; a piece of a parcel being divided shares less), or, for shapes without
    area, the same shape."""
    return sql.SQL(
        "(CASE WHEN ST_Dimension({a}) = 2 AND ST_Dimension({b}) = 2 "
        "THEN ST_Area(ST_Intersection({a}, {b})) >= {share} * "
        "GREATEST(ST_Area({a}), ST_Area({b})) "
        "ELSE geo_comuna_same_shape({a}, {b}, {tolerance}) END)"
    ).format(
        a=stored, b=new, share=sql.Literal(SAME_GROUND), tolerance=sql.Literal(SHAPE_TOLERANCE)
    )


async def insert(
    conn: AsyncConnection, layer: Layer, checked: Checked, refs: dict[str, list], labels: Sequence
) -> list[int]:
    """Insert validated features one statement each (API writes and syncs); returns the new
    ids. A feature without its whole natural key on a stored one's ground is refused, as an
    import refuses it (found from outside: a sync added a parcel without a code on another's
    exact shape, which an import of the same feature refused)."""
    cols = columns(layer)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}, {}) RETURNING id").format(
        sql.Identifier(layer.table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * (len(cols) - 1)),
        GEOM_PARAM,
    )
    ids = []
    for label, row in zip(labels, _rows(layer, checked, refs), strict=True):
        await _not_on_ground_of_another(conn, layer, dict(zip(cols, row, strict=True)), label)
        with refusals(layer, label):
            cur = await conn.execute(query, row)
        ids.append((await cur.fetchone())[0])
    return ids


async def _not_on_ground_of_another(
    conn: AsyncConnection, layer: Layer, values: dict[str, Any], label: Any
) -> None:
    """Refuse (409) a feature of a keyed layer that gives no whole key and lies on a stored
    feature's ground (same_ground), naming it; one whose given key parts are another's is
    not that one's copy."""
    keyed = layer.key_columns
    if not keyed or values["geom"] is None or all(values[c] is not None for c in keyed):
        return
    given = [c for c in keyed if values[c] is not None]  # a key part given: that one's only
    cur = await conn.execute(
        sql.SQL(
            "WITH n AS (SELECT {} AS geom) SELECT o.id FROM {} o, n "
            "WHERE o.geom && n.geom AND {} {} LIMIT 1"
        ).format(
            GEOM_PARAM,
            sql.Identifier(layer.table),
            same_ground(sql.SQL("o.geom"), sql.SQL("n.geom")),
            sql.SQL("").join(sql.SQL(" AND o.{} = %s").format(sql.Identifier(c)) for c in given),
        ),
        [values["geom"], *(values[c] for c in given)],
    )
    found = await cur.fetchone()
    if found is not None:
        which = ", ".join(layer.natural_key)
        raise Conflict(
            Said(
                f"this feature gives no whole key ({which}) but lies on the ground of "
                f"{layer.name} feature {found[0]}, stored already: adding it would make a second "
                "one there. Give it its whole key, or change that feature instead",
                f"esta entidad no indica su clave entera ({which}), pero ocupa el terreno de la "
                f"entidad {found[0]} de {layer.name}, ya guardada: añadirla haría una segunda "
                "allí. Indique su clave entera, o cambie esa entidad en su lugar",
            ),
            feature=label,
            layer=layer.name,
        )


async def replace(
    conn: AsyncConnection,
    layer: Layer,
    feature_id: int,
    checked: Checked,
    refs: dict[str, list],
    only: Sequence[str] | None = None,
) -> None:
    """PUT (every column) or PATCH (``only`` those columns, which may include 'geom'). A
    feature the write leaves as it is (each value the same, the shape within SHAPE_TOLERANCE)
    is not written: it keeps its version, so an ETag read before still holds (found from
    outside: a PUT of a feature as it was read made a new version, and another client's
    If-Match then failed for no change), as an import's upsert keeps it (io/bulk.py)."""
    cols = [c for c in columns(layer) if only is None or c in only]
    values = dict(zip(columns(layer), _rows(layer, checked, refs)[0], strict=True))
    if not cols:
        await lock_to_change(conn, layer, feature_id)
        return
    # a shape within SHAPE_TOLERANCE of the stored one keeps the stored one (kept_shape)
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(
            sql.Identifier(c),
            kept_shape(sql.SQL("geom"), GEOM_PARAM) if c == "geom" else sql.Placeholder(),
        )
        for c in cols
    )
    differs = sql.SQL(" OR ").join(
        sql.SQL("NOT geo_comuna_same_shape(geom, {}, {})").format(
            GEOM_PARAM, sql.Literal(SHAPE_TOLERANCE)
        )
        if c == "geom"
        else sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier(c), sql.Placeholder())
        for c in cols
    )
    given = [values[c] for c in cols]
    set_values = [v for c in cols for v in ([values[c]] * (2 if c == "geom" else 1))]
    with refusals(layer, feature_id):
        cur = await conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE id = %s AND ({})").format(
                sql.Identifier(layer.table), sets, differs
            ),
            [*set_values, feature_id, *given],
        )
    if cur.rowcount == 0:  # as it was, or not this writer's to change (403, 404)
        await lock_to_change(conn, layer, feature_id)


async def lock_to_change(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    """Lock a feature this writer may change, changing nothing (an empty PATCH); 404 when
    there is no such feature, 403 when row-level security keeps it from this writer (a
    SELECT FOR UPDATE sees only the rows the writer's UPDATE could)."""
    cur = await conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(layer.table)),
        (feature_id,),
    )
    if await cur.fetchone() is None:
        await _require(conn, layer, feature_id)


async def _require(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    """After a write touched nothing: the feature is missing, or row-level security hid it
    from this writer (it stays visible to reads, so we can tell which)."""
    cur = await conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(layer.table)), (feature_id,)
    )
    if await cur.fetchone() is None:
        raise NotFound(
            Said(f"no feature {feature_id}", f"no existe la entidad {feature_id}"), layer=layer.name
        )
    raise Forbidden(
        OUTSIDE_COMMUNES,
        feature=feature_id,
        layer=layer.name,
    )


async def check_version(
    conn: AsyncConnection, layer: Layer, feature_id: int, conditions: Preconditions
) -> None:
    """Lock the row and compare its version with If-Match and If-None-Match (OGC API -
    Features Part 4, RFC 9110): a stale version is refused with 412 instead of silently
    overwriting someone's edit."""
    if conditions == NO_CONDITIONS:
        return
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} t WHERE id = %s FOR UPDATE").format(
            ETAG_SQL, sql.Identifier(layer.table)
        ),
        (feature_id,),
    )
    row = await cur.fetchone()
    if row is None:
        await _require(conn, layer, feature_id)
    conditions.check(row[0], layer=layer.name, feature=feature_id)


async def delete(conn: AsyncConnection, layer: Layer, feature_id: int) -> None:
    with refusals(layer, feature_id):
        cur = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.table)),
            (feature_id,),
        )
    if cur.rowcount == 0:
        await _require(conn, layer, feature_id)
