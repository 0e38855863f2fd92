"""An upload's first bytes must be those of the format its name claims, before GDAL sees it.

GDAL chooses a driver by content, not by name, so without this an ``x.geojson`` holding VRT
XML is read by the VRT driver (which reads whatever files it names). Each check here is small
and strict: what a real file of the format begins with, nothing more. geo_comuna/gdal.py keeps
only the formats' own drivers as a second wall.

Also refused here, because GDAL would act on them while opening: a GeoJSON ``crs`` member that
is a link (GDAL fetches the URL) or names a CRS nobody knows (GDAL would silently read the
file as WGS 84), and an XML document type declaration in a KML (entity expansion).

A declared CRS nobody knows is refused by name in every format that declares one, before
GDAL turns it into "no CRS" (a .prj it cannot parse, a GeoPackage SRS row that is
``undefined``): the GeoJSON ``crs`` member, the Shapefile's .prj, the GeoPackage's
``gpkg_spatial_ref_sys`` row of each layer. KML is WGS 84 by definition and CSV declares none.
"""

from __future__ import annotations

import codecs
import functools
import json
import mmap
import re
import sqlite3
import time
import zipfile
from pathlib import Path, PurePosixPath

from geo_comuna.errors import InvalidFile, Said, UnknownCRS
from geo_comuna.io import stored

#: bytes of a file's head that the checks look at
HEAD = 64 * 1024
_BOM = codecs.BOM_UTF8
#: TIFF and BigTIFF, both byte orders
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: a Shapefile's main file begins with the file code 9994, big-endian
SHP_MAGIC = b"\x00\x00\x27\x0a"
#: the application_id of a GeoPackage (spec 1.2+), and of 1.0 / 1.1 files
GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: white space, processing instructions (<?xml ...?>) and comments before a root element
_XML_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
#: names of a zip's members we read: letters, digits, spaces and ._-() in at most one folder
_MEMBER = re.compile(r"(?:[\w .()-]+/)?[\w .()-]+")
_SIDECARS = (".shx", ".dbf")
#: the key "crs" as GDAL's GeoJSON reader matches it: any case, any letter \u-escaped
_CRS_KEY = re.compile(rb'"(?:c|\\u00[46]3)(?:r|\\u00[57]2)(?:s|\\u00[57]3)"', re.I)
_COLON = re.compile(rb"\s*:\s*")
_NUL = re.compile(rb"\\u0000", re.I)
#: the longest crs member read (a name is a few dozen bytes)
_CRS_MAX = 4096
#: the longest .prj read (WKT of a projected CRS is a few KB)
_PRJ_MAX = 64 * 1024
#: what to do about a declared CRS nobody knows: the file contradicts itself, so --crs alone
#: does not settle it (the caller may not know the declaration is broken)
_FIX = Said(
    "save the file again with its real CRS (or without the declaration, then give the CRS "
    "with --crs / ?crs=, e.g. EPSG:2202)",
    "vuelva a guardar el archivo con su sistema de referencia (CRS) real (o sin la "
    "declaración, e indique entonces el CRS con --crs / ?crs=, p. ej. EPSG:2202)",
)
#: GeoPackage srs_id values that mean "no CRS" (the spec's undefined Cartesian and geographic)
_GPKG_UNDEFINED = (0, -1)


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD)


def _text(head: bytes) -> bytes:
    """The head without a UTF-8 byte-order mark and leading white space."""
    return head.removeprefix(_BOM).lstrip()


def geojson(path: Path) -> None:
    head = _text(_head(path))
    if not head.startswith(b"{"):
        raise InvalidFile(
            Said(
                f"{path.name} is not GeoJSON: it does not start with a JSON object",
                f"{path.name} no es GeoJSON: no empieza con un objeto JSON",
            )
        )
    _geojson_crs(path)


def _geojson_nul(path: Path, data: mmap.mmap) -> None:
    """No NUL character, raw or escaped: GDAL's JSON reader ends a key at one, so
    ``"crs\\u0000x"`` is its ``crs`` while no check of ours would see it as that."""
    if data.find(b"\x00") != -1 or _NUL.search(data):
        raise InvalidFile(
            Said(
                f"{path.name} holds a NUL character (\\u0000), which no GeoJSON needs; remove it",
                f"{path.name} contiene un carácter NUL (\\u0000), que ningún GeoJSON necesita; "
                "quítelo",
            )
        )


