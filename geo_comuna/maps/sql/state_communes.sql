-- The states for the national map, simplified for country scale, each with how many communes
-- it holds (all, active, registered): every commune that touches it, as /states/breakdown
-- counts them (commune_state_placement.sql). By each commune's point on surface alone, the
-- map said Portuguesa held none, where El Maizal has 805 ha.
-- Parameters: %(tolerance)s simplification (degrees), %(decimals)s lon/lat decimals.
WITH counts AS (
    SELECT sp.state_id, count(DISTINCT c.id) AS communes,
           count(DISTINCT c.id) FILTER (WHERE c.status = 'active') AS active,
           count(DISTINCT c.id) FILTER (WHERE c.status = 'registered') AS registered
    FROM communes c
    JOIN state_parts sp ON ST_Intersects(c.geom, sp.geom)
    GROUP BY sp.state_id
), shaped AS (
    -- area_ha as the states' collection gives it (layers/model.py AREA_HA), of the whole
    -- shape: the popup lists it (found from outside: it read "—" for every state)
    SELECT s.id, s.code, s.name, s.kind,
           round((ST_Area(s.geom::geography) / 10000)::numeric, 4) AS area_ha,
           coalesce(n.communes, 0) AS communes, coalesce(n.active, 0) AS active,
           coalesce(n.registered, 0) AS registered,
           ST_SimplifyPreserveTopology(s.geom, %(tolerance)s) AS geom
    FROM states s LEFT JOIN counts n ON n.state_id = s.id
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(shaped.*, 'geom', %(decimals)s), ',' ORDER BY code), '')
       || ']}'
FROM shaped
