-- The tenure history (parcel_history, migrations 0001, 0008, 0011): written by triggers, so
-- that no write path can forget it, and read through parcel_tenure_history() only.
--
-- Two kinds of row are stored. A tenure change (UPDATE) and a deletion are one row per parcel
-- with parcel_id, as are rows written before migration 0011 and rows inserted explicitly (the
-- sample's dated history, io/sample.py). The first tenures an INSERT statement wrote are ONE
-- row per distinct tenure naming its parcels (parcel_ids, an int4multirange, with their count
-- in parcels): one row per parcel cost ~1.0 s of server time in a 200,000-parcel import
-- (an identity nextval and two index entries each; migration 0011 measured 0.23-0.31 s for the
-- statement rows), and that import must stay no slower than ogr2ogr, which it beat by less
-- than that (bench/README.md). So the one-row-per-parcel shape is made when the history is
-- read, not when it is written: parcel_tenure_history() below is its only reader.

-- A tenure change, one row per parcel (trigger parcels_tenure_change, AFTER UPDATE OF tenure).
-- The note is the writer's (geo_comuna.change_note, set by the API from the request); by_rule
-- marks a change the tenure rule made, rule_right the right whose change made it and
-- rule_back one back to the tenure before the rights, rule_event what was done to the right
-- (geo_comuna.by_rule 'on' or 'back', geo_comuna.rule_right and geo_comuna.rule_event, set
-- by tenure_follow_rights).
CREATE OR REPLACE FUNCTION record_tenure_change() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    how text := coalesce(current_setting('geo_comuna.by_rule', true), '');
BEGIN
    IF TG_OP = 'INSERT' OR NEW.tenure IS DISTINCT FROM OLD.tenure THEN
        INSERT INTO parcel_history (parcel_id, from_status, to_status, note, by_rule,
                                    rule_right, rule_back, rule_event)
        VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.tenure END, NEW.tenure,
                nullif(current_setting('geo_comuna.change_note', true), ''),
                how IN ('on', 'back'),
                CASE WHEN how IN ('on', 'back')
                     THEN nullif(current_setting('geo_comuna.rule_right', true), '')::integer
                END,
                how = 'back',
                CASE WHEN how IN ('on', 'back')
                     THEN nullif(current_setting('geo_comuna.rule_event', true), '')
                END);
    END IF;
    RETURN NULL;
END $$;

-- A deletion, one row per parcel (trigger parcels_deletion_history): to_status NULL.
CREATE OR REPLACE FUNCTION record_parcel_deletion() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO parcel_history (parcel_id, from_status, to_status, note)
    VALUES (OLD.id, OLD.tenure, NULL,
            coalesce(nullif(current_setting('geo_comuna.change_note', true), ''), 'deleted'));
    RETURN NULL;
END $$;

-- The first tenures of an INSERT statement's parcels (trigger parcels_first_tenure, FOR EACH
-- STATEMENT): one row per tenure with the parcels' ids. int4range(id, id + 1) is [id, id]; for
-- the largest integer id + 1 would overflow and fail the insert, so its range is left open
-- above (it holds that one integer only). A statement that writes no parcel groups no row.
CREATE OR REPLACE FUNCTION record_first_tenure() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO parcel_history (from_status, to_status, note, parcel_ids, parcels)
    SELECT NULL, tenure, nullif(current_setting('geo_comuna.change_note', true), ''),
           range_agg(int4range(id, nullif(id, 2147483647) + 1)), count(*)
    FROM new_rows
    GROUP BY tenure;
    RETURN NULL;
END $$;

-- The history of the parcels p_parcels (ids; deleted parcels' too), one row per parcel and
-- change, whichever kind of row stored it: history_id (parcel_history.id, which orders rows
-- of the same instant), parcel_id, from_status (NULL: the first tenure), to_status (NULL:
-- deleted), changed_at, note, and for a change the tenure rule made, rule_right (the right
-- whose change made it), rule_back (back to the tenure before the rights) and rule_event
-- (what was done to that right). Unordered.
--
-- A function rather than a view: a view expanding every statement row cannot be filtered by
-- parcel before it expands them all, while here the wanted ids are known first. A statement
-- row is found by the GiST index on parcel_ids and cut down to the wanted ids (`*`,
-- intersection) before it is expanded: testing `parcel_ids @> id` per parcel instead reads
-- the whole multirange again for every parcel (hundreds of kB, TOASTed, when a 200,000-parcel
-- import mixes tenures). With 200,000 parcels in ten statements of five interleaved tenures,
-- one parcel's history took 1-2 ms here, 460-680 ms through such a view, and 27 ms by the
-- earlier `parcel_id = id OR parcel_ids @> id`; 1,001 parcels' took 5-9 ms here.
CREATE OR REPLACE FUNCTION parcel_tenure_history(p_parcels integer[])
RETURNS TABLE (history_id bigint, parcel_id integer, from_status text, to_status text,
               changed_at timestamptz, note text, by_rule boolean, rule_right integer,
               rule_back boolean, rule_event text)
LANGUAGE sql STABLE AS $$
WITH wanted AS (  -- [id, id]; the largest integer's range is left open above
    SELECT range_agg(int4range(i, nullif(i, 2147483647) + 1)) AS ids
    FROM unnest(p_parcels) AS i
)
SELECT h.id, h.parcel_id, h.from_status, h.to_status, h.changed_at, h.note, h.by_rule,
       h.rule_right, h.rule_back, h.rule_event
FROM parcel_history h
WHERE h.parcel_id = ANY (p_parcels)
UNION ALL
SELECT h.id, i, h.from_status, h.to_status, h.changed_at, h.note, h.by_rule, h.rule_right,
       h.rule_back, h.rule_event
FROM wanted w
JOIN parcel_history h ON h.parcel_ids && w.ids
CROSS JOIN LATERAL unnest(h.parcel_ids * w.ids) AS r
CROSS JOIN LATERAL generate_series(lower(r), coalesce(upper(r) - 1, 2147483647)) AS i
$$;
