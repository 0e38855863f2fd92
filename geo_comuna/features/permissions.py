"""What a user may do to a layer's features, as the registry states it (``edit_scope``,
``editors_may``): admins everything, editors what the layer allows in their communes, viewers
and anonymous readers nothing. PostgreSQL's row-level security enforces the same rule on
every write (migrations 0006, 0014); this answers clients that ask first (``OPTIONS``).
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from geo_comuna.accounts import User
from geo_comuna.layers import Layer
from geo_comuna.layers.model import EVERY_ACTION, EditorAction

NOTHING: frozenset[EditorAction] = frozenset()


def on_layer(layer: Layer, user: User | None) -> frozenset[EditorAction]:
    """What ``user`` may do to the features of ``layer`` in its communes."""
    if user is None or not user.may_write:
        return NOTHING
    if user.role == "admin":
        return EVERY_ACTION
    return layer.editors_may if user.communes else NOTHING


async def on_feature(
    conn: AsyncConnection, layer: Layer, user: User | None, feature_id: int
) -> frozenset[EditorAction] | None:
    """What ``user`` may do to one feature (creating aside); None when there is no such
    feature."""
    if layer.edit_scope is None:
        cur = await conn.execute(
            sql.SQL("SELECT NULL FROM {} WHERE id = %s").format(sql.Identifier(layer.table)),
            (feature_id,),
        )
    else:
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE id = %s").format(
                sql.Identifier(layer.edit_scope), sql.Identifier(layer.table)
            ),
            (feature_id,),
        )
    row = await cur.fetchone()
    if row is None:
        return None
    allowed = on_layer(layer, user) - {"create"}
    if user is not None and user.role != "admin" and row[0] not in user.communes:
        return NOTHING
    return allowed
