"""Interactive maps (folium + Leaflet): commune, per-analysis and national maps, the commune
report. Styles come from styles.json beside this file (or GEO_COMUNA_STYLES_PATH); data from
PostGIS as GeoJSON text."""
