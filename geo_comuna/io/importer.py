"""Import a file into a layer: pyogrio reads it, pyproj reprojects it to EPSG:4326,
features/validate.py checks every feature, io/pgcopy.py encodes them and io/bulk.py COPYs
them, all in one transaction.

A file's columns stay Arrow data from GDAL to the COPY rows: no pandas on the way, which the
import command then does not load at all (cli/app.py). A file is read in pieces as they are
stored (io/pieces.py), so an import's memory does not grow with the file.

Any bad feature stops the import before anything is written and is named by its 1-based
position in the file. Columns are matched to the layer's properties by name, ignoring case
and the 10-character truncation of Shapefile field names; other columns are reported, not
stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import User, local_admin, writing
from geo_comuna.errors import Forbidden, InvalidFile, InvalidGeometry, InvalidInput, Said
from geo_comuna.features import attributes, validate
from geo_comuna.features.write import columns
from geo_comuna.io import bulk, keys, pgcopy, pieces
from geo_comuna.io.formats import GDAL_ERRORS, Format, unreadable
from geo_comuna.io.formulas import restore_text
from geo_comuna.io.geometries import Geometries, to_wgs84
from geo_comuna.io.outside import Outside
from geo_comuna.io.reading import (
    SAVE_AS_UTF8,
    RawFile,
    csv_text_as_written,
    is_text_type,
    read_isolated,
    read_raw,
)
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.layers.model import fold
from geo_comuna.settings import Settings

Progress = Callable[[str], None]
#: what an import does with a feature whose natural key is stored: refuse it, or update it
Mode = Literal["insert", "upsert"]


def check_mode(layer: Layer, mode: Mode) -> None:
    """An upsert matches features by their natural key: a layer without one cannot, and
    would insert every feature of the file again (an export imported back doubled it)."""
    if mode == "upsert" and not layer.natural_key:
        keyed = ", ".join(name for name, lay in LAYERS.items() if lay.natural_key)
        raise InvalidInput(
            Said(
                f"{layer.name} has no natural key, so an upsert cannot tell a stored feature "
                f"from a new one (layers with one: {keyed}). Import without upsert to add the "
                "file's features, or change stored features by id (PUT or PATCH "
                f"/collections/{layer.name}/items/{{id}}, or the field package's sync)",
                f"{layer.name} no tiene clave natural, así que un upsert no puede distinguir "
                f"una entidad guardada de una nueva (capas con clave: {keyed}). Importe sin "
                "upsert para añadir las entidades del archivo, o cambie las guardadas por su "
                f"id (PUT o PATCH /collections/{layer.name}/items/{{id}}, o la sincronización "
                "del paquete de campo)",
            ),
            layer=layer.name,
        )


@dataclass
class ImportReport:
    layer: str
    file: str
    format: str
    source_crs: str
    features: int
    ignored_columns: list[str] = field(default_factory=list)
    mode: Mode = "insert"
    #: of ``features``: new ones, stored ones changed, stored ones already as the file has them
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repairs: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: an upsert's properties the file has no column for: a stored feature it updates keeps
    #: its own values of them (a feature it adds has none)
    kept_columns: list[str] = field(default_factory=list)
    #: made and rolled back: the counts say what the import would write
    dry_run: bool = False
    #: an upsert's first stored features changed (bulk.CHANGES_LISTED), in the file's order:
    #: id, position in the file, and per property changed [stored value, the file's]
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: its features whose shape lies outside their commune's extent: how many, and the first
    #: few by position in the file and a point of each (io/outside.py): a digit off, say
    outside_commune: dict[str, Any] = field(default_factory=lambda: dict(NONE_OUTSIDE))
    #: its features that came with heights or measures (Z, M), left out of the 2-D store: how
    #: many, and the first by position in the file
    heights_dropped: dict[str, Any] = field(default_factory=lambda: dict(NONE_HEIGHTS))
    #: the CRS the file declares, where the one given (--crs, ?crs=) overrode another
    file_crs_overridden: str | None = None


def _check_utf8(table: pa.Table, name: str) -> None:
    """Arrow keeps a CSV's bytes as they are: invalid UTF-8 (Excel's Windows-1252, say) would
    only fail later, mid-validation, as a 500."""
    for column in table.column_names:
        if is_text_type(table.schema.field(column).type):
            try:
                table.column(column).validate(full=True)
            except pa.ArrowInvalid:
                raise InvalidFile(
                    Said(
                        f"{name}: column {column!r} is not UTF-8 text; {SAVE_AS_UTF8}",
                        f"{name}: la columna {column!r} no es texto UTF-8; {SAVE_AS_UTF8.es}",
                    )
                ) from None


def read(
    path: Path, layer: Layer, settings: Settings, raw: RawFile | None = None
) -> tuple[pa.Table, Geometries, Format]:
    """The file's attribute columns and its geometries (as WKB, in the file's own CRS).
    ``raw``: the file as reading.start() already read it."""
    raw = raw or read_raw(path, layer, settings)
    geometry = raw.meta["geometry_name"] or "wkb_geometry"
    wkb = raw.table.column(geometry)
    table = raw.table.drop_columns([geometry])
    if raw.fmt.name == "csv" and not raw.isolated:  # read as written in the child already
        try:
            table = csv_text_as_written(raw.source, table, layer)
        except GDAL_ERRORS as exc:
            raise unreadable(path.name, raw.fmt.driver, exc) from None
    _check_utf8(table, path.name)  # the columns read again too
    if raw.fmt.name == "csv":  # our own CSV exports escape formula-like cells
        table = restore_text(table)
    return table, Geometries(wkb, file_crs=raw.meta["crs"]), raw.fmt


def match_columns(table: pa.Table, layer: Layer) -> tuple[pa.Table, list[str]]:
    """The file's columns named like layer properties (case-insensitive, Shapefile 10-char
    names), renamed to them; the other columns' names."""
    wanted = {name.lower(): name for name in layer.property_names}
    wanted.update({name[:10].lower(): name for name in layer.property_names})
    renames: dict[str, str] = {}
    ignored = []
    for column in table.column_names:
        target = wanted.get(column.lower())
        if target is None:
            ignored.append(column)
            continue
        other = next((c for c, t in renames.items() if t == target), None)
        if other is not None:  # a Shapefile's 10 letters and the whole name, say
            raise InvalidFile(
                Said(
                    f"columns {other!r} and {column!r} both give {target!r}: keep one",
                    f"las columnas {other!r} y {column!r} dan las dos {target!r}: deje una",
                )
            )  # found from outside: 'recovered_' was taken and 'recovered_on' ignored
        renames[column] = target
    return table.select(list(renames)).rename_columns(list(renames.values())), ignored


