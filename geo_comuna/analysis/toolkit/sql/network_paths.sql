-- A commune's paths as one row of two byte strings, the paths in the same order in both:
-- 1. per path 15 bytes, big-endian: id (int4), kind (int2: its place in network.KINDS, given
--    as %(kinds)s, from 1), steps (int4; NULL reads 0), vehicles and transit (one byte each;
--    NULL reads false), vertex count (int4);
-- 2. their lines as little-endian WKB one after the other.
-- analysis/toolkit/network.py reads both in place with numpy, cuts the lines into segments
-- (the edges of the walking / pipe-laying graph) and measures those on the spheroid. Not a
-- row per segment (100,000 rows cost more to send and unpack than the work they carry), nor
-- an array per attribute (sending and unpacking six 100,000-element arrays took ~100 ms).
SELECT coalesce(string_agg(
           int4send(id)
           || int2send(array_position(%(kinds)s::text[], kind)::int2)
           || int4send(coalesce(steps, 0))
           || boolsend(coalesce(vehicles, false))
           || boolsend(coalesce(transit, false))
           || int4send(ST_NPoints(geom)),
           ''::bytea), ''::bytea),
       coalesce(string_agg(ST_AsBinary(geom, 'NDR'), ''::bytea), ''::bytea)
FROM paths
WHERE commune_id = %(commune)s
