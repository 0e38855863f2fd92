-- Overlaps among one commune's parcels (%(commune)s): the area two parcels share, each pair
-- once, with its geometry (lon/lat), its area (m², geodesic) and the two parcels. The pairs
-- %(first)s, %(second)s (ids, the lower first) are those overlaps.py found joining the
-- commune's outlines in bulk; each is confirmed here by PostGIS' own ST_Relate. Joined here,
-- parcel by parcel through the GiST index, they took 13.8 s for 200,000 parcels sharing their
-- borders; and the planner could AND another index into each probe's bitmap (the primary
-- key's for "a.id < b.id": 100,000 ids read per parcel, 204 s). Pieces under %(min_m2)s m²
-- are dropped as numerical noise. The other conflicts: conflicts.sql.
WITH shared AS MATERIALIZED (  -- each shape computed once, not once per use below
    SELECT 'overlap' AS kind, ARRAY[a.id, b.id] AS parcel_ids, ARRAY[a.code, b.code] AS codes,
           ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
    FROM unnest(%(first)s::integer[], %(second)s::integer[]) AS u(first, second)
    JOIN parcels a ON a.id = u.first
    JOIN parcels b ON b.id = u.second
    WHERE a.commune_id = %(commune)s AND b.commune_id = %(commune)s
      AND ST_Relate(a.geom, b.geom, '2********')
), measured AS MATERIALIZED (
    SELECT kind, parcel_ids, codes, geom, ST_Area(geom::geography) AS area_m2
    FROM shared WHERE NOT ST_IsEmpty(geom)
)
SELECT kind, parcel_ids, codes, area_m2, ST_AsGeoJSON(geom, 7)::json AS geometry
FROM measured
WHERE area_m2 >= %(min_m2)s