@dataclass(frozen=True)
class Mapping:
    """How a file that names things its own way maps onto the layer: ``renames`` (the file's
    column -> a property), ``values`` (property -> the file's value -> a code or label).
    ``--rename tenure_status=tenure``, ``--map land_use:maize=crops``; the same over HTTP."""

    renames: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, layer: Layer, renames: Sequence[str], values: Sequence[str]) -> Mapping:
        """``column=property`` (":" also separates, as a URL may prefer) and
        ``property:value=code``; anything else, or a property the layer lacks, is refused."""
        props = set(layer.property_names)
        out = cls()
        for given in renames:
            column, sep, prop = given.partition("=")
            if not sep:
                column, sep, prop = given.partition(":")
            column, prop = column.strip(), prop.strip()
            if not (sep and column and prop):
                raise InvalidInput(
                    Said(
                        f"rename {given!r}: write it as column=property",
                        f"rename {given!r}: escríbalo como columna=campo",
                    )
                )
            if prop not in props:
                raise InvalidInput(
                    Said(
                        f"rename {given!r}: {layer.name} has no property {prop!r}; "
                        f"its properties: {', '.join(layer.property_names)}",
                        f"rename {given!r}: {layer.name} no tiene el campo {prop!r}; "
                        f"sus campos: {', '.join(layer.property_names)}",
                    )
                )
            twice = next((c for c, p in out.renames.items() if p == prop), None)
            if twice is not None:  # found from outside: a 500 (two columns of one name)
                raise InvalidInput(
                    Said(
                        f"rename {given!r}: {twice!r} is renamed to {prop!r} already; one "
                        "column gives a property",
                        f"rename {given!r}: {twice!r} ya se renombra a {prop!r}; una sola "
                        "columna da cada campo",
                    )
                )
            out.renames[column] = prop
        for given in values:
            prop, sep, pair = given.partition(":")
            value, eq, code = pair.partition("=")
            prop, value, code = prop.strip(), value.strip(), code.strip()
            if not (sep and eq and prop and value and code):
                raise InvalidInput(
                    Said(
                        f"map {given!r}: write it as property:value=code",
                        f"map {given!r}: escríbalo como campo:valor=código",
                    )
                )
            attr = layer.attribute(prop)
            if attr is None or attr.type != "text":
                text = [a.name for a in layer.attributes if a.type == "text"]
                raise InvalidInput(
                    Said(
                        f"map {given!r}: {layer.name} has no text property {prop!r}; "
                        f"its text properties: {', '.join(text)}",
                        f"map {given!r}: {layer.name} no tiene el campo de texto {prop!r}; "
                        f"sus campos de texto: {', '.join(text)}",
                    )
                )
            if attr.domain is not None and attr.domain.code(code) is None:
                raise InvalidInput(
                    Said(
                        f"map {given!r}: {code!r} is not a value of {prop}; "
                        f"its values: {', '.join(attr.domain.labels('en'))}",
                        f"map {given!r}: {code!r} no es un valor de {prop}; "
                        f"sus valores: {', '.join(attr.domain.labels('es'))}",
                    )
                )
            out.values.setdefault(prop, {})[fold(value)] = code
        return out

    def rename(self, table: pa.Table, name: str) -> pa.Table:
        """The file's columns renamed as asked; a column the file lacks is refused, as a typo
        in an option would otherwise be ignored."""
        if not self.renames:
            return table
        missing = [c for c in self.renames if c not in table.column_names]
        if missing:
            raise InvalidFile(
                Said(
                    f"{name} has no column {', '.join(map(repr, missing))} to rename; "
                    f"its columns: {', '.join(table.column_names)}",
                    f"{name} no tiene ninguna columna {', '.join(map(repr, missing))} que "
                    f"renombrar; sus columnas: {', '.join(table.column_names)}",
                )
            )
        for column, prop in self.renames.items():
            # found from outside: the file's own column of the property was dropped without
            # a word (and the renamed one kept): which one gives it is the file's to say
            also = [c for c in table.column_names if c != column and c.lower() == prop.lower()]
            if also:
                raise InvalidFile(
                    Said(
                        f"{name}: {column!r} is renamed to {prop!r}, and the file has a "
                        f"column {also[0]!r} too: rename or remove one of them",
                        f"{name}: {column!r} se renombra a {prop!r}, y el archivo tiene "
                        f"también una columna {also[0]!r}: renombre o quite una de ellas",
                    )
                )
        return table.rename_columns([self.renames.get(c, c) for c in table.column_names])

    def map_values(self, table: pa.Table) -> pa.Table:
        """Each mapped property's values replaced, compared as people type them (case,
        accents and blanks aside); other values stay, for validation to judge."""
        for prop, pairs in self.values.items():
            if prop not in table.column_names:
                continue
            data = table.column(prop).combine_chunks()
            if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
                continue
            distinct = pc.unique(data)
            mapped = pa.array(
                [None if v is None else pairs.get(fold(v), v) for v in distinct.to_pylist()],
                data.type,
            )
            table = table.set_column(
                table.column_names.index(prop),
                prop,
                pc.take(mapped, pc.index_in(data, value_set=distinct)),
            )
        return table


