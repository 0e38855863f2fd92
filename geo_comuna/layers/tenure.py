"""The vocabulary of land regularization records (ISO 19152 LADM: party - right/restriction -
spatial unit - source document), with es/en labels: kinds of party, kinds of right and their
statuses, and the document types accepted. The tables are migration 0021's; the records are
served by geo_comuna/tenure/ and api/tenure.py, and listed in GET /collections after the
layers (api/tenure_meta.py). They are not map layers: a party has no geometry, a right is
drawn as its parcel."""

from __future__ import annotations

from dataclasses import dataclass

from geo_comuna.layers.model import Domain, Label, domain

PARTY_KIND = domain(
    "party_kind",
    commune=("Comuna", "Commune"),
    household=("Grupo familiar", "Household"),
    person=("Persona", "Person"),
    production_unit=("Unidad de producción", "Production unit"),
    collective=("Cooperativa u otro colectivo", "Cooperative or other collective"),
)
RIGHT_KIND = domain(
    "right_kind",
    collective_use=("Uso colectivo", "Collective use"),
    occupancy_claim=("Solicitud por ocupación", "Occupancy claim"),
    usufruct=("Usufructo", "Usufruct"),
    title=("Adjudicación o título", "Adjudication or title"),
    lease=("Arrendamiento", "Lease"),
    protected_zone=("Zona protegida (restricción)", "Protected zone (restriction)"),
    easement=("Servidumbre (restricción)", "Easement (restriction)"),
)
#: kinds that restrict a holding without holding anything: the tenure rule ignores them
RESTRICTIONS = frozenset({"protected_zone", "easement"})
RIGHT_STATUS = domain(
    "right_status",
    claimed=("Solicitado", "Claimed"),
    under_review=("En revisión", "Under review"),
    granted=("Otorgado", "Granted"),
    revoked=("Revocado", "Revoked"),
)
#: what a source document may be, by the type its bytes show, with the name endings that
#: agree with it
DOCUMENT_TYPES: dict[str, tuple[Label, tuple[str, ...]]] = {
    "application/pdf": (Label("PDF", "PDF"), (".pdf",)),
    "image/jpeg": (Label("Foto JPEG", "JPEG photo"), (".jpg", ".jpeg")),
    "image/png": (Label("Imagen PNG", "PNG image"), (".png",)),
    "image/heic": (Label("Foto HEIC", "HEIC photo"), (".heic", ".heif")),
}
#: illustrative sample records carry this in their names and notes
ILLUSTRATIVE = Label("ilustrativo, ficticio", "illustrative, fictional")

#: the records served as collections (api/tenure.py): title and description
COLLECTIONS: dict[str, tuple[Label, Label]] = {
    "parties": (
        Label("Sujetos de derecho", "Parties"),
        Label(
            "Comunas, grupos familiares, personas, unidades de producción y colectivos que "
            "tienen o reclaman tierra, sin geometría (su tierra son las parcelas de sus "
            "derechos); nombres, cédulas/RIF y contacto solo para editores y "
            "administradores de su comuna",
            "Communes, households, persons, production units and collectives that hold or "
            "claim land, without geometry (their land is their rights' parcels); names, ID "
            "numbers and contact only for editors and admins of their commune",
        ),
    ),
    "rights": (
        Label("Derechos y restricciones", "Rights and restrictions"),
        Label(
            "Derechos sobre cada parcela (uso colectivo, ocupación, usufructo, adjudicación, "
            "arrendamiento) y restricciones; la tenencia de la parcela se sigue de ellos",
            "Rights on each parcel (collective use, occupancy, usufruct, adjudication, lease) "
            "and restrictions; the parcel's tenure follows from them",
        ),
    ),
}


@dataclass(frozen=True)
class RecordProperty:
    """One property of a party's or a right's features (tenure/records.py builds them).

    ``personal``: read only by editors and admins of the record's commune (the views of
    migration 0021), so listed in the schema only to editors and admins, and never
    queryable: a filter on a name or an ID number would answer an outsider whether that
    person holds land. ``queryable``: a query parameter of the collection's items."""

    name: str
    type: str  # JSON Schema type
    title: Label
    domain: Domain | None = None
    format: str | None = None
    personal: bool = False
    queryable: bool = False
    #: JSON Schema bounds, as the database's CHECK holds them (a form can keep to them)
    bounds: dict[str, float] | None = None


def _p(name: str, type_: str, es: str, en: str, **more: object) -> RecordProperty:
    return RecordProperty(name, type_, Label(es, en), **more)  # type: ignore[arg-type]


#: each collection's properties, in the order its features carry them
RECORD_PROPERTIES: dict[str, tuple[RecordProperty, ...]] = {
    "parties": (
        _p("kind", "string", "Tipo de sujeto", "Kind of party", domain=PARTY_KIND, queryable=True),
        _p("commune", "string", "Comuna (código)", "Commune (code)", queryable=True),
        _p("illustrative", "boolean", "Ilustrativo (ficticio)", "Illustrative (fictional)"),
        _p("name", "string", "Nombre", "Name", personal=True),
        _p("id_number", "string", "Cédula o RIF", "ID number (cédula or RIF)", personal=True),
        _p("contact", "string", "Contacto", "Contact", personal=True),
    ),
    "rights": (
        _p("parcel", "integer", "Parcela (id)", "Parcel (id)", queryable=True),
        _p("parcel_code", "string", "Código de la parcela", "Parcel code"),
        _p("party", "integer", "Sujeto (id)", "Party (id)", queryable=True),
        _p(
            "party_kind",
            "string",
            "Tipo de sujeto",
            "Kind of party",
            domain=PARTY_KIND,
            queryable=True,
        ),
        _p("kind", "string", "Tipo de derecho", "Kind of right", domain=RIGHT_KIND, queryable=True),
        # found from outside: the schema gave no range, and QGIS's forms none to keep to
        _p(
            "share",
            "number",
            "Cuota (0–1)",
            "Share (0–1)",
            bounds={"exclusiveMinimum": 0, "maximum": 1},
        ),
        _p("starts_on", "string", "Desde", "Starts on", format="date"),
        _p("ends_on", "string", "Hasta", "Ends on", format="date"),
        _p("status", "string", "Estado", "Status", domain=RIGHT_STATUS, queryable=True),
        _p("illustrative", "boolean", "Ilustrativo (ficticio)", "Illustrative (fictional)"),
        _p("holder", "string", "Titular (nombre)", "Holder (name)", personal=True),
        _p("note", "string", "Nota", "Note", personal=True),
    ),
}
#: the commune filter of a right: its parcel's commune (not a property of its features)
RIGHTS_COMMUNE = _p("commune", "string", "Comuna (código)", "Commune (code)", queryable=True)
