"""The layer registry's vocabulary: Layer, Attribute, Domain, Reference, Derived, Aggregate.

Every layer is declared once (in territory.py, production.py, networks.py). Collection metadata,
queryables, write validation, import mapping, export schema, map legends and who may read what
derive from it.

Time: a layer may name one date attribute as its ``temporal`` property, the one OGC API
``?datetime=`` filters by and its collection's ``extent.temporal`` spans (parcels: when the
land was recovered; communes: when the commune was founded).

Writes: row-level security in PostgreSQL (migrations 0006, 0014) decides what an editor may
write; ``edit_scope`` and ``editors_may`` state the same rule for clients, who ask before
they try (``OPTIONS`` on items answers what the caller's token may do; QGIS offers editing
from it). Admins may do everything, viewers nothing.

A commune's features: ``commune_filter`` says which rows ``?commune=`` (and the commune map,
its tiles and exports, the sample's reload) takes as a commune's; ``commune_map`` where the
commune map draws the layer; ``sample`` where the demo data holds its features.

Read rules: an attribute (``Attribute(read="members")``) or a layer's positions
(``Layer(geometry_read="members")``) may be members-only: readable by the users bound to the
feature's commune (any role) and by admins. Everyone else reads the feature without them, on
every surface (items, exports, tiles, maps, reports, analyses), and sees the layer's
``Aggregate`` instead where a map needs positions.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

AttrType = Literal["text", "integer", "number", "date", "boolean"]
GeomType = Literal["Point", "LineString", "MultiPolygon"]
#: what an editor may do to the features of its communes
EditorAction = Literal["create", "change", "delete"]
EVERY_ACTION: frozenset[EditorAction] = frozenset({"create", "change", "delete"})
#: who reads a value: anyone who may read at all, or only the feature's commune's own users
#: and admins
Read = Literal["public", "members"]

#: a public figure drawn from members-only data (residents, positions) covers at least this
#: many features: smaller groups are withheld, so no figure describes one or two homes
MIN_GROUP = 3


@dataclass(frozen=True)
class Label:
    """A user-facing label in Spanish and English."""

    es: str
    en: str

    def get(self, lang: str) -> str:
        return self.es if lang == "es" else self.en


@dataclass(frozen=True)
class Domain:
    """The closed list of values an attribute may take, each with its es/en label."""

    name: str
    values: dict[str, Label]

    def __contains__(self, value: object) -> bool:
        return value in self.values

    @cached_property
    def _by_spelling(self) -> dict[str, str]:
        """Each code and each of its labels, folded (``fold``), -> the code."""
        found: dict[str, str] = {}
        for code, label in self.values.items():
            for spelling in (label.es, label.en, code):
                found.setdefault(fold(spelling), code)
        return found

    def code(self, value: str) -> str | None:
        """The code a value names: the code itself, or its Spanish or English label, ignoring
        case, accents and surrounding blanks ("Ocupada", "OCUPADA", "occupied" -> occupied), as
        people type what the map legend shows; a label with a note in brackets as the maps
        write some ("Abandonada (recuperable)") or with its code as refusals list them
        ("Ocupada (occupied)") names the same. None: no value of this domain."""
        found = self._by_spelling.get(fold(value))
        bracketed = _BRACKETED.match(value) if found is None else None
        if bracketed is not None:  # the label decides; what the brackets name must agree
            label, inside = (fold(part) for part in bracketed.groups())
            found = self._by_spelling.get(label)
            if self._by_spelling.get(inside, found) != found:
                found = None
        return found

    def labels(self, lang: str) -> list[str]:
        """Every value as the request's language shows it, with its code: "Ocupada (occupied)"."""
        return [f"{label.get(lang)} ({code})" for code, label in self.values.items()]

    def closest(self, value: str) -> str | None:
        """The code whose label or code is spelt most like ``value``, if any is close."""
        near = difflib.get_close_matches(fold(value), list(self._by_spelling), n=1, cutoff=0.5)
        return self._by_spelling[near[0]] if near else None


#: a label and what follows it in brackets: "Abandonada (recuperable)", "Ocupada (occupied)"
_BRACKETED = re.compile(r"^\s*(.+?)\s*\(([^()]*)\)\s*$")