def _holds_values(column: pa.ChunkedArray) -> bool:
    """Does a column hold anything (a text other than blanks)? One that does not loses
    nothing when it is left out: a KML's Name column of placemarks without names."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.utf8_trim_whitespace(column)
        return bool(pc.any(pc.not_equal(column, "")).as_py())
    return column.null_count < len(column)


def suggest_renames(layer: Layer, ignored: Sequence[str], matched: Sequence[str]) -> None:
    """Refuse a file whose unmatched column looks like a property the file does not give
    (``tenure_status`` for tenure, ``uso`` for land use by its Spanish title): its data
    would be dropped (or a required property found missing on every feature). The message
    names the option that imports it."""
    missing = [a for a in layer.attributes if a.name not in matched]
    missing += [r for r in layer.references if r.name not in matched]
    if not missing:
        return
    import difflib  # only for a file lacking some property

    spellings: dict[str, str] = {}
    for prop in missing:
        for spelling in (prop.name, prop.title.es, prop.title.en):
            spellings.setdefault(fold(spelling).replace(" ", "_"), prop.name)
    if "code" in spellings.values() and "name" not in layer.property_names:
        # a feature's name, where the layer has none, is its code: a KML's placemark names
        # (GDAL's Name column) were left out unsaid, and the parcels stored without codes
        # (found from outside)
        spellings.setdefault("name", "code")
        spellings.setdefault("nombre", "code")
    for column in ignored:
        folded = fold(column).replace(" ", "_")
        target = spellings.get(folded)
        if target is None:
            near = [  # a word of the column (tenure_status) or its start (tenencia_actual)
                s
                for s in spellings
                if len(s) >= 3 and (s in folded.split("_") or folded.startswith(f"{s}_"))
            ]
            near = near or difflib.get_close_matches(folded, list(spellings), n=1, cutoff=0.75)
            target = spellings[near[0]] if near else None
        if target is not None:
            raise InvalidFile(
                Said(
                    f"column {column} is not a property of {layer.name}: "
                    f"--rename {column}={target}? (HTTP: rename={column}:{target}); "
                    f"{layer.name}'s properties: {', '.join(layer.property_names)}",
                    f"la columna {column} no es un campo de {layer.name}: "
                    f"¿--rename {column}={target}? (HTTP: rename={column}:{target}); "
                    f"campos de {layer.name}: {', '.join(layer.property_names)}",
                ),
                layer=layer.name,
            )


#: features between two progress lines of a big import
PROGRESS_EVERY = 50_000


@dataclass
class Written:
    """What write_frame did: features in the file, inserted, updated; repairs made."""

    features: int
    inserted: int
    updated: int
    repairs: list[dict[str, Any]]
    changes: list[dict[str, Any]] = field(default_factory=list)  # bulk.copy_in's
    #: its features outside their commune's extent (io/outside.py)
    outside: dict[str, Any] = field(default_factory=lambda: dict(NONE_OUTSIDE))
    #: its features whose heights were left out
    heights: dict[str, Any] = field(default_factory=lambda: dict(NONE_HEIGHTS))


async def write_frame(
    conn: AsyncConnection,
    layer: Layer,
    table: pa.Table,
    geometries: Geometries | Sequence[Any],
    settings: Settings,
    *,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
    defaults: dict[str, int] | None = None,
    mode: Mode = "insert",
    lang: str = "es",
) -> Written:
    """Validate columns named like the layer's properties (an Arrow table, as GDAL reads a
    file's) plus EPSG:4326 geometries and COPY them, in one transaction (``write``)."""
    if not isinstance(geometries, Geometries):
        geometries = np.asarray(geometries, dtype=object)
    return await write(
        conn,
        layer,
        pieces.Sliced(table, geometries),
        settings,
        repair=repair,
        progress=progress,
        user=user,
        defaults=defaults,
        mode=mode,
        lang=lang,
    )


