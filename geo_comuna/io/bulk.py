"""How an import loads its rows: binary COPY statements, one per piece, under a bulk-load
policy that PostgreSQL's own checks make safe.

- Imports into one layer queue behind each other (``queue_import``).
- A bulk load into an (almost) empty layer drops the secondary indexes and builds them after
  the COPY (``BULK_ROWS``).
- A superuser's COPY skips PostgreSQL's per-row foreign-key checks when they are provably
  redundant (replica mode; the referenced rows are locked once each instead).
- The COPY's unix socket asks for a send buffer that holds a whole piece.

Figures behind each choice: bench/README.md, "Where the time goes".
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, errors, sql

from geo_comuna import work
from geo_comuna.errors import Conflict, InvalidFile, Said
from geo_comuna.features.write import (
    SHAPE_TOLERANCE,
    columns,
    kept_shape,
    refusals,
    same_ground,
)
from geo_comuna.io.pgcopy import COPY_HEADER, COPY_TRAILER
from geo_comuna.layers import Layer

#: advisory lock class of imports; the other key is the layer's table (its oid)
IMPORT_QUEUE = 0x6763_696D


async def queue_import(conn: AsyncConnection, layer: Layer) -> None:
    """Wait until no other import into ``layer`` is running, and make later ones wait until
    this transaction ends: imports into one layer run one after the other. Side by side they
    deadlocked: four imports of 20,000 parcels each found the layer fit for a bulk load, read
    it, then asked to drop its indexes (_indexes_to_rebuild) while the others still read it,
    and PostgreSQL cancelled all but one. In turn, each finds the layer as the one before left
    it. Call before anything reads the layer, so that no import holds a lock the one ahead
    waits for."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, %s::regclass::oid::integer)",
        (IMPORT_QUEUE, layer.table),
    )


#: a COPY of at least this many rows into a table holding no more rows than it brings builds
#: the table's secondary indexes afterwards instead of growing them row by row: ~5x cheaper
#: for the GiST index, ~3x for a btree over a column with many repeats (commune_id)
BULK_ROWS = 20_000


async def _indexes_to_rebuild(conn: AsyncConnection, layer: Layer, rows: int) -> list[str]:
    """Drop the layer's secondary indexes before a bulk load into an (almost) empty table and
    return the statements that build them again. Building an index over sorted input costs a
    fraction of inserting 200,000 entries one by one. Indexes behind a constraint (the primary
    key that other layers reference, unique codes) stay, so every row is still checked as it
    arrives. A unique index of a natural key (migration 0020) is rebuilt too: the import has
    checked the keys (io/keys.py), DROP INDEX keeps every other writer out until the import
    commits, and building it again checks every row once more. The price is that DROP INDEX
    locks the table against readers until the import commits (a few seconds), so small
    imports and imports into a big table keep them."""
    if rows < BULK_ROWS:
        return []
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT FROM {} LIMIT %s) t").format(
            sql.Identifier(layer.table)
        ),
        (rows + 1,),
    )
    if (await cur.fetchone())[0] > rows:
        return []
    cur = await conn.execute(
        """SELECT format('%%I', c.relname), pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = to_regclass(%s)
              AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = i.indexrelid)
            ORDER BY c.relname""",
        (layer.table,),
    )
    found = await cur.fetchall()
    for name, _ in found:
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    return [definition for _, definition in found]


async def _may_skip_key_checks(conn: AsyncConnection, layer: Layer) -> bool:
    """May this COPY run without PostgreSQL's per-row foreign-key checks (~1 s per 200,000
    rows)? Only when it can be proven redundant: the connection is a superuser (replica mode is
    theirs alone), every foreign key of the table is a registry reference that
    ``references.resolve`` has checked, and every trigger of the table fires ALWAYS (audit,
    history, layer versions; migration 0010), so replica mode skips the key checks and
    nothing else. Each piece's referenced rows are then locked before it is sent
    (``_lock_references``)."""
    cur = await conn.execute(
        """SELECT current_setting('is_superuser') = 'on',
                  (SELECT coalesce(array_agg(a.attname::text), '{}')
                     FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                    WHERE c.conrelid = to_regclass(%(t)s) AND c.contype = 'f'),
                  NOT EXISTS (SELECT FROM pg_trigger
                               WHERE tgrelid = to_regclass(%(t)s) AND NOT tgisinternal
                                 AND tgenabled <> 'A')""",
        {"t": layer.table},
    )
    superuser, key_columns, triggers_always = await cur.fetchone()
    checked = {r.column for r in layer.references}
    return bool(superuser and triggers_always and set(key_columns) <= checked)


