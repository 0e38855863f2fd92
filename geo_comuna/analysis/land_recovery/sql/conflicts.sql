-- Conflicts among one commune's parcels (%(commune)s), each with its geometry (lon/lat), its
-- area (m², geodesic) and the parcels involved:
--   overlap          the area two parcels share (each pair once)
--   outside_commune  the part of a parcel beyond the commune boundary
--   sliver           a gap between parcels narrower than %(width)s m: the morphological
--                    closing of the parcels' union (buffer out, then in, by width / 2 with
--                    mitred joins, in the commune's UTM zone) minus the union; it also finds
--                    notches that narrow in a single parcel's outline
-- Pieces under %(min_m2)s m² are dropped as numerical noise.
WITH c AS (
    SELECT geom,
           CASE WHEN ST_Y(ST_Centroid(geom)) >= 0 THEN 32600 ELSE 32700 END
           + least(60, floor((ST_X(ST_Centroid(geom)) + 180) / 6)::integer + 1) AS utm
    FROM communes WHERE id = %(commune)s
), p AS (
    SELECT id, code, geom FROM parcels WHERE commune_id = %(commune)s
), shared AS (
    SELECT 'overlap' AS kind, ARRAY[a.id, b.id] AS parcel_ids, ARRAY[a.code, b.code] AS codes,
           ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
    FROM p a JOIN p b ON a.id < b.id AND ST_Relate(a.geom, b.geom, '2********')
), outside AS (
    SELECT 'outside_commune', ARRAY[p.id], ARRAY[p.code],
           ST_CollectionExtract(ST_Difference(p.geom, c.geom), 3)
    FROM p, c WHERE NOT ST_CoveredBy(p.geom, c.geom)
), merged AS (
    SELECT ST_Transform(ST_Union(p.geom), c.utm) AS geom FROM p, c GROUP BY c.utm
), gaps AS (
    SELECT ST_Transform((ST_Dump(ST_Difference(
               ST_Buffer(ST_Buffer(m.geom, %(width)s / 2.0, 'join=mitre mitre_limit=5'),
                         -%(width)s / 2.0, 'join=mitre mitre_limit=5'),
               m.geom))).geom, 4326) AS geom
    FROM merged m
), slivers AS (
    SELECT 'sliver', n.ids, n.codes, g.geom
    FROM gaps g
    LEFT JOIN LATERAL (SELECT array_agg(p.id ORDER BY p.id) AS ids,
                              array_agg(p.code ORDER BY p.id) AS codes
                       FROM p WHERE ST_DWithin(p.geom, g.geom, 1e-7)) n ON true
), found AS (
    SELECT * FROM shared UNION ALL SELECT * FROM outside UNION ALL SELECT * FROM slivers
), measured AS (
    SELECT kind, parcel_ids, codes, geom, ST_Area(geom::geography) AS area_m2
    FROM found WHERE NOT ST_IsEmpty(geom)
)
SELECT kind, parcel_ids, codes, area_m2, ST_AsGeoJSON(geom, 7)::json AS geometry
FROM measured
WHERE area_m2 >= %(min_m2)s
ORDER BY kind, area_m2 DESC
