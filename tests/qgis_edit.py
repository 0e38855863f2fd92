"""Edit a commune package's parcels in QGIS (Debian's python3-qgis, headless), as a field
worker does in the project, and save: run by Debian's own Python, not geo_comuna's
virtualenv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_edit.py PROJECT.qgs \
        TENURE_ID TENURE MOVE_ID

Through the project's parcels layer (its edit buffer, committed as QGIS' save does): the
parcel TENURE_ID gets tenure TENURE; the parcel MOVE_ID moves ~10 m east.
Prints what was committed, as JSON.
"""

import json
import sys

from qgis.core import QgsApplication, QgsFeatureRequest, QgsProject


def main() -> None:
    project_path, tenure_id, tenure, move_id = sys.argv[1:5]
    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    if not project.read(project_path):
        raise SystemExit(f"QGIS could not read {project_path}")
    layer = next(
        lay for lay in project.mapLayers().values() if lay.source().endswith("|layername=parcels")
    )
    by_id = {}
    for feature in layer.getFeatures(QgsFeatureRequest()):
        by_id[feature["id"]] = feature
    layer.startEditing()
    target = by_id[int(tenure_id)]
    layer.changeAttributeValue(target.id(), layer.fields().indexOf("tenure"), tenure)
    moved = by_id[int(move_id)]
    geometry = moved.geometry()
    geometry.translate(0.0001, 0)
    layer.changeGeometry(moved.id(), geometry)
    ok = layer.commitChanges()
    print(json.dumps({"committed": ok, "errors": layer.commitErrors()}))
    app.exitQgis()


if __name__ == "__main__":
    main()