async def _lock_references(
    conn: AsyncConnection, layer: Layer, refs: dict[str, list], locked: dict[str, set[int]]
) -> bool:
    """Lock the rows a piece references FOR KEY SHARE, once per distinct id over the import
    (``locked`` remembers them), which is exactly what each per-row check would have done:
    nobody can delete them before the import commits. False when one has gone since
    ``references.resolve`` saw it: PostgreSQL must then check this piece's rows itself."""
    for ref in layer.references:
        seen = locked.setdefault(ref.column, set())
        ids = sorted({i for i in refs[ref.column] if i is not None} - seen)
        if not ids:
            continue
        cur = await conn.execute(
            sql.SQL(
                "SELECT count(*) FROM (SELECT FROM {} WHERE id = ANY(%s) FOR KEY SHARE) t"
            ).format(sql.Identifier(ref.table)),
            (ids,),
        )
        if (await cur.fetchone())[0] != len(ids):  # deleted since resolved: let PostgreSQL say
            return False
        seen.update(ids)
    return True


@dataclass
class Piece:
    """Rows of binary COPY (pgcopy.copy_rows) and the resolved references they hold, by
    foreign-key column."""

    data: bytes | memoryview
    refs: dict[str, list]
    rows: int


async def _send(
    conn: AsyncConnection,
    layer: Layer,
    statement: sql.Composable,
    pieces: AsyncIterable[Piece],
    skip_key_checks: bool,
) -> int:
    """A COPY per piece: each statement's triggers (its audit entry, its first tenures) then
    run over its own rows while the next piece is validated, not over all the rows after the
    last one (~0.4 s of a 200,000-parcel import). With ``skip_key_checks`` a piece goes in
    replica mode once its references are locked; if a referenced row has gone, that piece and
    the rest go with PostgreSQL's own checks. Returns the rows sent."""
    replica, sent = False, 0
    locked: dict[str, set[int]] = {}
    async with conn.cursor() as cur:
        async for piece in pieces:
            if skip_key_checks and not await _lock_references(conn, layer, piece.refs, locked):
                skip_key_checks = False
            if skip_key_checks != replica:
                replica = skip_key_checks
                await conn.execute(
                    "SET LOCAL session_replication_role = " + ("replica" if replica else "origin")
                )
            async with cur.copy(statement) as copy:
                await copy.write(COPY_HEADER)
                await copy.write(piece.data)
                await copy.write(COPY_TRAILER)
            sent += piece.rows
    if replica:  # SET LOCAL would outlive this block inside an enclosing transaction
        await conn.execute("SET LOCAL session_replication_role = origin")
    return sent


#: socket send buffer asked for before a COPY over a unix socket (Linux doubles it for its own
#: bookkeeping and caps it at net.core.wmem_max): a whole piece (~1.1 MB for 5,000 parcels,
#: 4.3 MB for 20,000) then fits, so the kernel takes it in one go. With the default ~200 kB the
#: event loop had to wake some 20 times per 4.3 MB piece to send the rest, each time waiting for
#: the GIL held by the thread validating the next piece: ~0.3 s of a 200,000-parcel import
#: (bench/README.md).
COPY_SEND_BUFFER = 4 * 1024 * 1024


