-- A change the tenure rule makes names the right that made it as data, not as a note
-- (functions/tenure_rule.sql): a note follows the parcel's notes' read rule, so a planner
-- reading the public history saw a title granted and revoked as two changes with no cause,
-- and it was written in Spanish and English at once. The history says the cause in the
-- reader's language from rule_right and rule_back; rows written before lose their generated
-- note for them (a note a person gave stays).
ALTER TABLE parcel_history
    ADD COLUMN rule_right integer,
    ADD COLUMN rule_back boolean NOT NULL DEFAULT false;
UPDATE parcel_history
SET rule_right = substring(note FROM '\(right (\d+)\)')::integer,
    rule_back = note LIKE 'ya no cuenta %',
    note = NULL
WHERE by_rule
  AND note ~ ('^(sigue sus derechos \(derecho \d+\) / follows its rights \(right \d+\)'
              '|ya no cuenta ningún derecho \(derecho \d+\): vuelve a la tenencia de antes / '
              'no right counts any more \(right \d+\): back to the tenure before)$');
-- its result gains the cause (CREATE OR REPLACE cannot change a result)
DROP FUNCTION IF EXISTS parcel_tenure_history(integer[]);