#: the most different member names a GeoJSON may use (its features' property names among
#: them): GDAL looks each property name up in a list of all before it, so its schema costs
#: grow with their square. A layer has a few dozen properties; a file of QGIS' some hundreds.
MAX_GEOJSON_KEYS = 2_000
#: a member name: a string followed by a colon (an escaped quote in a name ends it early:
#: names are overcounted then, never missed; and this reads ~140 MB/s where one that
#: followed escapes read a third of that)
_MEMBER_NAME = re.compile(rb'"([^"]{0,256})"\s*:')
#: bytes scanned at a time for member names
_SCAN = 4 * 2**20


def _geojson_keys(path: Path, data: mmap.mmap) -> None:
    """At most MAX_GEOJSON_KEYS different member names, counted in the bytes before GDAL
    reads anything: one feature of 300,000 property names (5 MB) kept GDAL busy for hours
    after its client left, and 20,000 features of one new name each took a worker to 4.7 GB."""
    names: set[bytes] = set()
    for start in range(0, len(data), _SCAN):  # a name cut at a window's edge counts twice
        names.update(_MEMBER_NAME.findall(data, start, min(start + _SCAN + 300, len(data))))
        if len(names) > MAX_GEOJSON_KEYS:
            limit = f"{MAX_GEOJSON_KEYS:,}"
            raise InvalidFile(
                Said(
                    f"{path.name} uses more than {limit} different property names; a layer "
                    "has a few dozen (leave out the columns it does not need)",
                    f"{path.name} usa más de {limit.replace(',', '.')} nombres de propiedad "
                    "distintos; una capa tiene unas decenas (quite las columnas que no necesita)",
                )
            )


def _geojson_crs(path: Path) -> None:
    """Every ``crs`` member must name a CRS PROJ knows: GDAL fetches a link's URL, and reads an
    unknown name as WGS 84. Searched in the bytes (one scan of a big file), for every spelling
    GDAL takes as that key: any letter case, any letter escaped (``"\\u0063rs"``)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _geojson_nul(path, data)
        _geojson_keys(path, data)
        for key in _CRS_KEY.finditer(data):
            colon = _COLON.match(data, key.end())
            if colon is None:  # a string that reads "crs", not a member
                continue
            _named_crs(path, data, colon.end())


def _named_crs(path: Path, data: mmap.mmap, start: int) -> None:
    """The value at ``start`` must be exactly {"type": "name", "properties": {"name": N}} with
    N a CRS PROJ knows; anything else (a link, other members, a case-twin key GDAL would read
    first) is refused rather than interpreted differently from GDAL."""
    value = None
    try:
        text = data[start : start + _CRS_MAX].decode("utf-8", "replace")
        value = json.JSONDecoder().raw_decode(text)[0]
    except json.JSONDecodeError:
        pass
    props = value.get("properties") if isinstance(value, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if (
        not isinstance(value, dict)
        or set(value) != {"type", "properties"}
        or value["type"] != "name"
        or set(props) != {"name"}
        or not isinstance(name, str)
    ):
        raise UnknownCRS(
            Said(
                f"{path.name}: its GeoJSON 'crs' member is not a plain CRS name (a link would "
                "make the server fetch a URL); write it as "
                '{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2202"}}, or '
                "leave it out and give the CRS with --crs / ?crs=",
                f"{path.name}: su miembro GeoJSON 'crs' no es un simple nombre de sistema de "
                "referencia (CRS) (un enlace haría que el servidor descargara una URL); "
                "escríbalo como "
                '{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2202"}}, o '
                "quítelo e indique el CRS con --crs / ?crs=",
            )
        )
    # a name PROJ would answer by opening a file of the server's (+nadgrids=/etc/hostname)
    # is none, as in a .prj or a GeoPackage's CRS rows
    if not _known(name):
        why = Said("which does not exist", "que no existe")
        if _FILES.search(name):
            why = Said(
                "which names a file (a grid, an init file) the server would open",
                "que nombra un archivo (una malla, un archivo init) que el servidor abriría",
            )
        raise UnknownCRS(
            Said(
                f"{path.name} declares the CRS {name[:80]!r}, {why}; {_FIX}",
                f"{path.name} declara el sistema de referencia (CRS) {name[:80]!r}, {why.es}; "
                f"{_FIX.es}",
            )
        )


def kml(path: Path) -> None:
    head = _head(path).removeprefix(_BOM)
    rest = head[_XML_PROLOG.match(head).end() :]
    if rest.startswith(b"<!"):
        raise InvalidFile(
            Said(
                f"{path.name}: a KML with a document type declaration (<!DOCTYPE or <!ENTITY) "
                "is not accepted; save it again without one",
                f"{path.name}: no se acepta un KML con declaración de tipo de documento "
                "(<!DOCTYPE o <!ENTITY); vuelva a guardarlo sin ella",
            )
        )
    root = _ROOT.match(rest)
    if root is None or root.group(1) != b"kml":
        raise InvalidFile(
            Said(
                f"{path.name} is not KML: its root element is not <kml>",
                f"{path.name} no es KML: su elemento raíz no es <kml>",
            )
        )


def csv(path: Path) -> None:
    head = _head(path)
    if b"\x00" in head:
        raise InvalidFile(
            Said(
                f"{path.name} is not CSV text (it holds NUL bytes)",
                f"{path.name} no es texto CSV (contiene bytes NUL)",
            )
        )
    text = _text(head)
    if text[:1] in (b"<", b"{", b"["):
        raise InvalidFile(
            Said(
                f"{path.name} is not CSV: it starts like XML or JSON",
                f"{path.name} no es CSV: empieza como XML o JSON",
            )
        )


#: the bytes of a GeoPackage's header gpkg_head checks
GPKG_HEAD = 100


def gpkg(path: Path, *, dates: bool = True) -> None:
    """``dates``: refuse a value its DATE or DATETIME column does not hold too (io/stored.py);
    False for a field package's sync, which reads them as text and names every one."""
    head = _head(path)
    gpkg_head(head, path.name)
    _gpkg_whole_file(path, head)
    _gpkg_crs(path, dates)


