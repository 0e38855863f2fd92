-- Bumped once per writing statement on a layer (statement trigger <layer>_version, migration
-- 0001); lets the API cache exact counts, tiles and breakdowns per version.
CREATE OR REPLACE FUNCTION bump_layer_version() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO layer_versions AS v (layer, version) VALUES (TG_TABLE_NAME, 1)
    ON CONFLICT (layer) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END $$;