async def write(
    conn: AsyncConnection,
    layer: Layer,
    source: pieces.Source,
    settings: Settings,
    *,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
    defaults: dict[str, int] | None = None,
    mode: Mode = "insert",
    lang: str = "es",
    given: Sequence[str] | None = None,
    allow_copies: bool = False,
    dry_run: bool = False,
    online: bool = False,
    note: str | None = None,
) -> Written:
    """Validate the features of ``source`` (io/pieces.py) and COPY them, in one transaction
    (``note``: why, as accounts.writing records it).
    ``online`` (an upload to the running service) or ``dry_run``: the layer's indexes are
    kept (bulk.copy_in), so readers are never locked out for the import's length.
    ``defaults``: references.resolve's. ``given``: the properties the file has columns for
    (None: all); an upsert updates only those of a stored feature, and its shape. Into a
    layer without a natural key, a feature the layer holds already (every field and the
    shape) is refused unless ``allow_copies`` (bulk.refuse_copies). ``dry_run``: the whole
    import is made, then rolled back: what it would write, with every refusal it would make.

    A feature whose natural key (``Layer.natural_key``) repeats in the file is refused; one
    whose key is stored is refused too (``mode`` "insert") or updates the stored feature
    ("upsert"; unchanged ones are left as they are). ``lang``: the language of the labels an
    unknown value's message lists.

    Validation runs piece by piece in a worker thread (off the event loop, so a big upload
    does not stall other requests) while PostgreSQL takes the previous piece; the first bad
    feature, in whichever piece, aborts the COPY and rolls everything back, so nothing of the
    file is written. Imports into one layer wait for each other (bulk.queue_import).

    ``user`` None is the local admin (the CLI). Only an admin's import COPYs straight into the
    table; anyone else's goes through a staging table and an INSERT that row-level security
    checks (PostgreSQL has no COPY FROM under row-level security)."""
    check_mode(layer, mode)
    user = user or local_admin()
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; importing needs an editor or admin token",
                f"el usuario {user.name!r} es {user.role}; para importar hace falta un token de "
                "editor o admin",
            )
        )
    if layer.edit_scope is None and user.role != "admin":
        # row-level security hides every row of it from an editor's update: an upsert said
        # "unchanged" of a file it had not written
        raise Forbidden(
            Said(
                f"only admins change {layer.name}; user {user.name!r} is an editor",
                f"solo los administradores cambian {layer.name}; el usuario {user.name!r} es "
                "editor",
            ),
            layer=layer.name,
        )
    say = progress or (lambda _msg: None)
    total = source.total
    repairs: list[dict[str, Any]] = []
    sent: list[int] = []  # features per piece
    outside: Outside | None = None  # made once the import holds its queue
    keyless = [0]  # features giving no whole natural key, which may copy a stored one
    heights = dict(NONE_HEIGHTS)  # features whose Z or M the 2-D store leaves out

    def check(batch: pieces.Batch, refs: dict[str, list]) -> bulk.Piece:
        rows, labels = batch.table.num_rows, batch.labels
        attrs = attributes.check_attributes(layer, batch.table, labels, lang=lang, hint=True)
        if isinstance(batch.geometries, Geometries):
            given, wkb, high = batch.geometries.take(0, rows, labels)
        else:
            given, wkb = batch.geometries, None
            high = shapely.has_z(given) | shapely.has_m(given)
        _count_heights(heights, high, labels)
        geoms, fixed = validate.check_geometries(
            layer,
            given,
            labels,
            service_bbox=settings.service_bbox,
            repair=repair,
            promote=False,
        )
        repairs.extend(fixed)
        if outside is not None:
            outside.add(geoms, refs, labels)
        sent.append(rows)
        data = pgcopy.copy_rows(layer, validate.Checked(attrs, geoms, fixed), refs, wkb)
        done = batch.start + rows
        if total > pieces.CHUNK and (done % PROGRESS_EVERY < rows or done == total):
            say(
                Said(
                    f"validated and sent {done:,} of {total:,} features",
                    f"validadas y enviadas {done:,} de {total:,} entidades",
                )
            )
        return bulk.Piece(data, refs, rows)

    one = total == 1
    say(
        Said(
            f"validating and writing {total:,} feature{'' if one else 's'}",
            f"validando y escribiendo {total:,} entidad{'' if one else 'es'}",
        )
    )
    admin = user.role == "admin"
    # an import is long by nature: its pieces are bound by their size (and the file by
    # max_features_per_import), not by a request's deadline; a repair in it still stops after
    # Limits.compute_seconds (work.isolated)
    try:
        with work.scope(work.limits(), None, None, work.cache()):
            async with writing(conn, user, row_security=not admin, note=note):
                await conn.execute("SET LOCAL statement_timeout = 0")  # a queue and a long COPY
                await bulk.queue_import(conn, layer)
                # what the file's keys may meet: the features stored before this import
                before = await keys.stored_before(conn, layer) if layer.natural_key else None
                upsert = mode == "upsert" and before is not None
                copies_after = None
                if not allow_copies and not upsert:  # what a copy of a stored one would be
                    copies_after = await bulk.last_id(conn, layer)
                if layer.commune_ref is not None:
                    boxes = await bulk.commune_boxes(conn)
                    outside = Outside(boxes, layer.commune_ref.column)
                chunks = pieces.stream(
                    conn,
                    layer,
                    source,
                    check,
                    defaults=defaults,
                    before=before,
                    refuse_stored=mode == "insert",
                    scoped=not admin,
                    keyless=keyless,
                )
                async with aclosing(chunks):
                    inserted, updated, changes = await bulk.copy_in(
                        conn,
                        layer,
                        chunks,
                        rows=total,
                        staged=not admin,
                        upsert_key=layer.key_columns if upsert else None,
                        upsert_columns=_updated_columns(layer, given, defaults),
                        # found from outside: a 500,000-parcel dry run uploaded kept every
                        # reader of parcels waiting 9.8 s on the dropped indexes' lock
                        keep_indexes=online or dry_run,
                        refuse_keyless=not allow_copies,
                    )
                if copies_after is not None and (keyless[0] or not layer.natural_key):
                    await bulk.refuse_copies(conn, layer, copies_after)
                found = outside.report() if outside is not None else dict(NONE_OUTSIDE)
                written = Written(sum(sent), inserted, updated, repairs, changes, found, heights)
                if dry_run:  # every check made and every row written: now undone
                    raise _Tried(written)
    except _Tried as tried:
        return tried.written
    return written


