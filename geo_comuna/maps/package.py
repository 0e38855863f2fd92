"""A commune's package for field work: one zip with everything a commune needs to map its land
offline in QGIS or QField and bring the edits back.

Inside:
- ``comuna.gpkg``: every layer of the registry, as far as it concerns the commune (its own
  features, the commune itself, exchanges at either end, the states its land lies in clipped
  to it), each feature with its ``id`` and ``version`` (the row version of its ETag:
  features/query.py ETAG_SQL) so that the edits can be synced back, lon/lat WGS 84
  (EPSG:4326); the styles of maps/styles.json in its ``layer_styles`` table (QGIS and QField
  apply them when they open the file), and a ``geo_comuna_package`` table saying which commune,
  schema and time the package is of;
- ``comuna.qgs`` / ``commune-en.qgs``: QGIS projects opening it with those styles, aliases
  and drop-downs, in Spanish and English (maps/qgis.py);
- the commune's offline map and its report, each in Spanish and English;
- ``README.txt`` saying all this in both languages.

The package holds what its reader may read, as an export does (features/query.py's read
rules): built for an anonymous reader, it has no members-only column and no members-only
position. Everything is written into a scratch directory beside the target and the zip moved
in place when complete, so a failed package leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio
from psycopg import AsyncConnection, sql

from geo_comuna import __version__, work
from geo_comuna.accounts import Access
from geo_comuna.analysis.base import Once, Unfinished
from geo_comuna.analysis.registry import all_analyses
from geo_comuna.db.migrate import current_version
from geo_comuna.db.versions import versions
from geo_comuna.errors import InvalidInput, Said
from geo_comuna.features.query import Filters, geometry_sql, property_exprs, where_sql
from geo_comuna.io.exporter import (
    WGS84,
    arrow_batches,
    column_types,
    gdal_crs,
    write_streamed,
)
from geo_comuna.io.formats import FORMATS, GDAL_ERRORS
from geo_comuna.layers import LAYERS, Layer
from geo_comuna.maps import data
from geo_comuna.maps.commune import commune_map
from geo_comuna.maps.package_tables import (
    COMMUNE_TABLE,
    GEOMETRY_COLUMN,
    GPKG,
    ID_COLUMN,
    INFO_TABLE,
    VERSION_COLUMN,
    clipped,
)
from geo_comuna.maps.page import Page
from geo_comuna.maps.qgis import (
    Forms,
    LayerStyle,
    layer_styles,
    project,
)
from geo_comuna.maps.report import answer_all, report
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.sync_base import BASE_TABLE, Bases
from geo_comuna.maps.templating import number
from geo_comuna.settings import Settings

PROJECTS = {"es": "comuna.qgs", "en": "commune-en.qgs"}
MAPS = {"es": "mapa.html", "en": "map-en.html"}
REPORTS = {"es": "informe.html", "en": "report-en.html"}
README = "README.txt"
STYLES_TABLE = "layer_styles"
#: ST_CollectionExtract's type of each geometry type
_EXTRACT = {"Point": 1, "LineString": 2, "MultiPolygon": 3}
#: drawing order, top to bottom: points over lines over areas
_STACK = {"Point": 0, "LineString": 1, "MultiPolygon": 2}

Progress = Callable[[str], None]


@dataclass
class PackageReport:
    commune: str
    file: str
    #: features per layer
    layers: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    #: analyses that could not be computed, and why (the report and README.txt say so too)
    unfinished: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _layer_query(
    layer: Layer, commune_id: int, access: Access
) -> tuple[sql.Composable, dict[str, Any], list[str]]:
    """fetch_layer()'s statement, its parameters and the output properties it gives."""
    exprs, joins = property_exprs(layer, access)
    where, params = where_sql(layer, Filters(commune_id=commune_id), access)
    geom = geometry_sql(layer, access)
    if clipped(layer):
        geom = sql.SQL(
            "ST_CollectionExtract(ST_Intersection({}, "
            "(SELECT c.geom FROM {} c WHERE c.id = %(commune)s)), {})"
        ).format(geom, sql.Identifier(COMMUNE_TABLE), sql.Literal(_EXTRACT[layer.geometry_type]))
        if layer.geometry_type.startswith("Multi"):
            geom = sql.SQL("ST_Multi({})").format(geom)
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expr, sql.Identifier(name)) for name, expr in exprs
    )
    query = sql.SQL(
        "SELECT t.id, t.xmin::text::bigint, {}, ST_AsBinary({}) FROM {} t {} WHERE {} ORDER BY t.id"
    ).format(columns, geom, sql.Identifier(layer.table), joins, where)
    return query, params, [name for name, _ in exprs]


