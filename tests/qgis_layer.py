"""Load one layer of an OGC API - Features server in QGIS (Debian's python3-qgis, headless)
and print what QGIS sees, as JSON. Run by Debian's own Python, not geo_comuna's virtualenv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_layer.py URL LAYER [SUBSET]

SUBSET is a QGIS expression set as the layer's filter (Layer Properties > Source > Query
Builder), e.g. ``"recovered_on" >= '2015-01-01'``.
"""

import json
import sys

from qgis.core import QgsApplication, QgsVectorLayer


def main(url: str, typename: str, subset: str = "") -> dict:
    # exactly what the Add OGC API - Features layer dialog stores for a connection
    uri = f"url='{url}' typename='{typename}' restrictToRequestBBOX='0' pagingEnabled='true'"
    layer = QgsVectorLayer(uri, typename, "OAPIF")
    out = {"valid": layer.isValid()}  # (QgsMapLayer.error().summary() crashes 3.22 here)
    if layer.isValid():
        out["fields"] = {f.name(): f.typeName() for f in layer.fields()}
        out["crs"] = layer.crs().authid()
        if subset:
            out["subset_accepted"] = layer.setSubsetString(subset)
        out["count"] = layer.featureCount()
        out["iterated"] = sum(1 for _ in layer.getFeatures())
    del layer  # before exitQgis: a layer alive then crashes the process
    return out


if __name__ == "__main__":
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    result = main(*sys.argv[1:])
    app.exitQgis()
    print(json.dumps(result))
