-- Recovery candidates of one commune (%(commune)s): parcels that are abandoned (tenure) or
-- idle (land use), with their area (m², geodesic) and the distance (m, geodesic on the WGS 84
-- spheroid) to the nearest road (paths.kind = 'road', of any commune; 0 when a road touches
-- the parcel). The nearest road is taken among the 8 nearest in lon/lat (a GiST KNN search),
-- then measured on the spheroid: near the equator the two orders agree. NULL when there is no
-- road at all.
SELECT p.id, p.code, p.tenure, p.land_use, ST_Area(p.geom::geography) AS area_m2,
       r.distance_m, ST_AsBinary(p.geom) AS wkb, ST_AsGeoJSON(p.geom, 7)::json AS geometry
FROM parcels p
LEFT JOIN LATERAL (
    SELECT min(ST_Distance(p.geom::geography, k.geom::geography)) AS distance_m
    FROM (SELECT geom FROM paths WHERE kind = 'road' ORDER BY geom <-> p.geom LIMIT 8) k
) r ON true
WHERE p.commune_id = %(commune)s AND (p.tenure = 'abandoned' OR p.land_use = 'idle')
ORDER BY p.id
