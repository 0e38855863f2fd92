-- Recovery candidates of one commune (%(commune)s): parcels that are abandoned (tenure) or
-- idle (land use), with their area (m², geodesic), their outline (WKB; only when %(shapes)s,
-- the commune has a DEM to measure slopes on), their box (lon/lat) and the 8 nearest roads
-- (paths.kind = 'road', of any commune) in lon/lat (a GiST KNN search): each road's id and
-- its planar distance in degrees. candidates.py measures on the spheroid only the roads that
-- can be a candidate's nearest, for the candidates that can rank (measured.sql). No roads at
-- all: NULL arrays.
SELECT p.id, p.code, p.tenure, p.land_use, ST_Area(p.geom::geography) AS area_m2,
       CASE WHEN %(shapes)s THEN ST_AsBinary(p.geom) END AS wkb, ST_XMin(p.geom), ST_YMin(p.geom), ST_XMax(p.geom),
       ST_YMax(p.geom), k.roads, k.degrees
FROM parcels p
LEFT JOIN LATERAL (
    SELECT array_agg(k.id) AS roads, array_agg(k.degrees) AS degrees  -- pairs of one row each
    FROM (SELECT id, geom <-> p.geom AS degrees FROM paths WHERE kind = 'road'
          ORDER BY geom <-> p.geom LIMIT 8) k
) k ON true
WHERE p.commune_id = %(commune)s AND (p.tenure = 'abandoned' OR p.land_use = 'idle')
ORDER BY p.id
