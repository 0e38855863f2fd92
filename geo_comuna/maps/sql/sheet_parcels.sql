-- Everything the sheets of the parcels %(ids)s draw and tell, in one statement: each parcel in
-- REGVEN / UTM of the zone of its centroid's longitude (18N, 19N, 20N: EPSG:2201-2203; a parcel
-- east of 60 W is still drawn in 20N, the easternmost zone REGVEN defines), forced clockwise so
-- that every ring has the parcel on its right; its geodesic area (m²) and perimeter (m) on the
-- WGS 84 spheroid; the map's frame (the parcel's box grown by half its larger side, at least
-- 25 m each way); what lies in the frame (the other parcels, roads, the commune's limit), cut to
-- it; and, per side of the parcel (ST_DumpSegments: path {polygon, ring, index of its first
-- vertex}), how many metres of it run within %(tol)s m of each other parcel and of the commune's
-- limit, and within %(road_tol)s m of a road (maps/sheet/linderos.py names the sides from these).
WITH wanted AS (
    SELECT p.id, p.code, p.tenure, p.land_use, p.recovered_on, p.commune_id, p.geom,
           2183 + least(20, greatest(18,
               floor((ST_X(ST_Centroid(p.geom)) + 180) / 6)::integer + 1)) AS srid
    FROM parcels p
    WHERE p.id = ANY(%(ids)s::integer[])
),
local AS MATERIALIZED (  -- each outline transformed once, not once per use in framed
    SELECT w.*, ST_ForcePolygonCW(ST_Transform(w.geom, w.srid)) AS utm FROM wanted w
),
framed AS MATERIALIZED (
    SELECT l.*, ST_Expand(ST_Envelope(l.utm), greatest(
               ST_XMax(l.utm) - ST_XMin(l.utm), ST_YMax(l.utm) - ST_YMin(l.utm), 50) / 2) AS frame
    FROM local l
),
near AS MATERIALIZED (  -- the other parcels in each frame, in the parcel's zone
    SELECT f.id AS parcel_id, n.id, n.code, ST_Transform(n.geom, f.srid) AS utm
    FROM framed f
    JOIN parcels n ON n.geom && ST_Transform(f.frame, 4326) AND n.id <> f.id
),
touching AS MATERIALIZED (  -- those within the tolerance, grown by it once per pair (corners
    -- cut at 45 degrees: a sharper round costs vertices in every intersection below)
    SELECT n.parcel_id, n.id, n.code, n.utm, ST_Buffer(n.utm, %(tol)s, 'quad_segs=2') AS reach
    FROM near n JOIN framed f ON f.id = n.parcel_id
    WHERE ST_DWithin(n.utm, f.utm, %(tol)s)
),
roads AS MATERIALIZED (
    SELECT f.id AS parcel_id, r.name, ST_Transform(r.geom, f.srid) AS utm
    FROM framed f
    JOIN paths r ON r.kind = 'road' AND r.geom && ST_Transform(f.frame, 4326)
),
limits AS MATERIALIZED (  -- the parcel's commune's boundary, cut to the frame
    SELECT f.id AS parcel_id,
           ST_Transform(ST_Intersection(ST_Boundary(c.geom), ST_Transform(f.frame, 4326)),
                        f.srid) AS utm
    FROM framed f JOIN communes c ON c.id = f.commune_id
),
-- Everything below is joined and grouped by parcel rather than read in subqueries per parcel
-- or side: a subquery per side scans the CTE of every parcel's neighbours again, ~2,000 times
-- for 500 parcels, from disk once it outgrows work_mem (16 s where the joins take 2-3).
segments AS MATERIALIZED (
    SELECT f.id AS parcel_id, s.path, s.geom FROM framed f, ST_DumpSegments(f.utm) s
),
along_parcels AS (
    SELECT s.parcel_id, s.path,
           json_agg(json_build_object('id', t.id, 'code', t.code,
                                      'm', ST_Length(ST_Intersection(s.geom, t.reach)))) AS parcels
    FROM segments s
    JOIN touching t ON t.parcel_id = s.parcel_id AND ST_DWithin(s.geom, t.utm, %(tol)s)
    GROUP BY s.parcel_id, s.path
),
along_roads AS (
    SELECT s.parcel_id, s.path, min(r.name) AS road,
           ST_Length(ST_Intersection((array_agg(s.geom))[1],
                                     ST_Buffer(ST_Collect(r.utm), %(road_tol)s, 'quad_segs=2'))) AS road_m
    FROM segments s
    JOIN roads r ON r.parcel_id = s.parcel_id AND ST_DWithin(r.utm, s.geom, %(road_tol)s)
    GROUP BY s.parcel_id, s.path
),
sides AS (
    SELECT s.parcel_id,
           json_agg(json_build_object(
               'path', s.path, 'parcels', p.parcels, 'road', r.road, 'road_m', r.road_m,
               'limit_m', ST_Length(ST_Intersection(s.geom,
                                                    ST_Buffer(l.utm, %(tol)s, 'quad_segs=2'))))
           ) AS sides
    FROM segments s
    LEFT JOIN along_parcels p ON p.parcel_id = s.parcel_id AND p.path = s.path
    LEFT JOIN along_roads r ON r.parcel_id = s.parcel_id AND r.path = s.path
    LEFT JOIN limits l ON l.parcel_id = s.parcel_id AND ST_DWithin(l.utm, s.geom, %(tol)s)
    GROUP BY s.parcel_id
),
drawn_parcels AS (
    SELECT n.parcel_id,
           json_agg(json_build_object(
               'id', n.id, 'code', n.code,
               'shape', ST_AsGeoJSON(ST_Intersection(n.utm, f.frame), 2)::json) ORDER BY n.id
           ) AS neighbours
    FROM near n JOIN framed f ON f.id = n.parcel_id
    GROUP BY n.parcel_id
),
overlapping AS (  -- the other parcels whose interiors share its ground (as land recovery's
    -- overlaps: ST_Relate's 2********, pieces under %(overlap_m2)s m² being numerical noise),
    -- largest first, with the area shared (m², geodesic)
    SELECT n.parcel_id,
           json_agg(json_build_object('id', n.id, 'code', n.code, 'm2', o.m2)
                    ORDER BY o.m2 DESC, n.id) AS overlapping
    FROM near n
    JOIN wanted w ON w.id = n.parcel_id
    JOIN parcels p ON p.id = n.id
    CROSS JOIN LATERAL (
        SELECT ST_Area(ST_CollectionExtract(ST_Intersection(w.geom, p.geom), 3)::geography) AS m2
    ) o
    WHERE ST_Relate(w.geom, p.geom, '2********') AND o.m2 >= %(overlap_m2)s
    GROUP BY n.parcel_id
),
drawn_roads AS (
    SELECT r.parcel_id, json_agg(ST_AsGeoJSON(ST_Intersection(r.utm, f.frame), 2)::json) AS roads
    FROM roads r JOIN framed f ON f.id = r.parcel_id
    GROUP BY r.parcel_id
)
SELECT f.id, f.code, f.tenure, f.land_use, f.recovered_on, f.srid,
       c.code AS commune_code, c.name AS commune_name,
       ST_Area(f.geom::geography) AS area_m2, ST_Perimeter(f.geom::geography) AS perimeter_m,
       ST_AsGeoJSON(f.utm, 3)::json AS shape,
       ARRAY[ST_XMin(f.frame), ST_YMin(f.frame), ST_XMax(f.frame), ST_YMax(f.frame)] AS frame,
       dp.neighbours, dr.roads, ST_AsGeoJSON(l.utm, 2)::json AS commune_line, sd.sides,
       ov.overlapping
FROM framed f
LEFT JOIN communes c ON c.id = f.commune_id
LEFT JOIN drawn_parcels dp ON dp.parcel_id = f.id
LEFT JOIN drawn_roads dr ON dr.parcel_id = f.id
LEFT JOIN limits l ON l.parcel_id = f.id
LEFT JOIN sides sd ON sd.parcel_id = f.id
LEFT JOIN overlapping ov ON ov.parcel_id = f.id
ORDER BY f.code, f.id
