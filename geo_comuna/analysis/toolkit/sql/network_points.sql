-- The points of {table} with the given ids, as one row of arrays ordered by id: lon/lat for
-- attaching them to the nearest segment of the paths (analysis/toolkit/network.py attach).
SELECT coalesce(array_agg(id ORDER BY id), ARRAY[]::bigint[]),
       coalesce(array_agg(ST_X(geom) ORDER BY id), ARRAY[]::float8[]),
       coalesce(array_agg(ST_Y(geom) ORDER BY id), ARRAY[]::float8[])
FROM {table}
WHERE id = ANY(%(ids)s)
