-- The longest segment (degrees, planar in lon/lat) of each of the roads %(roads)s: how far
-- its edges, great-circle arcs on the spheroid, can bow away from straight lines in lon/lat.
SELECT r.id, coalesce((SELECT max(ST_Length(s.geom)) FROM ST_DumpSegments(r.geom) s), 0)
FROM paths r WHERE r.id = ANY(%(roads)s::integer[])
