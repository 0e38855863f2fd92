"""Open a commune package in QGIS (Debian's python3-qgis, headless) and print what QGIS sees,
as JSON. Run by Debian's own Python, not geo_comuna's virtualenv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_package.py PROJECT.qgs PACKAGE.gpkg

For every layer of the project: valid or not, feature count, renderer (type, attribute,
categories), edit widget and alias of every field, and which fields are read-only. For every
layer of the GeoPackage opened alone (as QField opens a bare GeoPackage): the renderer QGIS
took from its ``layer_styles`` table.
"""

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsFieldConstraints,
    QgsProject,
    QgsValueRelationFieldFormatter,
    QgsVectorLayer,
    QgsVectorLayerUtils,
)


def describe(layer: QgsVectorLayer) -> dict:
    out = {"valid": layer.isValid()}
    if not layer.isValid():
        return out
    renderer = layer.renderer()
    out["renderer"] = renderer.type() if renderer else None
    if renderer is not None and renderer.type() == "categorizedSymbol":
        out["attr"] = renderer.classAttribute()
        out["categories"] = [(str(c.value()), c.label()) for c in renderer.categories()]
    out["count"] = layer.featureCount()
    out["crs"] = layer.crs().authid()
    fields = layer.fields()
    out["widgets"] = {}
    out["value_maps"] = {}
    out["aliases"] = {}
    out["read_only"] = []
    out["not_null"] = []
    form = layer.editFormConfig()
    not_null = QgsFieldConstraints.ConstraintNotNull
    for i, field in enumerate(fields):
        rules = field.constraints()
        if (
            rules.constraints() & not_null
            and rules.constraintStrength(not_null) == QgsFieldConstraints.ConstraintStrengthHard
        ):
            out["not_null"].append(field.name())
        setup = layer.editorWidgetSetup(i)
        out["widgets"][field.name()] = setup.type()
        if setup.type() == "DateTime":
            config = setup.config()
            out.setdefault("dates", {})[field.name()] = {
                "calendar": bool(config.get("calendar_popup")),
                "stored": config.get("field_format"),
                "type": field.typeName(),
            }
        if setup.type() == "ValueRelation":
            config = setup.config()
            out.setdefault("relations", {})[field.name()] = {
                "layer": config.get("LayerName"),
                "key": config.get("Key"),
                "value": config.get("Value"),
            }
        default = layer.defaultValueDefinition(i).expression()
        if default:
            out.setdefault("defaults", {})[field.name()] = default
        if setup.type() == "ValueMap":
            entries = setup.config().get("map", [])
            out["value_maps"][field.name()] = {
                label: value for entry in entries for label, value in entry.items()
            }
        out["aliases"][field.name()] = field.alias()
        if form.readOnly(i):
            out["read_only"].append(field.name())
    return out


def main(project_path: str, gpkg: str) -> dict:
    project = QgsProject.instance()
    read = project.read(project_path)
    view = project.viewSettings().defaultViewExtent()
    result = {
        "read": read,
        "title": project.title(),
        "crs": project.crs().authid() if project.crs().isValid() else None,
        "extent": [view.xMinimum(), view.yMinimum(), view.xMaximum(), view.yMaximum()],
        "layers": {},
        "gpkg": {},
    }
    for layer in project.mapLayers().values():
        result["layers"][layer.id()] = {"name": layer.name(), **describe(layer)}
        new = QgsVectorLayerUtils.createFeature(layer)  # what the form starts a new one with
        names = [f.name() for f in layer.fields()]
        result["layers"][layer.id()]["new"] = {
            n: new[n] for n in names if new[n] is not None and str(new[n]) != "NULL"
        }
        relations = result["layers"][layer.id()].get("relations", {})
        for name, relation in relations.items():  # each feature's value as the form shows it
            index = layer.fields().indexOf(name)
            config = layer.editorWidgetSetup(index).config()
            formatter = QgsValueRelationFieldFormatter()  # no cache given: it reads the layer
            relation["shown"] = {
                str(f[name]): formatter.representValue(layer, index, config, None, f[name])
                for f in layer.getFeatures()
                if f[name] is not None and str(f[name]) != "NULL"
            }
    project.clear()
    probe = QgsVectorLayer(gpkg, "probe", "ogr")
    names = [s.split("!!::!!")[1] for s in probe.dataProvider().subLayers()]
    del probe
    for name in names:
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
        result["gpkg"][name] = describe(layer)
        del layer
    return result


if __name__ == "__main__":
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    output = main(*sys.argv[1:])
    app.exitQgis()
    print(json.dumps(output))
