"""QGIS styles (QML) and a QGIS project (.qgs) for a commune package, written from the layer
registry and maps/styles.json, so QGIS and QField draw the package like our maps and edit
coded attributes through drop-downs.

Written with xml.etree, never by QGIS: the package is built on a server with no QGIS. The
XML is what QGIS 3.22 itself writes for these settings (a categorized renderer, ValueMap edit
widgets, aliases, read-only fields); older and newer QGIS and QField read it too. A test opens
the project in a real QGIS 3.22 (tests/test_package_qgis.py).

Colours and widths come from the style file as the web maps use them; widths and marker sizes
are in screen pixels there, and so they stay here (QGIS unit "Pixel").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pyproj

from geo_comuna.layers import LAYERS, Layer
from geo_comuna.maps.package_tables import COMMUNE_TABLE, GPKG, ID_COLUMN, VERSION_COLUMN
from geo_comuna.maps.styles import FALLBACK_COLOUR, Styles, Theme

QGIS_VERSION = "3.22.16-Białowieża"
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
#: the key QGIS's ValueMap widget stores for "no value" (NULL)
VALUE_MAP_NULL = "{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}"
_KEY_TITLES = {
    ID_COLUMN: ("Identificador (no cambiar)", "Identifier (do not change)"),
    VERSION_COLUMN: ("Versión (no cambiar)", "Version (do not change)"),
}
_NO_VALUE = {"es": "(sin valor)", "en": "(no value)"}
#: QGIS's names of our geometry types: symbol type, layerGeometryType, maplayer geometry
_GEOMETRY = {
    "Point": ("marker", "0", "Point"),
    "LineString": ("line", "1", "Line"),
    "MultiPolygon": ("fill", "2", "Polygon"),
}


@dataclass(frozen=True)
class LayerStyle:
    """One theme of one layer as QGIS reads it: the QML document and its name."""

    layer: Layer
    name: str
    qml: str
    default: bool
    lang: str


def _rgba(colour: str, opacity: float = 1.0) -> str:
    """``#rrggbb`` -> QGIS's ``r,g,b,a`` (a: 0-255)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"{r},{g},{b},{round(max(0.0, min(1.0, opacity)) * 255)}"


def _options(parent: ET.Element, values: dict[str, str]) -> ET.Element:
    """QGIS's property map: <Option type="Map"><Option name=.. value=.. type="QString"/>."""
    box = ET.SubElement(parent, "Option", type="Map")
    for key, value in values.items():
        ET.SubElement(box, "Option", name=key, value=value, type="QString")
    return box


def _symbol(parent: ET.Element, name: str, layer: Layer, style: dict, colour: str, value: str):
    """One symbol drawn as the web map draws ``value`` (style: maps/styles.json's layer)."""
    kind = _GEOMETRY[layer.geometry_type][0]
    stroke = style.get("stroke", {})
    width = str(stroke.get("weight", 1))
    symbol = ET.SubElement(
        parent, "symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0"
    )
    if kind == "fill":
        cls = "SimpleFill"
        props = {
            "color": _rgba(colour, style.get("fill_opacity", 0.6)),
            "style": "solid",
            "outline_color": _rgba(stroke.get("color", colour), stroke.get("opacity", 1)),
            "outline_style": "solid",
            "outline_width": width,
            "outline_width_unit": "Pixel",
            "joinstyle": "round",
        }
    elif kind == "line":
        cls = "SimpleLine"
        dash = style.get("dash", {}).get(value)
        props = {
            "line_color": _rgba(colour, stroke.get("opacity", 1)),
            "line_width": str(style.get("weights", {}).get(value, stroke.get("weight", 1))),
            "line_width_unit": "Pixel",
            "line_style": "solid",
            "capstyle": "round",
            "joinstyle": "round",
        }
        if dash:  # "4 3": dash and gap in pixels, as SVG and Leaflet have them
            props |= {
                "use_custom_dash": "1",
                "customdash": ";".join(dash.split()),
                "customdash_unit": "Pixel",
            }
    else:
        cls = "SimpleMarker"
        props = {
            "name": "circle",
            "color": _rgba(colour, style.get("fill_opacity", 1)),
            "size": str(2 * style.get("radius", 4)),
            "size_unit": "Pixel",
            "outline_color": _rgba(stroke.get("color", "#333333"), stroke.get("opacity", 1)),
            "outline_style": "solid",
            "outline_width": width,
            "outline_width_unit": "Pixel",
        }
    symbol_layer = ET.SubElement(
        symbol, "layer", {"class": cls, "enabled": "1", "pass": "0", "locked": "0"}
    )
    _options(symbol_layer, props)


