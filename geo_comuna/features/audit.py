"""Reading the audit trail (written by triggers, migrations 0006 and 0010) and a parcel's tenure
history (migrations 0001, 0008 and 0011)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from geo_comuna.accounts import Access
from geo_comuna.errors import Said
from geo_comuna.features.query import COORD_DECIMALS, readable
from geo_comuna.layers import get_layer
from geo_comuna.layers.model import PG_INTEGER

MIN_ID, MAX_ID = PG_INTEGER  # feature ids are PostgreSQL integers


def _integer(value: int) -> bool:
    """Can this id be a feature's? Outside PostgreSQL's integer the query would overflow."""
    return MIN_ID <= value <= MAX_ID


async def entries(
    conn: AsyncConnection,
    *,
    layer: str | None,
    feature_id: int | None,
    since: dt.datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first. Updates and deletes are one entry per feature, ``before``/``after`` as
    GeoJSON Features (null for inserts / deletes). An INSERT statement is one entry (migration
    0010): ``feature_id``, ``before`` and ``after`` null, ``features`` its count and ``ids``
    the inclusive ``[first, last]`` pairs of the ids it wrote, e.g. ``[[1, 200000]]``.
    Per-feature entries (and inserts recorded before 0010) have ``features`` 1 and ``ids``
    ``[[feature_id, feature_id]]``. ``feature_id`` finds both kinds."""
    if feature_id is not None and not _integer(feature_id):
        return []  # no feature has such an id
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT id, at, user_name AS user, layer, feature_id, action, reason,
                      CASE WHEN feature_id IS NOT NULL THEN 1 ELSE features END AS features,
                      CASE WHEN feature_id IS NOT NULL
                           THEN json_build_array(json_build_array(feature_id, feature_id))
                           -- a range open above is the largest integer alone (0010)
                           ELSE (SELECT json_agg(json_build_array(
                                            lower(r), coalesce(upper(r) - 1, %(max_id)s::int)))
                                 FROM unnest(feature_ids) r) END AS ids,
                      CASE WHEN before IS NULL THEN NULL ELSE json_build_object(
                          'type', 'Feature', 'id', feature_id, 'properties', before,
                          'geometry', ST_AsGeoJSON(before_geom, %(digits)s)::json) END AS before,
                      CASE WHEN after IS NULL THEN NULL ELSE json_build_object(
                          'type', 'Feature', 'id', feature_id, 'properties', after,
                          'geometry', ST_AsGeoJSON(after_geom, %(digits)s)::json) END AS after
               FROM audit_log
               WHERE (%(layer)s::text IS NULL OR layer = %(layer)s)
                 AND (%(fid)s::int IS NULL OR feature_id = %(fid)s::int
                      OR feature_ids @> %(fid)s::int)
                 AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
               ORDER BY id DESC LIMIT %(limit)s""",
            {
                "layer": layer,
                "fid": feature_id,
                "since": since,
                "limit": limit,
                "digits": COORD_DECIMALS,
                "max_id": MAX_ID,
            },
        )
        return await cur.fetchall()


async def tenure_history(
    conn: AsyncConnection, parcel_id: int, access: Access
) -> list[dict[str, Any]]:
    """Oldest first: ``from_status``, ``to_status``, ``changed_at``, ``note``, one entry per
    change, as parcel_tenure_history() reads it (db/functions/tenure_history.sql), whichever
    way the change was stored. Empty when no parcel ever had this id.

    A note is free text like the parcel's ``notes`` and follows its read rule: null unless
    the reader may read the parcel's notes (a deleted parcel's: admins only)."""
    if not _integer(parcel_id):
        return []  # no parcel has such an id
    parcels = get_layer("parcels")
    note = sql.SQL("h.note")
    if parcels.members_only("notes"):
        note = sql.SQL("CASE WHEN {} THEN h.note END").format(readable(parcels, access))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT h.from_status, h.to_status, h.changed_at, {} AS note, h.by_rule, "
                "h.rule_right, h.rule_back, h.rule_event "
                "FROM parcel_tenure_history(ARRAY[%(id)s::int]) h "
                "LEFT JOIN parcels t ON t.id = %(id)s::int "
                "ORDER BY h.changed_at, h.history_id"
            ).format(note),
            {"id": parcel_id},
        )
        return await cur.fetchall()


def rule_cause(change: dict[str, Any]) -> Said | None:
    """Why the tenure rule made a change of a parcel's history (parcel_tenure_history's
    by_rule, rule_right, rule_back, rule_event), in words; None for a change a person or an
    import made. Public, as the rights it names: a note follows the notes' read rule, and the
    rule's own note, hidden so, left a planner reading the public history two changes with
    no cause. What was done to the right is said (found from outside: a claim lodged, a title
    granted and a right deleted all read "follows its rights")."""
    if not change.get("by_rule"):
        return None
    right = change.get("rule_right")
    done = _EVENTS.get(change.get("rule_event") or "", Said("", ""))
    named = (
        Said(f" (right {right}{done})", f" (derecho {right}{done.es})")
        if right is not None
        else Said("", "")
    )
    if change.get("rule_back"):
        return Said(
            f"no right counts any more{named}: back to the tenure before its rights",
            f"ya no cuenta ningún derecho{named.es}: vuelve a la tenencia de antes de sus derechos",
        )
    return Said(f"follows its rights{named}", f"sigue sus derechos{named.es}")


#: what was done to the right the rule followed, as a cause says it
_EVENTS = {
    "recorded": Said(", recorded", ", registrado"),
    "changed": Said(", changed", ", modificado"),
    "deleted": Said(", deleted", ", eliminado"),
    # the calendar's (tenure_follow_calendar): the right's dates, not a write, changed it
    "started": Said(", in force from its start date", ", vigente desde su fecha de inicio"),
    "ended": Said(", past its end date", ", vencido"),
}
