-- Each commune's boundary grown by the tolerance (geodesic buffer) in commune_reach, kept in
-- step by the trigger communes_reach (migration 0014): the editors' place rule is one prepared
-- ST_Covers per row against it.
CREATE OR REPLACE FUNCTION refresh_commune_reach() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO commune_reach (commune_id, geom)
    VALUES (NEW.id, ST_Buffer(NEW.geom::geography, geo_comuna_place_tolerance_m())::geometry)
    ON CONFLICT (commune_id) DO UPDATE SET geom = excluded.geom;
    RETURN NULL;
END $$;
