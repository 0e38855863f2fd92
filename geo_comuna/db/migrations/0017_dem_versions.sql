-- DEMs get a layer version like every layer (migration 0001), so that answers read from a
-- commune's DEM (terrain, hillshade, analyses with elevations) can be cached per version and
-- are recomputed after a DEM is added or replaced.
-- functions: bump_layer_version

CREATE TRIGGER dems_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dems
    FOR EACH STATEMENT EXECUTE FUNCTION bump_layer_version();
INSERT INTO layer_versions (layer) VALUES ('dems') ON CONFLICT (layer) DO NOTHING;
-- like every trigger of the schema, it fires under session_replication_role = replica too
ALTER TABLE dems ENABLE ALWAYS TRIGGER dems_version;
