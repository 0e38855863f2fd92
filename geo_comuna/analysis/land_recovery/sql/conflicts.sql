-- Conflicts among one commune's parcels (%(commune)s), each with its geometry (lon/lat), its
-- area (m², geodesic) and the parcels involved (overlaps, the area two parcels share, are
-- measured by shared.sql, beside this statement):
--   outside_commune  the part of a parcel beyond the commune boundary
--   sliver           a gap between parcels narrower than %(width)s m: the morphological
--                    closing of the parcels' union (buffer out, then in, by width / 2 with
--                    mitred joins, in the commune's UTM zone) minus the union; it also finds
--                    notches that narrow in a single parcel's outline
-- Pieces under %(min_m2)s m² are dropped as numerical noise.
--
-- Clustering two parcels, a cluster's union and its buffers are each one GEOS or liblwgeom
-- call that neither the statement timeout nor a cancel stops. Slivers are looked for only
-- when %(slivers)s (land_recovery/__init__.py bounds the parcels' vertices first); a cluster
-- of more than %(most_unioned)s vertices is not unioned, nor one whose union has more than
-- %(most_buffered)s buffered (NULL: any size): each comes back as one row of kind 'unchecked'
-- naming its parcels, with no area or geometry.
--
-- Cost grows with the parcels, not their pairs (20,000 parcels: a few seconds, where one
-- pairwise self-join and one union of the whole commune took over ten minutes):
-- * the closing is taken per cluster of parcels less than 6 * width apart
--   (ST_ClusterDBSCAN), which gives the same gaps as the closing of the whole union: a
--   mitred buffer reaches at most mitre_limit * width / 2 = 2.5 * width from its parcels, so
--   the closings of two clusters never meet. A cluster of one convex polygon without holes
--   is its own closing (it has no notch) and is skipped: buffering it only made float noise;
-- * slivers find their parcels through the index too;
-- * ST_Covers(commune, parcel), the same test as ST_CoveredBy(parcel, commune), keeps the
--   commune prepared across its parcels.
WITH c AS (
    SELECT geom,
           CASE WHEN ST_Y(ST_Centroid(geom)) >= 0 THEN 32600 ELSE 32700 END
           + least(60, floor((ST_X(ST_Centroid(geom)) + 180) / 6)::integer + 1) AS utm
    FROM communes WHERE id = %(commune)s
), outside AS MATERIALIZED (  -- each shape computed once, not once per use below
    SELECT 'outside_commune' AS kind, ARRAY[p.id] AS parcel_ids, ARRAY[p.code] AS codes,
           ST_CollectionExtract(ST_Difference(p.geom, c.geom), 3) AS geom
    FROM parcels p, c WHERE p.commune_id = %(commune)s AND NOT ST_Covers(c.geom, p.geom)
), clustered AS (  -- clusters measured in metres; each unioned in lon/lat, as a whole commune was
    SELECT p.id, p.geom, c.utm,
           ST_ClusterDBSCAN(ST_Transform(p.geom, c.utm), 6 * %(width)s, 1) OVER () AS cluster
    FROM parcels p, c WHERE p.commune_id = %(commune)s AND %(slivers)s
), grouped AS (
    SELECT array_agg(geom) AS geoms, array_agg(id ORDER BY id) AS ids, min(utm) AS utm,
           sum(ST_NPoints(geom)) AS vertices
    FROM clustered GROUP BY cluster
), merged AS MATERIALIZED (  -- geom NULL: too many vertices to union; each union made once
    SELECT ids, ST_Transform(CASE WHEN cardinality(geoms) = 1 THEN geoms[1]
                                  WHEN %(most_unioned)s::integer IS NULL
                                       OR vertices <= %(most_unioned)s THEN ST_Union(geoms) END,
                             utm) AS geom
    FROM grouped
), uneven AS (  -- not a lone convex polygon without holes (whose closing is itself)
    SELECT ids, geom,
           geom IS NULL OR ST_NPoints(geom) > coalesce(%(most_buffered)s::integer, 2147483647)
               AS too_big
    FROM merged
    WHERE geom IS NULL
       OR NOT (ST_NumGeometries(geom) = 1 AND ST_NumInteriorRings(ST_GeometryN(geom, 1)) = 0
               AND ST_NPoints(ST_ConvexHull(geom)) = ST_NPoints(geom))
), gaps AS MATERIALIZED (
    SELECT ST_Transform((ST_Dump(ST_Difference(
               ST_Buffer(ST_Buffer(m.geom, %(width)s / 2.0, 'join=mitre mitre_limit=5'),
                         -%(width)s / 2.0, 'join=mitre mitre_limit=5'),
               m.geom))).geom, 4326) AS geom
    FROM uneven m WHERE NOT m.too_big
), slivers AS (
    SELECT 'sliver', n.ids, n.codes, g.geom
    FROM gaps g
    LEFT JOIN LATERAL (SELECT array_agg(p.id ORDER BY p.id) AS ids,
                              array_agg(p.code ORDER BY p.id) AS codes
                       FROM parcels p
                       WHERE p.commune_id = %(commune)s AND ST_DWithin(p.geom, g.geom, 1e-7)) n
           ON true
), found AS (
    SELECT * FROM outside UNION ALL SELECT * FROM slivers
), measured AS MATERIALIZED (
    SELECT kind, parcel_ids, codes, geom, ST_Area(geom::geography) AS area_m2
    FROM found WHERE NOT ST_IsEmpty(geom)
)
SELECT kind, parcel_ids, codes, area_m2, ST_AsGeoJSON(geom, 7)::json AS geometry
FROM measured
WHERE area_m2 >= %(min_m2)s
UNION ALL
SELECT 'unchecked', ids, NULL, NULL, NULL FROM uneven WHERE too_big
