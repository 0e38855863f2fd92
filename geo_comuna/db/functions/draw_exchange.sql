-- An exchange written without a line is drawn between points inside the two communes
-- (trigger exchanges_draw, migration 0001).
CREATE OR REPLACE FUNCTION draw_exchange() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.geom IS NULL THEN
        NEW.geom := ST_MakeLine(
            (SELECT ST_PointOnSurface(geom) FROM communes WHERE id = NEW.from_commune_id),
            (SELECT ST_PointOnSurface(geom) FROM communes WHERE id = NEW.to_commune_id));
    END IF;
    RETURN NEW;
END $$;