def _roomy_send_buffer(conn: AsyncConnection) -> None:
    """Ask for COPY_SEND_BUFFER on the connection's unix socket; TCP tunes its own buffers."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:  # the dup is closed after
        if sock.family == socket.AF_UNIX:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, COPY_SEND_BUFFER)
            except OSError:  # a system that refuses the size: the import is only slower
                pass


#: the geometry's column in every layer's table (features/write.py's columns)
GEOMETRY = "geom"


async def _stage(conn: AsyncConnection, cols: sql.Composable, table: sql.Identifier) -> None:
    await conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE _geo_comuna_import ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(cols, table)
    )
    await conn.execute(  # numbered by COPY in the order the rows come
        "ALTER TABLE _geo_comuna_import ADD COLUMN _n bigint GENERATED ALWAYS AS IDENTITY"
    )


#: the stored features an upsert changes that its report lists, with their values
CHANGES_LISTED = 100


def _diff(values: list[str], properties: dict[str, str]) -> sql.Composable:
    """Per property of ``values`` the stored value (``o``, the row before the update) and the
    file's (``s``) where they differ, and "geometry": "changed" where the shape moved: what a
    planner reads before an upsert writes (its dry run). Found from outside, a Shapefile
    written by GDAL cut a note at 254 bytes and turned its dash into '?', and the upsert's
    counts said only "updated: 1"."""
    fields = [
        sql.SQL(
            "{name}, CASE WHEN o.{c} IS DISTINCT FROM s.{c} "
            "THEN jsonb_build_array(to_jsonb(o.{c}), to_jsonb(s.{c})) END"
        ).format(name=sql.Literal(properties.get(c, c)), c=sql.Identifier(c))
        for c in values
    ]
    return sql.SQL(
        "jsonb_strip_nulls(jsonb_build_object({fields}, 'geometry', CASE WHEN NOT "
        "geo_comuna_same_shape(o.geom, s.geom, {tolerance}) THEN 'changed' END))"
    ).format(fields=sql.SQL(", ").join(fields), tolerance=sql.Literal(SHAPE_TOLERANCE))


async def _unstage(
    conn: AsyncConnection,
    cols: sql.Composable,
    table: sql.Identifier,
    names: list[str],
    key: list[str] | None,
    properties: dict[str, str] | None = None,
    *,
    layer: Layer,
    refuse_keyless: bool = False,
) -> tuple[int, int, list[dict[str, Any]]]:
    """Move the staged rows into the table: (inserted, updated). With a natural ``key`` (an
    upsert), a row whose key is stored updates that feature's ``names`` (its other columns
    keep their values), and only when one of them differs or its shape is another
    (geo_comuna_same_shape): an unchanged feature keeps its version, so an export imported
    back changes nothing, from any format and CRS; a row without a whole key that a stored
    feature matches in ``names`` and shape is unchanged too. Rows are inserted with every
    column. Also the first CHANGES_LISTED stored features it changes, in the file's order,
    each with its id, its position in the file and its changed fields (_diff).
    ``refuse_keyless``: refuse a row without a whole key on a stored feature's ground that
    it is not alike (keyless_copy) instead of inserting it."""
    updated, changes = 0, []
    new = sql.SQL("")
    if key:
        same_key = sql.SQL(" AND ").join(
            sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in key
        )
        values = [c for c in names if c != GEOMETRY]
        theirs = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values)
        ours = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in values)
        every = sql.SQL(", ").join(
            kept_shape(sql.SQL("t.geom"), sql.SQL("s.geom"))
            if c == GEOMETRY
            else sql.SQL("s.{}").format(sql.Identifier(c))
            for c in names
        )
        # ``o``: the same row as it was (a second scan of the table sees it before this
        # statement's update), for the first CHANGES_LISTED changes' old values
        cur = await conn.execute(
            sql.SQL(
                "WITH done AS (UPDATE {table} t SET ({set}) = ROW({every}) "
                "FROM _geo_comuna_import s, {table} o "
                "WHERE {same_key} AND o.id = t.id AND (ROW({theirs}) IS DISTINCT FROM "
                "ROW({ours}) OR NOT geo_comuna_same_shape(t.geom, s.geom, {tolerance})) "
                "AND set_config('geo_comuna.feature', s._n::text, true) IS NOT NULL "
                "RETURNING t.id, s._n, {diff} AS fields) "
                "SELECT (SELECT count(*) FROM done), (SELECT coalesce(jsonb_agg("
                "jsonb_build_object('id', f.id, 'feature', f._n, 'fields', f.fields) "
                "ORDER BY f._n), '[]') FROM (SELECT * FROM done ORDER BY _n LIMIT {limit}) f)"
            ).format(
                table=table,
                set=sql.SQL(", ").join(map(sql.Identifier, names)),
                every=every,
                theirs=theirs,
                ours=ours,
                same_key=same_key,
                tolerance=sql.Literal(SHAPE_TOLERANCE),
                diff=_diff(values, properties or {}),
                limit=sql.Literal(CHANGES_LISTED),
            )
        )
        updated, changes = await cur.fetchone()
        # a row without a whole key (a parcel without a code) is new, unless a stored
        # feature is the same in every column given and in shape: an export imported back
        # added its parcels without code again at every upsert
        incomplete = _incomplete(layer, "s")
        alike = sql.SQL(" AND ").join(
            sql.SQL("t.{c} IS NOT DISTINCT FROM s.{c}").format(c=sql.Identifier(c)) for c in values
        )
        new = sql.SQL(
            " AND NOT EXISTS (SELECT FROM {table} t WHERE {same_key})"
            " AND NOT (({incomplete}) AND EXISTS (SELECT FROM {table} t WHERE t.geom && s.geom"
            " AND {alike} AND geo_comuna_same_shape(t.geom, s.geom, {tolerance})))"
        ).format(
            table=table,
            same_key=same_key,
            incomplete=incomplete,
            alike=alike,
            tolerance=sql.Literal(SHAPE_TOLERANCE),
        )
        if refuse_keyless:
            # one without a whole key on a stored feature's ground, not alike it: the same
            # land under a code lost on the way (refuse_copies, for an upsert)
            found = await _copies_within_bounds(
                conn,
                layer,
                sql.SQL(
                    "SELECT s._n, o.id FROM _geo_comuna_import s JOIN LATERAL (SELECT o.id "
                    "FROM {table} o WHERE o.geom && s.geom AND {not_other} AND {ground} "
                    "LIMIT 1) o ON true "
                    "WHERE ({incomplete}) AND NOT EXISTS (SELECT FROM {table} t WHERE t.geom "
                    "&& s.geom AND {alike} AND geo_comuna_same_shape(t.geom, s.geom, "
                    "{tolerance})) ORDER BY s._n LIMIT 1"
                ).format(
                    table=table,
                    not_other=_not_other(layer, "s"),
                    ground=_same_ground("o", "s"),
                    incomplete=incomplete,
                    alike=alike,
                    tolerance=sql.Literal(SHAPE_TOLERANCE),
                ),
            )
            if found is not None:
                raise await keyless_copy(conn, layer, *found)
    # the scan sets each row's number just before the row is inserted and checked
    cur = await conn.execute(
        sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM _geo_comuna_import s "
            "WHERE set_config('geo_comuna.feature', _n::text, true) IS NOT NULL{}"
        ).format(table, cols, cols, new)
    )
    inserted = cur.rowcount
    await conn.execute("SELECT set_config('geo_comuna.feature', '', true)")
    await conn.execute("DROP TABLE _geo_comuna_import")
    return inserted, updated, changes


async def copy_in(
    conn: AsyncConnection,
    layer: Layer,
    pieces: AsyncIterable[Piece],
    *,
    rows: int,
    staged: bool = False,
    upsert_key: list[str] | None = None,
    upsert_columns: list[str] | None = None,
    keep_indexes: bool = False,
    refuse_keyless: bool = False,
) -> tuple[int, int, list[dict[str, Any]]]:
    """Bulk insert with binary COPY (imports): ``pieces`` are sent as one COPY statement each
    as they come, so PostgreSQL stores one while the caller validates the next; ``rows``: how
    many they hold in all (what the file says), for the bulk-load policy.

    ``staged`` COPYs into a temporary table first and inserts from it, so row-level security
    sees every row; each row carries its position (1-based, as the pieces came), which the
    INSERT hands to the database as it writes the row, so that a row the policies refuse is
    named by it. Otherwise a bulk load rebuilds the secondary indexes afterwards and, when
    provably redundant, skips the per-row foreign-key checks (see the helpers above), unless
    ``keep_indexes`` (a load while the service answers readers: DROP INDEX locks them out).

    ``upsert_key``: the natural key's columns of an upsert, which always goes through the
    staging table: a row whose key is stored updates that feature instead (``_unstage``), in
    ``upsert_columns`` only (None: all); with ``refuse_keyless``, a row without a whole key on
    a stored feature's ground is refused (keyless_copy).
    Returns (rows inserted, rows updated, the first stored features changed: _changes)."""
    names = columns(layer)
    cols = sql.SQL(", ").join(map(sql.Identifier, names))
    staged = staged or bool(upsert_key)
    updated, changes = 0, []
    table = sql.Identifier(layer.table)
    target = sql.Identifier("_geo_comuna_import") if staged else table
    with refusals(layer):
        rebuild, skip_key_checks = [], False
        if staged:
            await _stage(conn, cols, table)
        else:
            rebuild = [] if keep_indexes else await _indexes_to_rebuild(conn, layer, rows)
            skip_key_checks = await _may_skip_key_checks(conn, layer)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(target, cols)
        _roomy_send_buffer(conn)
        inserted = await _send(conn, layer, statement, pieces, skip_key_checks)
        if staged:
            properties = {r.column: r.name for r in layer.references}
            inserted, updated, changes = await _unstage(
                conn,
                cols,
                table,
                upsert_columns or names,
                upsert_key,
                properties,
                layer=layer,
                refuse_keyless=refuse_keyless,
            )
        for definition in rebuild:
            await conn.execute(definition)
        await analyze_after_load(conn, layer, inserted)
    return inserted, updated, changes


#: a load of at least this many rows, and of a tenth of what the table held, analyses it
ANALYZE_ROWS = 1_000


async def analyze_after_load(conn: AsyncConnection, layer: Layer, rows: int) -> None:
    """ANALYZE the layer's table after a load large against it, inside the import's
    transaction: the statistics commit with the rows, before anyone reads the layer's new
    version. Autovacuum would get there within a minute or so, but the first national
    breakdown after an import is exactly the one computed afresh (the import bumped the
    version), and it was planned on the statistics of the table as it was (empty after a
    truncation, a tenth of its size...). A tenth, as autovacuum's own threshold; ~0.2 s for
    200,000 parcels (a sample of 30,000 rows), against ~9 s for their import."""
    cur = await conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (layer.table,)
    )
    (held,) = await cur.fetchone()
    if rows >= max(ANALYZE_ROWS, 0.1 * max(held, 0)):
        await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(layer.table)))


async def last_id(conn: AsyncConnection, layer: Layer) -> int:
    """The highest id the layer holds now: what an import adds comes after it."""
    cur = await conn.execute(
        sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(layer.table))
    )
    return (await cur.fetchone())[0]


async def commune_boxes(conn: AsyncConnection) -> dict[int, tuple[float, ...]]:
    """Each commune's extent (xmin, ymin, xmax, ymax, lon/lat) by id: what an import's
    features are held against (io/outside.py). 0.3 ms for 329 communes."""
    cur = await conn.execute(
        "SELECT id, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
        "FROM communes, box2d(geom) b WHERE geom IS NOT NULL"
    )
    return {row[0]: tuple(row[1:]) for row in await cur.fetchall()}


#: features of a file at one place before its stored neighbours are read once and matched
#: by their values' text (refuse_copies), instead of probed one by one
FEW_AT_ONE_PLACE = 8


async def refuse_copies(conn: AsyncConnection, layer: Layer, before: int) -> None:
    """Refuse an import that adds a feature the layer held already (its ids above ``before``
    are the import's, in the file's order): into a layer without a natural key, one the same
    in every column and shape (an export imported back added 14 production units that were
    there already); into a layer with one, a feature without a whole key on a stored one's
    ground (keyless_copy). The copies are found through the shapes' index."""
    if layer.natural_key:  # a feature without its whole key, by the key's parts it gives
        probed = _incomplete(layer, "n")
        compared = list(layer.key_columns)
        same = sql.SQL("{} AND {}").format(_not_other(layer, "n"), _same_ground("o", "n"))
        few = sql.SQL("2147483647")  # each feature probed alone: not_other is no equality
    else:  # a feature the same in every column and shape
        probed = sql.SQL("true")
        compared = [c for c in columns(layer) if c != GEOMETRY]
        same = sql.SQL(" AND ").join(
            [
                *(
                    sql.SQL("o.{c} IS NOT DISTINCT FROM n.{c}").format(c=sql.Identifier(c))
                    for c in compared
                ),
                sql.SQL("geo_comuna_same_shape(o.geom, n.geom, {})").format(
                    sql.Literal(SHAPE_TOLERANCE)
                ),
            ]
        )
        few = sql.Literal(FEW_AT_ONE_PLACE)
    # Each feature is probed through the shapes' index, but for those of a place many of the
    # file's features share (homes at one point: a survey without GPS puts them all at the
    # commune's centre): the index holds the file's own rows too, and each probe there walked
    # every one of them (found from outside: 10,000 homes at one point took 16 s, 20,000 were
    # refused for time). Such a place's stored neighbours are read once, and its features
    # matched to them by a hash of their values' text. (A first version read every place's
    # stored neighbours: 2,000 overlapping greenhouses took 20 s instead of 3 s.)
    found = await _copies_within_bounds(
        conn,
        layer,
        sql.SQL(
            """WITH crowds AS MATERIALIZED (
                    SELECT n.geom FROM {t} n WHERE n.id > %(before)s AND {probed}
                     GROUP BY n.geom HAVING count(*) > {few}),
               crowded AS MATERIALIZED (  -- their stored neighbours, each shape and values once
                    SELECT g.geom AS place, {o_text} AS alike, o.geom, min(o.id) AS id
                      FROM crowds g
                      CROSS JOIN LATERAL (SELECT * FROM {t} o
                                           WHERE o.geom && g.geom AND o.id <= %(before)s) o
                     GROUP BY 1, 2, 3),
               copies AS MATERIALIZED (
                    SELECT n.id, o.id AS stored FROM {t} n
                      JOIN LATERAL (SELECT o.id FROM {t} o
                                     WHERE o.geom && n.geom AND o.id <= %(before)s AND {same}
                                     LIMIT 1) o ON true
                     WHERE n.id > %(before)s AND {probed}
                       AND NOT EXISTS (SELECT FROM crowds c WHERE c.geom = n.geom)
                    UNION ALL
                    SELECT n.id, min(o.id) FROM {t} n
                      JOIN crowded o ON o.place = n.geom AND o.alike = {n_text}
                     WHERE n.id > %(before)s AND {probed}
                       AND geo_comuna_same_shape(o.geom, n.geom, {tolerance})
                     GROUP BY n.id)
               SELECT (SELECT count(*) FROM {t} x WHERE x.id > %(before)s AND x.id <= f.id),
                      f.stored, (SELECT count(*) FROM copies)
                 FROM (SELECT id, stored FROM copies ORDER BY id LIMIT 1) f"""
        ).format(
            t=sql.Identifier(layer.table),
            probed=probed,
            same=same,
            few=few,
            tolerance=sql.Literal(SHAPE_TOLERANCE),
            n_text=_values_text(layer, "n", compared),
            o_text=_values_text(layer, "o", compared),
        ),
        {"before": before},
    )
    if found is None:
        return
    row, stored, copies = found
    if layer.natural_key:
        raise await keyless_copy(conn, layer, row, stored)
    more = f" (and {copies - 1} more)" if copies > 1 else ""
    mas = f" (y {copies - 1} más)" if copies > 1 else ""
    raise Conflict(
        Said(
            f"{layer.name} holds this feature already as feature {stored}, the same in every "
            f"field and shape{more}: importing it again would add a copy, since {layer.name} "
            "has no natural key to update it by. Leave such features out of the file, change "
            "stored ones by id (PATCH, or the field package's sync), or add them anyway with "
            "--allow-copies (?allow_copies=true)",
            f"{layer.name} ya tiene esta entidad como la entidad {stored}, igual en cada campo y "
            f"en su forma{mas}: importarla de nuevo añadiría una copia, pues {layer.name} no "
            "tiene clave natural por la que actualizarla. Deje esas entidades fuera del "
            "archivo, cambie las guardadas por su id (PATCH, o la sincronización del paquete "
            "de campo), o añádalas igualmente con --allow-copies (?allow_copies=true)",
        ),
        feature=row,
        layer=layer.name,
    )


