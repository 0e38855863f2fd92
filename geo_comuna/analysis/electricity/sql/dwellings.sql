-- A commune's dwellings with precarious or no electricity as one row of arrays ordered by id:
-- their DBSCAN cluster in metres in the commune's UTM zone %(srid)s (a dwelling is a core
-- point with at least %(min_size)s gap dwellings, itself included, within %(radius)s m;
-- NULL = isolated), lon/lat, and x/y in that zone for cutting each cluster into parts
-- (analysis/electricity/parts.py). Their distances to the power lines are line_distances.sql,
-- run beside this one on a second connection when the request has one.
WITH gap AS (
    SELECT id, residents, electricity, sector, geom, ST_Transform(geom, %(srid)s) AS xy
    FROM dwellings
    WHERE commune_id = %(commune)s AND electricity IN ('precarious', 'none')
), dbscan AS (
    SELECT *, ST_ClusterDBSCAN(xy, %(radius)s, %(min_size)s) OVER () AS dbscan
    FROM gap
)
SELECT coalesce(array_agg(id), '{}'),
       coalesce(array_agg(residents), '{}'),
       coalesce(array_agg(electricity), '{}'),
       coalesce(array_agg(sector), '{}'),
       coalesce(array_agg(dbscan), '{}'),
       coalesce(array_agg(ST_X(geom)), '{}'),
       coalesce(array_agg(ST_Y(geom)), '{}'),
       coalesce(array_agg(ST_X(xy)), '{}'),
       coalesce(array_agg(ST_Y(xy)), '{}')
FROM (
    -- sorted once here rather than by each aggregate (the reader checks the order)
    SELECT * FROM dbscan ORDER BY id
) d
