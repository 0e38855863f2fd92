-- Every segment of a commune's paths, in path order: the edges of the walking / pipe-laying
-- graph (analysis/toolkit/network.py). Lengths are geodesic metres on the WGS 84 spheroid; end points
-- are lon/lat, snapped into nodes in Python. A NULL step count or flag reads as 0 / false.
SELECT p.id,
       (s.path)[1],
       p.kind,
       coalesce(p.steps, 0),
       coalesce(p.vehicles, false),
       coalesce(p.transit, false),
       ST_X(ST_StartPoint(s.geom)),
       ST_Y(ST_StartPoint(s.geom)),
       ST_X(ST_EndPoint(s.geom)),
       ST_Y(ST_EndPoint(s.geom)),
       ST_Length(s.geom::geography)
FROM paths p
CROSS JOIN LATERAL ST_DumpSegments(p.geom) s
WHERE p.commune_id = %(commune)s
ORDER BY p.id, (s.path)[1]
