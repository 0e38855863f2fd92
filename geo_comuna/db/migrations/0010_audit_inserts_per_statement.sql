-- An INSERT statement is recorded as ONE audit_log row: who, when, which layer, how many
-- features and exactly which ids (an int4multirange, e.g. {[1,200001)}). Importing 200,000
-- parcels spent ~2 s in the audit triggers writing one row per feature (its properties as
-- jsonb, a copy of its geometry, two btree index entries). Nothing is lost: an inserted
-- feature's content is the row itself, any later UPDATE records the feature's `before` and any
-- DELETE records it too, so the trail stays complete while a bulk import costs one audit row.
-- UPDATEs and DELETEs stay one row per feature with before and after, as in 0006. DEMs
-- (audit_dems(), 0009) keep one row per raster: they are uploaded one at a time, so that is
-- one row per statement anyway, and it records the raster's description and footprint.
--
-- Rows written before this migration keep feature_id; statement rows set feature_ids and
-- features (the count) instead. audit_log stays append-only: its existing rows are not touched.
-- The functions audit_<layer>() that write them are in db/functions/audit_layers.sql.

ALTER TABLE audit_log
    ALTER COLUMN feature_id DROP NOT NULL,
    ADD COLUMN feature_ids int4multirange,
    ADD COLUMN features integer,
    ADD CONSTRAINT audit_log_one_feature_or_a_statement CHECK (
        (feature_id IS NOT NULL AND feature_ids IS NULL AND features IS NULL)
        OR (feature_id IS NULL AND feature_ids IS NOT NULL AND NOT isempty(feature_ids)
            AND features IS NOT NULL AND features > 0));
-- `?id=` finds a feature's insert inside its statement's ranges (feature_ids @> id)
CREATE INDEX audit_log_feature_ids_idx ON audit_log USING gist (feature_ids)
    WHERE feature_ids IS NOT NULL;

-- Every trigger of the schema fires ALWAYS, also under session_replication_role = replica.
-- The importer, connected as a superuser, COPYs under replica to skip PostgreSQL's per-row
-- foreign-key checks (internal triggers, left as they are: it checks and locks the referenced
-- rows itself, once per distinct id); the audit, layer-version, tenure-history,
-- exchange-drawing and state-parts triggers must still fire. It also means that a superuser in
-- replica mode can no longer skip the audit, nor the append-only rule of audit_log, silently.
-- A trigger added by a later migration must be made ALWAYS too (tests/test_trust.py checks).
DO $$
DECLARE
    trg record;
BEGIN
    FOR trg IN
        SELECT c.relname, t.tgname
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND NOT t.tgisinternal
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', trg.relname, trg.tgname);
    END LOOP;
END $$;
