-- A commune's paths as one row: their attributes as arrays (a NULL step count or flag reads as
-- 0 / false), their vertex counts, and their lines as little-endian WKB one after the other.
-- analysis/toolkit/network.py cuts them into segments (the edges of the walking /
-- pipe-laying graph) and measures those on the spheroid. One row, not a row per segment:
-- 100,000 rows cost more to send and unpack than the work they carry. The arrays share the
-- order of the rows fed to this one aggregation; the reader sorts by id.
SELECT coalesce(array_agg(id), ARRAY[]::integer[]),
       coalesce(array_agg(kind), ARRAY[]::text[]),
       coalesce(array_agg(coalesce(steps, 0)), ARRAY[]::integer[]),
       coalesce(array_agg(coalesce(vehicles, false)), ARRAY[]::boolean[]),
       coalesce(array_agg(coalesce(transit, false)), ARRAY[]::boolean[]),
       coalesce(array_agg(ST_NPoints(geom)), ARRAY[]::integer[]),
       coalesce(string_agg(ST_AsBinary(geom, 'NDR'), ''::bytea), ''::bytea)
FROM paths
WHERE commune_id = %(commune)s