async def fetch_layer(
    conn: AsyncConnection, layer: Layer, commune_id: int, access: Access
) -> tuple[list[str], list[tuple]]:
    """The output properties ``access`` may read and, per feature of the commune in id order,
    (id, row version, properties..., WKB geometry in EPSG:4326). The row version is the
    ``xmin`` the feature's ETag carries: the sync compares it to tell a conflict."""
    query, params, names = _layer_query(layer, commune_id, access)
    cur = await conn.execute(query, params)
    return names, await cur.fetchall()


async def write_layer(
    conn: AsyncConnection,
    gpkg: Path,
    layer: Layer,
    commune_id: int,
    access: Access,
    bases: Bases | None = None,
) -> tuple[list[str], int]:
    """Add ``layer`` to the GeoPackage: fetch_layer()'s rows, with the export's registry-typed
    columns (io/exporter.py) after ``id`` and ``version``. Returns the properties written and
    the features. The rows go to GDAL in pieces as they are read (io/exporter.write_streamed):
    a package of 200,000 parcels held them all as Python rows, then as a data frame (701 MB
    at its peak), then as one Arrow table (340 MB). ``bases``: where each feature's base
    goes as it is written (maps/sync_base.py), for a layer the sync brings back."""
    query, params, names = _layer_query(layer, commune_id, access)
    types = column_types(layer)
    schema = pa.schema(
        [
            (ID_COLUMN, pa.int32()),
            (VERSION_COLUMN, pa.int64()),
            *((name, types[name]) for name in names),
            (GEOMETRY_COLUMN, pa.binary()),
        ]
    )
    batches = arrow_batches(conn, query, params, schema, FORMATS["gpkg"])
    if bases is not None and not clipped(layer):
        batches = _noted(batches, bases, layer, names)
    rows = await write_streamed(batches, schema, lambda source: _write_layer(gpkg, layer, source))
    return names, rows


