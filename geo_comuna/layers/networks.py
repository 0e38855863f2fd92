"""Urban networks: dwellings and their utilities, water mains, power lines, paths, facilities."""

from __future__ import annotations

from geo_comuna.layers.model import (
    LENGTH_M,
    Aggregate,
    Attribute,
    Label,
    Layer,
    Measure,
    Sample,
    commune_ref,
    domain,
)

WATER = domain(
    "water",
    piped=("Tubería", "Piped"),
    intermittent=("Intermitente", "Intermittent"),
    truck=("Camión cisterna", "Truck"),
    none=("Sin agua", "No water"),
)
ELECTRICITY = domain(
    "electricity",
    formal=("Formal", "Formal"),
    precarious=("Precaria", "Precarious"),
    none=("Sin electricidad", "No electricity"),
)
GAS = domain(
    "gas", piped=("Tubería", "Piped"), cylinder=("Bombona", "Cylinder"), none=("Sin gas", "No gas")
)
MAIN_KIND = domain(
    "main_kind",
    main=("Aducción", "Main"),
    branch=("Ramal", "Branch"),
    service=("Acometida", "Service"),
)
MATERIAL = domain(
    "material",
    pvc=("PVC", "PVC"),
    steel=("Acero", "Steel"),
    iron=("Hierro", "Iron"),
    hdpe=("PEAD", "HDPE"),
    other=("Otro", "Other"),
)
MAIN_STATUS = domain(
    "main_status",
    working=("Operativa", "Working"),
    leaking=("Con fugas", "Leaking"),
    damaged=("Dañada", "Damaged"),
    planned=("Proyectada", "Planned"),
)
VOLTAGE = domain("voltage", low=("Baja", "Low"), medium=("Media", "Medium"), high=("Alta", "High"))
LINE_CONDITION = domain(
    "line_condition",
    good=("Buena", "Good"),
    precarious=("Precaria", "Precarious"),
    damaged=("Dañada", "Damaged"),
    planned=("Proyectada", "Planned"),
)
PATH_KIND = domain(
    "path_kind",
    road=("Calle", "Road"),
    footpath=("Vereda", "Footpath"),
    stairway=("Escalera", "Stairway"),
)
FACILITY_KIND = domain(
    "facility_kind",
    school=("Escuela", "School"),
    water_tank=("Tanque de agua", "Water tank"),
    clinic=("Consultorio", "Clinic"),
    communal_shop=("Tienda comunal", "Communal shop"),
    transit_stop=("Parada de transporte", "Transit stop"),
    nursery=("Vivero", "Nursery"),
    recycling_center=("Centro de reciclaje", "Recycling centre"),
    community_center=("Casa comunal", "Community centre"),
    sports=("Cancha", "Sports ground"),
    other=("Otro", "Other"),
)

DWELLINGS = Layer(
    name="dwellings",
    title=Label("Viviendas", "Dwellings"),
    description=Label(
        "Viviendas con su acceso a agua, electricidad y gas",
        "Dwellings with their water, electricity and gas situation",
    ),
    geometry_type="Point",
    attributes=(
        Attribute(
            "residents",
            "integer",
            Label("Habitantes", "Residents"),
            minimum=0,
            maximum=500,
            required=True,
            read="members",  # a household's size
        ),
        Attribute("water", "text", Label("Agua", "Water"), domain=WATER, required=True),
        Attribute(
            "electricity",
            "text",
            Label("Electricidad", "Electricity"),
            domain=ELECTRICITY,
            required=True,
        ),
        Attribute("gas", "text", Label("Gas", "Gas"), domain=GAS),
        Attribute("sector", "text", Label("Sector", "Sector"), max_length=200),
    ),
    references=(commune_ref(),),
    style="dwellings",
    commune_map=60,
    sample=Sample("dwellings.geojson"),
    # where a family lives: the commune's own users see each home, everyone else per sector
    geometry_read="members",
    aggregate=Aggregate(
        by="sector",
        title=Label("Viviendas por sector", "Dwellings by sector"),
        count=Measure("dwellings", "count(*)", Label("Viviendas", "Dwellings")),
        measures=(
            Measure("residents", "sum(t.residents)", Label("Habitantes", "Residents")),
            Measure(
                "without_piped_water",
                "count(*) FILTER (WHERE t.water <> 'piped')",
                Label("Viviendas sin agua por tubería", "Homes without piped water"),
            ),
            Measure(
                "without_piped_water_pct",
                "round(100.0 * count(*) FILTER (WHERE t.water <> 'piped') / count(*), 1)",
                Label("Sin agua por tubería (%)", "Without piped water (%)"),
                unit="%",
            ),
            Measure(
                "residents_without_piped_water",
                "coalesce(sum(t.residents) FILTER (WHERE t.water <> 'piped'), 0)",
                Label("Habitantes sin agua por tubería", "Residents without piped water"),
            ),
            Measure(
                "without_formal_electricity",
                "count(*) FILTER (WHERE t.electricity <> 'formal')",
                Label("Viviendas sin electricidad formal", "Homes without formal electricity"),
            ),
        ),
    ),
)

