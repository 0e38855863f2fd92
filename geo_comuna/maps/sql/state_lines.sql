-- The state lines around one commune, for its map: each state's boundary clipped to the
-- commune's envelope widened by a quarter of its size (at least ~1 km), so the map shows where
-- the commune crosses a state line and which states lie on each side.
-- Parameters: %(commune)s commune id, %(decimals)s lon/lat decimals.
WITH c AS (
    SELECT ST_Expand(ST_Envelope(geom),
                     greatest(ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom),
                              0.04) * 0.25) AS frame
    FROM communes WHERE id = %(commune)s
), lines AS MATERIALIZED (  -- each line cut once, not again for the filter below
    SELECT s.code, s.name, ST_Intersection(ST_Boundary(s.geom), c.frame) AS geom
    FROM states s, c
    WHERE s.geom && c.frame
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(lines.*, 'geom', %(decimals)s), ',' ORDER BY code), '')
       || ']}'
FROM lines
WHERE NOT ST_IsEmpty(lines.geom)
