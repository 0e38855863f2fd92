"""Field edits come back: a commune's package (maps/package.py), edited in QGIS or QField,
compared with the store and written back in one transaction.

Per layer of the package: a feature with an ``id`` is an update when something of it differs
from the stored row (attributes, or the geometry beyond COORD_TOLERANCE: GeoPackage keeps the
doubles it was given, but an editor may rewrite untouched vertices); one without an id (NULL,
as QGIS and QField give new features) is new; a stored feature of the commune whose id the
package lacks is a deletion only when asked (``delete_missing``). The states are context
clipped to the commune (maps/package.py clipped) and are never synced.

A feature whose stored row version (``xmin``, its ETag) is not the ``version`` the package
carries has changed on the server since the package was made; if it differs from the package
too it is a **conflict**: reported field by field with both values and skipped, unless the
caller says ``theirs`` (keep the server's, say so) or ``ours`` (the package's values win).
The package does not hold the values it was made with, only their version: a feature edited
on the server and left alone in the field is a conflict as well, and ``theirs`` keeps it.

Every write goes through features/edit.py (the parsing, validation, references and row-level
security of single-feature writes) with the version read here as If-Match, so a write that
lands between the diff and the sync refuses the sync. The whole sync is one transaction: a
refused feature (named by layer and id, or by its row in the package when new) leaves nothing
written; each feature is written in a savepoint of its own, so that every refusal is found and
named in one run. Audit rows carry ``sync <file name>`` (migration 0019).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from psycopg import AsyncConnection, sql

from geo_comuna import work
from geo_comuna.accounts import EVERYWHERE, User
from geo_comuna.db.migrate import current_version
from geo_comuna.errors import (
    Forbidden,
    GeoComunaError,
    InvalidFile,
    InvalidGeometry,
    Said,
    said,
)
from geo_comuna.features import edit
from geo_comuna.features.filters import commune_sql
from geo_comuna.features.write import SHAPE_TOLERANCE
from geo_comuna.io import reading
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.maps import data
from geo_comuna.maps.package import fetch_layer
from geo_comuna.maps.package_tables import COMMUNE_TABLE, clipped
from geo_comuna.maps.sync_base import Base, digest
from geo_comuna.maps.sync_read import Feature, Package, read_package, read_upload, unpack
from geo_comuna.preconditions import Preconditions
from geo_comuna.settings import Settings

#: degrees (EPSG:4326): ~1 mm; closer vertices are the same vertex, as in an import's upsert
COORD_TOLERANCE = SHAPE_TOLERANCE
#: how a conflict is settled: None leaves it unwritten and reported
Resolve = Literal["ours", "theirs"] | None
Progress = Callable[[str], None]


@dataclass
class Change:
    id: int
    #: property -> [package's value, server's value]; "geometry" -> [True, True] when moved
    fields: dict[str, list[Any]]
    #: the feature's code as stored (None where the layer has none): what people call it
    code: str | None = None
    #: its name, where it has one (a facility, a production unit): what people call it then
    name: str | None = None


@dataclass
class Conflict:
    id: int
    package_version: int | None
    server_version: int | None  # None: deleted on the server since
    fields: dict[str, dict[str, Any]]  # property -> {"package": ..., "server": ...}
    resolved: str | None = None  # "ours" (written) or "theirs" (skipped)
    #: the feature's code as stored (None where the layer has none)
    code: str | None = None
    #: what the package changed and the server did not (known from the package's base):
    #: written with the conflict once it is resolved, either way
    also: list[str] = field(default_factory=list)
    #: deleted in the package, changed on the server since it was made ('ours' deletes it,
    #: 'theirs' keeps it); a delete_missing sync only
    deleted_in_package: bool = False
    #: its name, where it has one (a facility, a production unit)
    name: str | None = None


@dataclass
class LayerDiff:
    added: list[int] = field(default_factory=list)  # the new features' fids in the package
    #: new in the package but stored already, by an earlier sync of the same file: their ids
    synced: list[int] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    #: stored features of the commune the package lacks: their ids
    missing: list[int] = field(default_factory=list)
    #: those of them deleted (with delete_missing; else none)
    deleted: list[int] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: stored features added on the server since the package was made (above its last id
    #: of the layer): not in the package, never missing from it; kept
    newer: list[int] = field(default_factory=list)
    #: of ``missing``, those changed on the server since the package was made: deleting them
    #: is a conflict (sync moves them into ``conflicts`` when asked to delete)
    changed_since: list[Conflict] = field(default_factory=list)
    #: new rows of the package that an earlier sync of it stored (package_rows): feature id
    #: -> the row's fid; they are features of the package like any other now
    rows_of: dict[int, int] = field(default_factory=dict)
    #: columns of the package that are no field of the layer (one the field team added), with
    #: how many values they hold: not written
    not_fields: dict[str, int] = field(default_factory=dict)
    #: values the server works out (area_ha, a unit's parcel_code) that the package changed:
    #: per field, the ids of the features, and the fids of new ones that gave one; not written
    read_only: dict[str, list[int]] = field(default_factory=dict)
    read_only_rows: dict[str, list[int]] = field(default_factory=dict)
    #: how people know the features listed by number: a new row's code or name by its fid,
    #: a stored feature's (missing, newer) by its id (found from outside: "nuevas: 97")
    added_named: dict[int, str] = field(default_factory=dict)
    stored_named: dict[int, str] = field(default_factory=dict)
    #: of ``added``, the id each new row was stored under (fid -> id; none on a dry run): found
    #: from outside, the answer listed fids alone, and a client had to find its features again
    created: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.added
            or self.changed
            or self.missing
            or self.conflicts
            or self.newer
            or self.not_fields
            or self.read_only
            or self.read_only_rows
        )


@dataclass
class SyncReport:
    commune: str
    file: str
    dry_run: bool
    delete_missing: bool
    resolve: str | None
    layers: dict[str, LayerDiff] = field(default_factory=dict)
    #: features written (0 on a dry run)
    written: int = 0
    #: a dry run's: the features the sync would write (its writes, made and undone)
    would_write: int = 0
    #: conflicts left unwritten (neither ours nor theirs)
    unresolved: int = 0
    #: deletions found but not applied (no delete_missing)
    kept: int = 0
    #: geometries made valid (``repair``), each with its layer: what ST_MakeValid changed
    repairs: list[dict[str, Any]] = field(default_factory=list)
    #: the code of each feature a reference by id names in a change or conflict (table ->
    #: id -> code): a production unit's parcel is 12 to the database, EM-P001 to people
    codes: dict[str, dict[int, str]] = field(default_factory=dict)
    #: the GeoPackage came without the -wal file QGIS keeps edits in while a project is open
    #: (Package.log_left_behind): the summary says to close the project if it still is
    log_left_behind: bool = False


#: a layer's diff fields the sync keeps for itself, not said in its answer
_WORKINGS = ("changed_since", "rows_of", "added_named", "stored_named")


def report_json(report: SyncReport) -> dict[str, Any]:
    """The report as the sync's answer (HTTP, --json) gives it."""
    body = asdict(report)
    for diff in body["layers"].values():
        for name in _WORKINGS:
            del diff[name]
    return body


