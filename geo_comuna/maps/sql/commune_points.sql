-- One point per commune for the national map (polygons vanish at country scale): a point on
-- its surface, with code, name, kind, status, founding date, families and population, and the
-- state that point lies in (its area is the outline's popup's: worked out on the spheroid for
-- every commune, it would double the map's cost).
-- Parameter: %(decimals)s lon/lat decimals.
WITH points AS (
    SELECT c.id, c.code, c.name, c.kind, c.status, c.founded, c.families, c.population,
           s.code AS state_code, s.name AS state, p.geom
    FROM communes c
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(c.geom) AS geom OFFSET 0) p  -- made once each
    LEFT JOIN LATERAL (SELECT st.code, st.name FROM state_parts sp
                       JOIN states st ON st.id = sp.state_id
                       WHERE ST_Intersects(sp.geom, p.geom) LIMIT 1) s ON true
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(points.*, 'geom', %(decimals)s), ',' ORDER BY id), '')
       || ']}'
FROM points