def gpkg_head(head: bytes, name: str) -> None:
    """The first bytes of a GeoPackage (GPKG_HEAD of them): SQLite's header, and a
    GeoPackage's application id."""
    if not head.startswith(b"SQLite format 3\x00"):
        raise InvalidFile(
            Said(
                f"{name} is not a GeoPackage (no SQLite header): corrupt?",
                f"{name} no es un GeoPackage (sin cabecera SQLite): ¿está dañado?",
            )
        )
    if head[68:72] not in GPKG_IDS:
        raise InvalidFile(
            Said(
                f"{name} is an SQLite database but not a GeoPackage",
                f"{name} es una base de datos SQLite, pero no un GeoPackage",
            )
        )


def _gpkg_whole_file(path: Path, head: bytes) -> None:
    """A GeoPackage cut short (a download or copy stopped halfway: fewer bytes than its
    header's page count says; found from outside, it was said to run SQL)."""
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    # the page count is valid when the header's change counter (24) is its valid-for (92)
    size = path.stat().st_size
    if pages and head[24:28] == head[92:96] and size < page * pages:
        raise InvalidFile(
            Said(
                f"{path.name} is cut short: it holds {size:,} of the {page * pages:,} bytes its "
                "header says (a download or copy that stopped?); send the whole file",
                f"{path.name} está cortado: tiene {size:,} de los {page * pages:,} bytes que dice "
                "su cabecera (¿una descarga o copia interrumpida?); envíe el archivo entero",
            )
        )


