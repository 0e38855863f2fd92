"""A commune package as the sync reads it (maps/sync.py): the GeoPackage out of its zip, and
each layer's features, by GDAL's GPKG driver only. For an upload this runs in a child process
(work.in_child) killed when GDAL is slow: the module loads only what reading needs.
"""

from __future__ import annotations

import math
import re
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import shapely

from geo_comuna.errors import InvalidFile, Said, TooLarge
from geo_comuna.io import sniff
from geo_comuna.io.formats import FORMATS, GDAL_ERRORS, gdal_source, pyogrio
from geo_comuna.io.geometries import refuse_deep
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.maps.package_tables import (
    GEOMETRY_COLUMN,
    GPKG,
    ID_COLUMN,
    INFO_TABLE,
    VERSION_COLUMN,
    clipped,
)
from geo_comuna.maps.sync_base import BASE_TABLE, PackageBases
from geo_comuna.settings import Settings


def _as_stored(layer: Layer, geoms: np.ndarray) -> np.ndarray:
    """Polygons of a layer of multipolygons as the database stores them (ST_Multi), so that
    a shape is compared as it would be written. Found from outside: a package saved again as
    Polygon (ogr2ogr -nlt POLYGON, a Shapefile round trip) listed every parcel as moved,
    wrote none, and made an admin's later move a conflict."""
    if layer.geometry_type != "MultiPolygon":
        return geoms
    single = np.flatnonzero(shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON)
    if single.size:
        geoms = geoms.copy()
        geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(single.size))
    return geoms


@dataclass
class Feature:
    """A feature as the package has it: properties by name, shapely geometry (or None)."""

    #: how a new feature is named: its GeoPackage fid, what QGIS and QField show of it (its
    #: position in the layer was, and the fid of another feature; found from outside), or
    #: its 1-based position where the layer has none
    row: int
    id: int | None
    version: int | None
    properties: dict[str, Any]
    geometry: Any
    #: the row's GeoPackage fid: what stays of a new row across edits (package_rows)
    fid: int | None = None


@dataclass
class Package:
    name: str  # the file's name, as the audit records it
    info: dict[str, str]
    layers: dict[str, list[Feature]]
    columns: dict[str, list[str]]  # per layer: the writable properties the package has
    #: each feature as the package was made (maps/sync_base.py); none in a package made
    #: before bases were kept
    bases: PackageBases = field(default_factory=PackageBases)
    #: last written in write-ahead-log mode, and no -wal beside it: edits made while QGIS
    #: still had it open may be missing (io/sniff.wal_left_behind)
    log_left_behind: bool = False
    #: per layer, its other columns holding any value (a value worked out on the server such
    #: as area_ha, a column the field team added): the values, in the layer's row order.
    #: Never written; the sync says which were edited (maps/sync.py not_kept)
    others: dict[str, dict[str, list[Any]]] = field(default_factory=dict)


def _gpkg_member(path: Path, max_unpacked: int) -> str:
    """The zip's one GeoPackage (the package's comuna.gpkg, or the only .gpkg it holds)."""
    sniff.readable_zip(path)
    with zipfile.ZipFile(path) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        gpkgs = [i for i in members if PurePosixPath(i.filename).suffix.lower() == ".gpkg"]
        sniff.no_twins(path, [i.filename for i in members])  # which one is read: the reader's
        named = [i for i in gpkgs if i.filename == GPKG]
        if not named and len(gpkgs) != 1:
            raise InvalidFile(
                Said(
                    f"{path.name} must hold the package's {GPKG} (or exactly one .gpkg); "
                    f"found {len(gpkgs)} GeoPackages",
                    f"{path.name} debe contener el {GPKG} del paquete (o un solo .gpkg); "
                    f"se encontraron {len(gpkgs)} GeoPackages",
                )
            )
        member = (named or gpkgs)[0]
        if member.file_size > max_unpacked:
            raise InvalidFile(
                Said(
                    f"{path.name}: {member.filename[:80]!r} unpacks to {member.file_size} bytes, "
                    f"over the limit of {max_unpacked} (zip bomb?)",
                    f"{path.name}: {member.filename[:80]!r} ocupa {member.file_size} bytes al "
                    f"descomprimirse, más que el límite de {max_unpacked} (¿una bomba zip?)",
                )
            )
        return member.filename


