-- Are two shapes one feature's shape? The same parts, rings and vertices in the same
-- structure, whatever the start and direction of each ring or line, each vertex within
-- `tolerance` (degrees) of its twin: shapely's equals_exact of both normalized, as the
-- field package's sync compares shapes (maps/sync.py). Another program's copy of a stored
-- shape is such a shape: a GeoJSON export turns rings counter-clockwise, a Shapefile
-- clockwise, and a round trip through a projected CRS moves vertices by ~1e-12 degrees.
-- The upsert of an import (io/bulk.py) leaves such a feature as it is.
CREATE OR REPLACE FUNCTION geo_comuna_same_shape(a geometry, b geometry, tolerance float8)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN a IS NULL OR b IS NULL THEN a IS NULL AND b IS NULL
        WHEN a = b THEN true  -- the same coordinates in the same order: most of them
        WHEN ST_SRID(a) <> ST_SRID(b) OR GeometryType(a) <> GeometryType(b)
             OR ST_NPoints(a) <> ST_NPoints(b) THEN false
        ELSE (SELECT count(*) = ST_NPoints(a)
                     AND coalesce(bool_and(abs(ST_X(p.geom) - ST_X(q.geom)) <= tolerance
                                           AND abs(ST_Y(p.geom) - ST_Y(q.geom)) <= tolerance),
                                  true)
              FROM ST_DumpPoints(ST_Normalize(a)) p
              JOIN ST_DumpPoints(ST_Normalize(b)) q ON q.path = p.path)
    END
$$;