def wal_left_behind(path: Path) -> bool:
    """Was the GeoPackage last written in write-ahead-log mode (its header's version bytes
    are 2: QGIS leaves it so) with no ``-wal`` file beside it now? Then edits made while a
    program still had it open may be in that file, which did not come (found from outside: a
    sync page's upload lacked a home's edit, and said nothing changed). QGIS writes them
    into the GeoPackage when the project is closed, so nothing here can tell the two apart."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    return len(head) == 20 and head[18] == 2 and not path.with_name(f"{path.name}-wal").exists()


def _gpkg_crs(path: Path, dates: bool = True) -> None:
    """Each feature table's SRS row must be one PROJ knows: GDAL reads an ``undefined`` or
    unreadable definition as no CRS at all; and each table's values must be what their
    columns declare (``dates`` too: _stored). Read-only and immutable: nothing of the file
    runs (no triggers, no views evaluated), and every read is bounded by one deadline."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        raise InvalidFile(
            Said(
                f"{path.name} is not a readable GeoPackage: corrupt?",
                f"{path.name} no es un GeoPackage legible: ¿está dañado?",
            )
        ) from None
    # every read of this check stops at a deadline set by the file's size: SQLite calls the
    # handler every 100 of its steps
    deadline = time.monotonic() + CHECK_SECONDS + path.stat().st_size / CHECK_BYTES_PER_SECOND
    db.set_progress_handler(lambda: int(time.monotonic() > deadline), 100)
    try:
        db.execute("PRAGMA trusted_schema = OFF")
        _inert(db, path)
        _whole(db, path)
        _stored(db, path, dates)
        # one row per CRS the layers name (PROJ takes ~0.3 s to refuse a definition: 300
        # layers naming one garbage definition took 49 s), the first layer naming it
        rows = db.execute(
            "SELECT min(g.table_name), g.srs_id, s.srs_name, s.organization, "
            "s.organization_coordsys_id, s.definition FROM gpkg_geometry_columns g "
            "LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id "
            "GROUP BY g.srs_id, s.srs_name, s.organization, s.organization_coordsys_id, "
            "s.definition LIMIT ?",
            (MAX_GPKG_CRS + 1,),
        ).fetchall()
    except sqlite3.Error:
        raise InvalidFile(
            Said(
                f"{path.name} is not a GeoPackage (no readable layer list)",
                f"{path.name} no es un GeoPackage (sin lista de capas legible)",
            )
        ) from None
    finally:
        db.close()
    if len(rows) > MAX_GPKG_CRS:
        raise InvalidFile(
            Said(
                f"{path.name} names more than {MAX_GPKG_CRS} CRSs for its layers",
                f"{path.name} nombra más de {MAX_GPKG_CRS} sistemas de referencia (CRS) para "
                "sus capas",
            )
        )
    for table, srs_id, name, org, org_id, definition in rows:
        if srs_id in _GPKG_UNDEFINED:
            continue  # says "no CRS": the import refuses it, naming --crs
        declared = f"srs_id {srs_id} ({str(name)[:60]!r}, {org} {org_id})"
        if definition is None and name is None:
            raise UnknownCRS(
                Said(
                    f"{path.name}: layer {str(table)[:60]!r} names {declared}, which its "
                    f"gpkg_spatial_ref_sys does not define; {_FIX}",
                    f"{path.name}: la capa {str(table)[:60]!r} nombra {declared}, que su "
                    f"gpkg_spatial_ref_sys no define; {_FIX.es}",
                )
            )
        epsg = str(org).upper() == "EPSG"
        if epsg and org_id == 4326:  # WGS 84, known without asking PROJ
            continue
        if _known(str(definition)) or (epsg and _known(f"EPSG:{org_id}")):
            continue
        raise UnknownCRS(
            Said(
                f"{path.name}: layer {str(table)[:60]!r} declares the CRS {declared}, which does "
                f"not exist (its definition cannot be read); {_FIX}",
                f"{path.name}: la capa {str(table)[:60]!r} declara el sistema de referencia "
                f"(CRS) {declared}, que no existe (su definición no se puede leer); {_FIX.es}",
            )
        )


#: the most schema entries a GeoPackage may hold (a package has ~100: tables, indexes, the
#: spatial indexes' R*Tree tables and triggers)
MAX_GPKG_ENTRIES = 5000
#: the most CRSs its layers may name
MAX_GPKG_CRS = 16
#: how long this check may read a GeoPackage: a second, and a second per 25 MB (SQLite's
#: quick_check of 322 MB took 0.3 s from the page cache, 6.7 s from disk)
CHECK_SECONDS = 1.0
CHECK_BYTES_PER_SECOND = 25 * 2**20


