"""CQL2 filters (OGC API - Features Part 3) to parameterised SQL.

The ``cql2`` library parses both encodings, text and JSON, into one JSON tree; the
``Translator`` here walks that tree and writes psycopg ``sql`` Composables over alias ``t``:
property names resolve only through the registry (features/queryables.py) and every value
is bound as a parameter, typed (dates as dates, timestamps as timestamptz, numbers as
numeric). Nothing of the filter's text reaches the SQL.

Supported: and, or, not; =, <>, <, <=, >, >=, IS NULL; LIKE, BETWEEN, IN; CASEI; the eight
spatial functions (S_INTERSECTS, S_WITHIN...) between the geometry and a literal (WKT or
GeoJSON, or BBOX) in ``filter-crs``; the temporal functions between a date property and a
DATE, TIMESTAMP or INTERVAL literal. A date compared with a timestamp is its midnight in UTC.

Read rules: a filter naming a members-only property is refused (403) for a reader who may
read it in no commune; otherwise, like one naming a members-only geometry, it matches only
the rows whose members-only data the reader may read (``Condition.private``).

The package: ``parse`` (the library, bounded) in parse.py; the walk in base.py (names,
values, errors), spacetime.py (spatial and temporal functions) and translate.py (the rest).
"""

from geo_comuna.features.cql.parse import LANGS, parse
from geo_comuna.features.cql.translate import Condition, to_sql

__all__ = ["LANGS", "Condition", "parse", "to_sql"]