async def _copies_within_bounds(
    conn: AsyncConnection,
    layer: Layer,
    query: sql.Composable,
    params: dict[str, Any] | None = None,
) -> tuple[Any, ...] | None:
    """The first copy ``query`` finds, within a request's seconds (Limits.compute_seconds):
    the import itself runs without a statement timeout, and a file's features without a key,
    each laid against the stored shapes it overlaps, could keep a CPU busy long. In a
    savepoint, so that the timeout goes with it when it strikes. The refusal names the keys
    only where ``layer`` has them (found from outside: it asked for codes a layer without a
    key cannot take)."""
    seconds = work.limits().compute_seconds
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
            found = await (await conn.execute(query, params)).fetchone()
            await conn.execute("SET LOCAL statement_timeout = 0")  # the import's again
    except errors.QueryCanceled:
        keys = ", ".join(layer.natural_key)
        give = f"give its features their keys ({keys}), " if layer.natural_key else ""
        dar = f"indique las claves ({keys}) de sus entidades, " if layer.natural_key else ""
        raise InvalidFile(
            Said(
                f"looking for copies of stored features among this file's took longer than "
                f"{seconds:g} s: {give}split the file, or add its features anyway with "
                "--allow-copies (?allow_copies=true)",
                f"buscar copias de entidades guardadas entre las de este archivo tardó más de "
                f"{seconds:g} s: {dar}divida el archivo, o añada sus entidades igualmente con "
                "--allow-copies (?allow_copies=true)",
            )
        ) from None
    return found