async def _noted(
    batches: AsyncIterator[pa.RecordBatch], bases: Bases, layer: Layer, names: list[str]
) -> AsyncIterator[pa.RecordBatch]:
    """``batches`` as they come, each one's bases noted first (on a worker thread)."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            await asyncio.to_thread(bases.add, layer.name, batch, names)
            yield batch


def _write_layer(gpkg: Path, layer: Layer, source: pa.RecordBatchReader) -> None:
    try:
        pyogrio.write_arrow(
            source,
            gpkg,
            layer=layer.name,
            driver="GPKG",
            dataset_options=FORMATS["gpkg"].dataset_options,
            geometry_name=GEOMETRY_COLUMN,
            geometry_type=layer.geometry_type,
            crs=gdal_crs(WGS84),
            layer_options={
                "GEOMETRY_NAME": GEOMETRY_COLUMN,
                "DESCRIPTION": f"{layer.description.es} / {layer.description.en}",
            },
        )
    except GDAL_ERRORS as exc:
        raise InvalidInput(
            Said(
                f"cannot write {layer.name} into the package: {exc}",
                f"no se puede escribir {layer.name} en el paquete: {exc}",
            )
        ) from None


def _table(gpkg: Path, name: str, columns: dict[str, pa.Array] | pa.Table) -> None:
    """A table without geometry (a GeoPackage "attributes" table, which QGIS and QField list
    and read through GDAL like any layer)."""
    pyogrio.write_arrow(
        columns if isinstance(columns, pa.Table) else pa.table(columns),
        gpkg,
        layer=name,
        driver="GPKG",
        dataset_options=FORMATS["gpkg"].dataset_options,
    )


def write_styles(gpkg: Path, styles: list[LayerStyle]) -> None:
    """The ``layer_styles`` table as QGIS itself makes it: where QGIS and QField look for the
    style of a GeoPackage layer (the row with useAsDefault) when they open the file."""
    n = len(styles)
    _table(
        gpkg,
        STYLES_TABLE,
        {
            "f_table_catalog": pa.array([""] * n),
            "f_table_schema": pa.array([""] * n),
            "f_table_name": pa.array([s.layer.name for s in styles]),
            "f_geometry_column": pa.array([GEOMETRY_COLUMN] * n),
            "styleName": pa.array([s.name for s in styles]),
            "styleQML": pa.array([s.qml for s in styles]),
            "styleSLD": pa.array([""] * n),
            "useAsDefault": pa.array([s.default for s in styles]),
            "description": pa.array([f"geo_comuna, maps/styles.json ({s.lang})" for s in styles]),
            "owner": pa.array([""] * n),
            "ui": pa.array([None] * n, pa.string()),
            "update_time": pa.array([_today()] * n, pa.timestamp("s", tz="UTC")),
        },
    )


def write_info(gpkg: Path, info: dict[str, str]) -> None:
    _table(gpkg, INFO_TABLE, {"key": pa.array(list(info)), "value": pa.array(list(info.values()))})


def _today() -> dt.datetime:
    """Midnight UTC today: the only time the package's contents carry (see steady)."""
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def made_on() -> str:
    """The day a package made now says it was made on (ISO date, UTC)."""
    return _today().date().isoformat()


#: where a SQLite file's header holds its change counter and the version-valid-for number
_SQLITE_COUNTERS = (24, 92)


def steady(gpkg: Path) -> None:
    """The GeoPackage's change times (gpkg_contents.last_change, which GDAL sets to the
    millisecond) cut to the day, so that one day's package of the same data is the same
    bytes: a HEAD answers the Content-Length its GET has, and a download can be compared
    with an earlier one. The zip's entries carry the time it was made."""
    day = _today().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with sqlite3.connect(gpkg) as db:
        db.execute("UPDATE gpkg_contents SET last_change = ?", (day,))
    db.close()
    # SQLite counts the transactions that changed the file in its header (the file change
    # counter at byte 24 and, equal to it, the version-valid-for number at byte 92). GDAL
    # now and then commits one transaction more for the same content (two packages of the
    # same data differed there and only there), so both are set to one value once every
    # write is done: as SQLite itself leaves them, equal.
    with open(gpkg, "r+b") as raw:
        for offset in _SQLITE_COUNTERS:
            raw.seek(offset)
            raw.write((1).to_bytes(4, "big"))


async def last_ids(conn: AsyncConnection) -> dict[str, int]:
    """Each layer's highest id when the package is made (ids only grow): a feature the sync
    finds stored but not in the package, above it, was added on the server since, by another
    team's sync or an editor, and is not one the field deleted (maps/sync.py)."""
    selects = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, coalesce(max(id), 0) FROM {}").format(
            sql.Literal(layer.name), sql.Identifier(layer.table)
        )
        for layer in LAYERS.values()
    )
    cur = await conn.execute(selects)
    return {name: int(n) for name, n in await cur.fetchall()}


def readme(
    info: data.CommuneInfo,
    counts: dict[str, int],
    complete: bool,
    unfinished: list[Unfinished] | None = None,
) -> str:
    """README.txt: the template in geo_comuna/maps/templates/package_readme.txt, filled;
    ``unfinished``: the analyses that could not be computed, named in both languages."""
    text = resources.files("geo_comuna.maps").joinpath("templates", "package_readme.txt")

    def layers(lang: str) -> str:  # each layer's name in the file, its title, its count
        return "\n".join(
            f"  - {name}: {LAYERS[name].title.get(lang)} ({number(lang)(n)})"
            for name, n in counts.items()
        )

    partial = {"es": "", "en": ""}
    if not complete:
        partial = {
            "es": "\nEste paquete tiene solo lo que cualquiera puede leer: sin las notas de las "
            "parcelas, ni los residentes, ni la ubicación de cada vivienda.\n",
            "en": "\nThis package holds only what anyone may read: no parcel notes, no "
            "residents, no position of each home.\n",
        }
    filled = text.read_text(encoding="utf-8").format(
        name=info.name,
        code=info.code,
        layers_es=layers("es"),
        layers_en=layers("en"),
        partial_es=partial["es"],
        partial_en=partial["en"],
        unfinished_es=_unfinished(unfinished or [], "es"),
        unfinished_en=_unfinished(unfinished or [], "en"),
        **_names(),
    )
    return _underlined(filled)


