-- The geodesic distance (m) from each dwelling of commune %(commune)s with precarious or no
-- electricity (or only those of %(ids)s, when given) to the nearest power line of the commune
-- in good condition (NULL: none), as two arrays ordered by id: ids, distances.
SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(distance_m), '{}')
FROM (
    SELECT g.id, line.distance_m
    FROM dwellings g
    LEFT JOIN LATERAL (
        SELECT ST_Distance(l.geom::geography, g.geom::geography) AS distance_m
        FROM power_lines l
        WHERE l.commune_id = %(commune)s AND l.condition = 'good'
        ORDER BY l.geom <-> g.geom
        LIMIT 1
    ) line ON true
    WHERE g.commune_id = %(commune)s AND g.electricity IN ('precarious', 'none')
      AND (%(ids)s::integer[] IS NULL OR g.id = ANY (%(ids)s::integer[]))
    ORDER BY g.id
) d
