-- The tenure rule follows the calendar (tenure_follow_calendar, db/functions/tenure_rule.sql):
-- a parcel's history names a right that started or ended on its dates, and the day through
-- which the calendar was last applied is kept. A database that had rights before starts from
-- none applied, so the first run catches up with every date passed since its parcels' last
-- tenure change.
ALTER TABLE parcel_history DROP CONSTRAINT parcel_history_rule_event_check;
ALTER TABLE parcel_history ADD CONSTRAINT parcel_history_rule_event_check
    CHECK (rule_event IN ('recorded', 'changed', 'deleted', 'started', 'ended'));
CREATE TABLE tenure_calendar (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    applied_through date NOT NULL
);
INSERT INTO tenure_calendar (applied_through) VALUES ('-infinity');
-- the rule's follower takes the day it works the rule out for (CREATE OR REPLACE cannot add
-- an argument)
DROP FUNCTION IF EXISTS tenure_follow_rights(integer, integer, text);
