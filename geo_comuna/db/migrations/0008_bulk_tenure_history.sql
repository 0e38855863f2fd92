-- A parcel's first tenure is recorded once per INSERT statement (transition table) instead of
-- once per row: importing 200,000 parcels spent ~3 s in the row trigger. Changes of tenure on
-- UPDATE stay row by row (they come one at a time from editors). The functions are in
-- db/functions/tenure_history.sql.
-- functions: tenure_history

DROP TRIGGER parcels_tenure_history ON parcels;

CREATE TRIGGER parcels_tenure_change AFTER UPDATE OF tenure ON parcels
    FOR EACH ROW EXECUTE FUNCTION record_tenure_change();

CREATE TRIGGER parcels_first_tenure AFTER INSERT ON parcels
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_first_tenure();