def _inert(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a GeoPackage whose reading would run SQL of its own: GDAL reads a layer that
    is a view by running the view, and a column generated by an expression by working it out
    for every row. A 98 KB upload whose parcels were a view over a recursive query that never
    ends froze the server (GDAL's read held Python's lock), and a view repeating a package's
    parcels 40,000 times took a worker past 10 GB. Only plain tables are read, and the R*Tree
    virtual tables of GeoPackage's spatial index (five columns: GDAL keeps them up to date,
    never reads them as features). Judged from sqlite_master alone, which runs nothing, by
    each entry's SQL (SQLite builds a schema from its SQL: an entry typed 'View' instead of
    'view' was a view our check did not see), with SQLite's work bounded by the caller."""
    try:
        schema = db.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master LIMIT ?",
            (MAX_GPKG_ENTRIES + 1,),
        ).fetchall()
    except sqlite3.Error:  # the progress handler's interrupt, or no readable schema
        raise _runs_sql(
            path,
            "a schema SQLite cannot read (or not within its bounds)",
            "un esquema que SQLite no puede leer (o no dentro de sus límites)",
        ) from None
    if len(schema) > MAX_GPKG_ENTRIES:
        raise InvalidFile(
            Said(
                f"{path.name} holds more than {MAX_GPKG_ENTRIES} tables, indexes and triggers",
                f"{path.name} contiene más de {MAX_GPKG_ENTRIES} tablas, índices y disparadores",
            )
        )
    for kind, name, text in schema:
        shown = repr(str(name)[:60])
        made = _CREATE.match(_uncommented(text))
        what = " ".join(made[1].upper().split()) if made else None
        if kind == "index" and what in (None, "INDEX", "UNIQUE INDEX"):
            continue  # an automatic index has no SQL
        if kind == "trigger" and what == "TRIGGER":
            continue  # never fired by a read
        if kind == "table" and what == "VIRTUAL TABLE":
            module = _MODULE.match(_uncommented(text))
            if module and module[1].lower() == "rtree" and "+" not in text:
                continue
            raise _runs_sql(path, f"the virtual table {shown}", f"la tabla virtual {shown}")
        if kind != "table" or what != "TABLE":
            raise _runs_sql(path, f"the view {shown}", f"la vista {shown}")
        columns = db.execute("SELECT name, hidden FROM pragma_table_xinfo(?)", (name,))
        generated = [c for c, hidden in columns if hidden in (2, 3)]
        if generated:
            which = f"{shown}.{str(generated[0])[:60]!r}"
            raise _runs_sql(path, f"the generated column {which}", f"la columna generada {which}")


def _whole(db: sqlite3.Connection, path: Path) -> None:
    """SQLite's own check of every page (PRAGMA quick_check: each page once, so its work is
    bounded by the file's size). SQLite does not notice a table's page tree pointing to one
    page thousands of times while reading it: a 2 MB upload so built kept a CPU busy for
    good counting its rows, and an 11 MB one made GDAL read one 9.6 MB polygon thousands of
    times until it crashed a worker. (Read-only, it works out no CHECK constraint; the
    caller's deadline bounds it all the same.)"""
    try:
        found = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise too_slow(path) from None
        found = (str(exc),)
    except sqlite3.Error as exc:
        found = (str(exc),)
    if found != ("ok",):
        said = str(found[0]).replace("*** in database main ***", "") if found else "no answer"
        why = " ".join(said.split())[:120]
        raise InvalidFile(
            Said(
                f"{path.name} is a damaged SQLite database ({why}): save it again with QGIS "
                "or ogr2ogr",
                f"{path.name} es una base de datos SQLite dañada ({why}): vuelva a guardarlo "
                "con QGIS u ogr2ogr",
            )
        )


def _stored(db: sqlite3.Connection, path: Path, dates: bool) -> None:
    """Values its columns do not hold, which GDAL would read as others (io/stored.py)."""
    try:
        stored.check(db, path, dates=dates)
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise too_slow(path) from None
        raise


def too_slow(path: Path) -> InvalidFile:
    """A GeoPackage whose checks outlast their deadline (CHECK_SECONDS and the file's size)."""
    return InvalidFile(
        Said(
            f"{path.name} takes longer to check than a file of its size may: save it again "
            "with QGIS or ogr2ogr",
            f"{path.name} tarda en comprobarse más de lo que puede un archivo de su tamaño: "
            "vuelva a guardarlo con QGIS u ogr2ogr",
        )
    )