# --- the diff ------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """A value as both sides can be compared: blanks are NULL (QGIS writes '' for a cleared
    text), numbers floats, dates ISO text."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _name(values: dict[str, Any]) -> str | None:
    """A feature's name, where its layer has one: how a field team knows a facility (found
    from outside: "14: Nombre: …" named it by its id alone)."""
    name = _norm(values.get("name"))
    return name if isinstance(name, str) else None


def same_value(ours: Any, theirs: Any) -> bool:
    a, b = _norm(ours), _norm(theirs)
    if a is None or b is None:
        return a is None and b is None
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool | str):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    if isinstance(a, str) and isinstance(b, str) and min(len(a), len(b)) == 10 and a[4:5] == "-":
        return a[:10] == b[:10]  # a date and the same date at midnight
    return a == b


def same_geometry(ours: Any, theirs: Any) -> bool:
    """Equal within COORD_TOLERANCE on each axis, whatever the start or direction of rings
    and lines: as the database compares them (geo_comuna_same_shape) when the sync writes.
    Found from outside: measured across (shapely's distance), a vertex 1e-8 east and 5e-9
    north was listed as moved, and the write, which kept the stored shape, moved nothing."""
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return _each_axis(ours, theirs) or _each_axis(
        shapely.normalize(ours), shapely.normalize(theirs)
    )


def _each_axis(a: Any, b: Any) -> bool:
    """The same parts, rings and vertices in the same order, each vertex within
    COORD_TOLERANCE of its twin on each axis."""
    if not shapely.equals_exact(a, b, tolerance=COORD_TOLERANCE * 2):  # across: a bound
        return False
    ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    return ca.shape == cb.shape and bool(np.abs(ca - cb).max(initial=0.0) <= COORD_TOLERANCE)


def _shown(value: Any) -> Any:
    value = _norm(value)
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _differences(
    feature: Feature, stored: dict[str, Any], geometry: Any, columns: list[str]
) -> dict[str, list[Any]]:
    fields = {
        name: [_shown(feature.properties[name]), _shown(stored[name])]
        for name in columns
        if name in stored and not same_value(feature.properties[name], stored[name])
    }
    # no geometry in the package is none given: a position kept from the package's reader
    # (members-only, maps/package.py) or a line the database draws, never one to clear
    if feature.geometry is not None and not same_geometry(feature.geometry, geometry):
        fields["geometry"] = [True, True]
    return fields


async def diff_layer(
    conn: AsyncConnection, layer: Layer, commune_id: int, package: Package, resolve: Resolve
) -> tuple[LayerDiff, dict[int, int]]:
    """The layer's diff, and the server's row version of each feature it will write. The
    comparison (a commune's every feature, geometries included) runs off the event loop."""
    names, rows = await fetch_layer(conn, layer, commune_id, EVERYWHERE)
    synced = await synced_rows(conn, package, layer)
    return await work.cpu(compare, layer, names, rows, package, resolve, synced)


def _rows_of(package: Package) -> tuple[int, str] | None:
    """Whose new rows a sync of ``package`` reads and records (package_rows): its commune,
    the one the sync is of (check_package), and its id; None for a package made before
    packages had an id. The id alone is no secret: anyone can work it out from a package."""
    key = package.info.get("package_id")
    return (int(package.info["commune_id"]), key) if key else None


async def synced_rows(conn: AsyncConnection, package: Package, layer: Layer) -> Synced:
    """The new rows of ``package``'s ``layer`` that earlier syncs of it stored (migrations
    0025, 0030): fid -> (feature id, the row version that sync wrote)."""
    key = _rows_of(package)
    if key is None:
        return {}
    cur = await conn.execute(
        "SELECT fid, feature_id, version FROM package_rows "
        "WHERE commune_id = %s AND package = %s AND layer = %s",
        (*key, layer.name),
    )
    return {fid: (feature, version) for fid, feature, version in await cur.fetchall()}


