"""Interactive maps (folium + Leaflet): commune, per-analysis and national maps, the commune
report. Styles come from the top-level maps/styles.json; data from PostGIS as GeoJSON text."""
