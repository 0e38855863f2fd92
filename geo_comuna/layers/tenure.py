"""The vocabulary of land regularization records (ISO 19152 LADM: party - right/restriction -
spatial unit - source document), with es/en labels: kinds of party, kinds of right and their
statuses, and the document types accepted. The tables are migration 0021's; the records are
served by geo_comuna/tenure/ and api/tenure.py (they are not map layers: a party has no
geometry, a right is drawn as its parcel)."""

from __future__ import annotations

from geo_comuna.layers.model import Label, domain

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
}
#: illustrative sample records carry this in their names and notes
ILLUSTRATIVE = Label("ilustrativo, ficticio", "illustrative, fictional")

#: the records served as collections (api/tenure.py): title and description
COLLECTIONS: dict[str, tuple[Label, Label]] = {
    "parties": (
        Label("Sujetos de derecho", "Parties"),
        Label(
            "Comunas, grupos familiares, personas, unidades de producción y colectivos que "
            "tienen o reclaman tierra; nombres, cédulas/RIF y contacto solo para editores y "
            "administradores de su comuna",
            "Communes, households, persons, production units and collectives that hold or "
            "claim land; names, ID numbers and contact only for editors and admins of their "
            "commune",
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
