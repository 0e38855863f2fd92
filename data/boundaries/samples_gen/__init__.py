"""The generator of the ILLUSTRATIVE sample territories in geo_comuna/data/samples/, run by
data/boundaries/make_samples.py.

The communes, their sizes and headline numbers come from public reports (listed in
geo_comuna/data/samples/SOURCE.md); every geometry and most other numbers are invented here.
Shapes are built in metres in each commune's UTM zone (WGS 84, EPSG:326xx) and written as
RFC 7946 GeoJSON in lon/lat (EPSG:4326), coordinates rounded to 6 decimals (about 0.1 m).
Seeds are fixed and features sorted, so reruns are byte-identical. Needs only the package's
ve_states.geojson: no network.

Modules, top-down: constants, geometry (helpers, frames, star shapes), placement (where each
outline goes), collected (what is gathered before writing), layout (the generic rural
layout), communes/ (one module per commune; small.py is what the six small ones share),
exchanges, writers, generate (every commune in order) and check (reads the files back).
"""
