-- An INSERT statement records the first tenure of the parcels it wrote as ONE parcel_history
-- row per distinct tenure: from_status NULL, to_status the tenure, and which parcels as an
-- int4multirange (parcel_ids, e.g. {[1,200001)}) with their count (parcels), parcel_id NULL.
-- Importing 200,000 parcels spent ~1.0 s of server time in the statement trigger of 0008
-- (EXPLAIN ANALYZE: "Trigger parcels_first_tenure: time=1014 ms"), which still wrote one row
-- per parcel: an identity nextval plus an entry in parcel_history_pkey and one in
-- parcel_history_parcel_idx (~0.35 s per index). Measured with this function, same machine:
-- 0.23 s for 200,000 parcels of one tenure, 0.31 s with five tenures interleaved row by row
-- (0008's: 1.18 s); what remains is reading new_rows and building the ranges. Audit rows of
-- INSERT statements went the same way in 0010. The note is the statement's
-- (geo_comuna.change_note), so it is one per tenure row too.
--
-- Tenure changes (record_tenure_change(), UPDATE) and deletions (record_parcel_deletion())
-- stay one row per parcel with parcel_id. Rows written before this migration, and rows
-- inserted explicitly (the sample's dated history, io/sample.py), keep parcel_id.
--
-- Readers see one shape all the same, one row per parcel and change: they read the history
-- through parcel_tenure_history(parcel ids), which expands a statement row into its parcels
-- (db/functions/tenure_history.sql, with the trigger function). Writing one row per parcel
-- again costs the import the ~0.9 s measured above, more than its lead over ogr2ogr (0.93x,
-- bench/README.md); bench/import_parcels.py, 3 runs each, on 2026-12-03 at load average
-- 5-12: 1.19x ogr2ogr with one row per parcel, 1.11x with these rows. A plain view expanding
-- every statement row could not be filtered by parcel before expanding them all (0.46-0.68 s
-- for one parcel of 200,000); the function finds the rows by parcel_ids' index first.

ALTER TABLE parcel_history
    ALTER COLUMN parcel_id DROP NOT NULL,
    ADD COLUMN parcel_ids int4multirange,
    ADD COLUMN parcels integer,
    -- a statement row is always a first tenure (from_status NULL): readers count it as one
    -- entry into to_status for each of its parcels
    ADD CONSTRAINT parcel_history_one_parcel_or_a_statement CHECK (
        (parcel_id IS NOT NULL AND parcel_ids IS NULL AND parcels IS NULL)
        OR (parcel_id IS NULL AND parcel_ids IS NOT NULL AND NOT isempty(parcel_ids)
            AND parcels IS NOT NULL AND parcels > 0 AND from_status IS NULL));
-- a parcel's history finds its first tenure inside its statement's ranges (parcel_ids @> id)
CREATE INDEX parcel_history_parcel_ids_idx ON parcel_history USING gist (parcel_ids)
    WHERE parcel_ids IS NOT NULL;

-- The trigger parcels_first_tenure (0008) is ENABLE ALWAYS since 0010; said again so that
-- this file alone shows it
ALTER TABLE parcels ENABLE ALWAYS TRIGGER parcels_first_tenure;