async def record_row(
    conn: AsyncConnection, package: Package, layer: Layer, fid: int | None, written: edit.Written
) -> None:
    """What a new row of the package became (its feature and the row version written), for
    the next sync of the same file: package_rows."""
    key = _rows_of(package)
    if key is None or fid is None or not written.etag:
        return
    feature, version = (int(part) for part in written.etag.strip('"').split("."))
    await conn.execute(
        "INSERT INTO package_rows (commune_id, package, layer, fid, feature_id, version) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (commune_id, package, layer, fid) "
        "DO UPDATE SET feature_id = excluded.feature_id, version = excluded.version, "
        "synced_at = now()",
        (*key, layer.name, fid, feature, version),
    )


#: a package's new rows stored by earlier syncs: fid -> (feature id, row version written)
Synced = dict[int, tuple[int, int]]


def compare(
    layer: Layer,
    names: list[str],
    rows: list[tuple],
    package: Package,
    resolve: Resolve,
    synced: Synced | None = None,
) -> tuple[LayerDiff, dict[int, int]]:
    """The package's features of ``layer`` against the stored ``rows`` (fetch_layer's);
    ``synced``: its new rows that earlier syncs stored (synced_rows)."""
    stored = {row[0]: (row[1], dict(zip(names, row[2:-1], strict=True)), row[-1]) for row in rows}
    columns = package.columns[layer.name]
    out, versions = LayerDiff(), {}
    present = set()
    _found_again(package, layer, stored, synced or {}, out)
    derived = _not_fields(out, layer, names, package)
    for i, feature in enumerate(package.layers[layer.name]):
        if feature.id is None:
            out.added.append(feature.row)
            _not_kept(out, derived, i, feature, None)
            continue
        present.add(feature.id)
        base = package.bases.get(layer.name, feature.id)
        _not_kept(out, derived, i, feature, base)
        if base is None and package.bases and feature.id not in out.rows_of:
            raise _not_from_package(layer, feature.id)
        if feature.id not in stored:  # deleted on the server (or never of this commune)
            if base is None or _changed_by_team(feature, base, [*columns, "geometry"]):
                code = feature.properties.get("code")  # the server's row is gone: the file's
                out.conflicts.append(
                    Conflict(
                        feature.id,
                        feature.version,
                        None,
                        {},
                        resolve,
                        _norm(code),
                        name=_name(feature.properties),
                    )
                )
            continue  # else the team left it as it was: the server's deletion stands
        version, values, wkb = stored[feature.id]
        geometry = None if wkb is None else shapely.from_wkb(wkb)
        if feature.geometry is None and geometry is not None:
            _cleared(layer, feature.id)
        fields = _differences(feature, values, geometry, columns)
        if not fields:
            continue
        versions[feature.id] = version
        if feature.version == version:
            out.changed.append(Change(feature.id, fields, values.get("code"), _name(values)))
        else:  # changed on the server since the package was made
            _across(out, feature, fields, (version, values, geometry), base, resolve)
    missing = set(stored) - present
    found, edited = _synced_before(package, layer, out, stored, missing)
    out.synced = sorted(out.synced + found)
    for fid, fields in edited:  # now a feature of the package like any other
        out.changed.append(Change(fid, fields, stored[fid][1].get("code"), _name(stored[fid][1])))
        versions[fid] = stored[fid][0]
    missing -= set(out.synced)
    last = _last_ids(package).get(layer.name)
    if last is not None:  # added on the server since: another team's, not deleted here
        out.newer = sorted(fid for fid in missing if fid > last)
        missing -= set(out.newer)
    out.missing = sorted(missing)
    _name_listed(out, package.layers[layer.name], stored)
    _missing(out, layer, stored, versions, package, resolve)
    return out, versions


def _name_listed(
    out: LayerDiff,
    features: list[Feature],
    stored: dict[int, tuple[int, dict[str, Any], bytes | None]],
) -> None:
    """The codes or names of the features a diff lists by number: its new rows, and the
    stored features the package lacks or that were added since."""
    for feature in features:
        if feature.id is None and (called := _called(feature.properties)):
            out.added_named[feature.row] = called
    for fid in (*out.missing, *out.newer):
        if called := _called(stored[fid][1]):
            out.stored_named[fid] = called


def _called(values: dict[str, Any]) -> str | None:
    """A feature's code, else its name (None: neither)."""
    code = _norm(values.get("code"))
    return str(code) if code is not None else _name(values)


def _not_fields(
    out: LayerDiff, layer: Layer, names: list[str], package: Package
) -> dict[str, list[Any]]:
    """Note the package's columns that are no field of the layer (found from outside: notes
    in a column the team added went without a word); the others' values, those of fields
    the server works out, for _not_kept."""
    derived = {}
    for name, values in package.others.get(layer.name, {}).items():
        if name in names:
            derived[name] = values
        else:
            out.not_fields[name] = sum(v is not None for v in values)
    return derived


def _not_kept(
    out: LayerDiff, derived: dict[str, list[Any]], i: int, feature: Feature, base: Base | None
) -> None:
    """Note the values the server works out (``derived``, by the layer's row ``i``) that the
    team changed against the feature's ``base``, or gave a new feature: not written (found
    from outside: an area typed over came back as "nothing to change")."""
    for name, values in derived.items():
        if feature.id is None:
            if values[i] is not None:
                out.read_only_rows.setdefault(name, []).append(feature.row)
        elif base is not None and not same_value(values[i], base.properties.get(name)):
            out.read_only.setdefault(name, []).append(feature.id)


def _missing(
    out: LayerDiff,
    layer: Layer,
    stored: dict[int, tuple[int, dict[str, Any], bytes | None]],
    versions: dict[int, int],
    package: Package,
    resolve: Resolve,
) -> None:
    """The versions of the features the package lacks, and which of them the server changed
    since the package was made (from the package's base): a deletion of one is a conflict."""
    columns = package.columns[layer.name]
    for fid in out.missing:
        version, values, wkb = stored[fid]
        versions[fid] = version
        base = package.bases.get(layer.name, fid)
        geometry = None if wkb is None else shapely.from_wkb(wkb)
        if base is not None and _changed_since(values, geometry, base, [*columns, "geometry"]):
            out.changed_since.append(
                Conflict(
                    fid, None, version, {}, resolve, values.get("code"), [], True, _name(values)
                )
            )


