"""geo_comuna: the GIS core for Venezuela's communes (PostGIS store, OGC API - Features)."""

__version__ = "0.1.0"
