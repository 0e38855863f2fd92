-- Dwellings (ids given) the path network cannot serve: the straight line to the nearest working
-- or leaking main of the commune (geodesic m) and the point of the main it would leave from.
SELECT d.id, m.distance_m, ST_X(m.point), ST_Y(m.point)
FROM dwellings d
CROSS JOIN LATERAL (
    SELECT ST_Distance(w.geom::geography, d.geom::geography) AS distance_m,
           ST_ClosestPoint(w.geom, d.geom) AS point
    FROM water_mains w
    WHERE w.commune_id = %(commune)s AND w.status IN ('working', 'leaking')
    ORDER BY w.geom <-> d.geom
    LIMIT 1
) m
WHERE d.id = ANY(%(ids)s)
ORDER BY d.id
