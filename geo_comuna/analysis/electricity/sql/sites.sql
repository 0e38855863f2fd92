-- A suggested transformer site per cluster (dwelling ids and cluster numbers given): the
-- residents-weighted geometric median of its dwellings (Weiszfeld's iteration in
-- ST_GeometricMedian, weights in M), in metres in UTM zone %(srid)s; a cluster whose dwellings
-- all have 0 residents is weighted evenly. reach_m: farthest dwelling from the site; line_m: the
-- site to the nearest power line in good condition; nearest_dwelling: the member closest to it.
WITH members AS (
    SELECT m.cluster, d.id, greatest(d.residents, 0) AS residents, d.geom,
           ST_Transform(d.geom, %(srid)s) AS xy
    FROM unnest(%(ids)s::int[], %(clusters)s::bigint[]) AS m (id, cluster)
    JOIN dwellings d ON d.id = m.id
), totals AS (
    SELECT cluster, count(*) AS dwellings, sum(residents) AS residents
    FROM members
    GROUP BY cluster
), sites AS (
    SELECT m.cluster,
           ST_Transform(ST_SetSRID(ST_Force2D(ST_GeometricMedian(ST_Collect(ST_MakePointM(
               ST_X(m.xy), ST_Y(m.xy),
               CASE WHEN t.residents > 0 THEN m.residents ELSE 1 END)))), %(srid)s),
               4326) AS geom
    FROM members m
    JOIN totals t USING (cluster)
    GROUP BY m.cluster
),
-- reach and nearest member per cluster in one pass over the members each (a correlated
-- subquery per site scanned every member for every site: quadratic in a big commune)
reach AS (
    SELECT m.cluster, max(ST_Distance(s.geom::geography, m.geom::geography)) AS reach_m
    FROM members m
    JOIN sites s USING (cluster)
    GROUP BY m.cluster
), nearest AS (
    SELECT DISTINCT ON (m.cluster) m.cluster, m.id
    FROM members m
    JOIN sites s USING (cluster)
    ORDER BY m.cluster, m.geom <-> s.geom, m.id
)
SELECT s.cluster,
       t.dwellings,
       t.residents,
       r.reach_m,
       line.distance_m,
       n.id AS nearest_dwelling,
       ST_AsGeoJSON(s.geom, 7)::json
FROM sites s
JOIN totals t USING (cluster)
JOIN reach r USING (cluster)
JOIN nearest n USING (cluster)
LEFT JOIN LATERAL (
    SELECT ST_Distance(l.geom::geography, s.geom::geography) AS distance_m
    FROM power_lines l
    WHERE l.commune_id = %(commune)s AND l.condition = 'good'
    ORDER BY l.geom <-> s.geom
    LIMIT 1
) line ON true
ORDER BY t.residents DESC, t.dwellings DESC, s.cluster
