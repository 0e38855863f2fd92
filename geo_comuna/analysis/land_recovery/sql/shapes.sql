-- The outlines (GeoJSON, lon/lat, 7 decimals) of the parcels %(parcels)s.
SELECT id, ST_AsGeoJSON(geom, 7)::json FROM parcels WHERE id = ANY(%(parcels)s::integer[])
