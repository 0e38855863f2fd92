-- A state's pieces in state_parts (trigger states_parts, migration 0001): cut into polygons of
-- at most 128 vertices, point-in-state and commune-by-state tests stay cheap.
CREATE OR REPLACE FUNCTION refresh_state_parts() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM state_parts WHERE state_id = NEW.id;
    INSERT INTO state_parts (state_id, geom)
    SELECT NEW.id, (ST_Dump(ST_Subdivide(NEW.geom, 128))).geom;
    RETURN NULL;
END $$;