def unpack(path: Path, scratch: Path, max_unpacked: int) -> Path:
    """The GeoPackage to read: ``path`` itself, or its copy out of a zip into ``scratch``
    (under its own name made plain, in a directory of its own: the name messages say), at
    most ``max_unpacked`` bytes, its first bytes checked before the rest is written (found
    from outside: a 611 KB zip wrote 600 MB of zeros to the disk before it was refused)."""
    if path.suffix.lower() != ".zip":
        log = path.with_name(f"{path.name}-wal")
        if not log.exists():
            return path
        # the GeoPackage and the log QGIS still writes beside it, copied and folded together,
        # so that the checks read what GDAL reads (the file itself is the team's: untouched)
        target = Path(tempfile.mkdtemp(dir=scratch)) / path.name
        for source, copy in ((path, target), (log, target.with_name(log.name))):
            with open(source, "rb") as src, open(copy, "wb") as out:
                _copy_within(src, out, max_unpacked, path.name, source.name)
        _fold_log(target)
        return target
    member = _gpkg_member(path, max_unpacked)
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(member).name)[:100].lstrip(".")
    target = Path(tempfile.mkdtemp(dir=scratch)) / (plain or GPKG)
    with zipfile.ZipFile(path) as zf, zf.open(member) as src, open(target, "wb") as out:
        first = src.read(sniff.GPKG_HEAD)
        sniff.gpkg_head(first, plain or GPKG)
        out.write(first)
        _copy_within(src, out, max_unpacked - len(first), path.name, member)
        # sent with the log QGIS keeps while the project is open (its name in any case: a
        # COMUNA.GPKG-WAL beside comuna.gpkg was left out, found from outside)
        log = next((n for n in zf.namelist() if n.casefold() == f"{member}-wal".casefold()), None)
        if log is not None:
            with zf.open(log) as src_log, open(f"{target}-wal", "wb") as out_log:
                _copy_within(src_log, out_log, max_unpacked, path.name, log)
    if Path(f"{target}-wal").exists():
        _fold_log(target)
    return target


def _copy_within(src: Any, out: Any, most: int, name: str, member: str) -> None:
    """Copy ``src`` to ``out``, refusing it past ``most`` bytes (a zip's header may lie)."""
    copied = 0
    while chunk := src.read(1 << 20):
        copied += len(chunk)
        if copied > most:
            raise InvalidFile(
                Said(
                    f"{name}: {member[:80]!r} unpacks to more than allowed",
                    f"{name}: {member[:80]!r} ocupa al descomprimirse más de lo permitido",
                )
            )
        out.write(chunk)


#: the bytes of a write-ahead log's own header: a log of no more holds no edit
_WAL_HEADER = 32


def _damaged_log(gpkg: Path, why: str) -> InvalidFile:
    return InvalidFile(
        Said(
            f"{gpkg.name}: its .gpkg-wal could not be written into it ({why}): close the "
            "project in QGIS and send the GeoPackage again",
            f"{gpkg.name}: su .gpkg-wal no se pudo escribir en él ({why}): cierre el "
            "proyecto en QGIS y envíe de nuevo el GeoPackage",
        )
    )


def _fold_log(gpkg: Path) -> None:
    """Write the write-ahead log that came with a GeoPackage into it (SQLite's checkpoint)
    and leave it a file of its own: found from outside, a zip holding comuna.gpkg-wal was
    read without it, and the stairway, home and deletion in it were lost. Checkpointing copies
    the log's pages as SQLite finds them valid; nothing of the file runs."""
    sent = Path(f"{gpkg}-wal").stat().st_size
    try:
        db = sqlite3.connect(gpkg)
        try:
            db.execute("PRAGMA trusted_schema = OFF")
            # the frames it holds (TRUNCATE reports none, having emptied it), then all of them
            _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode = DELETE")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise _damaged_log(gpkg, str(exc)) from None
    if sent > _WAL_HEADER and frames <= 0:  # SQLite passes over a log it cannot read
        raise _damaged_log(gpkg, "none of it could be read")
    for leftover in (f"{gpkg}-wal", f"{gpkg}-shm"):
        Path(leftover).unlink(missing_ok=True)


def read_upload(
    path: Path,
    scratch: Path,
    settings: Settings,
    name: str | None = None,
    limits: dict[str, int] | None = None,
) -> Package:
    """An uploaded package (its .gpkg, or a zip holding it), unpacked and read: all the work
    the upload's bytes lead, for a child process (work.in_child) to do."""
    gpkg = unpack(path, scratch, settings.max_unpacked_bytes)
    return read_package(gpkg, settings, name, limits)


