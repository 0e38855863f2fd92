"""Reads of parties, rights and documents, always inside ``accounts.reading``: the database
runs them as geo_comuna_reader through the views of migration 0021, which give names, ID
numbers, contacts, notes and documents only to editors and admins of the record's commune.
A viewer or an anonymous reader gets a party's kind and id, a right's terms and its holder's
kind; nothing here filters personal data in Python, so nothing here can forget to.

Each read builds its JSON in one statement (json_build_object); keys whose value the reader
may not see are dropped (json_strip_nulls on the personal part), not sent as null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from geo_comuna.accounts import User, reading
from geo_comuna.errors import NotFound, Said
from geo_comuna.layers.tenure import PARTY_KIND, RIGHT_KIND, RIGHT_STATUS

#: a party as GeoJSON (no geometry); alias p: party_register, c: communes
_PARTY = """json_build_object(
    'type', 'Feature', 'id', p.id, 'geometry', NULL,
    'properties', json_build_object('kind', p.kind, 'commune', c.code,
                                    'illustrative', p.illustrative)::jsonb
                  || json_strip_nulls(json_build_object(
                         'name', p.name, 'id_number', p.id_number,
                         'contact', p.contact))::jsonb)"""
_PARTY_FROM = "party_register p JOIN communes c ON c.id = p.commune_id"

#: a right as GeoJSON, drawn as its parcel (``{geometry}``: pc.geom, in the CRS asked);
#: alias r: right_register, h: its holder (party_register), pc: parcels
_RIGHT_TEMPLATE = """json_build_object(
    'type', 'Feature', 'id', r.id,
    'geometry', ST_AsGeoJSON({geometry}, {decimals})::json,
    'properties', json_build_object(
        'parcel', r.parcel_id, 'parcel_code', pc.code, 'party', r.party_id,
        'party_kind', h.kind, 'kind', r.kind, 'share', r.share, 'starts_on', r.starts_on,
        'ends_on', r.ends_on, 'status', r.status, 'illustrative', r.illustrative)::jsonb
        || json_strip_nulls(json_build_object('holder', h.name, 'note', r.note))::jsonb)"""
_RIGHT = _RIGHT_TEMPLATE.format(geometry="pc.geom", decimals=7)
_RIGHT_FROM = (
    "right_register r JOIN parcels pc ON pc.id = r.parcel_id "
    "JOIN party_register h ON h.id = r.party_id"
)


#: the filters a page takes, each a column of its record's view (or its holder's kind)
_COLUMNS = {
    "commune_id": ("commune_id", None),
    "parcel_id": ("parcel_id", None),
    "party_id": ("party_id", None),
    "kind": ("kind", None),
    "status": ("status", None),
    "party_kind": ("kind", "h"),
}


def _where(
    filters: dict[str, Any], alias: str, spatial: sql.Composable | None
) -> tuple[sql.Composable, dict]:
    """``alias.column = value`` for each given filter (a list: any of its values; column
    names are ours, values bound), and the spatial condition the caller composed."""
    given = {k: v for k, v in filters.items() if v is not None}
    parts: list[sql.Composable] = []
    for key, value in given.items():
        column, owner = _COLUMNS[key]
        ref = sql.SQL("{}.{}").format(sql.Identifier(owner or alias), sql.Identifier(column))
        if isinstance(value, list):
            parts.append(sql.SQL("{} = ANY({})").format(ref, sql.Placeholder(key)))
        else:
            parts.append(sql.SQL("{} = {}").format(ref, sql.Placeholder(key)))
    if spatial is not None:
        parts.append(spatial)
    if not parts:
        return sql.SQL("true"), {}
    return sql.SQL(" AND ").join(parts), given


@dataclass(frozen=True)
class Paging:
    """``limit`` records from ``offset``, or after the record ``after`` (the keyset the
    ``next`` links carry)."""

    limit: int = 100
    offset: int = 0
    after: int | None = None


async def _page(
    conn: AsyncConnection,
    user: User | None,
    feature: sql.Composable,
    source: str,
    alias: str,
    filters: dict[str, Any],
    page: Paging,
    spatial: tuple[sql.Composable, dict] | None = None,
) -> dict[str, Any]:
    """One page and its count; ``more`` says whether records follow (one more row is read
    to know), ``last_id`` is where the keyset ``next`` link goes on."""
    condition, spatial_params = spatial if spatial is not None else (None, {})
    where, params = _where(filters, alias, condition)
    start = sql.SQL("true")
    if page.after is not None:
        start = sql.SQL("{}.id > %(after)s").format(sql.Identifier(alias))
    query = sql.SQL(
        "SELECT coalesce(json_agg(f.feature ORDER BY f.id), '[]'::json), "
        "(SELECT count(*) FROM {source} WHERE {where}) "
        "FROM (SELECT {alias}.id, {feature} AS feature FROM {source} WHERE {where} AND {start} "
        "ORDER BY {alias}.id LIMIT %(limit)s OFFSET %(offset)s) f"
    ).format(
        source=sql.SQL(source),
        where=where,
        start=start,
        alias=sql.Identifier(alias),
        feature=feature,
    )
    bound = {**params, **spatial_params, "after": page.after, "offset": page.offset}
    async with reading(conn, user):
        cur = await conn.execute(query, {**bound, "limit": page.limit + 1})
        features, matched = await cur.fetchone()
    more = len(features) > page.limit
    features = features[: page.limit]
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "more": more,
        "last_id": features[-1]["id"] if features else None,
    }


async def parties(
    conn: AsyncConnection,
    user: User | None,
    *,
    commune_id: int | None = None,
    kind: list[str] | None = None,
    page: Paging = Paging(),
) -> dict[str, Any]:
    """A page of parties, as the reader may see them. They are filtered by what anyone may
    read of them (commune, kind), never by a name or an ID number: a filter that matched
    on those would tell a reader who may not see them whether a person is registered."""
    filters = {"commune_id": commune_id, "kind": kind}
    return await _page(conn, user, sql.SQL(_PARTY), _PARTY_FROM, "p", filters, page)


def right_feature(geometry: sql.Composable, decimals: int) -> sql.Composable:
    """A right's GeoJSON with its parcel's geometry as ``geometry`` gives it (the CRS the
    reader asked for, composed by the caller), with ``decimals`` digits."""
    head, tail = _RIGHT_TEMPLATE.split("{geometry}")
    return sql.Composed(
        [sql.SQL(head), geometry, sql.SQL(tail.replace("{decimals}", str(int(decimals))))]
    )


async def rights(
    conn: AsyncConnection,
    user: User | None,
    *,
    commune_id: int | None = None,
    parcel_id: int | None = None,
    party_id: int | None = None,
    kind: list[str] | None = None,
    status: list[str] | None = None,
    party_kind: list[str] | None = None,
    spatial: tuple[sql.Composable, dict] | None = None,
    feature: sql.Composable | None = None,
    page: Paging = Paging(),
) -> dict[str, Any]:
    """A page of rights (each drawn as its parcel), as the reader may see them.
    ``spatial``: a condition on ``pc.geom`` (the parcel's geometry) and its bound values;
    ``feature``: the GeoJSON (right_feature) in the CRS asked, CRS84 by default."""
    filters = {
        "commune_id": commune_id,
        "parcel_id": parcel_id,
        "party_id": party_id,
        "kind": kind,
        "status": status,
        "party_kind": party_kind,
    }
    body = feature if feature is not None else sql.SQL(_RIGHT)
    return await _page(conn, user, body, _RIGHT_FROM, "r", filters, page, spatial)


async def rights_extent(conn: AsyncConnection) -> list[float] | None:
    """The lon/lat box of the parcels that carry a right (parcels are public: the box
    tells no more than the parcels' layer does)."""
    cur = await conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(pc.geom) e "
        "FROM parcels pc WHERE EXISTS (SELECT FROM rights r WHERE r.parcel_id = pc.id)) x"
    )
    row = await cur.fetchone()
    return None if row[0] is None else [round(v, 6) for v in row]


async def one(
    conn: AsyncConnection, user: User | None, kind: str, record_id: int
) -> tuple[dict[str, Any], str, int | None]:
    """One party or right as the reader may see it, its row version (``"id.xmin"``) and its
    commune. NotFound when there is none."""
    feature, source, alias = (
        (_PARTY, _PARTY_FROM, "p") if kind == "parties" else (_RIGHT, _RIGHT_FROM, "r")
    )
    query = sql.SQL(
        "SELECT {feature}, {alias}.version, {alias}.commune_id FROM {source} WHERE {alias}.id = %s"
    ).format(feature=sql.SQL(feature), alias=sql.Identifier(alias), source=sql.SQL(source))
    async with reading(conn, user):
        cur = await conn.execute(query, (record_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(
                f"no {kind[:-1] if kind == 'rights' else 'party'} {record_id}",
                f"no existe {'el derecho' if kind == 'rights' else 'el sujeto de derecho'} "
                f"{record_id}",
            ),
            layer=kind,
        )
    return row[0], row[1], row[2]


_DOCUMENT = """json_build_object(
    'id', d.id, 'title', d.title, 'sha256', d.sha256, 'media_type', d.media_type,
    'size_bytes', d.size_bytes, 'filename', d.filename, 'party', d.party_id,
    'right', d.right_id, 'parcel', d.parcel_id, 'taken_at', d.taken_at,
    'uploaded_at', d.uploaded_at, 'illustrative', d.illustrative,
    'position', ST_AsGeoJSON(d.position, 7)::json)"""


async def document(conn: AsyncConnection, user: User | None, document_id: int) -> dict[str, Any]:
    """A document's description, for those who may read it; NotFound for anyone else (a
    reader who may not see it does not learn that it exists)."""
    async with reading(conn, user):
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM document_register d WHERE d.id = %s").format(
                sql.SQL(_DOCUMENT)
            ),
            (document_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(
                f"no document {document_id} you may read",
                f"no hay ningún documento {document_id} que pueda leer",
            ),
            layer="documents",
        )
    return row[0]


async def document_file(
    conn: AsyncConnection, user: User | None, document_id: int
) -> tuple[bytes, str, str | None]:
    """A document's bytes, media type and file name, for those who may read it."""
    async with reading(conn, user):
        cur = await conn.execute(
            "SELECT bytes, media_type, filename FROM document_files WHERE id = %s",
            (document_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            Said(
                f"no document {document_id} you may read",
                f"no hay ningún documento {document_id} que pueda leer",
            ),
            layer="documents",
        )
    return bytes(row[0]), row[1], row[2]


async def parcel_records(conn: AsyncConnection, parcel_id: int, user: User | None) -> dict:
    """A parcel's holders, rights and documents as ``user`` may see them (None: anonymous),
    for the parcel sheet and the map's popup.

    ``holders``: one entry per party holding a right on it (id, kind, illustrative, and name,
    id_number, contact only for editors and admins of the party's commune); ``rights``: every
    right with its party, kind, share, dates and status (note only for those editors and
    admins); ``documents``: those the reader may read, attached to the parcel, to one of its
    rights or to one of its holders, with title, sha256, media type, size and position.
    NotFound when there is no such parcel."""
    query = (
        """
        SELECT
          (SELECT coalesce(json_agg(json_build_object('id', h.id, 'kind', h.kind,
                                                      'illustrative', h.illustrative)::jsonb
                                    || json_strip_nulls(json_build_object(
                                           'name', h.name, 'id_number', h.id_number,
                                           'contact', h.contact))::jsonb ORDER BY h.id),
                           '[]'::json)
           FROM party_register h
           WHERE h.id IN (SELECT party_id FROM right_register WHERE parcel_id = %(parcel)s)),
          (SELECT coalesce(json_agg(json_build_object(
                      'id', r.id, 'party', r.party_id, 'kind', r.kind, 'share', r.share,
                      'starts_on', r.starts_on, 'ends_on', r.ends_on, 'status', r.status,
                      'illustrative', r.illustrative)::jsonb
                      || json_strip_nulls(json_build_object('note', r.note))::jsonb
                   ORDER BY r.id), '[]'::json)
           FROM right_register r WHERE r.parcel_id = %(parcel)s),
          (SELECT coalesce(json_agg("""
        + _DOCUMENT
        + """ ORDER BY d.id), '[]'::json)
           FROM document_register d
           WHERE d.parcel_id = %(parcel)s
              OR d.right_id IN (SELECT id FROM right_register WHERE parcel_id = %(parcel)s)
              OR d.party_id IN (SELECT party_id FROM right_register
                                WHERE parcel_id = %(parcel)s)),
          EXISTS (SELECT FROM parcels WHERE id = %(parcel)s)"""
    )
    async with reading(conn, user):
        cur = await conn.execute(query, {"parcel": parcel_id})
        holders, rights_, documents, exists = await cur.fetchone()
    if not exists:
        raise NotFound(
            Said(f"no parcel {parcel_id}", f"no existe la parcela {parcel_id}"), layer="parcels"
        )
    return {"holders": holders, "rights": rights_, "documents": documents}


async def photo_positions(
    conn: AsyncConnection, user: User | None, commune_id: int
) -> dict[str, Any]:
    """A commune's documents that carry a GPS position, as GeoJSON points (title, type, what
    they are attached to), for those who may read them; an empty collection for anyone else."""
    async with reading(conn, user):
        cur = await conn.execute(
            """SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object(
                       'type', 'Feature', 'id', d.id,
                       'geometry', ST_AsGeoJSON(d.position, 7)::json,
                       'properties', json_build_object(
                           'title', d.title, 'sha256', d.sha256, 'media_type', d.media_type,
                           'party', d.party_id, 'right', d.right_id, 'parcel', d.parcel_id,
                           'taken_at', d.taken_at)) ORDER BY d.id), '[]'::json))
               FROM document_register d
               WHERE d.commune_id = %s AND d.position IS NOT NULL""",
            (commune_id,),
        )
        (found,) = await cur.fetchone()
    return found


async def holdings_size(
    conn: AsyncConnection, user: User | None, commune_id: int
) -> tuple[int, int]:
    """How many of the commune's parcels have rights this reader sees, and their vertices:
    what its map weighs before drawing them (commune_holdings)."""
    async with reading(conn, user):
        cur = await conn.execute(
            "SELECT count(*), coalesce(sum(ST_NPoints(pc.geom)), 0) FROM parcels pc "
            "WHERE pc.id IN (SELECT parcel_id FROM right_register WHERE commune_id = %s)",
            (commune_id,),
        )
        parcels, vertices = await cur.fetchone()
    return int(parcels), int(vertices)


async def commune_holdings(
    conn: AsyncConnection, user: User | None, commune_id: int, lang: str, *, points: bool = False
) -> str:
    """GeoJSON text of the commune's parcels that have rights, for its map's popup: ``rights``
    (each right's kind, status and share) and ``holders`` (each holder's name for editors and
    admins of its commune, its kind for everyone else), labelled in ``lang``; ``points``: each
    parcel as a point on it rather than its shape (a map of many)."""
    labels = {
        name: json.dumps({code: label.get(lang) for code, label in domain.values.items()})
        for name, domain in (("party", PARTY_KIND), ("right", RIGHT_KIND), ("status", RIGHT_STATUS))
    }
    async with reading(conn, user):
        cur = await conn.execute(
            """SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object(
                       'type', 'Feature', 'id', t.id,
                       'geometry', ST_AsGeoJSON(CASE WHEN %(points)s THEN ST_PointOnSurface(t.geom)
                                                     ELSE t.geom END, 7)::json,
                       'properties', json_build_object('code', t.code, 'holders', t.holders,
                                                       'rights', t.rights))
                   ORDER BY t.id), '[]'::json))::text
               FROM (SELECT pc.id, pc.code, pc.geom,
                            string_agg(DISTINCT coalesce(h.name, %(party)s::jsonb ->> h.kind),
                                       '; ') AS holders,
                            string_agg((%(right)s::jsonb ->> r.kind) || ' — '
                                       || (%(status)s::jsonb ->> r.status)
                                       || CASE WHEN r.share < 1
                                               THEN ' (' || round(r.share * 100) || ' %%)'
                                               ELSE '' END,
                                       '; ' ORDER BY r.id) AS rights
                     FROM right_register r
                     JOIN parcels pc ON pc.id = r.parcel_id
                     JOIN party_register h ON h.id = r.party_id
                     WHERE r.commune_id = %(commune)s
                     GROUP BY pc.id) t""",
            {**labels, "commune": commune_id, "points": points},
        )
        (found,) = await cur.fetchone()
    return found
