"""Every word a sheet prints, in Spanish and English. Values of the registry's attributes
(tenure, land use) take the registry's own labels (layers/territory.py)."""

from __future__ import annotations

from typing import Any

from geo_comuna.errors import said
from geo_comuna.features.audit import rule_cause
from geo_comuna.layers import get_layer

WORDS: dict[str, dict[str, str]] = {
    "es": dict(
        sheet="Ficha de parcela",
        index="Índice de fichas de parcelas",
        commune="Comuna",
        no_commune="sin comuna",
        parcel="Parcela",
        area="Superficie (geodésica)",
        perimeter="Perímetro (geodésico)",
        tenure="Tenencia",
        land_use="Uso",
        recovered_on="Recuperada el",
        crs="Coordenadas",
        zone="REGVEN / UTM zona {zone}N (EPSG:{srid})",
        map="Plano",
        north="N",
        thousands=".",
        grid_north="norte de cuadrícula",
        linderos="Linderos",
        side="Lado",
        sides_col="Tramos",
        length="Longitud (m)",
        borders="Colinda con",
        north_side="Norte",
        east_side="Este",
        south_side="Sur",
        west_side="Oeste",
        parcel_n="parcela {code}",
        road="vía",
        road_named="vía {name}",
        commune_limit="límite de la comuna",
        none="sin colindante registrado",
        parcel_overlapping="parcela {code} (se superpone)",
        overlaps="Se superpone con la parcela {code} en {ha} ha: la misma tierra consta en dos "
        "parcelas.",
        more_stretches="y {n} tramos más (ver el cuadro de coordenadas)",
        vertices="Cuadro de coordenadas",
        vertex="V",
        easting="Este (m)",
        northing="Norte (m)",
        history="Historial de tenencia",
        date="Fecha",
        before="De",
        after="A",
        note="Nota",
        first="(inicial)",
        deleted="(eliminada)",
        holders="Titulares",
        rights="Derechos",
        documents="Documentos",
        no_records="sin registros",
        record="Registro",
        url="Registro en línea",
        generated="Generada el {day}",
        page="Página {n} de {total}",
        rule="Lados por la orientación de su normal exterior: norte 315°–45°, este 45°–135°, "
        "sur 135°–225°, oeste 225°–315°; longitudes en la cuadrícula UTM. Vértices en sentido "
        "horario desde el más al norte.",
        file="Archivo",
        count="{n} parcelas",
        no_history="sin cambios registrados",
    ),
    "en": dict(
        sheet="Parcel sheet",
        index="Index of parcel sheets",
        commune="Commune",
        no_commune="no commune",
        parcel="Parcel",
        area="Area (geodesic)",
        perimeter="Perimeter (geodesic)",
        tenure="Tenure",
        land_use="Land use",
        recovered_on="Recovered on",
        crs="Coordinates",
        zone="REGVEN / UTM zone {zone}N (EPSG:{srid})",
        map="Map",
        north="N",
        thousands=",",
        grid_north="grid north",
        linderos="Boundaries",
        side="Side",
        sides_col="Segments",
        length="Length (m)",
        borders="Borders",
        north_side="North",
        east_side="East",
        south_side="South",
        west_side="West",
        parcel_n="parcel {code}",
        road="road",
        road_named="road {name}",
        commune_limit="commune limit",
        none="no registered neighbour",
        parcel_overlapping="parcel {code} (overlapping)",
        overlaps="Overlaps parcel {code} by {ha} ha: the same land is on record in two parcels.",
        more_stretches="and {n} more stretches (see the table of coordinates)",
        vertices="Vertex coordinates",
        vertex="V",
        easting="Easting (m)",
        northing="Northing (m)",
        history="Tenure history",
        date="Date",
        before="From",
        after="To",
        note="Note",
        first="(first)",
        deleted="(deleted)",
        holders="Holders",
        rights="Rights",
        documents="Documents",
        no_records="no records registered",
        record="Record",
        url="Online record",
        generated="Made on {day}",
        page="Page {n} of {total}",
        rule="Sides by the bearing of their outward normal: north 315°–45°, east 45°–135°, "
        "south 135°–225°, west 225°–315°; lengths on the UTM grid. Vertices clockwise from the "
        "northernmost.",
        file="File",
        count="{n} parcels",
        no_history="no changes recorded",
    ),
}


#: the headings of the records' columns (maps/sheet/document.py RECORD_COLUMNS)
RECORD_LABELS: dict[str, tuple[str, str]] = {
    "name": ("Nombre", "Name"),
    "kind": ("Tipo", "Kind"),
    "id_number": ("Cédula / RIF", "ID number"),
    "share": ("Cuota", "Share"),
    "since": ("Desde", "Since"),
    "party_id": ("N.º de titular", "Holder no."),
    "id": ("Id", "Id"),
    "status": ("Estado", "Status"),
    "party": ("N.º de titular", "Holder no."),
    "holder": ("Titular", "Holder"),
    "start": ("Inicio", "Start"),
    "end": ("Fin", "End"),
    "title": ("Título", "Title"),
    "sha256": ("SHA-256", "SHA-256"),
}


def record_label(key: str, lang: str) -> str:
    """A records column's heading; a key not known here is shown as it is."""
    es, en = RECORD_LABELS.get(key, (key, key))
    return en if lang == "en" else es


def words(lang: str) -> dict[str, str]:
    return WORDS["en" if lang == "en" else "es"]


def value_label(attribute: str, value: str | None, lang: str) -> str:
    """The registry's label of a parcel attribute's value ("" for none)."""
    if value is None:
        return ""
    attr = get_layer("parcels").attribute(attribute)
    label = attr.domain.values.get(value) if attr and attr.domain else None
    return label.get(lang) if label else value


def why(change: dict[str, Any], lang: str) -> str:
    """A tenure change's note as a page or sheet shows it: the tenure rule's cause, then
    what the writer noted (empty when the reader may not read it)."""
    cause = rule_cause(change)
    parts = [said(cause, lang) if cause is not None else "", change.get("note") or ""]
    return " · ".join(p for p in parts if p)