#: a report's heights_dropped when none is
NONE_HEIGHTS: dict[str, Any] = {"count": 0, "first": None}


def _count_heights(heights: dict[str, Any], high: np.ndarray, labels: Sequence) -> None:
    """Count a piece's geometries that came with heights or measures (``high``: Z, M), which
    the 2-D store leaves out, and note the first (found from outside: a GPS survey's heights
    were left out without a word)."""
    found = np.flatnonzero(high)
    if found.size:
        if heights["first"] is None:
            heights["first"] = labels[int(found[0])]
        heights["count"] += int(found.size)


#: a report's outside_commune when none is
NONE_OUTSIDE: dict[str, Any] = {"count": 0, "first": []}


class _Tried(Exception):
    """A dry run's import, written and rolled back: what it would have written."""

    def __init__(self, written: Written) -> None:
        self.written = written


def _updated_columns(
    layer: Layer, given: Sequence[str] | None, defaults: dict[str, int] | None
) -> list[str]:
    """The columns an upsert sets on a stored feature: those of the properties the file
    gives (a reference given by --commune too), and the shape. A column the file lacks kept
    its stored values: a GDAL download leaves members-only notes out, and importing it back
    emptied every parcel's notes."""
    if given is None:
        return columns(layer)
    have = _have(given, defaults)
    return [
        *(r.column for r in layer.references if r.name in have),
        *(a.name for a in layer.attributes if a.name in have),
        bulk.GEOMETRY,
    ]