def _renderer(parent: ET.Element, styles: Styles, theme: Theme, lang: str) -> None:
    """A categorized renderer: one category per allowed value, labelled in ``lang``."""
    layer = theme.layer
    style = styles.layer_style(layer)
    renderer = ET.SubElement(
        parent,
        "renderer-v2",
        type="categorizedSymbol",
        attr=theme.by,
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (value, (colour, label)) in enumerate(
        zip(_values(theme), styles.legend_entries(theme, lang), strict=True)
    ):
        ET.SubElement(
            categories, "category", render="true", symbol=str(i), value=value, label=label
        )
        _symbol(symbols, str(i), layer, style, colour, value)
    source = ET.SubElement(renderer, "source-symbol")
    _symbol(source, "0", layer, style, FALLBACK_COLOUR, "")


def _values(theme: Theme) -> list[str]:
    attr = theme.layer.attribute(theme.by)
    return list(attr.domain.values) if attr is not None and attr.domain is not None else []


def field_names(layer: Layer, names: list[str]) -> list[str]:
    """The GeoPackage's columns of ``layer``: id, version, then the output properties."""
    return [ID_COLUMN, VERSION_COLUMN, *names]


def _title(styles: Styles, layer: Layer, name: str, lang: str) -> str:
    if name in _KEY_TITLES:
        es, en = _KEY_TITLES[name]
        return es if lang == "es" else en
    attr = layer.attribute(name)
    label = styles.field_label(layer, name, lang)
    unit = (attr.unit if attr else None) or next(
        (d.unit for d in layer.derived if d.name == name), None
    )
    return f"{label} ({unit})" if unit and unit not in label else label


#: how a date shows in the form, by language (stored as ISO whatever the language)
_DATE_SHOWN = {"es": "dd/MM/yyyy", "en": "yyyy-MM-dd"}


@dataclass(frozen=True)
class Forms:
    """What a package's forms know of the package: its commune's code (each new feature's
    commune, by default) and its GeoPackage's file name (where a drop-down of another layer's
    features reads them)."""

    commune: str | None = None
    gpkg: str = GPKG


def _related(ref_table: str) -> Layer | None:
    """The layer of the package whose features a reference by id names (a production
    unit's parcel)."""
    return next((lay for lay in LAYERS.values() if lay.table == ref_table), None)


def _value_relation(box: ET.Element, related: Layer, forms: Forms) -> None:
    """A drop-down of ``related``'s features by code, storing the id: found from outside, a
    production unit's parcel was a box for its number (12), which a field worker cannot know."""
    options = ET.SubElement(box, "Option", type="Map")
    for key, kind, value in (
        ("AllowMulti", "bool", "false"),
        ("AllowNull", "bool", "true"),
        ("FilterExpression", "QString", ""),
        ("Key", "QString", ID_COLUMN),
        ("Layer", "QString", layer_id(related)),
        ("LayerName", "QString", related.name),
        ("LayerProviderName", "QString", "ogr"),
        ("LayerSource", "QString", f"./{forms.gpkg}|layername={related.name}"),
        ("NofColumns", "int", "1"),
        ("OrderByValue", "bool", "true"),
        ("UseCompleter", "bool", "true"),
        ("Value", "QString", "code"),
    ):
        ET.SubElement(options, "Option", name=key, type=kind, value=value)


def _option_map(box: ET.Element, *entries: tuple[str, str, str]) -> None:
    """An edit widget's settings as QGIS writes them: (name, type, value) in an Option map."""
    options = ET.SubElement(box, "Option", type="Map")
    for key, kind, value in entries:
        ET.SubElement(options, "Option", name=key, type=kind, value=value)


def _fields(
    parent: ET.Element, styles: Styles, layer: Layer, names: list[str], lang: str, forms: Forms
):
    """Edit widgets (ValueMap drop-downs for coded attributes, a drop-down of parcels by code
    for a parcel), aliases, read-only fields (ids, versions and values PostGIS computes are
    not the field worker's to change), the commune of a new feature (the package's), and
    the fields a feature must have: QGIS and QField will not save one without them (found
    from outside: a home without its residents was taken in the field and refused back at
    the office, by the sync)."""
    config = ET.SubElement(parent, "fieldConfiguration")
    aliases = ET.SubElement(parent, "aliases")
    defaults = ET.SubElement(parent, "defaults")
    constraints = ET.SubElement(parent, "constraints")
    editable = ET.SubElement(parent, "editable")
    derived = {d.name for d in layer.derived}
    for index, name in enumerate(field_names(layer, names)):
        field = ET.SubElement(config, "field", name=name, configurationFlags="None")
        attr = layer.attribute(name)
        ref = layer.reference(name)
        widget = ET.SubElement(field, "editWidget")
        box = ET.SubElement(widget, "config")
        related = _related(ref.table) if ref is not None and ref.key == ID_COLUMN else None
        if ref is not None and ref.table == COMMUNE_TABLE and name == "commune" and forms.commune:
            # a new feature is of the package's commune: the form showed it empty (the sync
            # took an empty one as the package's, which the field worker could not see)
            quoted = forms.commune.replace("'", "''")
            ET.SubElement(
                defaults, "default", field=name, expression=f"'{quoted}'", applyOnUpdate="0"
            )
        if related is not None:
            widget.set("type", "ValueRelation")
            _value_relation(box, related, forms)
        elif attr is not None and attr.domain is not None:
            widget.set("type", "ValueMap")
            options = ET.SubElement(box, "Option", type="Map")
            entries = ET.SubElement(options, "Option", name="map", type="List")
            pairs = [(styles.value_label(attr.domain, v, lang), v) for v in attr.domain.values]
            if not attr.required:
                pairs.append((_NO_VALUE[lang], VALUE_MAP_NULL))
            for label, value in pairs:
                _options(entries, {label: value})
        elif attr is not None and attr.type == "date":
            # a calendar, and the day stored as a date: typed into a text box, 15/03/2024
            # went into the GeoPackage as 0000-00-00 and refused the whole sync
            widget.set("type", "DateTime")
            _option_map(
                box,
                ("allow_null", "bool", "true"),
                ("calendar_popup", "bool", "true"),
                ("display_format", "QString", _DATE_SHOWN[lang]),
                ("field_format", "QString", "yyyy-MM-dd"),
                ("field_iso_format", "bool", "false"),
            )
        elif attr is not None and attr.type == "boolean":
            # a box to tick (found from outside: a path's vehicle access was a text box)
            widget.set("type", "CheckBox")
            _option_map(
                box,
                ("CheckedState", "QString", ""),
                ("TextDisplayMethod", "int", "0"),
                ("UncheckedState", "QString", ""),
            )
        else:
            widget.set("type", "TextEdit")
            ET.SubElement(box, "Option")
        ET.SubElement(
            aliases, "alias", field=name, index=str(index), name=_title(styles, layer, name, lang)
        )
        writable = name not in _KEY_TITLES and name not in derived
        ET.SubElement(editable, "field", name=name, editable="1" if writable else "0")
        if (attr is not None and attr.required) or (ref is not None and ref.required):
            ET.SubElement(
                constraints,
                "constraint",
                field=name,
                constraints="1",  # not null
                notnull_strength="1",  # hard: the feature is not saved without it
                unique_strength="0",
                exp_strength="0",
            )


def _style_children(
    parent: ET.Element, styles: Styles, theme: Theme, names: list[str], lang: str, forms: Forms
) -> None:
    _renderer(parent, styles, theme, lang)
    _fields(parent, styles, theme.layer, names, lang, forms)
    ET.SubElement(parent, "layerGeometryType").text = _GEOMETRY[theme.layer.geometry_type][1]


def qml(styles: Styles, theme: Theme, names: list[str], lang: str, forms: Forms) -> str:
    """The QML document of one theme of a layer whose GeoPackage columns are
    ``field_names(layer, names)``."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")
    _style_children(root, styles, theme, names, lang, forms)
    return DOCTYPE + ET.tostring(root, encoding="unicode")


def layer_styles(
    styles: Styles, layer: Layer, names: list[str], forms: Forms = Forms()
) -> list[LayerStyle]:
    """Every theme of ``layer`` in Spanish and English; the default is the first theme in
    Spanish (what QGIS and QField apply when they open the GeoPackage)."""
    out = []
    for lang in ("es", "en"):
        for theme in styles.themes(layer):
            name = f"{styles.legend_title(theme, lang)} ({lang})"
            default = lang == "es" and theme.index == 0
            text = qml(styles, theme, names, lang, forms)
            out.append(LayerStyle(layer, name, text, default, lang))
    return out


def _extent(root: ET.Element, extent: tuple[float, float, float, float], crs: pyproj.CRS):
    """Where QGIS (the map canvas, and the project's default view) and QField open."""
    bounds = dict(zip(("xmin", "ymin", "xmax", "ymax"), map(str, extent), strict=True))
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "degrees" if crs.is_geographic else "meters"
    box = ET.SubElement(canvas, "extent")
    for key, value in bounds.items():
        ET.SubElement(box, key).text = value
    ET.SubElement(canvas, "rotation").text = "0"
    _srs(ET.SubElement(canvas, "destinationsrs"), crs)
    view = ET.SubElement(root, "ProjectViewSettings", UseProjectScales="0")
    _srs(ET.SubElement(view, "DefaultViewExtent", bounds), crs)


def layer_id(layer: Layer) -> str:
    """The id of ``layer`` in the project; QGIS keeps ids longer than 10 characters only
    (shorter ones it replaces by new random ones)."""
    return f"{layer.name}_geo_comuna"


def _srs(parent: ET.Element, crs: pyproj.CRS) -> None:
    srs = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(srs, "wkt").text = crs.to_wkt()
    ET.SubElement(srs, "authid").text = f"EPSG:{crs.to_epsg()}"


def project(
    styles: Styles,
    layers: list[tuple[Layer, list[str]]],
    gpkg_name: str,
    title: str,
    lang: str,
    crs: pyproj.CRS,
    extent: tuple[float, float, float, float] | None = None,
    commune: str | None = None,
) -> str:
    """A QGIS project opening every layer of the GeoPackage ``gpkg_name`` (beside the project
    file, so the folder can move) with its first theme's style, aliases and drop-downs in
    ``lang``; the other themes are the layer's other styles (Layer > Styles). ``layers``:
    each layer with its output property names, listed top to bottom. ``extent`` (west,
    south, east, north in ``crs``) is where the map opens: the commune, not the world;
    ``commune``: its code, each new feature's commune."""
    forms = Forms(commune, gpkg_name)
    root = ET.Element("qgis", projectname=title, version=QGIS_VERSION)
    ET.SubElement(root, "title").text = title
    _srs(ET.SubElement(root, "projectCrs"), crs)
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    maplayers = ET.SubElement(root, "projectlayers")
    order = ET.SubElement(root, "layerorder")
    for layer, names in layers:
        source = f"./{gpkg_name}|layername={layer.name}"
        label = layer.title.get(lang)
        ET.SubElement(
            tree,
            "layer-tree-layer",
            id=layer_id(layer),
            name=label,
            source=source,
            providerKey="ogr",
            checked="Qt::Checked",
            expanded="1",
        )
        ET.SubElement(order, "layer", id=layer_id(layer))
        maplayer = ET.SubElement(
            maplayers,
            "maplayer",
            type="vector",
            geometry=_GEOMETRY[layer.geometry_type][2],
            wkbType=layer.geometry_type,
        )
        ET.SubElement(maplayer, "id").text = layer_id(layer)
        ET.SubElement(maplayer, "datasource").text = source
        ET.SubElement(maplayer, "layername").text = label
        ET.SubElement(maplayer, "abstract").text = layer.description.get(lang)
        _srs(ET.SubElement(maplayer, "srs"), crs)
        ET.SubElement(maplayer, "provider", encoding="UTF-8").text = "ogr"
        themes = styles.themes(layer)
        _style_children(maplayer, styles, themes[0], names, lang, forms)
        manager = ET.SubElement(
            maplayer, "map-layer-style-manager", current=styles.legend_title(themes[0], lang)
        )
        for theme in themes:
            kept = ET.SubElement(manager, "map-layer-style", name=styles.legend_title(theme, lang))
            if theme.index:  # the current one is the layer's own settings above
                _style_children(ET.SubElement(kept, "qgis"), styles, theme, names, lang, forms)
    if extent is not None:
        _extent(root, extent, crs)
    properties = ET.SubElement(root, "properties")
    paths = ET.SubElement(properties, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    # QGIS reads <projectCrs> only when this says the project has one: without it the project
    # opens with "No CRS" and measures nothing in metres (QgsProject::readProjectFile)
    srs = ET.SubElement(properties, "SpatialRefSys")
    ET.SubElement(srs, "ProjectionsEnabled", type="int").text = "1"
    ET.indent(root)
    return DOCTYPE + ET.tostring(root, encoding="unicode")