def _same_ground(stored: str, new: str) -> sql.Composable:
    """write.same_ground of two aliases' rows."""
    return same_ground(
        sql.SQL("{}.geom").format(sql.Identifier(stored)),
        sql.SQL("{}.geom").format(sql.Identifier(new)),
    )


def _values_text(layer: Layer, alias: str, names: list[str]) -> sql.Composable:
    """``alias``'s row's values of ``names`` as one text, the same for rows whose values are
    IS NOT DISTINCT FROM each other's: what refuse_copies groups and hashes them by. A number
    as float8 plus 0 (1.0 and 1.00 numeric, -0 and 0 are then the same text)."""
    numbers = {a.name for a in layer.attributes if a.type == "number"}
    return sql.SQL("ROW({})::text").format(
        sql.SQL(", ").join(
            sql.SQL("({}.{}::float8 + 0)" if c in numbers else "{}.{}").format(
                sql.Identifier(alias), sql.Identifier(c)
            )
            for c in names
        )
    )


def _not_other(layer: Layer, alias: str) -> sql.Composable:
    """``alias``'s row names no other key than the stored row ``o``'s: each part it gives is
    ``o``'s (four files of the same squares under other codes are other parcels)."""
    return sql.SQL(" AND ").join(
        sql.SQL("({a}.{c} IS NULL OR {a}.{c} = o.{c})").format(
            a=sql.Identifier(alias), c=sql.Identifier(c)
        )
        for c in layer.key_columns
    )