def _python(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _read_layer(
    source: str, layer: Layer, columns: list[str], limit: int
) -> tuple[list[Feature], dict[str, list[Any]]]:
    """The layer's features, and its other columns that hold any value (Package.others)."""
    # one row past the limit at most: the whole layer was read before it was counted
    meta, table = pyogrio.read_arrow(
        source, layer=layer.name, datetime_as_string=True, max_features=limit + 1, return_fids=True
    )
    fids = table.column(0).to_pylist()  # return_fids puts them first
    if table.num_rows > limit:
        raise TooLarge(
            Said(
                f"layer {layer.name} holds more than {limit:,} features: the commune's and the "
                "new ones a sync may add (GEO_COMUNA_MAX_FEATURES_PER_WRITE)",
                f"la capa {layer.name} tiene más de {f'{limit:,}'.replace(',', '.')} entidades: "
                "las de la comuna y las nuevas que puede añadir una sincronización "
                "(GEO_COMUNA_MAX_FEATURES_PER_WRITE)",
            )
        )
    geometry = meta["geometry_name"] or GEOMETRY_COLUMN
    if geometry not in table.column_names:
        raise InvalidFile(
            Said(
                f"layer {layer.name} of the package has no geometry",
                f"la capa {layer.name} del paquete no tiene geometría",
            )
        )
    if ID_COLUMN not in table.column_names:
        raise InvalidFile(
            Said(
                f"layer {layer.name} of the package has no {ID_COLUMN!r} column",
                f"la capa {layer.name} del paquete no tiene la columna {ID_COLUMN!r}",
            )
        )
    ids = table.column(ID_COLUMN).to_pylist()
    versions = (
        table.column(VERSION_COLUMN).to_pylist()
        if VERSION_COLUMN in table.column_names
        else [None] * table.num_rows
    )
    blobs = table.column(geometry).combine_chunks()
    refuse_deep(blobs, fids, layer.name)  # before GEOS reads them (a child's crash says nothing)
    geoms = _as_stored(layer, shapely.from_wkb(blobs, on_invalid="ignore"))
    # its dates as the package holds them (text): GDAL's reading of them is not even read,
    # a year 0000 being one Python cannot hold (found from outside: a 500)
    values = _date_texts(source, layer, columns, meta.get("fid_column") or "fid", fids)
    values |= {name: table.column(name).to_pylist() for name in columns if name not in values}
    for name in columns:
        _as_written(layer, name, values[name])
    features, seen = [], set()
    for i in range(table.num_rows):
        fid = ids[i]
        if fid is not None:
            if isinstance(fid, float) and not fid.is_integer():
                raise InvalidFile(
                    Said(f"{ID_COLUMN} {fid!r} is not an id", f"{ID_COLUMN} {fid!r} no es un id"),
                    layer=layer.name,
                )
            fid = int(fid)
            if fid in seen:
                raise InvalidFile(
                    Said(
                        f"two features of the package have id {fid}; an id names one feature",
                        f"dos entidades del paquete tienen el id {fid}; un id identifica a una "
                        "sola entidad",
                    ),
                    layer=layer.name,
                    feature=fid,
                )
            seen.add(fid)
        version = versions[i]
        features.append(
            Feature(
                i + 1 if fids[i] is None else int(fids[i]),
                fid,
                None if version is None else int(version),
                {name: _python(values[name][i]) for name in columns},
                geoms[i],
                fids[i],
            )
        )
    kept = {*columns, ID_COLUMN, VERSION_COLUMN, geometry}
    others = {}
    for name in table.column_names[1:]:  # the first: the fids return_fids put there
        if name not in kept and table.column(name).null_count < table.num_rows:
            others[name] = table.column(name).to_pylist()
    return features, others


def _as_written(layer: Layer, name: str, values: list[Any]) -> None:
    """A coded attribute's labels (Ocupada, Cultivos, as a field worker may pick or type
    them) as their codes, in place: what a write stores. Compared as labels, a feature
    synced once was a conflict at every later sync (package 'Ocupada', server 'occupied').
    An unknown value stays as it is, for the write to refuse naming it. A key's text, such
    as a parcel's code, is taken without its surrounding blanks, as a write takes it."""
    attr = layer.attribute(name)
    if name in layer.natural_key:  # a key without its surrounding blanks, as it is written
        values[:] = [v.strip() if isinstance(v, str) else v for v in values]
    if attr is None or attr.domain is None:
        return
    for i, value in enumerate(values):
        if isinstance(value, str) and (code := attr.domain.code(value)) is not None:
            values[i] = code


#: a column name the sync's own SQL may name: the file's key column must be one
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _date_texts(
    source: str, layer: Layer, columns: list[str], fid: str, fids: list[int]
) -> dict[str, list]:
    """The layer's date columns as the package holds them: text, as QField and QGIS write a
    date. GDAL reads a date it cannot parse as 1970-01-01 (31/02/2020, 'ayer') and moves an
    impossible one on (2020-02-31 became 2020-03-02), and the sync stored those. As text,
    each is checked as an API write's date is, and refused naming the feature.

    The statement names the file's key column (``fid``, the uploader's to name): a name
    that is not a plain one is refused, never put into SQL. One built from it ran whatever
    the file said (a query that never ends, a CPU held for good)."""
    dates = [n for n in columns if (a := layer.attribute(n)) is not None and a.type == "date"]
    if not dates:
        return {}
    if not _PLAIN_NAME.fullmatch(fid):
        shown = fid if len(fid) <= 40 else f"{fid[:40]}..."
        raise InvalidFile(
            Said(
                f"layer {layer.name} of the package names its key column {shown!r}: a package "
                "made by geo-comuna names it fid (letters, digits and _ only)",
                f"la capa {layer.name} del paquete llama {shown!r} a su columna clave: un "
                "paquete hecho por geo-comuna la llama fid (solo letras, dígitos y _)",
            ),
            layer=layer.name,
        )
    cast = ", ".join(f'CAST("{name}" AS TEXT) AS "{name}"' for name in dates)
    # the GeoPackage's own SQL (SQLite), as far as the layer is read (_read_layer's limit),
    # each row by its fid: GDAL reads a table in the order of SQLite's rowid, which is not
    # the fid where the key is no alias of it ("fid INTEGER PRIMARY KEY DESC"), and dates
    # taken in order were another feature's
    statement = (
        f'SELECT CAST("{fid}" AS INTEGER) AS gc_fid, {cast} FROM "{layer.name}" '
        f"LIMIT {len(fids) + 1}"
    )
    _, raw = pyogrio.read_arrow(source, sql=statement)
    row = {key: i for i, key in enumerate(raw.column("gc_fid").to_pylist())}
    if len(row) != len(fids) or not all(key in row for key in fids):
        raise InvalidFile(
            Said(
                f"layer {layer.name} of the package names its features by {fid!r} and GDAL "
                "reads others: save it again with QGIS or ogr2ogr",
                f"la capa {layer.name} del paquete nombra sus entidades por {fid!r} y GDAL lee "
                "otras: vuelva a guardarla con QGIS u ogr2ogr",
            ),
            layer=layer.name,
        )
    texts = {name: raw.column(name).to_pylist() for name in dates}
    return {name: [texts[name][row[key]] for key in fids] for name in dates}


def read_package(
    path: Path, settings: Settings, name: str | None = None, limits: dict[str, int] | None = None
) -> Package:
    """Read an unpacked package's GeoPackage with the GPKG driver only, after the GeoPackage
    checks of io/sniff.py (header, application id, every layer's CRS). ``limits``: the most
    features each layer may hold (package_limits; else Settings.max_features_per_import)."""
    shown = name or path.name
    left_behind = sniff.wal_left_behind(path)  # before GDAL, whose reading folds a -wal in
    # its dates are read as text and each checked as a write's (_date_texts)
    source = gdal_source(
        path, FORMATS["gpkg"], settings.max_unpacked_bytes, dates_read_as_text=True
    )
    try:
        listed = {str(n) for n in pyogrio.list_layers(source)[:, 0]}
        if INFO_TABLE not in listed:
            raise InvalidFile(
                Said(
                    f"{shown} is not a commune package: it has no {INFO_TABLE} table "
                    "(make one with geo-comuna package)",
                    f"{shown} no es un paquete de comuna: no tiene la tabla {INFO_TABLE} "
                    "(haga uno con geo-comuna package)",
                )
            )
        _, info_table = pyogrio.read_arrow(source, layer=INFO_TABLE)
        info = dict(
            zip(
                map(str, info_table.column("key").to_pylist()),
                map(str, info_table.column("value").to_pylist()),
                strict=True,
            )
        )
        bases = PackageBases()
        if BASE_TABLE in listed:
            bases = PackageBases(pyogrio.read_arrow(source, layer=BASE_TABLE)[1])
        layers, columns, others = {}, {}, {}
        for layer in LAYERS.values():
            if clipped(layer) or layer.name not in listed:
                continue
            fields = set(pyogrio.read_info(source, layer=layer.name)["fields"])
            columns[layer.name] = [p for p in layer.property_names if p in fields]
            limit = (limits or {}).get(layer.name, settings.max_features_per_import)
            layers[layer.name], others[layer.name] = _read_layer(
                source, layer, columns[layer.name], limit
            )
    except GDAL_ERRORS as exc:
        raise InvalidFile(
            Said(
                f"cannot read {shown} as a GeoPackage: {exc}",
                f"no se puede leer {shown} como GeoPackage: {exc}",
            )
        ) from None
    except KeyError as exc:
        raise InvalidFile(
            Said(
                f"{shown}: the package's {INFO_TABLE} table lacks {exc}",
                f"{shown}: a la tabla {INFO_TABLE} del paquete le falta {exc}",
            )
        ) from None
    return Package(shown, info, layers, columns, bases, left_behind, others)
