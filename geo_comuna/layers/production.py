"""Production layers: production units, greenhouses and the exchange network between communes."""

from __future__ import annotations

from geo_comuna.layers.model import (
    AREA_HA,
    LENGTH_M,
    Attribute,
    CommuneFilter,
    Derived,
    Label,
    Layer,
    Reference,
    Sample,
    commune_ref,
    domain,
)

PRODUCT = domain(
    "product",
    maize=("Maíz", "Maize"),
    beef=("Carne de res", "Beef"),
    pork=("Cerdo", "Pork"),
    eggs=("Huevos", "Eggs"),
    milk=("Leche", "Milk"),
    cheese=("Queso", "Cheese"),
    coffee=("Café", "Coffee"),
    cocoa=("Cacao", "Cocoa"),
    vegetables=("Hortalizas", "Vegetables"),
    panela=("Panela", "Panela"),
    textiles=("Textiles", "Textiles"),
    gas_distribution=("Distribución de gas", "Gas distribution"),
    recycling=("Reciclaje", "Recycling"),
    bakery=("Panadería", "Bakery"),
    other=("Otro", "Other"),
)
GREENHOUSE_CONDITION = domain(
    "greenhouse_condition",
    working=("En producción", "Working"),
    damaged=("Dañado", "Damaged"),
    abandoned=("Abandonado", "Abandoned"),
    under_construction=("En construcción", "Under construction"),
)
UNIT = domain(
    "unit",
    kg=("kg", "kg"),
    t=("t", "t"),
    l=("l", "l"),
    units=("unidades", "units"),
    cylinders=("bombonas", "cylinders"),
)

PRODUCTION_UNITS = Layer(
    name="production_units",
    title=Label("Unidades de producción", "Production units"),
    description=Label(
        "Unidades de propiedad social y su producción", "Socially owned production units"
    ),
    geometry_type="Point",
    attributes=(
        Attribute("name", "text", Label("Nombre", "Name"), required=True),
        Attribute("product", "text", Label("Producto", "Product"), domain=PRODUCT, required=True),
        Attribute("workers", "integer", Label("Trabajadores", "Workers"), minimum=0),
    ),
    references=(
        commune_ref(),
        Reference("parcel", "parcel_id", "parcels", Label("Parcela", "Parcel"), key="id"),
    ),
    derived=(
        # the parcel as people know it: its id (the reference) meant nothing in the field
        Derived(
            "parcel_code",
            "(SELECT p.code FROM parcels p WHERE p.id = t.parcel_id)",
            Label("Código de la parcela", "Parcel code"),
            type="string",
            reads=("parcels",),
        ),
    ),
    style="production_units",
    commune_map=70,
    sample=Sample("production_units.geojson"),
)

GREENHOUSES = Layer(
    name="greenhouses",
    title=Label("Invernaderos", "Greenhouses"),
    description=Label("Invernaderos y viveros", "Greenhouses and nurseries"),
    geometry_type="MultiPolygon",
    attributes=(
        Attribute("name", "text", Label("Nombre", "Name")),
        Attribute(
            "condition",
            "text",
            Label("Estado", "Condition"),
            domain=GREENHOUSE_CONDITION,
            required=True,
        ),
        Attribute("crop", "text", Label("Cultivo", "Crop")),
    ),
    references=(commune_ref(),),
    derived=(AREA_HA,),
    style="greenhouses",
    commune_map=20,
    sample=Sample("greenhouses.geojson"),
)

EXCHANGES = Layer(
    name="exchanges",
    title=Label("Intercambios", "Exchanges"),
    description=Label(
        "Intercambio de productos entre comunas (Unión Comunera); la línea une las dos comunas",
        "Products traded between communes (Unión Comunera); the line joins the two communes",
    ),
    geometry_type="LineString",
    attributes=(
        Attribute("product", "text", Label("Producto", "Product"), domain=PRODUCT, required=True),
        Attribute(
            "volume_per_month",
            "number",
            Label("Volumen mensual", "Volume per month"),
            minimum=0,
            required=True,
        ),
        Attribute("unit", "text", Label("Unidad", "Unit"), domain=UNIT, required=True),
    ),
    references=(
        Reference(
            "from_commune", "from_commune_id", "communes", Label("De", "From"), required=True
        ),
        Reference("to_commune", "to_commune_id", "communes", Label("A", "To"), required=True),
    ),
    derived=(LENGTH_M,),
    geometry_optional=True,
    style="exchanges",
    edit_scope="from_commune_id",  # recorded by the commune the products come from
    # a commune's exchanges: those that come from it and those that go to it
    commune_filter=CommuneFilter(columns=("from_commune_id", "to_commune_id")),
    sample=Sample("exchanges.csv"),  # lines drawn by the database
)

LAYERS = (PRODUCTION_UNITS, GREENHOUSES, EXCHANGES)