def fold(text: str) -> str:
    """A spelling for comparing what people type: no accents, no case, single blanks."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


#: PostgreSQL's integer, which stores feature ids and integer attributes: lowest, highest
PG_INTEGER = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Attribute:
    """A stored property. ``minimum``/``maximum`` bound numbers; ``domain`` closes text values."""

    name: str
    type: AttrType
    title: Label
    domain: Domain | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 1000
    unit: str | None = None
    read: Read = "public"
    #: a date of something that has happened (a recovery, a founding): not after today
    past: bool = False

    def __post_init__(self) -> None:
        # integers are stored as PostgreSQL integer: a bigger value must be refused as a bad
        # value (4xx), not fail in the database
        if self.type == "integer":
            low, high = PG_INTEGER
            minimum = low if self.minimum is None else max(self.minimum, low)
            maximum = high if self.maximum is None else min(self.maximum, high)
            object.__setattr__(self, "minimum", minimum)
            object.__setattr__(self, "maximum", maximum)


@dataclass(frozen=True)
class Reference:
    """A foreign key that clients give by code: property ``name`` -> ``column`` = table.id."""

    name: str
    column: str
    table: str
    title: Label
    key: str = "code"
    required: bool = False


@dataclass(frozen=True)
class Derived:
    """A read-only property computed by PostGIS; ``sql`` uses the table alias ``t``."""

    name: str
    sql: str
    title: Label
    type: str = "number"  # a JSON Schema type: number, string, array
    unit: str | None = None
    #: the decimals ``sql`` rounds to: pages and popups write that many, always (found from
    #: outside: 0.2022 ha read "0,2", a quarter off for a city plot)
    places: int | None = None
    #: other tables ``sql`` reads: pages of the layer are then kept per their versions
    reads: tuple[str, ...] = ()
    #: the same values for many rows at once, for a statement that builds many features (a
    #: page, an export): a query giving ``id`` and ``value`` for the rows whose ids ``{ids}``
    #: (an integer[]) holds, where ``sql`` would be worked out once per row
    batch: str | None = None


@dataclass(frozen=True)
class Measure:
    """One figure of an Aggregate: ``sql`` is an aggregate expression over alias ``t``."""

    name: str
    sql: str
    title: Label
    unit: str | None = None


@dataclass(frozen=True)
class Aggregate:
    """What everyone sees of a layer whose positions are members-only: per commune, one point
    per value of ``by`` (inside the area its features cover) carrying ``count`` and
    ``measures``.
    Groups of fewer than MIN_GROUP features are withheld, and when only one group is, the next
    smallest too, so that no group can be worked out from the commune's totals."""

    by: str
    title: Label
    count: Measure
    measures: tuple[Measure, ...] = ()

    @property
    def figures(self) -> tuple[Measure, ...]:
        return (self.count, *self.measures)


@dataclass(frozen=True)
class CommuneFilter:
    """Which rows of a layer are a commune's (``?commune=``, features/filters.py).

    ``columns``: a row is the commune's when any of these columns holds the commune's id (its
    own ``commune_id``; a commune's ``id``; either end of an exchange). ``land``: a row is the
    commune's when the commune's land lies in its area, not when they merely share a border
    (states)."""

    columns: tuple[str, ...] = ("commune_id",)
    land: bool = False


