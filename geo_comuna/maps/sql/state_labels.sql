-- The names of the states on one commune's map, one point per state at the centre of the
-- largest circle that fits its room:
-- - a commune across a state line (El Maizal: Lara and Portuguesa) has each state's name
--   inside its own side of the commune, so the reader sees at once which parcels lie where;
-- - otherwise each state's name goes beside the commune, in the part of the map's frame (the
--   commune's envelope grown to the screen's 3:2 shape) that lies in the state.
-- Beside them, the commune's own name at the top of its outline. Ranks (which name stays where
-- two collide): the states first, by room, then the commune's name.
-- Parameters: %(commune)s commune id, %(decimals)s lon/lat decimals.
WITH c AS (
    SELECT geom, name, ST_XMin(geom) AS x0, ST_YMin(geom) AS y0,
           greatest(ST_XMax(geom) - ST_XMin(geom), 1.5 * (ST_YMax(geom) - ST_YMin(geom)),
                    0.004) AS w,
           greatest(ST_YMax(geom) - ST_YMin(geom), (ST_XMax(geom) - ST_XMin(geom)) / 1.5,
                    0.003) AS h,
           ST_XMax(geom) - ST_XMin(geom) AS cw, ST_YMax(geom) - ST_YMin(geom) AS ch,
           (SELECT count(*) FROM states s WHERE ST_Intersects(s.geom, communes.geom)) AS states
    FROM communes WHERE id = %(commune)s
), framed AS (
    SELECT c.*, ST_MakeEnvelope(x0 + cw / 2 - 0.47 * w, y0 + ch / 2 - 0.45 * h,
                                x0 + cw / 2 + 0.47 * w, y0 + ch / 2 + 0.45 * h, 4326) AS frame
    FROM c
), room AS MATERIALIZED (  -- each state's room cut once, not once per use in places
    SELECT s.name,
           CASE WHEN f.states > 1 AND ST_Intersects(s.geom, f.geom)
                THEN ST_Intersection(s.geom, f.geom)
                ELSE ST_Difference(ST_Intersection(s.geom, f.frame), f.geom) END AS geom
    FROM states s, framed f
    WHERE s.geom && f.frame AND ST_Intersects(s.geom, f.frame)
), places AS (
    SELECT room.name AS label, 'state' AS kind, m.center AS geom, m.radius AS room
    FROM room CROSS JOIN LATERAL ST_MaximumInscribedCircle(room.geom) m  -- one circle each
    WHERE NOT ST_IsEmpty(room.geom) AND ST_Area(room.geom) > 0
), named AS (
    SELECT label, kind, geom, row_number() OVER (ORDER BY room DESC) AS rank FROM places
    UNION ALL
    SELECT c.name, 'commune',
           ST_ClosestPoint(ST_Boundary(c.geom), ST_SetSRID(
               ST_MakePoint(ST_X(ST_Centroid(c.geom)), ST_YMax(c.geom)), 4326)),
           1000
    FROM c
)
SELECT '{"type":"FeatureCollection","features":['
       || coalesce(string_agg(ST_AsGeoJSON(named.*, 'geom', %(decimals)s), ',' ORDER BY rank), '')
       || ']}'
FROM named
