"""HTTP API: OGC API - Features (Core, GeoJSON, Part 4 writes) plus commune analyses and maps."""
