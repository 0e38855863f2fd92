-- Each point of {table} (ids given) on its nearest segment of the commune's paths: the path by
-- the GiST index (KNN on lon/lat, which at these latitudes ranks like metres to within ~2 percent),
-- then the nearest segment of that path. along_m runs from the segment's start to the closest
-- point, connector_m from the point to it (both geodesic metres); lon/lat is the closest point.
-- No path: NULLs.
SELECT t.id, n.path_id, n.seg, n.along_m, n.connector_m, n.lon, n.lat
FROM {table} t
LEFT JOIN LATERAL (
    SELECT p.id AS path_id,
           (s.path)[1] AS seg,
           ST_Distance(ST_StartPoint(s.geom)::geography, cp.geom::geography) AS along_m,
           ST_Distance(t.geom::geography, cp.geom::geography) AS connector_m,
           ST_X(cp.geom) AS lon,
           ST_Y(cp.geom) AS lat
    FROM (SELECT id, geom FROM paths
          WHERE commune_id = %(commune)s
          ORDER BY geom <-> t.geom LIMIT 1) p
    CROSS JOIN LATERAL (SELECT d.path, d.geom FROM ST_DumpSegments(p.geom) d
                        ORDER BY d.geom <-> t.geom LIMIT 1) s
    CROSS JOIN LATERAL (SELECT ST_ClosestPoint(s.geom, t.geom) AS geom) cp
) n ON true
WHERE t.id = ANY(%(ids)s)
ORDER BY t.id
