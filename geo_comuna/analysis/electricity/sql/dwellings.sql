-- A commune's dwellings with precarious or no electricity, grouped for transformers, with the
-- geodesic distance (m) to the nearest power line of the commune in good condition (NULL: none).
-- Groups, in metres in the commune's UTM zone %(srid)s: DBSCAN first (a dwelling is a core
-- point with at least %(min_size)s gap dwellings, itself included, within %(radius)s m;
-- NULL = isolated), then each DBSCAN cluster of n dwellings cut by k-means into
-- ceil(n / %(max_size)s) parts, since dense barrios chain into one cluster far larger than one
-- transformer serves.
WITH gap AS (
    SELECT id, residents, electricity, sector, geom, ST_Transform(geom, %(srid)s) AS xy
    FROM dwellings
    WHERE commune_id = %(commune)s AND electricity IN ('precarious', 'none')
), dbscan AS (
    SELECT *, ST_ClusterDBSCAN(xy, %(radius)s, %(min_size)s) OVER () AS dbscan
    FROM gap
), sized AS (
    SELECT *, count(*) OVER (PARTITION BY dbscan) AS n
    FROM dbscan
), parts AS (
    SELECT *, ST_ClusterKMeans(xy, ceil(n / %(max_size)s::float8)::int)
                  OVER (PARTITION BY dbscan) AS part
    FROM sized
)
SELECT g.id,
       g.residents,
       g.electricity,
       g.sector,
       CASE WHEN g.dbscan IS NOT NULL THEN g.dbscan::bigint * 1000000 + g.part END AS cluster,
       line.distance_m,
       ST_AsGeoJSON(g.geom, 7)::json
FROM parts g
LEFT JOIN LATERAL (
    SELECT ST_Distance(l.geom::geography, g.geom::geography) AS distance_m
    FROM power_lines l
    WHERE l.commune_id = %(commune)s AND l.condition = 'good'
    ORDER BY l.geom <-> g.geom
    LIMIT 1
) line ON true
ORDER BY g.id