#: how far (metres, roughly: 1e-5 degree) a new row's point or line may have moved since an
#: earlier sync stored it and still be that feature
SAME_ROW_NEAR = 50 * 1e-5


def _found_again(
    package: Package,
    layer: Layer,
    stored: dict[int, tuple[int, dict[str, Any], bytes | None]],
    synced: Synced,
    out: LayerDiff,
) -> None:
    """A new row an earlier sync of this package stored (same fid: synced) is that feature
    again, however it was edited since, so long as it still lies where the feature does: it
    gets the feature's id and the row version that sync wrote, and is then compared like
    any feature of the package (a server change since is a conflict). So is a feature
    deleted on the server that an earlier sync added again (``ours``): it is the feature that
    sync made, not a deletion to settle again at every sync. Copies of one package made on
    one day share its id, and two teams' new rows may share a fid: a row far from the stored
    feature is another team's new feature, and stays new. A feature deleted on the server
    since is a conflict, as for any feature of the package. A feature of the package the
    team left as it was is not found again: another copy's team added it again, and its
    values stand (found from outside: an unedited copy put back the values that team's
    feature had when the package was made)."""
    features = package.layers[layer.name]
    names = [*package.columns[layer.name], "geometry"]
    for i, feature in enumerate(features):
        if feature.fid not in synced or feature.geometry is None:
            continue
        if feature.id is not None:
            if feature.id in stored:  # the package's own, still there
                continue
            base = package.bases.get(layer.name, feature.id)
            if base is not None and not _changed_by_team(feature, base, names):
                continue
        fid, version = synced[feature.fid]
        if fid in stored:
            wkb = stored[fid][2]
            if wkb is None or not _same_place(feature.geometry, shapely.from_wkb(wkb)):
                continue
            if _other_code(feature.properties, stored[fid][1]):
                continue  # another team's new feature that took the same fid: it stays new
        if feature.id is not None:
            # a feature of the package that a copy's sync added again: the copy that did is
            # not known (copies share the package's id), so what this one changed is taken
            # from its base against the feature as it is now, three ways (found from outside:
            # another copy's edit overwrote the values that sync wrote, with no conflict)
            package.bases.alias(layer.name, fid, feature.id)
            version = CHANGED_SINCE
        features[i] = Feature(
            feature.row, fid, version, feature.properties, feature.geometry, feature.fid
        )
        out.rows_of[fid] = feature.fid
        if version != CHANGED_SINCE:  # a new row of the package, stored by an earlier sync
            out.synced.append(fid)


#: the version a feature of the package that a copy's sync added again is given: no stored
#: version, so it is compared as changed on the server since, against its base
CHANGED_SINCE = -1