def _underlined(text: str) -> str:
    """Each heading's underline (==== or ----) as long as its heading, whatever the
    commune's name makes it."""
    lines = text.split("\n")
    for i in range(1, len(lines)):
        line = lines[i]
        if len(line) > 3 and set(line) in ({"="}, {"-"}):
            lines[i] = line[0] * len(lines[i - 1])
    return "\n".join(lines)


def _unfinished(failures: list[Unfinished], lang: str) -> str:
    """The README's list of analyses the report lacks, in ``lang`` (empty when none)."""
    if not failures:
        return ""
    installed = all_analyses()
    lines = [
        "",
        "ATENCIÓN: análisis que no se pudieron calcular (el informe tampoco los tiene):"
        if lang == "es"
        else "NOTE: analyses that could not be computed (the report lacks them too):",
    ]
    for why in failures:
        analysis = installed.get(why.name)
        title = why.name if analysis is None else getattr(analysis, f"title_{lang}")
        lines.append(f"  - {title}: {why.told(lang)}")
    return "\n".join(lines) + "\n"


def _names() -> dict[str, str]:
    return {
        "gpkg": GPKG,
        "qgs_es": PROJECTS["es"],
        "qgs_en": PROJECTS["en"],
        "map_es": MAPS["es"],
        "map_en": MAPS["en"],
        "report_es": REPORTS["es"],
        "report_en": REPORTS["en"],
    }


def _zip(directory: Path, names: list[str], target: Path) -> None:
    """The files into the zip ``target``, each dated the day the package is made on (not the
    moment it was written): the same data on the same day is the same bytes, which the
    package's ETag stands for (a download resumed with Range)."""
    packed = directory / "package.zip"
    day = _today().timetuple()[:6]
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            info = zipfile.ZipInfo.from_file(directory / name, name)
            info.date_time = day
            info.external_attr = 0o644 << 16  # a regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(directory / name, "rb") as source, zf.open(info, "w") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    os.replace(packed, target)


async def write_gpkg(
    conn: AsyncConnection,
    gpkg: Path,
    info: data.CommuneInfo,
    access: Access,
    styles: Styles,
    say: Progress,
) -> tuple[dict[str, int], list[tuple[Layer, list[str]]]]:
    """Every layer of the registry into ``gpkg`` with its styles and the package's own table;
    returns the features per layer and each layer with its columns, top to bottom."""
    # read before the layers: the package never claims to be newer than its data
    stamp = ",".join(f"{t}:{v}" for t, v in await versions(conn, LAYERS))
    last = await last_ids(conn)
    counts: dict[str, int] = {}
    written: list[tuple[Layer, list[str]]] = []
    styled: list[LayerStyle] = []
    bases = Bases()
    for layer in sorted(LAYERS.values(), key=lambda lay: _STACK[lay.geometry_type]):
        say(Said(f"layer {layer.title.en}", f"capa {layer.title.es}"))
        names, counts[layer.name] = await write_layer(conn, gpkg, layer, info.id, access, bases)
        written.append((layer, names))
        styled += layer_styles(styles, layer, names, Forms(info.code, GPKG))
    await asyncio.to_thread(write_styles, gpkg, styled)
    await asyncio.to_thread(_table, gpkg, BASE_TABLE, bases.table())
    del bases
    day = made_on()
    last_text = ",".join(f"{name}:{n}" for name, n in last.items())
    about = {
        # what the sync knows this package's new rows by (package_rows, maps/sync.py): its
        # commune, data and day, so that one day's package of the same data stays the same
        # bytes (steady); copies made alike share it, and the sync tells them apart by place
        "package_id": hashlib.sha256(
            f"{info.id}|{stamp}|{last_text}|{day}|{access}".encode()
        ).hexdigest()[:32],
        "commune_id": str(info.id),
        "commune_code": info.code,
        "commune_name": info.name,
        "schema_version": str(await current_version(conn)),
        "geo_comuna_version": __version__,
        "made_on": day,
        "layer_versions": stamp,
        "layer_last_ids": last_text,
        "layers": ",".join(counts),
        "crs": "EPSG:4326",
    }
    await asyncio.to_thread(write_info, gpkg, about)
    await asyncio.to_thread(steady, gpkg)
    return counts, written


