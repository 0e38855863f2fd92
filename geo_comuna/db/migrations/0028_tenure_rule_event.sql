-- The history says what was done to the right the tenure rule followed (recorded, changed,
-- deleted): "follows its rights (right 16)" read the same for a claim lodged, a title granted
-- and a right deleted (found from outside). Rows written before say no event.
ALTER TABLE parcel_history
    ADD COLUMN rule_event text CHECK (rule_event IN ('recorded', 'changed', 'deleted'));
-- their arguments and result gain the event (CREATE OR REPLACE cannot change them)
DROP FUNCTION IF EXISTS tenure_follow_rights(integer, integer);
DROP FUNCTION IF EXISTS parcel_tenure_history(integer[]);
