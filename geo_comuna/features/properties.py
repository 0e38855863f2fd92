"""What a reader gets of a row of any registry layer: its output properties and geometry
under the registry's read rules, and the GeoJSON Feature PostGIS builds from them.

A members-only property is absent from a feature (NULL in a column shared with features the
reader may read) and a members-only geometry is null, unless the row's commune is one of the
reader's (features/query.py, features/filters.py and every other reader build on these).
"""

from __future__ import annotations

from psycopg import sql

from geo_comuna.accounts import Access
from geo_comuna.features.crs import CRS84, Crs, output_geometry
from geo_comuna.layers import Layer


def readable(layer: Layer, access: Access) -> sql.Composable:
    """SQL truth of "this reader may read the members-only data of row ``t``": the row's
    commune is one of the reader's (admins: every row)."""
    if access.everywhere:
        return sql.SQL("true")
    if not access.communes or layer.commune_ref is None:
        return sql.SQL("false")
    return sql.SQL("t.{} = ANY({}::integer[])").format(
        sql.Identifier(layer.commune_ref.column), sql.Literal(list(access.communes))
    )


def _only_readable(layer: Layer, access: Access, expr: sql.Composable) -> sql.Composable:
    if access.everywhere:
        return expr
    return sql.SQL("CASE WHEN {} THEN {} END").format(readable(layer, access), expr)


def geometry_sql(layer: Layer, access: Access, crs: Crs = CRS84) -> sql.Composable:
    """``t.geom`` in ``crs``, or NULL where the layer's positions are members-only and the
    row is not the reader's."""
    geom = output_geometry(sql.SQL("t.geom"), crs)
    if layer.geometry_read == "public":
        return geom
    return _only_readable(layer, access, geom)


def _outputs(
    layer: Layer, ids: sql.Composable | None = None, properties: tuple[str, ...] | None = None
) -> tuple[list[tuple[str, sql.Composable, bool]], sql.Composable]:
    """(name, SQL expression, members-only) of every output property, and the joins. With
    ``ids`` (an integer[] of the rows the statement builds), a derived property that has a
    batch form, and is among ``properties`` when they are named, is joined from it instead of
    being worked out row by row."""
    exprs: list[tuple[str, sql.Composable, bool]] = []
    joins: list[sql.Composable] = []
    for i, ref in enumerate(layer.references):
        column = sql.SQL("t.{}").format(sql.Identifier(ref.column))
        if ref.key == "id":
            exprs.append((ref.name, column, False))
            continue
        alias = sql.Identifier(f"r{i}")
        joins.append(
            sql.SQL("LEFT JOIN {} {} ON {}.id = {}").format(
                sql.Identifier(ref.table), alias, alias, column
            )
        )
        exprs.append((ref.name, sql.SQL("{}.{}").format(alias, sql.Identifier(ref.key)), False))
    for attr in layer.attributes:
        column = sql.SQL("t.{}").format(sql.Identifier(attr.name))
        exprs.append((attr.name, column, attr.read == "members"))
    for i, derived in enumerate(layer.derived):
        wanted = properties is None or derived.name in properties
        if ids is None or derived.batch is None or not wanted:
            exprs.append((derived.name, sql.SQL(derived.sql), False))  # registry constants
            continue
        alias = sql.Identifier(f"d{i}")
        joins.append(
            sql.SQL("LEFT JOIN ({}) {} ON {}.id = t.id").format(
                sql.SQL(derived.batch).format(ids=ids), alias, alias
            )
        )
        exprs.append((derived.name, sql.SQL("{}.value").format(alias), False))
    return exprs, sql.SQL(" ").join(joins)


def property_exprs(
    layer: Layer, access: Access, ids: sql.Composable | None = None
) -> tuple[list[tuple[str, sql.Composable]], sql.Composable]:
    """(name, SQL expression) of every output property this reader gets, and the joins they
    need. References go out as the code clients write (commune code) or as the id (parcel).
    ``ids``: the rows the statement reads, as an integer[] (see _outputs).

    A members-only attribute is left out for a reader who may read it in no commune, and is
    NULL in other communes' rows for one who may read it in some."""
    outputs, joins = _outputs(layer, ids)
    exprs = [
        (name, _only_readable(layer, access, expr) if members else expr)
        for name, expr, members in outputs
        if access.anywhere or not members
    ]
    return exprs, joins


def feature_sql(
    layer: Layer,
    access: Access,
    crs: Crs = CRS84,
    properties: tuple[str, ...] | None = None,
    ids: sql.Composable | None = None,
) -> tuple[sql.Composable, sql.Composable]:
    """A text expression building one GeoJSON Feature from alias ``t``, and its joins:
    coordinates in ``crs``, only ``properties`` when given. Members-only properties are
    absent from the rows the reader may not read them in. ``ids``: the rows the statement
    builds, as an integer[] (see _outputs)."""
    outputs, joins = _outputs(layer, ids, properties)
    if properties is not None:
        outputs = [o for o in outputs if o[0] in properties]

    def props(names: list[tuple[str, sql.Composable, bool]]) -> sql.Composable:
        if not names:
            return sql.SQL("'{}'::json")
        return sql.SQL("json_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr, _ in names
            )
        )

    public = [o for o in outputs if not o[2]]
    if access.everywhere or len(public) == len(outputs):
        properties = props(outputs)
    elif not access.anywhere:
        properties = props(public)
    else:
        properties = sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(
            readable(layer, access), props(outputs), props(public)
        )
    feature = sql.SQL(
        """'{{"type":"Feature","id":' || t.id || ',"geometry":' """
        """|| coalesce(ST_AsGeoJSON({}, {}, 0), 'null') || ',"properties":' """
        """|| {}::text || '}}'"""
    ).format(geometry_sql(layer, access, crs), sql.Literal(crs.decimals), properties)
    return feature, joins