async def write_pages(
    conn: AsyncConnection,
    folder: Path,
    commune_id: int,
    settings: Settings,
    access: Access,
    styles: Styles,
    say: Progress,
) -> None:
    """The offline map and the report, each in Spanish and English."""
    for lang in ("es", "en"):
        say(Said(f"map and report ({lang})", f"mapa e informe ({lang})"))
        for name, build in ((MAPS[lang], commune_map), (REPORTS[lang], report)):
            page = Page(
                lang=lang,  # type: ignore[arg-type]
                standalone=True,
                tile_url=settings.tile_url,
                tile_threshold=settings.map_tile_threshold,
                access=access,
                styles_path=settings.styles_path,
                web_assets_dir=settings.web_assets_dir,
            )
            html = await build(conn, commune_id, page, styles)
            (folder / name).write_text(html, encoding="utf-8")  # steady: page.finish
            del html
            await asyncio.to_thread(work.release_memory)  # each page starts from less


async def build_package(
    conn: AsyncConnection,
    commune_id: int,
    target: Path,
    settings: Settings,
    access: Access,
    progress: Progress | None = None,
) -> PackageReport:
    """Write the package of commune ``commune_id`` to the zip ``target`` (replaced when
    complete), holding what ``access`` may read."""
    started = time.perf_counter()
    say = progress or (lambda _: None)
    if not target.parent.is_dir():
        raise InvalidInput(
            Said(
                f"directory {str(target.parent)!r} does not exist",
                f"el directorio {str(target.parent)!r} no existe",
            )
        )
    styles = Styles.load(settings.styles_path)
    info = await data.commune_info(conn, commune_id)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".package-") as scratch:
        folder = Path(scratch)
        counts, written = await write_gpkg(conn, folder / GPKG, info, access, styles, say)
        for lang, name in PROJECTS.items():
            title = f"{info.name} — {'trabajo de campo' if lang == 'es' else 'field work'}"
            text = project(styles, written, GPKG, title, lang, WGS84, info.bounds, info.code)
            (folder / name).write_text(text, encoding="utf-8")
        # the report's summaries and maps, in two languages, ask for each analysis four
        # times: computed once, a failure kept and said in README.txt
        answers = Once(work.cache())
        with work.caching(answers):
            say(Said("analyses", "análisis"))
            with work.share(3):  # a third of the time left: the pages must still be drawn
                await answer_all(conn, commune_id)
            await asyncio.to_thread(work.release_memory)  # what the analyses left
            await write_pages(conn, folder, commune_id, settings, access, styles, say)
        unfinished = list(answers.failed.values())
        complete = access.member_of(commune_id)
        (folder / README).write_text(readme(info, counts, complete, unfinished), encoding="utf-8")
        files = [README, GPKG, *PROJECTS.values(), *MAPS.values(), *REPORTS.values()]
        say(Said(f"zipping {len(files)} files", f"comprimiendo {len(files)} archivos"))
        await asyncio.to_thread(_zip, folder, files, target)
    return PackageReport(
        info.code,
        str(target),
        counts,
        files,
        {why.name: why.en for why in unfinished},
        round(time.perf_counter() - started, 3),
    )
