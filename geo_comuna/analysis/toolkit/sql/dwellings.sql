-- A commune's dwellings (only those without piped water when %(without_piped)s), as one row of
-- arrays ordered by id; lon/lat place them (DEM, network) and make their GeoJSON points.
-- Sorted once in the subquery rather than by each aggregate's ORDER BY (PostgreSQL 15 sorts
-- the rows again for every one of them); the reader checks the order all the same.
SELECT coalesce(array_agg(id), '{}'),
       coalesce(array_agg(residents), '{}'),
       coalesce(array_agg(water), '{}'),
       coalesce(array_agg(sector), '{}'),
       coalesce(array_agg(ST_X(geom)), '{}'),
       coalesce(array_agg(ST_Y(geom)), '{}')
FROM (
    SELECT id, residents, water, sector, geom
    FROM dwellings
    WHERE commune_id = %(commune)s AND (NOT %(without_piped)s OR water <> 'piped')
    ORDER BY id
) d