def _incomplete(layer: Layer, alias: str) -> sql.Composable:
    """``alias``'s row gives no whole natural key (a parcel without a code)."""
    return sql.SQL("({})").format(
        sql.SQL(" OR ").join(
            sql.SQL("{}.{} IS NULL").format(sql.Identifier(alias), sql.Identifier(c))
            for c in layer.key_columns
        )
    )


async def keyless_copy(conn: AsyncConnection, layer: Layer, row: int, stored: int) -> Conflict:
    """The refusal of the file's feature ``row``, which gives no whole natural key but lies
    on the ground of the stored feature ``stored`` (_same_ground; found from outside: an
    export whose parcel lost its code in a spreadsheet, upserted back, added a second parcel
    on the same land)."""
    named = [n for n in layer.natural_key if layer.reference(n) is None]
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE id = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, named)), sql.Identifier(layer.table)
        ),
        (stored,),
    )
    values = await cur.fetchone()
    given = ", ".join(f"{n} {v!r}" for n, v in zip(named, values or (), strict=False) if v)
    key = f" ({given})" if given else ""
    which = ", ".join(layer.natural_key)
    return Conflict(
        Said(
            f"this feature gives no whole key ({which}) but lies on the ground of "
            f"{layer.name} feature {stored}{key}, stored already: importing it would add a "
            "second one there. Give it its whole key (an upsert then updates that feature), "
            "leave it out of the file, or add it anyway with --allow-copies "
            "(?allow_copies=true)",
            f"esta entidad no indica su clave entera ({which}), pero ocupa el terreno de la "
            f"entidad {stored} de {layer.name}{key}, ya guardada: importarla añadiría una "
            "segunda allí. Indique su clave entera (un upsert actualiza "
            "entonces esa entidad), déjela fuera del archivo, o añádala igualmente con "
            "--allow-copies (?allow_copies=true)",
        ),
        feature=row,
        layer=layer.name,
    )