#: what an entry of sqlite_master creates, after its comments
_CREATE = re.compile(
    r"\s*CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?(TABLE|VIEW|VIRTUAL\s+TABLE|INDEX|UNIQUE\s+INDEX|"
    r"TRIGGER)\b",
    re.I,
)
#: a virtual table's module, right after its (quoted or plain) name
_MODULE = re.compile(
    r"\s*CREATE\s+VIRTUAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`[^`]*`|'[^']*'|[\w$]+)(?:\s*\.\s*(?:\"[^\"]*\"|[\w$]+))?"
    r"\s+USING\s+(\w+)",
    re.I,
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.S)


def _uncommented(text: str) -> str:
    """SQL without its comments (a comment read 'USING rtree(' in an fts5 table's SQL)."""
    return _COMMENTS.sub(" ", text)


def _runs_sql(path: Path, what: str, que: str) -> InvalidFile:
    return InvalidFile(
        Said(
            f"{path.name} holds {what}, which runs SQL when it is read: a GeoPackage's layers "
            "must be plain tables (save it again with QGIS or ogr2ogr)",
            f"{path.name} contiene {que}, que ejecuta SQL al leerse: las capas de un GeoPackage "
            "deben ser tablas simples (vuelva a guardarlo con QGIS u ogr2ogr)",
        )
    )


#: what in a PROJ string, or a WKT, names a file PROJ would open (a grid, an init file)
_FILES = re.compile(
    r"\+\s*(?:init|nadgrids|geoidgrids|grids|file)\s*=|file:|PROJ4_GRIDS|PARAMETERFILE", re.I
)


@functools.lru_cache(maxsize=256)
def _known(definition: str) -> bool:
    """Can PROJ read ``definition`` as a CRS? One that names a file PROJ would open
    (``+init=/etc/passwd:root``, ``+nadgrids=/dev/zero``) is no CRS of an upload's: PROJ
    opened the server's file to answer."""
    if _FILES.search(definition):
        return False
    import pyproj

    try:
        pyproj.CRS.from_user_input(definition)
    except pyproj.exceptions.CRSError:
        return False
    return True


def prj(name: str, data: bytes) -> None:
    """A Shapefile's .prj must hold a CRS PROJ can read: GDAL takes an unreadable one for no
    CRS, and a CRS of another celestial body cannot reach WGS 84 at all."""
    text = data[:_PRJ_MAX].decode("utf-8", "replace").strip()
    if not text:
        return  # an empty .prj says nothing: the import refuses it, naming --crs
    if not _known(text):
        raise UnknownCRS(
            Said(
                f"{name} declares the CRS {text[:80]!r}, which does not exist (PROJ cannot read "
                f"it); {_FIX}",
                f"{name} declara el sistema de referencia (CRS) {text[:80]!r}, que no existe "
                f"(PROJ no puede leerlo); {_FIX.es}",
            )
        )


def shapefile(path: Path) -> None:
    """A bare .shp (local files only: the CLI): its file code."""
    if not _head(path).startswith(SHP_MAGIC):
        raise InvalidFile(
            Said(
                f"{path.name} is not a Shapefile (.shp without its file code)",
                f"{path.name} no es un Shapefile (.shp sin su código de archivo)",
            )
        )
    for sidecar in (path.with_suffix(".shx"), path.with_suffix(".SHX")):
        if sidecar.is_file():
            index(sidecar.name, sidecar.read_bytes(), path.stat().st_size)
            break
    for suffix, check, most in _CHECKED:
        for sidecar in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if sidecar.is_file():
                with sidecar.open("rb") as fh:
                    check(sidecar.name, fh.read(most))
                break


#: members a zip upload may list (a zipped Shapefile holds ~8 files, a package ~10), and the
#: bytes of its central directory (a member's entry is ~50 bytes and its name)
MAX_ZIP_MEMBERS = 1_000
MAX_ZIP_DIRECTORY = 1 << 20


