-- PostGIS' DBSCAN of a commune's dwellings with precarious or no electricity (those of
-- dwellings.sql) in metres in its UTM zone %(srid)s, the rows given in id order (the order
-- parts.dbscan follows): ids and clusters (NULL: isolated) as two arrays ordered by id. Used
-- when the radius takes in more pairs of dwellings than parts.dbscan holds at once; PostGIS
-- numbers the clusters its own way and parts.by_first_point numbers them again.
SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(cluster), '{}')
FROM (
    SELECT id,
           ST_ClusterDBSCAN(ST_Transform(geom, %(srid)s), %(radius)s, %(min_size)s)
               OVER (ORDER BY id) AS cluster
    FROM dwellings
    WHERE commune_id = %(commune)s AND electricity IN ('precarious', 'none')
    ORDER BY id
) d
