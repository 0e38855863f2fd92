"""Where the generator reads and writes, and the fixed numbers every commune shares."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pyproj import Geod

from geo_comuna.io.sample import SAMPLE_LAYERS

#: the package's data folder in this checkout (data/boundaries/samples_gen/ -> the top)
PACKAGE_DATA = Path(__file__).resolve().parents[3] / "geo_comuna" / "data"
STATES_PATH = PACKAGE_DATA / "boundaries" / "ve_states.geojson"
OUT_DIR = PACKAGE_DATA / "samples"
GEOD = Geod(ellps="WGS84")

SOURCE_NOTE = "illustrative geometry; facts from public reports"
FOUNDING = date(2009, 3, 5)  # El Maizal's founding day: no recovery before it
LAST_DAY = date(2023, 12, 31)  # the reports stop in 2023
STEP_RISE_M = 0.17  # rise of one stair step, m
DEGREE_GRID = 1e-6  # output precision, degrees (about 0.11 m)
DEM_CELL_M = 2.0
DEM_NODATA = -9999.0

LAYERS = SAMPLE_LAYERS  # one file each, in the order the loader reads them