def _other_code(row: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Is a package's new row not the stored feature, by their codes: another code, or none
    beside the stored one's? Two teams' new rows may share a fid and a place (one recovered
    plot mapped twice): found from outside, the second team's EM-P777 was taken for the
    first team's EM-P900 and rewrote it field by field, and a row without a code blanked
    the stored one's."""
    ours, theirs = _norm(row.get("code")), _norm(stored.get("code"))
    return theirs is not None and (ours is None or str(ours) != str(theirs))


def _same_place(ours: Any, theirs: Any) -> bool:
    """Do two shapes of one feature, before and after an edit, lie in one place? Areas
    overlap by half of the smaller; points and lines are within SAME_ROW_NEAR."""
    if shapely.get_dimensions(ours) == 2 and shapely.get_dimensions(theirs) == 2:
        smaller = min(shapely.area(ours), shapely.area(theirs))
        return smaller > 0 and shapely.area(shapely.intersection(ours, theirs)) >= smaller / 2
    return shapely.hausdorff_distance(ours, theirs) <= SAME_ROW_NEAR


def _not_from_package(layer: Layer, fid: int) -> InvalidFile:
    """A feature whose id the package did not hold when it was made (an id typed over, a
    feature pasted from another package): taken as the stored feature of that id, it was
    said to be 'deleted on the server', and 'ours' would have added it again."""
    return InvalidFile(
        Said(
            f"the package held no feature {fid} when it was made: keep the id column as it is "
            "(a new feature leaves it empty)",
            f"el paquete no tenía la entidad {fid} cuando se hizo: deje la columna id como está "
            "(una entidad nueva la deja vacía)",
        ),
        layer=layer.name,
        feature=fid,
    )


def _across(
    out: LayerDiff,
    feature: Feature,
    fields: dict[str, list[Any]],
    server: tuple[int, dict[str, Any], Any],
    base: Base | None,
    resolve: Resolve,
) -> None:
    """A feature the package and the server both hold differently, the server's changed
    since the package was made (``server``: its version, values and geometry). With the
    package's base, three ways: a field only the server changed stands, one only the package
    changed is written, and only a field both changed is a conflict. Without one (an older
    package), every differing field is."""
    version, values, geometry = server
    code = values.get("code")
    also: list[str] = []
    if base is not None:
        ours = _changed_by_team(feature, base, list(fields))
        fields = {name: pair for name, pair in fields.items() if name in ours}
        if not fields:
            return  # changed on the server only: that change stands
        theirs = _changed_since(values, geometry, base, list(fields))
        if not theirs:
            out.changed.append(Change(feature.id, fields, code, _name(values)))
            return
        also = sorted(set(fields) - theirs)
        fields = {name: pair for name, pair in fields.items() if name in theirs}
    moved = "moved" if base is not None else "differs"  # without a base, who moved it is unknown
    both = {
        name: (
            {"package": moved, "server": moved}
            if name == "geometry"
            else {"package": pair[0], "server": pair[1]}
        )
        for name, pair in fields.items()
    }
    out.conflicts.append(
        Conflict(
            feature.id, feature.version, version, both, resolve, code, also, name=_name(values)
        )
    )


def _changed_by_team(feature: Feature, base: Base, names: list[str]) -> set[str]:
    """Which of ``names`` (properties, "geometry") the package changed since it was made; no
    geometry in the package is none given (see _differences)."""
    given = [n for n in names if n != "geometry" or feature.geometry is not None]
    return _changed_since(feature.properties, feature.geometry, base, given)


def _changed_since(values: dict[str, Any], geometry: Any, base: Base, names: list[str]) -> set[str]:
    """Which of ``names`` differ in ``values`` and ``geometry`` (the server's, or the
    package's) from the feature's base."""
    changed = {
        name
        for name in names
        if name != "geometry" and not same_value(values.get(name), base.properties.get(name))
    }
    if "geometry" in names and digest(geometry) != base.geometry:
        changed.add("geometry")
    return changed


def _last_ids(package: Package) -> dict[str, int]:
    """The package's highest id of each layer when it was made (maps/package.py last_ids);
    none in a package made before it recorded them, whose missing features stay missing."""
    found = {}
    for part in package.info.get("layer_last_ids", "").split(","):
        name, _, n = part.partition(":")
        if name and n.isdigit():
            found[name] = int(n)
    return found


def _cleared(layer: Layer, fid: int) -> None:
    """A feature whose geometry the package leaves empty. Nothing to write where the package
    could not hold it (a members-only position, withheld from the package's reader) or the
    database draws it (an exchange's line); elsewhere someone cleared it, which no write
    does, and it was dropped without a word: refused, saying how to remove the feature."""
    if layer.geometry_read != "public" or layer.geometry_optional:
        return
    raise InvalidGeometry(
        Said(
            "its geometry is empty in the package; a feature keeps its geometry: to remove "
            "the feature, delete it in the package and sync with --delete-missing "
            "(?delete_missing=true)",
            "su geometría está vacía en el paquete; una entidad conserva su geometría: para "
            "quitar la entidad, bórrela en el paquete y sincronice con --delete-missing "
            "(?delete_missing=true)",
        ),
        layer=layer.name,
        feature=fid,
    )


def _synced_before(
    package: Package,
    layer: Layer,
    diff: LayerDiff,
    stored: dict[int, tuple[int, dict[str, Any], bytes | None]],
    missing: set[int],
) -> tuple[list[int], list[tuple[int, dict[str, list[Any]]]]]:
    """Ids of stored features that a new feature of the package already is: the package went
    through a sync before, which stored its new features under ids the package does not
    hold. Such a pair is the same feature, neither added again nor missing. Matched on the
    same attributes and geometry (COORD_TOLERANCE), each stored feature once; takes the
    matched package rows out of ``diff.added``.

    A field worker may go on editing such a feature in the same file and sync again: it was
    then stored a second time. So a stored feature made after the package (an id above every
    id of the layer in it) at the same place, with the same geometry, is that feature too,
    and its attributes that differ are a change: returned as (id, fields), the package's
    feature given that id and the stored version."""
    if not diff.added or not missing:
        return [], []
    columns = package.columns[layer.name]
    by_place: dict[tuple[float, float], list[int]] = {}
    for fid in missing:
        wkb = stored[fid][2]
        if wkb is not None:
            by_place.setdefault(_place(shapely.from_wkb(wkb)), []).append(fid)
    features = package.layers[layer.name]
    newest = max((f.id for f in features if f.id is not None), default=0)
    rows = {f.row: i for i, f in enumerate(features)}
    code = package.info.get("commune_code", "")
    matched: list[int] = []
    edited: list[tuple[int, dict[str, list[Any]]]] = []
    for row in list(diff.added):
        feature = features[rows[row]]
        if feature.geometry is None:
            continue
        properties = _commune_default(layer, feature.properties, code)
        given = Feature(feature.row, None, None, properties, feature.geometry)
        for fid in by_place.get(_place(feature.geometry), []):
            if fid in matched:
                continue
            version, values, wkb = stored[fid]
            fields = _differences(given, values, shapely.from_wkb(wkb), columns)
            if fields and (fid <= newest or "geometry" in fields):
                continue
            matched.append(fid)
            diff.added.remove(row)
            if fields:
                features[rows[row]] = Feature(
                    row, fid, version, feature.properties, feature.geometry
                )
                edited.append((fid, fields))
            break
    return sorted(matched), edited


def _place(geometry: Any) -> tuple[float, float]:
    """Where a feature is, to ~10 cm: the candidates _synced_before compares in full."""
    point = shapely.centroid(geometry)
    return (round(point.x, 6), round(point.y, 6))


async def check_package(conn: AsyncConnection, package: Package, commune_id: int) -> str:
    """Refuse a package of another commune or of a newer schema; the commune's code."""
    info = await data.commune_info(conn, commune_id)
    given = package.info
    if given.get("commune_id") != str(commune_id):
        raise InvalidFile(
            Said(
                f"{package.name} is the package of commune {given.get('commune_code')!r} "
                f"({given.get('commune_name')}, id {given.get('commune_id')}), not of "
                f"{info.code!r} ({info.name}, id {commune_id}); sync it to its own commune",
                f"{package.name} es el paquete de la comuna {given.get('commune_code')!r} "
                f"({given.get('commune_name')}, id {given.get('commune_id')}), no de "
                f"{info.code!r} ({info.name}, id {commune_id}); sincronícelo con su propia "
                "comuna",
            )
        )
    ours = await current_version(conn)
    try:
        theirs = int(given.get("schema_version", ""))
    except ValueError:
        raise InvalidFile(
            Said(
                f"{package.name}: its schema version is not a number",
                f"{package.name}: su versión de esquema no es un número",
            )
        ) from None
    if theirs > ours:
        raise InvalidFile(
            Said(
                f"{package.name} was made by a newer geo_comuna (schema version {theirs}, "
                f"geo_comuna {given.get('geo_comuna_version')}); this database is at schema "
                f"version {ours}: upgrade geo_comuna, then sync",
                f"{package.name} se hizo con un geo_comuna más reciente (versión de esquema "
                f"{theirs}, geo_comuna {given.get('geo_comuna_version')}); esta base de datos "
                f"está en la versión de esquema {ours}: actualice geo_comuna y luego sincronice",
            )
        )
    return info.code


# --- writing -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _body(properties: dict[str, Any], geometry: Any, with_geometry: bool) -> bytes:
    feature: dict[str, Any] = {
        "type": "Feature",
        "properties": {k: _json(v) for k, v in properties.items()},
    }
    if with_geometry:
        feature["geometry"] = None if geometry is None else json.loads(shapely.to_geojson(geometry))
    return json.dumps(feature).encode()


def _commune_default(layer: Layer, props: dict[str, Any], code: str) -> dict[str, Any]:
    """A new feature's commune, when its layer has one and the field worker left it empty."""
    refs = [r for r in layer.references if r.table == COMMUNE_TABLE]
    if len(refs) == 1 and _norm(props.get(refs[0].name)) is None:
        return {**props, refs[0].name: code}
    return props


async def _apply_layer(
    conn: AsyncConnection,
    layer: Layer,
    diff: LayerDiff,
    versions: dict[int, int],
    package: Package,
    settings: Settings,
    user: User,
    code: str,
    repair: bool = False,
    repairs: list[dict[str, Any]] | None = None,
    refused: list[GeoComunaError] | None = None,
    lang: str = "es",
) -> int:
    """Additions and updates of one layer (deletions: _delete_layer); features written.
    ``repair``: make invalid geometries valid, each change added to ``repairs``; each
    feature refused is added to ``refused`` and the others are still tried. ``lang``: the
    language of the labels a refused value's reason lists."""
    refused = [] if refused is None else refused
    made: list[dict[str, Any]] = [] if repairs is None else repairs

    def kept(written: edit.Written, feature: int | str) -> None:
        made.extend({"layer": layer.name, **r, "feature": feature} for r in written.repairs)

    async def each(feature: int | str, write: Callable[[], Awaitable[Any]]) -> int:
        return await _each(conn, layer, feature, write, refused)

    by_id = {f.id: f for f in package.layers[layer.name] if f.id is not None}
    by_row = {f.row: f for f in package.layers[layer.name]}
    columns = package.columns[layer.name]
    written = 0
    for fid, fields in _updates(diff):
        feature = by_id[fid]
        if fid not in versions:  # deleted on the server: the package's copy comes back new
            body = _body({n: feature.properties[n] for n in columns}, feature.geometry, True)
            again = Said(
                f"{fid} (deleted on the server, added again)",
                f"{fid} (borrada en el servidor, agregada de nuevo)",
            )

            async def create(
                body: dict = body, fid: int = fid, row: int | None = feature.fid
            ) -> None:
                done = await edit.create(
                    conn, layer, body, settings, user, repair=repair, lang=lang
                )
                kept(done, fid)  # what the row became, for the next sync of this package
                await record_row(conn, package, layer, row, done)

            written += await each(again, create)
        else:
            props = {n: feature.properties[n] for n in columns if n in fields}
            body = _body(props, feature.geometry, "geometry" in fields)

            async def patch(body: dict = body, fid: int = fid) -> None:
                done = await edit.patch(
                    conn, layer, fid, body, settings, user, conditions=_read(fid, versions),
                    repair=repair, lang=lang,
                )  # fmt: skip
                kept(done, fid)  # a new row of the package: the version its next sync starts from
                await record_row(conn, package, layer, diff.rows_of.get(fid), done)

            written += await each(fid, patch)
    for row in diff.added:
        feature = by_row[row]
        props = _commune_default(layer, {n: feature.properties[n] for n in columns}, code)
        body = _body(props, feature.geometry, True)
        new = Said(f"new, fid {row} of the package", f"nueva, fid {row} del paquete")

        async def add(body: dict = body, row: int = row, fid: int | None = feature.fid) -> None:
            done = await edit.create(conn, layer, body, settings, user, repair=repair, lang=lang)
            kept(done, Said(f"fid {row}", f"fid {row}"))
            diff.created[row] = done.ids[0]
            await record_row(conn, package, layer, fid, done)

        written += await each(new, add)
    return written


async def _each(
    conn: AsyncConnection,
    layer: Layer,
    feature: int | str,
    write: Callable[[], Awaitable[Any]],
    refused: list[GeoComunaError],
) -> int:
    """One feature's write in a savepoint of its own: refused, it is noted in ``refused``
    and the next one is tried, so that one run names every refusal (a field team fixed one
    per run); the sync then refuses them all (sync). 1 when written."""
    try:
        async with conn.transaction():
            with _named(layer, feature):
                await write()
        return 1
    except GeoComunaError as exc:
        if exc.status >= 500 or len(refused) >= MAX_REFUSED:
            raise
        refused.append(exc)
        return 0


def _updates(diff: LayerDiff) -> list[tuple[int, set[str]]]:
    """The features a layer's sync updates, each with the fields it writes: the changes, and
    the conflicts settled with fields to write."""
    return [(c.id, set(c.fields)) for c in diff.changed] + [
        (c.id, set(c.fields) | set(c.also) if c.resolved == "ours" else set(c.also))
        for c in diff.conflicts
        if not c.deleted_in_package  # settled by deleting or keeping (_delete_or_settle)
        and (c.resolved == "ours" or (c.resolved == "theirs" and c.also))
    ]


class _named:
    """Errors of one feature's write name it as the package does."""

    def __init__(self, layer: Layer, feature: int | str) -> None:
        self.layer, self.feature = layer, feature

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, GeoComunaError):
            exc.layer, exc.feature = self.layer.name, self.feature
        return False


