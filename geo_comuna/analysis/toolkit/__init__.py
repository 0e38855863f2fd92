"""What several analyses (and the maps) compute with, kept apart from any one analysis: the
path network and shortest paths (network.py), exact zonal statistics (zonal.py), choosing under
a budget (budget.py), reading a stored DEM (dem.py) and its hillshade (hillshade.py).

Nothing here is an analysis or knows one: an analysis package imports the toolkit, never the
other way round.
"""