async def import_file(
    conn: AsyncConnection,
    layer: Layer,
    path: Path,
    settings: Settings,
    *,
    crs: str | None = None,
    commune: str | None = None,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
    reading: Future[RawFile] | None = None,
    mode: Mode = "insert",
    mapping: Mapping | None = None,
    lang: str = "es",
    allow_copies: bool = False,
    dry_run: bool = False,
    isolated: bool = False,
    note: str | None = None,
) -> ImportReport:
    """Read, reproject, validate and COPY ``path`` into ``layer``: all or nothing.
    ``reading``: GDAL's read of ``path``, already started by reading.start(). ``mode``: what
    a feature whose natural key is stored does (write_frame); ``mapping``: the file's own
    column names and values; ``lang``: the labels' language in messages; ``allow_copies``
    and ``dry_run``: see write; ``isolated``: GDAL reads the file in a child process killed
    when it is slow (an upload: reading.read_isolated); ``note``: why (accounts.writing)."""
    check_mode(layer, mode)  # before a possibly big file is read
    mapping = mapping or Mapping()
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    commune_id = None
    if commune is not None and layer.commune_ref is not None:
        from geo_comuna.features.query import require_commune  # loaded only when asked

        # by id or code, like everywhere else; checked before a possibly big file is used
        commune_id = await require_commune(conn, commune)
    say(Said(f"reading {path.name}", f"leyendo {path.name}"))
    if reading is not None:
        raw = await asyncio.wrap_future(reading)
    else:
        raw = await _opened(read_isolated if isolated else read_raw, path, layer, settings)
    defaults = None if commune_id is None else {layer.commune_ref.name: commune_id}
    try:
        read_s = time.perf_counter() - started
        source, geometries, ignored, given = await _source(
            raw, path, layer, settings, crs, mapping, say
        )
        written = await write(
            conn,
            layer,
            source,
            settings,
            repair=repair,
            progress=say,
            user=user,
            defaults=defaults,
            mode=mode,
            lang=lang,
            given=given,
            allow_copies=allow_copies,
            dry_run=dry_run,
            online=isolated,
            note=note,
        )
    except InvalidGeometry as exc:
        exc.layer = exc.layer or layer.name  # one the file's geometries refused
        if exc.reason != validate.MISSING or not isinstance(exc.feature, int):
            raise
        # a geometry GDAL could not read came as none: the file says what it held
        try:
            why = await asyncio.to_thread(raw.unread_geometry, exc.feature, path)
        except Exception:  # noqa: BLE001 - a reason found or not, the feature is refused
            why = None
        if why is None:
            raise exc from None
        raise InvalidGeometry(why, feature=exc.feature, layer=exc.layer) from None
    finally:
        raw.close()
    for line in change_lines(layer, written.updated, written.changes, dry_run):
        say(line)
    if written.outside["count"]:
        say(outside_line(written.outside, dry_run))
    if written.heights["count"]:
        say(heights_line(written.heights))
    seconds = {"read": round(read_s, 3), "total": round(time.perf_counter() - started, 3)}
    return ImportReport(
        layer.name,
        path.name,
        raw.fmt.name,
        geometries.label,
        written.features,
        ignored,
        mode,
        written.inserted,
        written.updated,
        written.features - written.inserted - written.updated,
        written.repairs,
        seconds,
        kept_columns=_kept(layer, mode, given, defaults),
        dry_run=dry_run,
        changes=written.changes,
        outside_commune=written.outside,
        heights_dropped=written.heights,
        file_crs_overridden=geometries.overrode,
    )