def readable_zip(path: Path) -> None:
    """Refuse a file that is no zip, and a zip whose central directory lists more than
    MAX_ZIP_MEMBERS members or holds more than MAX_ZIP_DIRECTORY bytes, before Python's
    zipfile reads the directory: it makes an object of every entry, and a 153 MB upload
    listing 3,000,000 five-letter names took a worker past 2 GB (found from outside). The
    counts are read from the end records by zipfile's own reading of them (its _EndRecData:
    the records it then trusts, ZIP64's included), so no record can say one thing here and
    another there: a hand-made reading was led past twice (a ZIP64 locator pointing
    elsewhere, an end signature repeated)."""
    with open(path, "rb") as fh:
        end = zipfile._EndRecData(fh)  # noqa: SLF001 (the reading zipfile then relies on)
    if end is None or not zipfile.is_zipfile(path):
        raise InvalidFile(
            Said(
                f"{path.name} is not a readable zip archive: corrupt?",
                f"{path.name} no es un archivo zip legible: ¿está dañado?",
            )
        )
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001
    if entries > MAX_ZIP_MEMBERS or directory > MAX_ZIP_DIRECTORY:
        raise InvalidFile(
            Said(
                f"{path.name} lists {entries:,} files in {directory:,} bytes; a zip here holds "
                f"at most {MAX_ZIP_MEMBERS:,} (a Shapefile's or a package's files)",
                f"{path.name} lista {entries:,} archivos en {directory:,} bytes; un zip aquí "
                f"contiene como mucho {MAX_ZIP_MEMBERS:,} (los archivos de un Shapefile o de un "
                "paquete)",
            )
        )


def no_twins(path: Path, names: list[str]) -> None:
    """Refuse two members of one name, in any case: the checks here read one and GDAL
    another (zipfile opens the last of a name, GDAL's /vsizip/ the first, and a .SHX beside
    a .shx is a matter of which is asked for). Found from outside: a good .shx checked, a
    bad one read, and 437 KB became 49 million vertices."""
    seen: set[str] = set()
    for name in names:
        folded = name.casefold()
        if folded in seen:
            raise InvalidFile(
                Said(
                    f"{path.name} holds two files named {name[:80]!r} (in any case); refusing it",
                    f"{path.name} contiene dos archivos llamados {name[:80]!r} (en mayúsculas o "
                    "minúsculas); se rechaza",
                )
            )
        seen.add(folded)


def shapefile_zip(path: Path, max_unpacked: int) -> str:
    """A zip holding exactly one Shapefile (.shp with its .shx and .dbf, optional sidecars);
    returns the .shp's member name. Refuses odd member names, other archives' tricks, more
    than ``max_unpacked`` bytes unpacked, and a .shp that is not one."""
    readable_zip(path)
    with zipfile.ZipFile(path) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        names = [i.filename for i in members if not i.filename.startswith("__MACOSX/")]
        for name in names:
            if not _MEMBER.fullmatch(name) or ".." in name:
                raise InvalidFile(
                    Said(
                        f"{path.name} holds a file named {name[:80]!r}; refusing it",
                        f"{path.name} contiene un archivo llamado {name[:80]!r}; se rechaza",
                    )
                )
        no_twins(path, [i.filename for i in members])
        shps = [n for n in names if n.lower().endswith(".shp")]
        if len(shps) != 1:
            raise InvalidFile(
                Said(
                    f"{path.name} must hold exactly one .shp; found {len(shps)}",
                    f"{path.name} debe contener exactamente un .shp; se encontraron {len(shps)}",
                )
            )
        total = sum(i.file_size for i in members)
        if total > max_unpacked:
            raise InvalidFile(
                Said(
                    f"{path.name} unpacks to {total} bytes, over the limit of {max_unpacked} "
                    "(zip bomb?)",
                    f"{path.name} se descomprime en {total} bytes, por encima del límite de "
                    f"{max_unpacked} (¿una bomba zip?)",
                )
            )
        shp = shps[0]
        stem = str(PurePosixPath(shp).with_suffix("")).lower()
        present = {n.lower() for n in names}
        missing = [s for s in _SIDECARS if stem + s not in present]
        if missing:
            raise InvalidFile(
                Said(
                    f"{path.name}: {shp} comes without its {' and '.join(missing)}",
                    f"{path.name}: {shp} viene sin {' ni '.join(missing)}",
                )
            )
        with zf.open(shp) as fh:
            if fh.read(4) != SHP_MAGIC:
                raise InvalidFile(
                    Said(
                        f"{path.name}: {shp} is not a Shapefile (no file code)",
                        f"{path.name}: {shp} no es un Shapefile (sin código de archivo)",
                    )
                )
        shx = next(n for n in names if n.lower() == stem + ".shx")
        with zf.open(shx) as fh:
            index(f"{path.name}: {shx}", fh.read(), zf.getinfo(shp).file_size)
        for suffix, check, most in _CHECKED:
            found = [n for n in names if n.lower() == stem + suffix]
            if found:
                with zf.open(found[0]) as fh:
                    check(f"{path.name}: {found[0]}", fh.read(most))
    return shp


