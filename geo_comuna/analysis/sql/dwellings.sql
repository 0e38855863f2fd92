-- A commune's dwellings without piped water, by id, with their geometry as GeoJSON.
SELECT id, residents, water, sector, ST_X(geom), ST_Y(geom), ST_AsGeoJSON(geom, 7)::json
FROM dwellings
WHERE commune_id = %(commune)s AND water <> 'piped'
ORDER BY id
