-- The suggested transformer sites, given as x/y in the commune's UTM zone %(srid)s (placed by
-- analysis/electricity/sites.py), in WGS 84: lon/lat, their GeoJSON and the geodesic distance
-- (m) from each to the nearest power line of commune %(commune)s in good condition (NULL: none),
-- in the order given.
SELECT ST_X(s.geom), ST_Y(s.geom), ST_AsGeoJSON(s.geom, 7)::json, line.distance_m
FROM unnest(%(x)s::float8[], %(y)s::float8[]) WITH ORDINALITY AS p (x, y, n)
CROSS JOIN LATERAL (
    SELECT ST_Transform(ST_SetSRID(ST_MakePoint(p.x, p.y), %(srid)s), 4326) AS geom
    OFFSET 0  -- made once each, not again for every line the search below looks at
) s
LEFT JOIN LATERAL (
    SELECT ST_Distance(l.geom::geography, s.geom::geography) AS distance_m
    FROM power_lines l
    WHERE l.commune_id = %(commune)s AND l.condition = 'good'
    ORDER BY l.geom <-> s.geom
    LIMIT 1
) line ON true
ORDER BY p.n