def _read(fid: int, versions: dict[int, int]) -> Preconditions:
    """A change of feature ``fid`` made only if it is still the version the package read."""
    return Preconditions(match=f"{fid}.{versions[fid]}")


async def _delete_layer(
    conn: AsyncConnection,
    layer: Layer,
    diff: LayerDiff,
    versions: dict[int, int],
    user: User,
    refused: list[GeoComunaError],
) -> int:
    """A layer's deletions; each one refused is added to ``refused`` beside the writes' (found
    from outside: a parcel holding land records came up only once every other refusal was
    mended)."""
    written = 0
    for fid in diff.deleted:

        async def delete(fid: int = fid) -> None:
            await edit.remove(conn, layer, fid, user, conditions=_read(fid, versions))

        written += await _each(conn, layer, fid, delete, refused)
    return written


#: a role as Spanish says it (the English is the role's own name)
ROLES_ES = {"viewer": "lector (viewer)", "editor": "editor", "admin": "administrador (admin)"}


def may_sync(user: User, commune_id: int, commune: str | None = None) -> None:
    """Editing rights in the commune, checked before the package is read; ``commune``: the
    commune as the request named it (its code), for the refusal."""
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; a sync needs an editor token",
                f"el usuario {user.name!r} tiene el rol {ROLES_ES.get(user.role, user.role)}; "
                "para sincronizar hace falta un token de editor",
            )
        )
    if user.role != "admin" and commune_id not in user.communes:
        named = commune or commune_id
        raise Forbidden(
            Said(
                f"user {user.name!r} may not edit commune {named}",
                f"el usuario {user.name!r} no puede editar la comuna {named}",
            )
        )