#: the longest .cpg read (it names one encoding)
_CPG_MAX = 256
#: the encodings a Shapefile's .cpg may name (as QGIS, ArcGIS and GDAL write them, spaces,
#: hyphens and case aside): Unicode's, and the Latin ones Venezuelan data comes in
_CPG_READ = {
    "UTF8", "65001", "ASCII", "USASCII",
    "LATIN1", "ISO88591", "88591", "LATIN9", "ISO885915", "885915",
    "CP1252", "1252", "ANSI1252", "WINDOWS1252", "CP850", "850", "CP437", "437",
}  # fmt: skip


def cpg(name: str, text: bytes) -> None:
    """A Shapefile's .cpg must name an encoding of _CPG_READ: GDAL reads the .dbf in whatever
    it names, and found from outside, UTF-7 dropped a code's ñ and ú without a word (and the
    upsert then took it for another parcel), CP037 or UTF-16 made its column names no names."""
    said = text.decode("ascii", "replace").strip()
    if said and re.sub(r"[\s_-]", "", said).upper() not in _CPG_READ:
        raise InvalidFile(
            Said(
                f"{name} names the encoding {said[:40]!r}, which geo-comuna does not read "
                "Shapefiles in: save it again as UTF-8",
                f"{name} indica la codificación {said[:40]!r}, en la que geo-comuna no lee "
                "Shapefiles: vuelva a guardarlo en UTF-8",
            )
        )


#: a Shapefile's small sidecars checked before GDAL reads them: its CRS and its encoding,
#: each read up to its bound
_CHECKED = ((".prj", prj, _PRJ_MAX), (".cpg", cpg, _CPG_MAX))


def index(name: str, shx: bytes, shp_size: int) -> None:
    """A Shapefile's index (.shx) must place each record after the one before, inside the
    .shp: GDAL reads the records where it says. One naming a single 49,000-vertex record
    2,500 times made a 250 KB upload 122 million vertices (4 GB in a worker); with records
    that follow one another, the .shp's size bounds what is read."""
    import numpy as np  # loaded only for a Shapefile

    records = len(shx) - 100
    if len(shx) < 100 or records % 8:
        raise InvalidFile(
            Said(
                f"{name} is not a Shapefile index: {len(shx)} bytes",
                f"{name} no es un índice de Shapefile: {len(shx)} bytes",
            )
        )
    words = np.frombuffer(shx, dtype=">i4", offset=100).reshape(-1, 2).astype(np.int64) * 2
    starts, ends = words[:, 0], words[:, 0] + 8 + words[:, 1]
    if len(starts) and (
        starts[0] < 100
        or (words[:, 1] < 0).any()
        or (starts[1:] < ends[:-1]).any()
        or ends[-1] > shp_size
    ):
        raise InvalidFile(
            Said(
                f"{name} places records over one another or beyond the .shp: in a Shapefile "
                "each record follows the one before (save it again with QGIS or ogr2ogr)",
                f"{name} coloca registros unos sobre otros o más allá del .shp: en un Shapefile "
                "cada registro sigue al anterior (vuelva a guardarlo con QGIS u ogr2ogr)",
            )
        )


def geotiff(path: Path) -> None:
    if not _head(path).startswith(TIFF_MAGIC):
        raise InvalidFile(
            Said(
                f"{path.name} is not a GeoTIFF (no TIFF header)",
                f"{path.name} no es un GeoTIFF (sin cabecera TIFF)",
            )
        )