@dataclass(frozen=True)
class Sample:
    """Where ``geo-comuna load-sample`` (io/sample.py) reads a layer's demo features; layers
    load in registry order, so a referenced layer is in before the layers naming it.

    ``file`` is in the sample folder (Settings.sample_dir); a sample ``by_code`` is the real
    boundaries at Settings.states_path instead. A sample ``by_code`` replaces the stored features of
    the same codes (the real state boundaries); any other replaces what the sample communes
    hold (the layer's ``commune_filter``). ``columns``: (the file's name, the registry's)
    where they differ. A layer whose geometry the database builds (``geometry_optional``)
    comes as a CSV of properties only."""

    file: str
    by_code: bool = False
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Layer:
    """One table, one feature collection."""

    name: str
    title: Label
    description: Label
    geometry_type: GeomType
    attributes: tuple[Attribute, ...]
    references: tuple[Reference, ...] = ()
    derived: tuple[Derived, ...] = ()
    #: the geometry may be left out on write and is then built by the database (exchanges)
    geometry_optional: bool = False
    #: key of the style in maps/styles.json
    style: str = field(default="")
    #: who reads the positions (geometry); see the module's docstring
    geometry_read: Read = "public"
    #: what readers outside a commune see in place of members-only positions
    aggregate: Aggregate | None = None
    #: the public date attribute placing a feature in time (``?datetime=``,
    #: ``extent.temporal``); None: the layer has no time
    temporal: str | None = None
    #: the column naming the commune whose editors may write a row, as the layer's row-level
    #: security policy has it; None: admins only
    edit_scope: str | None = "commune_id"
    #: what those editors may do to it
    editors_may: frozenset[EditorAction] = EVERY_ACTION
    #: which rows are a commune's (``?commune=``)
    commune_filter: CommuneFilter = CommuneFilter()
    #: drawn on a commune's map, bottom to top by this number (areas, then lines, then
    #: points); None: not drawn there as a layer (the boundary and state lines are overlays)
    commune_map: int | None = None
    #: the demo data's file of this layer's features; None: the demo has none
    sample: Sample | None = None
    #: the properties that name one feature of the layer in the world outside the database
    #: (a parcel's code within its commune): an import refuses a feature whose key is
    #: already stored or repeated in the file, and ``--upsert`` updates the stored one by it
    #: (io/importer.py). A unique index enforces it (migration 0020). A feature with a part
    #: of its key missing has none and is always inserted. Empty: the layer has no such key
    #: (names and kinds repeat: facilities, production units, networks).
    natural_key: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return self.name

    @property
    def commune_ref(self) -> Reference | None:
        return next((r for r in self.references if r.name == "commune"), None)

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def reference(self, name: str) -> Reference | None:
        return next((r for r in self.references if r.name == name), None)

    @property
    def key_columns(self) -> list[str]:
        """The natural key's columns in the layer's table (a reference's is its foreign key)."""
        return [
            ref.column if (ref := self.reference(name)) is not None else name
            for name in self.natural_key
        ]

    def field_title(self, name: str, lang: str) -> str:
        """A property's title in ``lang`` (a reference, an attribute or a derived value);
        the name itself when it is none of them."""
        for item in (*self.references, *self.attributes, *self.derived):
            if item.name == name:
                return item.title.get(lang)
        return name

    def field_unit(self, name: str) -> str | None:
        """The unit of an attribute or a derived value (None: it has none)."""
        for item in (*self.attributes, *self.derived):
            if item.name == name:
                return item.unit
        return None

    def field_places(self, name: str) -> int | None:
        """The decimals a derived value is rounded to (None: as many as it has)."""
        return next((d.places for d in self.derived if d.name == name), None)

    def members_only(self, name: str) -> bool:
        """Is this attribute readable only by the feature's commune's users and admins?"""
        attr = self.attribute(name)
        return attr is not None and attr.read == "members"

    @property
    def restricted(self) -> bool:
        """Does any read rule of this layer keep something from some readers?"""
        return self.geometry_read == "members" or any(a.read == "members" for a in self.attributes)

    @property
    def derived_reads(self) -> set[str]:
        """The other tables its derived properties read (the communes' per-state breakdown):
        its pages are kept per their versions, and its ETags digest them."""
        return {table for d in self.derived for table in d.reads}

    @property
    def other_reads(self) -> set[str]:
        """The tables a feature of this layer is built from besides its own: those its
        references name by a key other than id (a commune's code), and its derived reads."""
        return {r.table for r in self.references if r.key != "id"} | self.derived_reads

    @property
    def feature_tables(self) -> set[str]:
        """Every table a feature of this layer is built from: its own and other_reads. What
        is built from its features (a page's ETag, a map's geobuf) changes with their
        versions."""
        return {self.table, *self.other_reads}

    @property
    def property_names(self) -> list[str]:
        """Writable properties, in schema order."""
        return [r.name for r in self.references] + [a.name for a in self.attributes]


def domain(name: str, **values: tuple[str, str]) -> Domain:
    """Shorthand: ``domain("water", piped=("Tubería", "Piped"), ...)``."""
    return Domain(name, {k: Label(*v) for k, v in values.items()})


def commune_ref(required: bool = False) -> Reference:
    return Reference(
        "commune", "commune_id", "communes", Label("Comuna", "Commune"), required=required
    )


AREA_HA = Derived(
    "area_ha",
    "round((ST_Area(t.geom::geography) / 10000)::numeric, 4)",
    Label("Superficie (ha)", "Area (ha)"),
    unit="ha",
    places=4,
)
LENGTH_M = Derived(
    "length_m",
    "round(ST_Length(t.geom::geography)::numeric, 2)",
    Label("Longitud (m)", "Length (m)"),
    unit="m",
    places=2,
)
