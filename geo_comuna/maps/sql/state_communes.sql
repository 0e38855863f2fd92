-- The states for the national map, simplified for country scale, each with how many communes
-- have their point on surface in it (all, active, registered).
-- Parameters: %(tolerance)s simplification (degrees), %(decimals)s lon/lat decimals.
WITH points AS MATERIALIZED (  -- each made once, not once per state part it is tried on
    SELECT c.id, c.status, ST_PointOnSurface(c.geom) AS geom FROM communes c
), counts AS (
    SELECT sp.state_id, count(DISTINCT c.id) AS communes,
           count(DISTINCT c.id) FILTER (WHERE c.status = 'active') AS active,
           count(DISTINCT c.id) FILTER (WHERE c.status = 'registered') AS registered
    FROM points c
    JOIN state_parts sp ON ST_Intersects(sp.geom, c.geom)
    GROUP BY sp.state_id
), shaped AS (
    SELECT s.id, s.code, s.name, s.kind,
           coalesce(n.communes, 0) AS communes, coalesce(n.active, 0) AS active,
           coalesce(n.registered, 0) AS registered,
           ST_SimplifyPreserveTopology(s.geom, %(tolerance)s) AS geom
    FROM states s LEFT JOIN counts n ON n.state_id = s.id
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(shaped.*, 'geom', %(decimals)s), ',' ORDER BY code), '')
       || ']}'
FROM shaped
