"""Territory layers: states, communes, parcels (tenure changes are kept in parcel_history)."""

from __future__ import annotations

from geo_comuna.layers.model import (
    AREA_HA,
    Attribute,
    CommuneFilter,
    Derived,
    Label,
    Layer,
    Sample,
    commune_ref,
    domain,
)

TENURE = domain(
    "tenure",
    abandoned=("Abandonada", "Abandoned"),
    occupied=("Ocupada", "Occupied"),
    regularizing=("En regularización", "Regularizing"),
    regularized=("Regularizada", "Regularized"),
    disputed=("En disputa", "Disputed"),
)
LAND_USE = domain(
    "land_use",
    crops=("Cultivos", "Crops"),
    pasture=("Pastos", "Pasture"),
    forest=("Bosque", "Forest"),
    idle=("Ociosa", "Idle"),
    housing=("Vivienda", "Housing"),
    greenhouse=("Invernadero", "Greenhouse"),
    mixed=("Mixto", "Mixed"),
)
COMMUNE_KIND = domain(
    "commune_kind", rural=("Rural", "Rural"), urban=("Urbana", "Urban"), mixed=("Mixta", "Mixed")
)
COMMUNE_STATUS = domain(
    "commune_status", registered=("Registrada", "Registered"), active=("Activa", "Active")
)
STATE_KIND = domain(
    "state_kind",
    state=("Estado", "State"),
    capital_district=("Distrito Capital", "Capital District"),
    federal_dependency=("Dependencias Federales", "Federal Dependencies"),
)

STATES = Layer(
    name="states",
    title=Label("Estados", "States"),
    description=Label(
        "Entidades federales de Venezuela (Natural Earth 1:10m)",
        "Venezuela's first-level divisions (Natural Earth 1:10m)",
    ),
    geometry_type="MultiPolygon",
    attributes=(
        Attribute(
            "code",
            "text",
            Label("Código ISO 3166-2", "ISO 3166-2 code"),
            required=True,
            max_length=8,
        ),
        Attribute("name", "text", Label("Nombre", "Name"), required=True),
        Attribute("kind", "text", Label("Tipo", "Kind"), domain=STATE_KIND, required=True),
    ),
    derived=(AREA_HA,),
    style="states",
    edit_scope=None,  # admins only
    editors_may=frozenset(),
    # the states a commune's land lies in, not those it only borders
    commune_filter=CommuneFilter(columns=(), land=True),
    # the real boundaries, not a sample: reloaded by their ISO code
    sample=Sample("ve_states.geojson", by_code=True, columns=(("iso_3166_2", "code"),)),
    # the ISO 3166-2 code names a state the world over (unique since migration 0001)
    natural_key=("code",),
)

#: a commune's states from its breakdown rows ``b``, the largest share first
_STATES = (
    "json_agg(json_build_object('code', b.code, 'name', b.name, 'area_ha', b.area_ha, "
    "'share_pct', b.share_pct) ORDER BY b.area_ha DESC, b.code)"
)

COMMUNES = Layer(
    name="communes",
    title=Label("Comunas", "Communes"),
    description=Label(
        "Límites de las comunas; pueden cruzar líneas estadales",
        "Commune boundaries; they may cross state lines",
    ),
    geometry_type="MultiPolygon",
    attributes=(
        Attribute(
            "code",
            "text",
            Label("Código de registro", "Registry code"),
            required=True,
            max_length=64,
        ),
        Attribute("name", "text", Label("Nombre", "Name"), required=True),
        Attribute("kind", "text", Label("Tipo", "Kind"), domain=COMMUNE_KIND, required=True),
        Attribute("founded", "date", Label("Fundada", "Founded"), past=True),
        Attribute("families", "integer", Label("Familias", "Families"), minimum=0),
        Attribute("population", "integer", Label("Población", "Population"), minimum=0),
        Attribute(
            "status", "text", Label("Estatus", "Status"), domain=COMMUNE_STATUS, required=True
        ),
        Attribute("source", "text", Label("Fuente", "Source")),
    ),
    derived=(
        AREA_HA,
        Derived(
            "states",
            f"(SELECT {_STATES} FROM commune_state_breakdown(ARRAY[t.id]) b)",
            Label("Estados que toca", "States it touches"),
            type="array",
            # the breakdown counts parcels and dwellings too: a page is kept, not recounted
            reads=("states", "parcels", "dwellings"),
            # a page's or an export's communes in one call: the 3,929 bench communes' four
            # pages in 0.6 s, where a call per commune took 2.3 s (bench/README.md)
            batch=f"SELECT b.commune_id AS id, {_STATES} AS value "
            "FROM commune_state_breakdown({ids}) b GROUP BY b.commune_id",
        ),
    ),
    style="communes",
    temporal="founded",
    # an editor changes its own commune's figures (not its code, name, status or boundary:
    # migration 0014); only admins add or delete communes
    edit_scope="id",
    editors_may=frozenset({"change"}),
    commune_filter=CommuneFilter(columns=("id",)),  # the commune itself
    sample=Sample("communes.geojson"),
    # the registry code the ministry gives a commune (unique since migration 0001)
    natural_key=("code",),
)

PARCELS = Layer(
    name="parcels",
    title=Label("Parcelas", "Parcels"),
    description=Label(
        "Parcelas con su tenencia; cada cambio de estatus queda en el historial",
        "Land parcels with tenure; every status change is kept in the history",
    ),
    geometry_type="MultiPolygon",
    attributes=(
        Attribute("code", "text", Label("Código", "Code"), max_length=64),
        Attribute("tenure", "text", Label("Tenencia", "Tenure"), domain=TENURE, required=True),
        Attribute("land_use", "text", Label("Uso", "Land use"), domain=LAND_USE),
        Attribute("recovered_on", "date", Label("Recuperada el", "Recovered on"), past=True),
        Attribute("notes", "text", Label("Notas", "Notes"), max_length=4000, read="members"),
    ),
    references=(commune_ref(),),
    derived=(AREA_HA,),
    style="parcels",
    temporal="recovered_on",
    commune_map=10,
    sample=Sample("parcels.geojson"),
    # a commune numbers its own parcels: the same code may recur in another commune
    natural_key=("commune", "code"),
)

LAYERS = (STATES, COMMUNES, PARCELS)