def _es(count: int) -> str:
    """A count as Spanish writes it: 1.234."""
    return f"{count:,}".replace(",", ".")


def done_line(report: ImportReport) -> Said:
    """What an import did, in one line a person reads (the report itself is JSON, for
    programs): "imported 97 features of parcels.gpkg into parcels: 95 new, 2 updated, 0
    unchanged, in 0.5 s"."""
    n = report.features
    seconds = report.seconds.get("total", 0.0)
    segundos = f"{seconds:.1f}".replace(".", ",")
    plural = "" if n == 1 else "s"
    dry = report.dry_run
    return Said(
        f"{'would import' if dry else 'imported'} {n:,} feature{plural} of {report.file} into "
        f"{report.layer}: {report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, in {seconds:.1f} s"
        + (" (dry run: nothing written)" if dry else ""),
        f"{'importaría' if dry else 'importó'} {_es(n)} entidad{'' if n == 1 else 'es'} de "
        f"{report.file} en {report.layer}: {_es(report.inserted)} "
        f"nueva{'' if report.inserted == 1 else 's'}, {_es(report.updated)} "
        f"actualizada{'' if report.updated == 1 else 's'}, {_es(report.unchanged)} sin cambios, en "
        f"{segundos} s" + (" (simulación: no se guardó nada)" if dry else ""),
    )


def heights_line(heights: dict[str, Any]) -> Said:
    """The note of heights or measures left out, as a person reads it."""
    count, first = heights["count"], heights["first"]
    one = count == 1
    return Said(
        f"note: {count:,} feature{'' if one else 's'} came with heights or measures (Z, M), "
        f"which the store, in two dimensions, leaves out (the first: feature {first})",
        f"nota: {count:,} entidad{'' if one else 'es'} venía{'' if one else 'n'} con alturas "
        f"o medidas (Z, M), que el almacén, en dos dimensiones, deja fuera (la primera: "
        f"entidad {first})",
    )


def outside_line(outside: dict[str, Any], dry_run: bool) -> Said:
    """The warning of features outside their commune's extent, as a person reads it."""
    count, first = outside["count"], outside["first"][0]
    at = f"{first['lon']:.6f}, {first['lat']:.6f}"
    one = count == 1
    if dry_run:
        verb, verb_es = "would lie", "quedaría" if one else "quedarían"
    else:
        verb, verb_es = ("lies" if one else "lie"), ("queda" if one else "quedan")
    return Said(
        f"warning: {count:,} feature{'' if one else 's'} {verb} outside "
        f"{'its' if one else 'their'} commune's extent (the first: feature {first['feature']}, "
        f"at {at}): check the coordinates, or the commune given",
        f"aviso: {count:,} entidad{'' if one else 'es'} {verb_es} fuera de la extensión de su "
        f"comuna (la primera: entidad {first['feature']}, en {at}): revise las coordenadas, o "
        "la comuna indicada",
    )


def change_lines(
    layer: Layer, updated: int, changes: list[dict[str, Any]], dry_run: bool
) -> list[Said]:
    """An upsert's stored features changed, as lines a person reads (the CLI's progress):
    what each field was and what the file makes it."""
    if not changes:
        return []
    verb = ("would update", "actualizaría") if dry_run else ("updated", "actualizó")
    one = updated == 1
    lines = [
        Said(
            f"{verb[0]} {updated:,} feature{'' if one else 's'}:",
            f"{verb[1]} {updated:,} entidad{'' if one else 'es'}:",
        )
    ]
    for change in changes:
        parts_en, parts_es = [], []
        for name, values in change["fields"].items():
            if name == "geometry":
                parts_en.append("geometry changed")
                parts_es.append("geometría cambiada")
                continue
            item = layer.attribute(name) or layer.reference(name)
            title = item.title if item is not None else None
            stored, given = (_shown(v) for v in values)
            parts_en.append(f"{title.en if title else name}: {stored} -> {given}")
            parts_es.append(f"{title.es if title else name}: {stored} -> {given}")
        where = f"{change['feature']} (id {change['id']})"
        lines.append(
            Said(
                f"feature {where}: {'; '.join(parts_en)}",
                f"entidad {where}: {'; '.join(parts_es)}",
            )
        )
    if updated > len(changes):
        more = updated - len(changes)
        lines.append(Said(f"... and {more:,} more", f"... y {more:,} más"))
    return lines