WATER_MAINS = Layer(
    name="water_mains",
    title=Label("Tuberías de agua", "Water mains"),
    description=Label("Red de agua potable", "Drinking-water network"),
    geometry_type="LineString",
    attributes=(
        Attribute("kind", "text", Label("Tipo", "Kind"), domain=MAIN_KIND, required=True),
        Attribute(
            "diameter_mm",
            "integer",
            Label("Diámetro (mm)", "Diameter (mm)"),
            minimum=1,
            maximum=5000,
            unit="mm",
        ),
        Attribute("material", "text", Label("Material", "Material"), domain=MATERIAL),
        Attribute("status", "text", Label("Estado", "Status"), domain=MAIN_STATUS, required=True),
    ),
    references=(commune_ref(),),
    derived=(LENGTH_M,),
    style="water_mains",
    commune_map=30,
    sample=Sample("water_mains.geojson"),
)

POWER_LINES = Layer(
    name="power_lines",
    title=Label("Tendido eléctrico", "Power lines"),
    description=Label("Líneas eléctricas", "Power lines"),
    geometry_type="LineString",
    attributes=(
        Attribute("voltage", "text", Label("Tensión", "Voltage"), domain=VOLTAGE, required=True),
        Attribute(
            "condition", "text", Label("Estado", "Condition"), domain=LINE_CONDITION, required=True
        ),
    ),
    references=(commune_ref(),),
    derived=(LENGTH_M,),
    style="power_lines",
    commune_map=40,
    sample=Sample("power_lines.geojson"),
)

PATHS = Layer(
    name="paths",
    title=Label("Vías, veredas y escaleras", "Roads, footpaths and stairways"),
    description=Label(
        "Red de circulación; una escalera lleva su número de escalones",
        "The walking and driving network; a stairway carries its step count",
    ),
    geometry_type="LineString",
    attributes=(
        Attribute("kind", "text", Label("Tipo", "Kind"), domain=PATH_KIND, required=True),
        Attribute("name", "text", Label("Nombre", "Name")),
        Attribute("steps", "integer", Label("Escalones", "Steps"), minimum=0, maximum=10_000),
        Attribute("vehicles", "boolean", Label("Acceso vehicular", "Vehicle access")),
        Attribute("transit", "boolean", Label("Transporte público", "Public transit")),
    ),
    references=(commune_ref(),),
    derived=(LENGTH_M,),
    style="paths",
    commune_map=50,
    sample=Sample("paths.geojson"),
)

FACILITIES = Layer(
    name="facilities",
    title=Label("Servicios", "Facilities"),
    description=Label(
        "Escuelas, tanques, consultorios, tiendas comunales, paradas…",
        "Schools, water tanks, clinics, communal shops, transit stops…",
    ),
    geometry_type="Point",
    attributes=(
        Attribute("kind", "text", Label("Tipo", "Kind"), domain=FACILITY_KIND, required=True),
        Attribute("name", "text", Label("Nombre", "Name")),
    ),
    references=(commune_ref(),),
    style="facilities",
    commune_map=80,
    sample=Sample("facilities.geojson"),
)

LAYERS = (DWELLINGS, WATER_MAINS, POWER_LINES, PATHS, FACILITIES)
