"""Values a GeoPackage holds as something other than its columns declare.

SQLite keeps any value in any column, and GDAL reads each as the column's declared type
without a word: 'muchos' in an INTEGER column came out 0, 7.9 came out 7, 99999999999 in a
MEDIUMINT (32 bits) came out 1215752191, '31/02/2020' in a DATE came out 1970-01-01 and
2020-02-31 came out 2020-03-02. An import and a field package's sync stored those. Each
feature table's typed columns are read here as SQLite stores them, and the first value that
GDAL could not read as declared is refused, naming its feature (its position in the table,
as GDAL reads it: rowid order), its column and the value as written.

Called by io/sniff.py on its read-only, immutable connection, whose deadline bounds this
scan too (one pass over each table).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from geo_comuna.errors import InvalidFile, Said

#: GeoPackage's integer types (spec, table 1) and the values each may hold
_WHOLE = {
    "BOOLEAN": (0, 1),
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "MEDIUMINT": (-(2**31), 2**31 - 1),
    "INT": None,  # 64 bits: SQLite's own integers
    "INTEGER": None,
}
_REAL = ("FLOAT", "DOUBLE", "REAL")


def _holds(kind: str, column: str) -> str | None:
    """SQLite's test that ``column`` (quoted) holds what its declared ``kind`` says, as
    GDAL reads it back; None for a kind read as it is (TEXT, BLOB, geometries)."""
    if kind in _WHOLE:
        bounds = _WHOLE[kind]
        within = "" if bounds is None else f" AND {column} BETWEEN {bounds[0]} AND {bounds[1]}"
        return f"typeof({column}) = 'integer'{within}"
    if kind in _REAL:
        return f"typeof({column}) IN ('integer', 'real')"
    # date() with a modifier writes a day as YYYY-MM-DD after moving an impossible one on
    # (2020-02-31 is 2020-03-02): equal to the value only for a real day so written
    if kind == "DATE":
        return f"date({column}, '+0 days') = {column}"
    if kind == "DATETIME":
        day = f"substr({column}, 1, 10)"
        return f"date({day}, '+0 days') = {day} AND datetime({column}) IS NOT NULL"
    return None


def _what(kind: str) -> Said:
    """What a column of ``kind`` holds, in words."""
    if kind == "BOOLEAN":
        return Said("0 or 1 (false or true)", "0 o 1 (falso o verdadero)")
    bounds = _WHOLE.get(kind)
    if bounds is not None:
        low, high = (f"{n:,}" for n in bounds)
        bajo, alto = (f"{n:,}".replace(",", ".") for n in bounds)
        return Said(f"whole numbers from {low} to {high}", f"números enteros de {bajo} a {alto}")
    if kind in _WHOLE:
        return Said("whole numbers", "números enteros")
    if kind in _REAL:
        return Said("numbers", "números")
    if kind == "DATE":
        return Said("dates written YYYY-MM-DD", "fechas escritas AAAA-MM-DD")
    return Said("moments written YYYY-MM-DDTHH:MM:SS", "momentos escritos AAAA-MM-DDTHH:MM:SS")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    if isinstance(value, str) and len(value) > 60:
        value = value[:60] + "…"
    return repr(value)


def check(db: sqlite3.Connection, path: Path, *, dates: bool = True) -> None:
    """Refuse the first value of a feature or attribute table that its column's declared
    type does not hold (module doc), and a column of a type GDAL leaves out. ``db``: sniff's
    read-only connection; ``dates``: check DATE and DATETIME columns too (a sync reads those
    as text, maps/sync_read.py)."""
    skipped = () if dates else ("DATE", "DATETIME")
    tables = db.execute(
        "SELECT table_name FROM gpkg_contents WHERE data_type IN ('features', 'attributes')"
    ).fetchall()
    for (table,) in tables:
        table = str(table)
        _refuse_without_rowid(db, path, table)
        columns = db.execute("SELECT name, type, pk FROM pragma_table_info(?)", (table,))
        rows = columns.fetchall()
        keys = [name for name, _, pk in rows if pk]
        alias = keys if len(keys) == 1 else []  # one INTEGER PRIMARY KEY column: the rowid
        typed = []
        for name, declared, _ in rows:
            if name in alias and str(declared).upper() == "INTEGER":
                continue  # the rowid itself: an integer, always
            kind = gdal_kind(str(declared))
            if kind is None:
                _refuse_left_out(path, table, str(name), str(declared))
            test = _holds(kind, _quoted(str(name))) if kind not in skipped else None
            if test is not None:
                typed.append((str(name), kind, str(declared), test))
        if typed:
            _check_table(db, path, table, typed)


#: the OGC geometry types a column may be declared as (GDAL reads such a column as a shape)
_SHAPES = frozenset(
    "GEOMETRY POINT LINESTRING POLYGON MULTIPOINT MULTILINESTRING MULTIPOLYGON "
    "GEOMETRYCOLLECTION GEOMCOLLECTION CIRCULARSTRING COMPOUNDCURVE CURVEPOLYGON MULTICURVE "
    "MULTISURFACE CURVE SURFACE POLYHEDRALSURFACE TIN TRIANGLE".split()
)


def gdal_kind(declared: str) -> str | None:
    """A column's declared type as GDAL's GeoPackage driver reads it (GPkgFieldToOGR): any
    type starting INT is a 64-bit INTEGER (INT8, INTEGER UNSIGNED...), NUMERIC a REAL, TEXT...
    and BLOB... as they are ("TEXT" here, like the shapes: nothing to check), the others only
    as spelt, in any case; None for a type GDAL leaves out (BIGINT, BOOL, MEDIUMINT(10), none
    at all)."""
    kind = declared.strip().upper()
    if kind.startswith("INT"):
        return "INTEGER"
    if kind == "NUMERIC":
        return "REAL"
    if kind in _WHOLE or kind in _REAL or kind in ("DATE", "DATETIME"):
        return kind
    if kind.startswith(("TEXT", "BLOB")) or kind in _SHAPES:
        return "TEXT"
    return None


def _refuse_without_rowid(db: sqlite3.Connection, path: Path, table: str) -> None:
    """A table WITHOUT ROWID is no GeoPackage layer (whose key is its rowid) and its values
    could not be checked in the order GDAL reads them."""
    try:
        db.execute(f"SELECT rowid FROM {_quoted(table)} LIMIT 0")
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise  # the caller's deadline
        raise InvalidFile(
            Said(
                f"{path.name}: layer {table!r} is a table WITHOUT ROWID, which a GeoPackage "
                "layer is not (its key is an INTEGER PRIMARY KEY): save it again with QGIS or "
                "ogr2ogr",
                f"{path.name}: la capa {table!r} es una tabla WITHOUT ROWID, que una capa de "
                "GeoPackage no es (su clave es un INTEGER PRIMARY KEY): vuelva a guardarla con "
                "QGIS u ogr2ogr",
            )
        ) from None


def _refuse_left_out(path: Path, table: str, column: str, declared: str) -> None:
    """A column of a type GDAL does not read: it would leave the column out, and an import
    would store nothing of it without a word (found from outside: workers BIGINT)."""
    shown = declared if declared.strip() else "(no type)"
    raise InvalidFile(
        Said(
            f"{path.name}, layer {table!r}: its column {column!r} is declared {shown}, a type "
            "GeoPackage does not have, which GDAL leaves out: save the file again with QGIS or "
            "ogr2ogr (INTEGER, MEDIUMINT, SMALLINT, TINYINT, BOOLEAN, REAL, DOUBLE, FLOAT, "
            "TEXT, BLOB, DATE, DATETIME)",
            f"{path.name}, capa {table!r}: su columna {column!r} está declarada {shown}, un "
            "tipo que GeoPackage no tiene y que GDAL deja fuera: vuelva a guardar el archivo "
            "con QGIS u ogr2ogr (INTEGER, MEDIUMINT, SMALLINT, TINYINT, BOOLEAN, REAL, DOUBLE, "
            "FLOAT, TEXT, BLOB, DATE, DATETIME)",
        )
    )


def _check_table(
    db: sqlite3.Connection, path: Path, table: str, typed: list[tuple[str, str, str, str]]
) -> None:
    name = _quoted(table)
    values = ", ".join(_quoted(column) for column, *_ in typed)
    # each column's test: 1 when it holds what it declares, else 0 (never NULL)
    tests = [f"coalesce({_quoted(c)} IS NULL OR ({test}), 0)" for c, _, _, test in typed]
    fine, oks = " AND ".join(tests), ", ".join(tests)
    try:
        found = db.execute(
            f"SELECT rowid, {values}, {oks} FROM {name} WHERE NOT ({fine}) ORDER BY rowid LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise  # the caller's deadline
        raise InvalidFile(
            Said(
                f"{path.name}: layer {table!r} cannot be read ({exc})",
                f"{path.name}: la capa {table!r} no se puede leer ({exc})",
            )
        ) from None
    if found is None:
        return
    rowid, held, ok = found[0], found[1 : 1 + len(typed)], found[1 + len(typed) :]
    bad = ok.index(0)
    column, kind, declared, _ = typed[bad]
    (position,) = db.execute(f"SELECT count(*) FROM {name} WHERE rowid <= ?", (rowid,)).fetchone()
    what, value = _what(kind), _shown(held[bad])
    raise InvalidFile(
        Said(
            f"{path.name}, layer {table!r}: its column {column!r}, declared {declared} ({what}), "
            f"holds {value}, which GDAL would read as another value; correct it (in QGIS: the "
            "attribute table) or save the file again",
            f"{path.name}, capa {table!r}: su columna {column!r}, declarada {declared} "
            f"({what.es}), tiene {value}, que GDAL leería como otro valor; corríjalo (en QGIS: "
            "la tabla de atributos) o vuelva a guardar el archivo",
        ),
        feature=position,
    )
