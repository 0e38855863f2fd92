"""CSV cells a spreadsheet would run as a formula, made plain text.

Excel, LibreOffice and Google Sheets take a cell that starts with ``=``, ``+``, ``-`` or ``@``
(or a tab or carriage return before one) for a formula: a feature's notes holding
``=HYPERLINK("http://…","Ver")`` would become a live link in the planner's sheet. Text cells
going out as CSV (layer exports, analysis results) therefore get a leading apostrophe, OWASP's
advice: spreadsheets show the cell as text and hide the apostrophe. Numbers are never touched,
so -3.5 stays a number.

A cell that starts with an apostrophe gets one more, so the importer can take exactly one off
again (``restore_text``): an exported CSV imports back unchanged.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: what makes a spreadsheet read a cell as a formula
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = (*TRIGGERS, "'")
#: an escaped cell as GDAL's CSV reader gives it back: a carriage return inside a cell comes
#: back as a line feed (found from outside: "'\r=1+1" imported back kept its apostrophe)
_ESCAPED_RE = "^'['=+\\-@\t\r\n]"


def neutralise(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet runs."""
    return "'" + value if value.startswith(_ESCAPED) else value


def restore_text(table: pa.Table) -> pa.Table:
    """Undo ``neutralise`` in every text column of a CSV read back (valid UTF-8 only)."""
    for i, column in enumerate(table.schema):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = table.column(i)
        escaped = pc.match_substring_regex(values, _ESCAPED_RE)
        if pc.any(escaped).as_py():
            plain = pc.utf8_slice_codeunits(values, 1)
            table = table.set_column(i, column, pc.if_else(escaped, plain, values))
    return table
