"""An import's features in pieces on their way to COPY: each piece is read (from the file as
GDAL streams it, or sliced from a table in memory), its references resolved and its natural
keys checked, then validated and encoded in a worker thread while PostgreSQL stores the piece
before. At most three pieces are held at once (one being sent, one being checked, one read
ahead), each of at most CHUNK features and PIECE_BYTES of geometry, so an import's memory does
not grow with the file, nor with its features' vertices: a 1,000,000-parcel GeoPackage read
as one Arrow table took ~900 MB (bench/README.md, "Import at every size").

Checks that need the whole file stay bounded too: references are resolved piece by piece
(one query each for the codes it names), and a natural key repeated across pieces is found
from a 64-bit hash per feature (io/keys.Seen), the file read once more only to name it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import AsyncConnection

from geo_comuna.db.refusals import said_by_database
from geo_comuna.errors import Conflict, Forbidden, InvalidFile, Said
from geo_comuna.features import references
from geo_comuna.io import bulk, keys
from geo_comuna.io.formats import GDAL_ERRORS, gdal_reason
from geo_comuna.io.geometries import Geometries
from geo_comuna.io.reading import BATCH, RawFile
from geo_comuna.layers import Layer

#: features read, validated and sent per COPY piece: small enough that memory stays bounded
#: (reading.BATCH says how much) and PostgreSQL starts early, big enough that each piece is
#: vectorised work
CHUNK = BATCH
#: ... and at most this much geometry (WKB bytes; one feature at least): 5,000 parcels of
#: 50,000 vertices would be 4 GB in one piece. An 80 MB file of 100 such parcels peaked at
#: 728 MB as one piece, at 274 MB in pieces of 4 MB (490 MB at 32 MB); ordinary parcels are
#: ~0.7 MB per CHUNK and never cut
PIECE_BYTES = 4 * 2**20


@dataclass
class Batch:
    """Consecutive features of a file: attribute columns named like the layer's properties,
    their geometries, and the 0-based position of the first in the file."""

    table: pa.Table
    geometries: Geometries | np.ndarray
    start: int

    @property
    def labels(self) -> range:
        """The features' 1-based positions in the file: how errors name them."""
        return range(self.start + 1, self.start + self.table.num_rows + 1)


class Source(Protocol):
    total: int  # features the file holds, as its reader counts them

    def next(self) -> Batch | None:
        """The next batch (called in the import's worker thread); None after the last."""

    def again(self) -> Iterator[Batch]:
        """Every batch once more, without geometries (to name a repeated key)."""


def _fitting(sizes: np.ndarray) -> int:
    """How many of the first rows, whose geometries take ``sizes`` bytes of WKB, make one
    piece: at most CHUNK of them and PIECE_BYTES, one at least."""
    cut = int(np.searchsorted(np.cumsum(sizes[:CHUNK]), PIECE_BYTES, side="right"))
    return max(cut, 1)


def _wkb_sizes(wkb: pa.ChunkedArray | pa.Array | np.ndarray) -> np.ndarray:
    """Bytes of each WKB geometry (0: none)."""
    if isinstance(wkb, pa.ChunkedArray | pa.Array):
        return pc.fill_null(pc.binary_length(wkb), 0).to_numpy()
    return np.fromiter((0 if b is None else len(b) for b in wkb), np.int64, len(wkb))