def _shown(value: Any) -> str:
    """A value in a change line: quoted text, cut at 60 characters; ∅ for none."""
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text if len(text) <= 60 else f"{text[:57]}..."
    return repr(text) if isinstance(value, str) else text


async def _opened(read: Callable[..., RawFile], *args: Any) -> RawFile:
    """``read(*args, pieces.CHUNK)`` on a thread. Its caller may be cancelled meanwhile (the
    uploader left: api/transfer.py): the thread goes on, and the file it opens is closed
    when it is done. Found from outside: each upload left so held its reading process and one
    of the reader slots for good, and after four every upload of the worker waited 20 s."""
    context = contextvars.copy_context()  # the request's limits, as asyncio.to_thread does
    loop = asyncio.get_running_loop()
    reading = loop.run_in_executor(None, context.run, read, *args, pieces.CHUNK)
    try:
        return await asyncio.shield(reading)
    except asyncio.CancelledError:
        reading.add_done_callback(_close_read)
        raise


def _close_read(done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is None:
        done.result().close()


def _have(given: Sequence[str], defaults: dict[str, int] | None) -> set[str]:
    """The properties an import gives: the file's columns, and a reference given by
    --commune."""
    return set(given) | set(defaults or ())


def _kept(layer: Layer, mode: Mode, given: list[str], defaults: dict[str, int] | None) -> list[str]:
    """What an upsert's report names as kept: the writable properties the file lacks."""
    if mode != "upsert":
        return []
    have = _have(given, defaults)
    return [name for name in layer.property_names if name not in have]


def _columns(table: pa.Table, layer: Layer, mapping: Mapping, name: str) -> pa.Table:
    """A file's attribute columns as the layer's properties: renamed as asked, matched by
    name, mapped values replaced."""
    table, _ = match_columns(mapping.rename(table, name), layer)
    return mapping.map_values(table)


async def _source(
    raw: RawFile,
    path: Path,
    layer: Layer,
    settings: Settings,
    crs: str | None,
    mapping: Mapping,
    say: Progress,
) -> tuple[pieces.Source, Geometries, list[str], list[str]]:
    """The file's features as io/pieces reads them, their geometries' way to WGS 84 (the CRS
    they come in), the columns that are not properties, and the properties it has columns
    for. A streamed file's columns are judged on its first batch (each batch has the same);
    CSV is read whole (``read``)."""
    if raw.more is None:
        table, geometries, fmt = await asyncio.to_thread(read, path, layer, settings, raw)
    else:
        geometry = raw.meta["geometry_name"] or "wkb_geometry"
        table, fmt = raw.table.drop_columns([geometry]), raw.fmt
        geometries = Geometries(raw.table.column(geometry), file_crs=raw.meta["crs"])
    geometries = to_wgs84(geometries, fmt, crs)
    if geometries.overrode:
        say(
            Said(
                f"the file says its CRS is {geometries.overrode}; read as {geometries.label}, "
                "as asked",
                f"el archivo dice que su CRS es {geometries.overrode}; se lee como "
                f"{geometries.label}, como se pidió",
            )
        )
    if geometries.source is not None:
        say(
            Said(
                f"reprojecting from {geometries.label} while validating",
                f"reproyectando desde {geometries.label} mientras se valida",
            )
        )
    renamed = mapping.rename(table, path.name)
    matched, ignored = match_columns(renamed, layer)
    suggest_renames(
        layer, [c for c in ignored if _holds_values(renamed.column(c))], matched.column_names
    )
    given = matched.column_names
    if raw.more is None:
        sliced = pieces.Sliced(mapping.map_values(matched), geometries)
        return sliced, geometries, ignored, given

    def prepare(batch: pa.Table) -> pa.Table:
        _check_utf8(batch, path.name)
        return _columns(batch, layer, mapping, path.name)

    streamed = pieces.Streamed(raw, path.name, geometries, prepare)
    return streamed, geometries, ignored, given
