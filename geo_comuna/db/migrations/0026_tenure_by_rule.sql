-- A parcel's tenure set by its rights goes back to the one they replaced when no right counts
-- any more (functions/tenure_rule.sql): a title revoked or deleted left the parcel
-- "regularized". The history marks the changes the rule made, so that what it replaced, the
-- tenure as surveyed or as a person last set it, can be found again. Rows of the rule written
-- before carry its note.
ALTER TABLE parcel_history ADD COLUMN by_rule boolean NOT NULL DEFAULT false;
UPDATE parcel_history SET by_rule = true
WHERE note ~ '^sigue sus derechos \(derecho \d+\) / follows its rights \(right \d+\)$';