async def sync(
    conn: AsyncConnection,
    commune_id: int,
    package: Package,
    settings: Settings,
    user: User,
    *,
    dry_run: bool = False,
    delete_missing: bool = False,
    resolve: Resolve = None,
    repair: bool = False,
    progress: Progress | None = None,
    lang: str = "es",
) -> SyncReport:
    """Diff ``package`` against commune ``commune_id`` and, unless ``dry_run``, write it: one
    transaction, all or nothing. A dry run makes the same writes and undoes them, so that it
    refuses what the sync would (an invalid geometry, a value that is no value) and reports
    the same repairs. ``repair``: invalid geometries are made valid (ST_MakeValid), each
    change reported. ``lang``: the language of the labels a refused value's reason lists."""
    say = progress or (lambda _: None)
    may_sync(user, commune_id)
    if delete_missing and not set(package.layers) <= set(_last_ids(package)):
        raise InvalidFile(
            Said(
                f"{package.name} was made before packages recorded the last feature of each "
                "layer, so a feature deleted in the field cannot be told from one another team "
                "added since, and deleting what it lacks would delete their work: sync it "
                "without deleting, then download a new package",
                f"{package.name} se hizo antes de que los paquetes guardaran la última entidad "
                "de cada capa, así que una entidad borrada en campo no se distingue de una que "
                "otro equipo agregó después, y borrar lo que le falta borraría su trabajo: "
                "sincronícelo sin borrar y descargue un paquete nuevo",
            )
        )  # found from outside: it deleted five features made on the server after it
    async with conn.transaction():
        await _queue(conn, commune_id)
        code = await check_package(conn, package, commune_id)
        report = SyncReport(code, package.name, dry_run, delete_missing, resolve)
        report.log_left_behind = package.log_left_behind
        plans: list[tuple[Layer, LayerDiff, dict[int, int]]] = []
        for name in package.layers:
            layer = LAYERS[name]
            say(Said(f"comparing {name}", f"comparando {name}"))
            diff, versions = await diff_layer(conn, layer, commune_id, package, resolve)
            report.layers[name] = diff
            plans.append((layer, diff, versions))
            report.unresolved += sum(c.resolved is None for c in diff.conflicts)
            if delete_missing:
                _delete_or_settle(diff)
                report.unresolved += sum(c.resolved is None for c in diff.changed_since)
            else:
                report.kept += len(diff.missing)
        report.codes = await _referenced_codes(conn, plans)
        try:
            async with conn.transaction():  # a savepoint, undone on a dry run
                await conn.execute(
                    "SELECT set_config('geo_comuna.reason', %s, true)", (f"sync {package.name}",)
                )
                refused: list[GeoComunaError] = []
                for layer, diff, versions in plans:  # the registry's order: referenced first
                    if diff:
                        say(_writing(layer, dry_run))
                        report.written += await _apply_layer(
                            conn, layer, diff, versions, package, settings, user, code, repair,
                            report.repairs, refused, lang=lang,
                        )  # fmt: skip
                if delete_missing:  # dependent layers first
                    for layer, diff, versions in reversed(plans):
                        report.written += await _delete_layer(
                            conn, layer, diff, versions, user, refused
                        )
                if refused:  # nothing is written; every refusal is named at once
                    raise _all_refused(refused)
                await conn.execute("SELECT set_config('geo_comuna.reason', '', true)")
                if dry_run:
                    raise _Undone
        except _Undone:
            report.would_write, report.written = report.written, 0
            for diff in report.layers.values():  # ids given and undone
                diff.created.clear()
    return report


