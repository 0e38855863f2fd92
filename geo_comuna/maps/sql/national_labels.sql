-- The national map's names: each commune at its point on surface (first in rank: the communes
-- are what the map is about; by population), then each state at the centre of the largest
-- circle inside its biggest part (ranked by that room, so where names collide the bigger
-- state keeps its own).
-- Parameters: %(tolerance)s simplification (degrees), %(decimals)s lon/lat decimals.
WITH biggest AS MATERIALIZED (  -- chosen first, then simplified: only the parts kept
    SELECT b.name, ST_SimplifyPreserveTopology(b.geom, %(tolerance)s) AS geom
    FROM (SELECT DISTINCT ON (sp.state_id) s.name, sp.geom
          FROM state_parts sp JOIN states s ON s.id = sp.state_id
          ORDER BY sp.state_id, ST_Area(sp.geom) DESC) b
), states AS (
    SELECT biggest.name AS label, 'region' AS kind, m.center AS geom, m.radius AS room
    FROM biggest CROSS JOIN LATERAL ST_MaximumInscribedCircle(biggest.geom) m  -- one circle each
), named AS (
    SELECT label, kind, geom, 1000 + row_number() OVER (ORDER BY room DESC) AS rank
    FROM states
    UNION ALL
    SELECT name, 'commune', ST_PointOnSurface(geom),
           row_number() OVER (ORDER BY population DESC NULLS LAST, id)
    FROM communes
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(named.*, 'geom', %(decimals)s), ',' ORDER BY rank), '')
       || ']}'
FROM named
