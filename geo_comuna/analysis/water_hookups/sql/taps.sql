-- Where the commune's working or leaking mains can feed its path network ("taps"): every path
-- vertex within %(reach)s m of a main, plus for each main the vertex nearest to it, so that every
-- main has a tap. offset_m is the pipe from the main to the vertex (geodesic m); main_lon/lat the
-- point of the main it leaves from (for its elevation). Duplicates are resolved in Python.
WITH mains AS (
    SELECT id, geom, ST_Buffer(geom::geography, %(reach)s + 1.0)::geometry AS zone
    FROM water_mains
    WHERE commune_id = %(commune)s AND status IN ('working', 'leaking')
), near AS (
    SELECT m.id AS main_id, m.geom AS main, d.geom AS vertex
    FROM mains m
    JOIN paths p ON p.commune_id = %(commune)s AND p.geom && m.zone
    CROSS JOIN LATERAL ST_DumpPoints(p.geom) d
    WHERE ST_DWithin(d.geom::geography, m.geom::geography, %(reach)s)
    UNION ALL
    SELECT m.id, m.geom, v.geom
    FROM mains m
    CROSS JOIN LATERAL (SELECT geom FROM paths WHERE commune_id = %(commune)s
                        ORDER BY geom <-> m.geom LIMIT 1) p
    CROSS JOIN LATERAL (SELECT d.geom FROM ST_DumpPoints(p.geom) d
                        ORDER BY d.geom <-> m.geom LIMIT 1) v
)
SELECT main_id,
       ST_X(vertex),
       ST_Y(vertex),
       ST_Distance(vertex::geography, main::geography),
       ST_X(ST_ClosestPoint(main, vertex)),
       ST_Y(ST_ClosestPoint(main, vertex))
FROM near