#: advisory lock class of syncs; the other key is the commune's id
SYNC_QUEUE = 0x6763_7379


async def _queue(conn: AsyncConnection, commune_id: int) -> None:
    """Wait until no other sync of the commune is running, and make later ones wait until
    this one ends: each compares the package with what the one before wrote. Side by side,
    two copies of one edit (a phone that sent its sync twice) both read the store before
    either wrote, and the second was refused with a 412 naming its own edits; in turn it
    finds them written and has nothing to change."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (SYNC_QUEUE, commune_id))


def _delete_or_settle(diff: LayerDiff) -> None:
    """A delete_missing sync's deletions: the features the package lacks, but for those
    changed on the server since the package was made, which are conflicts (deleted in the
    field, changed on the server); 'ours' deletes them, 'theirs' and no choice keep them."""
    settled = {c.id for c in diff.changed_since if c.resolved == "ours"}
    unsettled = {c.id for c in diff.changed_since} - settled
    diff.deleted = [fid for fid in diff.missing if fid not in unsettled]
    diff.missing = [fid for fid in diff.missing if fid not in unsettled]
    diff.conflicts += diff.changed_since


async def _referenced_codes(
    conn: AsyncConnection, plans: list[tuple[Layer, LayerDiff, dict[int, int]]]
) -> dict[str, dict[int, str]]:
    """SyncReport.codes: the codes of the features that references by id (a production
    unit's parcel) name in the diff's changes and conflicts, either side's value."""
    wanted: dict[str, set[int]] = {}
    for layer, diff, _ in plans:
        for ref in layer.references:
            if ref.key != "id" or not _coded(ref.table):
                continue
            values = [v for c in diff.changed for v in c.fields.get(ref.name, [])]
            values += [v for c in diff.conflicts for v in c.fields.get(ref.name, {}).values()]
            ids = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
            wanted.setdefault(ref.table, set()).update(ids)
    codes: dict[str, dict[int, str]] = {}
    for table, ids in wanted.items():
        if ids:
            cur = await conn.execute(
                sql.SQL("SELECT id, code FROM {} WHERE id = ANY(%s) AND code IS NOT NULL").format(
                    sql.Identifier(table)
                ),
                (sorted(ids),),
            )
            codes[table] = dict(await cur.fetchall())
    return codes


def _coded(table: str) -> bool:
    """Do the features of ``table`` have a code people call them by?"""
    return any(
        layer.table == table and layer.attribute("code") is not None for layer in LAYERS.values()
    )


#: refusals one sync collects before it stops looking (the first many are enough to fix)
MAX_REFUSED = 100


def _all_refused(refused: list[GeoComunaError]) -> GeoComunaError:
    """The first refusal, carrying every refusal in its details (layer, feature, reason),
    and saying how many there are."""
    first = refused[0]
    first.details = [{"layer": e.layer, "feature": e.feature, "reason": e.reason} for e in refused]
    if len(refused) > 1:
        more = f"{len(refused) - 1}{'+' if len(refused) >= MAX_REFUSED else ''}"
        one = more == "1"
        first.reason = Said(
            f"{said(first.reason, 'en')}; and {more} more "
            + ("feature refused" if one else "features refused"),
            f"{said(first.reason, 'es')}; y {more} "
            + ("entidad más rechazada" if one else "entidades más rechazadas"),
        )
    return first


class _Undone(Exception):
    """A dry run's writes, rolled back."""


def _writing(layer: Layer, dry_run: bool) -> Said:
    if dry_run:
        return Said(f"checking {layer.name}", f"comprobando {layer.name}")
    return Said(f"writing {layer.name}", f"escribiendo {layer.name}")


async def sync_file(
    conn: AsyncConnection,
    commune_id: int,
    path: Path,
    scratch: Path,
    settings: Settings,
    user: User,
    name: str | None = None,
    isolated: bool = False,
    **options: Any,
) -> SyncReport:
    """Sync the package ``path`` (its .gpkg, or the .zip holding it); ``scratch`` is where a
    zip's GeoPackage is unpacked; ``name`` the file's name for messages and the audit;
    ``isolated``: GDAL reads it in a child process killed when slow (an upload)."""
    shown = name or path.name
    may_sync(user, commune_id)
    limits = await package_limits(conn, commune_id, settings)
    read: tuple[Any, ...] = (read_upload, path, scratch, settings, shown, limits)
    if isolated:  # an upload: unpacked and read in a process killed when slow (io/reading.py)
        read = (work.in_child, shown, reading.SAVE_AGAIN, path.stat().st_size, *read)
    package = await work.cpu(*read)
    return await sync(conn, commune_id, package, settings, user, **options)


async def package_limits(
    conn: AsyncConnection, commune_id: int, settings: Settings
) -> dict[str, int]:
    """Per layer, the most features a package of the commune may bring: what the commune
    holds, and the new features one write may add (Settings.max_features_per_write). A
    zipped package of 8 MB held El Maizal's 97 parcels 18,000 times over (574 MB unpacked):
    read up to the import's 2,000,000 features, it took a worker past 3.4 GB."""
    out = {}
    for layer in LAYERS.values():
        if clipped(layer) or layer.commune_filter.land:
            continue
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
                sql.Identifier(layer.table), commune_sql(layer, sql.Literal(commune_id))
            )
        )
        out[layer.name] = (await cur.fetchone())[0] + settings.max_features_per_write
    return out


__all__ = ["SyncReport", "read_package", "sync", "sync_file", "unpack"]
