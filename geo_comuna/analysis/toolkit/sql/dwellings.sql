-- A commune's dwellings (only those without piped water when %(without_piped)s), as one row of
-- arrays ordered by id; lon/lat place them (DEM, network) and make their GeoJSON points.
SELECT coalesce(array_agg(id ORDER BY id), '{}'),
       coalesce(array_agg(residents ORDER BY id), '{}'),
       coalesce(array_agg(water ORDER BY id), '{}'),
       coalesce(array_agg(sector ORDER BY id), '{}'),
       coalesce(array_agg(ST_X(geom) ORDER BY id), '{}'),
       coalesce(array_agg(ST_Y(geom) ORDER BY id), '{}')
FROM dwellings
WHERE commune_id = %(commune)s AND (NOT %(without_piped)s OR water <> 'piped')
