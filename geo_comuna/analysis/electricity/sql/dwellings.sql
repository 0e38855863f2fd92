-- A commune's dwellings with precarious or no electricity as one row of arrays ordered by id:
-- residents, electricity, sector, lon/lat, and x/y in the commune's UTM zone %(srid)s, where
-- analysis/electricity/parts.py clusters and cuts them and sites.py places the transformers.
-- Their distances to the power lines are line_distances.sql, run beside this one on a second
-- connection when the request has one.
SELECT coalesce(array_agg(id), '{}'),
       coalesce(array_agg(residents), '{}'),
       coalesce(array_agg(electricity), '{}'),
       coalesce(array_agg(sector), '{}'),
       coalesce(array_agg(ST_X(geom)), '{}'),
       coalesce(array_agg(ST_Y(geom)), '{}'),
       coalesce(array_agg(ST_X(xy)), '{}'),
       coalesce(array_agg(ST_Y(xy)), '{}')
FROM (
    -- sorted once here rather than by each aggregate (the reader checks the order)
    SELECT id, residents, electricity, sector, geom, ST_Transform(geom, %(srid)s) AS xy
    FROM dwellings
    WHERE commune_id = %(commune)s AND electricity IN ('precarious', 'none')
    ORDER BY id
) d