def _edges(sizes: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each piece of rows whose geometries take ``sizes`` bytes (no rows:
    one empty piece)."""
    edges, start = [], 0
    if not len(sizes):
        return [(0, 0)]
    while start < len(sizes):
        stop = start + _fitting(sizes[start:])
        edges.append((start, stop))
        start = stop
    return edges


class Sliced:
    """A table held in memory (a request body, a CSV, a sample file) cut into pieces, bounded
    alike by CHUNK and PIECE_BYTES (geometries already decoded: by CHUNK alone)."""

    def __init__(self, table: pa.Table, geometries: Geometries | np.ndarray) -> None:
        self.table, self.geometries, self.total = table, geometries, table.num_rows
        wkb = isinstance(geometries, Geometries)
        sizes = _wkb_sizes(geometries.wkb) if wkb else np.zeros(self.total, np.int64)
        self._pieces = _edges(sizes)
        self._spans = iter(self._pieces)

    def _batch(self, start: int, stop: int) -> Batch:
        geoms = self.geometries
        if isinstance(geoms, Geometries):
            part: Geometries | np.ndarray = geoms.of(geoms.wkb[start:stop])
        else:
            part = geoms[start:stop]
        return Batch(self.table.slice(start, stop - start), part, start)

    def next(self) -> Batch | None:
        span = next(self._spans, None)
        return None if span is None else self._batch(*span)

    def again(self) -> Iterator[Batch]:
        for start, stop in self._pieces:
            yield Batch(self.table.slice(start, stop - start), np.empty(0, object), start)


class Streamed:
    """A file as GDAL streams it (reading.read_raw with a batch size of CHUNK): the first
    batch already read, each next one read when asked for. ``prepare`` turns a batch's
    attribute columns into the layer's (renames, matching, mapped values), alike for all."""

    def __init__(
        self,
        raw: RawFile,
        name: str,
        geometries: Geometries,
        prepare: Callable[[pa.Table], pa.Table],
    ) -> None:
        self.raw, self.name, self.geometries, self.prepare = raw, name, geometries, prepare
        self.total = raw.features
        self._geometry = raw.meta["geometry_name"] or "wkb_geometry"
        self._ready = [raw.table]  # the first batch, read by reading.read_raw
        self._start = 0

    def _read(self, batches: pa.RecordBatchReader) -> pa.Table | None:
        try:
            return pa.Table.from_batches([batches.read_next_batch()])
        except StopIteration:
            return None
        except (*GDAL_ERRORS, pa.ArrowException) as exc:
            why = gdal_reason(exc)
            raise InvalidFile(
                Said(
                    f"cannot read {self.name} after feature {self._start:,}: {why}",
                    f"no se puede leer {self.name} después de la entidad {self._start:,}: {why.es}",
                )
            ) from None

    def next(self) -> Batch | None:
        while True:
            if self._ready:
                table = self._ready.pop(0)
            elif self.raw.more is None or (table := self._read(self.raw.more)) is None:
                return None
            if table.num_rows:
                break
        table = self._bounded(table)
        if 0 <= self.total < self._start + table.num_rows:
            # the limit was checked against the count the file gives (a GeoPackage's
            # gpkg_ogr_contents, the uploader's to write: 1 for 2.5 M rows)
            raise InvalidFile(
                Said(
                    f"{self.name} says it holds {self.total:,} features but holds more: its "
                    "feature count is wrong (save it again with QGIS or ogr2ogr)",
                    f"{self.name} dice contener {self.total:,} entidades pero contiene más: su "
                    "recuento de entidades está mal (vuelva a guardarlo con QGIS u ogr2ogr)",
                )
            )
        wkb = table.column(self._geometry)
        table = self.prepare(table.drop_columns([self._geometry]))
        batch = Batch(table, self.geometries.of(wkb), self._start)
        self._start += table.num_rows
        return batch

    def _bounded(self, table: pa.Table) -> pa.Table:
        """The first rows of ``table`` whose geometries hold at most PIECE_BYTES (one row at
        least); the others are put back to be read next."""
        cut = _fitting(_wkb_sizes(table.column(self._geometry)))
        if cut >= table.num_rows:
            return table
        self._ready.insert(0, table.slice(cut))
        return table.slice(0, cut)

    def again(self) -> Iterator[Batch]:
        start = 0
        with self.raw.attributes(CHUNK, self.name) as batches:
            while (table := self._read(batches)) is not None:
                yield Batch(self.prepare(table), np.empty(0, object), start)
                start += table.num_rows


def _in_context() -> Callable[..., Any]:
    return contextvars.copy_context().run


async def stream(
    conn: AsyncConnection,
    layer: Layer,
    source: Source,
    check: Callable[[Batch, dict[str, list]], bulk.Piece],
    *,
    defaults: dict[str, int] | None = None,
    before: int | None = None,
    refuse_stored: bool = True,
    scoped: bool = False,
    keyless: list[int] | None = None,
) -> AsyncIterator[bulk.Piece]:
    """The pieces of ``source`` as io/bulk.copy_in sends them. For each batch: its references
    resolved and its natural keys checked here (one query each), then ``check(batch, refs)``
    (validation and encoding) in a worker thread, in a copy of the caller's context (the
    request's limits, work.py), while the piece before is sent and the next one read.

    ``before``: the highest id the layer held when the import began (None: empty). With
    ``refuse_stored`` (a plain import) a feature whose key one of those holds is refused. A
    key repeated across batches is refused naming both features: before its piece is sent
    while the natural key's index is live (it would refuse the row unnamed), else after the
    last piece; either way nothing is committed with it.

    ``scoped`` (an editor's import): a feature of a commune the writer may not edit is
    refused (403) before its key is looked up, so that an editor learns nothing of another
    commune's stored keys from a conflict.

    ``keyless`` (one count): the features that give no whole natural key are added to it, as
    the keys' check finds them (the copies of stored features they may be, io/bulk.py)."""
    loop = asyncio.get_running_loop()
    seen = keys.Seen()
    # runs once copy_in has decided on the indexes: a bulk load has dropped it by now
    live = bool(layer.natural_key) and await keys.index_live(conn, layer)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-comuna-import") as pool:

        def later(work: Callable[..., Any], *args: Any) -> asyncio.Future:
            return loop.run_in_executor(pool, _in_context(), work, *args)

        ahead, checking = later(source.next), None
        try:
            while (batch := await ahead) is not None:
                refs = await references.resolve(conn, layer, batch.table, batch.labels, defaults)
                if scoped:
                    await _refuse_outside_scope(conn, layer, refs, batch.labels)
                given = keys.of(layer, batch.table, refs)
                if keyless is not None:
                    keyless[0] += keys.without(layer, given, batch.table.num_rows)
                if given is not None:
                    keys.refuse_repeats(layer, batch.table, given, batch.labels)
                    seen.add(given)
                    if live or (refuse_stored and before is not None):
                        # live: the index finds the earlier pieces' keys too
                        found = await keys.stored(conn, layer, given, None if live else before)
                        if _met_earlier_piece(layer, batch, found, before, refuse_stored):
                            await _refuse_repeat(conn, layer, source, seen, pool, defaults)
                checked, ahead = later(check, batch, refs), later(source.next)
                if checking is not None:
                    yield await checking
                checking = checked
            if checking is not None:
                piece, checking = checking, None
                yield await piece
        finally:
            await _drop(ahead, checking)
        if seen.repeated():
            await _refuse_repeat(conn, layer, source, seen, pool, defaults)


async def _drop(*futures: asyncio.Future | None) -> None:
    """Cancel what is still queued (the consumer stopped early) and wait for it to end."""
    left = [f for f in futures if f is not None and not f.done()]
    for future in left:
        future.cancel()
    if left:
        await asyncio.gather(*left, return_exceptions=True)


def _met_earlier_piece(
    layer: Layer, batch: Batch, found: dict[int, int], before: int | None, refuse_stored: bool
) -> bool:
    """Of the batch's keys ``found`` stored: refuse one stored before the import began (a
    plain import); True when one was stored by this import's earlier pieces."""
    if refuse_stored:
        earlier = {p: i for p, i in found.items() if i <= (before or 0)}
        keys.refuse_stored(layer, batch.table, earlier, batch.labels)
    return any(i > (before or 0) for i in found.values())


async def _refuse_outside_scope(
    conn: AsyncConnection, layer: Layer, refs: dict[str, list], labels: Sequence
) -> None:
    """The first feature whose commune (the layer's ``edit_scope``) the writer may not edit,
    refused with the reason row-level security would give (db/functions/place_refusals.sql,
    asked with the request's settings): one query for the piece's distinct communes."""
    communes = refs.get(layer.edit_scope or "")
    if communes is None:  # the scope is no reference of the file (a commune's own id)
        return
    distinct = sorted({c for c in communes if c is not None})
    cur = await conn.execute(
        "SELECT c, geo_comuna_place_refusal(c, NULL) FROM unnest(%s::integer[]) AS c",
        (distinct + ([None] if None in communes else []),),
    )
    refused = {c: reason for c, reason in await cur.fetchall() if reason is not None}
    for row, commune in enumerate(communes):
        if commune in refused:
            raise Forbidden(
                said_by_database(refused[commune]), feature=labels[row], layer=layer.name
            )


async def _refuse_repeat(
    conn: AsyncConnection,
    layer: Layer,
    source: Source,
    seen: keys.Seen,
    pool: ThreadPoolExecutor,
    defaults: dict[str, int] | None,
) -> None:
    """Two batches so far hold keys of one hash: read the file's keys again and name the
    first feature whose key an earlier feature holds (nothing, if only the hashes were
    alike). Only the suspects' keys are kept, so this stays as bounded as the import."""
    loop = asyncio.get_running_loop()
    suspects = seen.suspects()
    batches = source.again()
    first: dict[tuple, int] = {}
    while (batch := await loop.run_in_executor(pool, next, batches, None)) is not None:
        refs = await references.resolve(conn, layer, batch.table, batch.labels, defaults)
        given = keys.of(layer, batch.table, refs)
        if given is None:
            continue
        for row, key in keys.among(given, suspects):
            label = batch.labels[row]
            if key in first:
                named = keys.describe(layer, batch.table, row)
                raise Conflict(
                    Said(
                        f"{named} is also the key of feature "
                        f"{first[key]} of the file; a key names one feature",
                        f"la clave {named.es} también es la de la entidad {first[key]} del "
                        "archivo; cada clave corresponde a una sola entidad",
                    ),
                    feature=label,
                    layer=layer.name,
                )
            first[key] = label
