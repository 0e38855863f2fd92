"""Import a file into a layer: pyogrio reads it, pyproj reprojects it to EPSG:4326,
features/validate.py checks every feature, COPY writes them, all in one transaction.

Any bad feature stops the import before anything is written and is named by its 1-based
position in the file. Columns are matched to the layer's properties by name, ignoring case
and the 10-character truncation of Shapefile field names; other columns are reported, not
stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio
import pyproj
from psycopg import AsyncConnection

from geo_comuna.accounts import User, local_admin, writing
from geo_comuna.errors import Forbidden, InvalidFile, TooLarge, UnknownCRS
from geo_comuna.features import attributes, validate, write
from geo_comuna.features.query import require_commune
from geo_comuna.io.formats import CSV_OPEN_OPTIONS, GDAL_ERRORS, Format, detect, gdal_path
from geo_comuna.layers import Layer
from geo_comuna.settings import Settings

Progress = Callable[[str], None]


@dataclass
class ImportReport:
    layer: str
    file: str
    format: str
    source_crs: str
    features: int
    ignored_columns: list[str] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def parse_crs(value: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise UnknownCRS(f"unknown CRS {value!r}: {exc}") from None


def _pick_layer(path: str, fmt: Format, layer: Layer) -> str | None:
    if fmt.name != "gpkg":
        return None
    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    if len(names) == 1:
        return names[0]
    if layer.name in names:
        return layer.name
    raise InvalidFile(f"the GeoPackage holds layers {names}; none is named {layer.name!r}")


_SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: 'CSV UTF-8'); the encoding is never guessed"


def _check_utf8(frame: pd.DataFrame, name: str) -> None:
    """Arrow keeps a CSV's bytes as they are: invalid UTF-8 (Excel's Windows-1252, say) would
    only fail later, mid-validation, as a 500."""
    for column in frame.columns:
        if column != "geometry" and pd.api.types.is_string_dtype(frame[column]):
            try:
                pa.array(frame[column]).validate(full=True)
            except pa.ArrowInvalid:
                raise InvalidFile(
                    f"{name}: column {column!r} is not UTF-8 text; {_SAVE_AS_UTF8}"
                ) from None


def _csv_text_as_written(source: str, frame: pd.DataFrame, layer: Layer) -> pd.DataFrame:
    """GDAL's CSV type detection makes an all-digit column numbers; for a text property (parcel
    codes 101, 102) or a commune given by code that is wrong (refused as "not text", or taken
    for an id), so those columns are read again exactly as written."""
    text = {a.name.lower() for a in layer.attributes if a.type == "text"}
    text |= {r.name.lower() for r in layer.references if r.key == "code"}
    redo = [
        c
        for c in frame.columns
        if c != "geometry" and str(c).lower() in text and not pd.api.types.is_string_dtype(frame[c])
    ]
    if not redo:
        return frame
    raw = pyogrio.read_dataframe(
        source,
        columns=redo,
        read_geometry=False,
        use_arrow=True,
        **{**CSV_OPEN_OPTIONS, "AUTODETECT_TYPE": "NO"},
    )
    frame[redo] = raw[redo].to_numpy()
    return frame


def read(path: Path, layer: Layer, settings: Settings) -> tuple[gpd.GeoDataFrame, Format]:
    fmt = detect(path)
    source = gdal_path(path, fmt)
    options = CSV_OPEN_OPTIONS if fmt.name == "csv" else {}
    try:
        name = _pick_layer(source, fmt, layer)
        info = pyogrio.read_info(source, layer=name, **options)
        if info["features"] > settings.max_features_per_import:
            raise TooLarge(
                f"{path.name} holds {info['features']} features; the limit is "
                f"{settings.max_features_per_import}"
            )
        frame = pyogrio.read_dataframe(
            source, layer=name, use_arrow=True, on_invalid="ignore", **options
        )
        if fmt.name == "csv":
            frame = _csv_text_as_written(source, frame, layer)
    except GDAL_ERRORS as exc:
        raise InvalidFile(f"cannot read {path.name} as {fmt.driver}: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidFile(f"{path.name} is not UTF-8 text; {_SAVE_AS_UTF8}") from None
    _check_utf8(frame, path.name)
    if len(frame) == 0:
        raise InvalidFile(f"{path.name} has no features")
    if "geometry" not in frame:
        raise InvalidFile(
            f"{path.name} has no geometry (CSV: give a WKT column or lon/lat columns)"
        )
    return frame, fmt


def to_wgs84(frame: gpd.GeoDataFrame, fmt: Format, crs: str | None) -> tuple[gpd.GeoDataFrame, str]:
    """Reproject to EPSG:4326. ``crs`` overrides what the file says; CSV and GeoJSON without
    one are lon/lat WGS 84; any other file without a CRS is refused."""
    source = parse_crs(crs) if crs else frame.crs
    if source is None:
        if fmt.name in ("csv", "geojson", "kml"):
            source = pyproj.CRS.from_epsg(4326)
        else:
            raise UnknownCRS(
                f"the {fmt.driver} file says nothing about its CRS (a Shapefile "
                "without .prj?); give it, e.g. --crs EPSG:2202"
            )
    frame = frame.set_crs(source, allow_override=True)
    label = source.to_string() if source.to_epsg() is None else f"EPSG:{source.to_epsg()}"
    if not source.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        try:
            frame = frame.to_crs(4326)
        except pyproj.exceptions.ProjError as exc:  # another planet's CRS, say
            raise UnknownCRS(f"cannot transform {label} to WGS 84: {exc}") from None
    return frame, label


def match_columns(frame: pd.DataFrame, layer: Layer) -> tuple[pd.DataFrame, list[str]]:
    """Rename file columns to layer properties (case-insensitive, Shapefile 10-char names)."""
    wanted = {name.lower(): name for name in layer.property_names}
    wanted.update({name[:10].lower(): name for name in layer.property_names})
    renames, ignored = {}, []
    for column in frame.columns:
        if column == "geometry":
            continue
        target = wanted.get(str(column).lower())
        if target and target not in renames.values():
            renames[column] = target
        else:
            ignored.append(str(column))
    return frame.rename(columns=renames), ignored


async def import_frame(
    conn: AsyncConnection,
    layer: Layer,
    frame: pd.DataFrame,
    geometries: Any,
    settings: Settings,
    *,
    repair: bool = False,
    progress: Progress | None = None,
    user: User | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Validate columns named like the layer's properties plus EPSG:4326 geometries, then COPY
    them in one transaction. Returns (rows written, repairs).

    ``user`` None is the local admin (the CLI). Only an admin's import COPYs straight into the
    table; anyone else's goes through a staging table and an INSERT that row-level security
    checks (PostgreSQL has no COPY FROM under row-level security)."""
    user = user or local_admin()
    if not user.may_write:
        raise Forbidden(
            f"user {user.name!r} is a {user.role}; importing needs an editor or admin token"
        )
    say = progress or (lambda _msg: None)
    labels = range(1, len(frame) + 1)
    say(f"validating {len(frame)} features")

    def check() -> tuple[pd.DataFrame, Any, list[dict[str, Any]]]:
        attrs = attributes.check_attributes(layer, frame, labels)
        geoms, repairs = validate.check_geometries(
            layer, geometries, labels, service_bbox=settings.service_bbox, repair=repair
        )
        return attrs, geoms, repairs

    # CPU-bound: off the event loop, so a big upload does not stall other requests
    attrs, geoms, repairs = await anyio.to_thread.run_sync(check)
    say(f"writing {len(frame)} features")
    admin = user.role == "admin"
    async with writing(conn, user, row_security=not admin):
        refs = await write.resolve_references(conn, layer, frame, labels)
        await conn.execute("SET LOCAL statement_timeout = 0")
        count = await write.copy_in(
            conn, layer, validate.Checked(attrs, geoms, repairs), refs, staged=not admin
        )
    return count, repairs


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
) -> ImportReport:
    """Read, reproject, validate and COPY ``path`` into ``layer``: all or nothing."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    commune_id = None
    if commune is not None and layer.commune_ref is not None:
        # by id or code, like everywhere else; checked before reading a possibly big file
        commune_id = await require_commune(conn, commune)
    say(f"reading {path.name}")
    frame, fmt = await anyio.to_thread.run_sync(read, path, layer, settings)
    read_s = time.perf_counter() - started
    if frame.crs is not None or crs:
        say(f"reprojecting {len(frame)} features")
    frame, source_crs = await anyio.to_thread.run_sync(to_wgs84, frame, fmt, crs)
    frame, ignored = match_columns(frame, layer)
    if commune_id is not None:
        given = frame["commune"] if "commune" in frame else pd.Series([None] * len(frame))
        # a blank cell (CSV, Shapefile) is no commune either
        missing = given.isna() | given.astype(str).str.strip().eq("")
        frame["commune"] = given.astype(object).where(~missing, commune_id)
    count, repairs = await import_frame(
        conn,
        layer,
        frame,
        frame.geometry.array.to_numpy(),
        settings,
        repair=repair,
        progress=say,
        user=user,
    )
    seconds = {"read": round(read_s, 3), "total": round(time.perf_counter() - started, 3)}
    return ImportReport(
        layer.name, path.name, fmt.name, source_crs, count, ignored, repairs, seconds
    )
