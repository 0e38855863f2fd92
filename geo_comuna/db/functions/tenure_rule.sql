-- A parcel's tenure follows from its rights (migration 0021; README "Tenure from rights").
--
-- The rule, on a day D (today when a right changes). A parcel's rights that count are those
-- not revoked, started by D (or undated) and not ended before D; restrictions (protected
-- zone, easement) limit a holding but hold nothing, so they never count. Then, in order:
--   1. no right counts: the rule is silent, and the tenure is the one the rights found: as
--      surveyed (abandoned, occupied, ...) or as a person last set it. A tenure the rule set
--      goes back to it when its last counting right is revoked, deleted or changed so that
--      it no longer counts (tenure_before_rights);
--      parcels nobody has claimed are the land to recover;
--   2. the parties' shares add up to more than the whole parcel (each party counted once,
--      with its largest share): disputed (two families each claiming all of it; a commune's
--      collective use of all of it and a family's claim to part of it);
--   3. at least one right is granted: regularized;
--   4. otherwise (claims, some under review): regularizing.
-- tests/test_tenure_records.py works each case out by hand.

CREATE OR REPLACE FUNCTION parcel_tenure_from_rights(p_parcel integer,
                                                     p_on date DEFAULT current_date)
RETURNS text LANGUAGE sql STABLE AS $$
    WITH counted AS (
        SELECT party_id, status, share
        FROM rights
        WHERE parcel_id = p_parcel
          AND kind NOT IN ('protected_zone', 'easement')
          AND status <> 'revoked'
          AND (starts_on IS NULL OR starts_on <= p_on)
          AND (ends_on IS NULL OR ends_on >= p_on)),
    parties AS (SELECT party_id, max(share) AS share FROM counted GROUP BY party_id)
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM counted) THEN NULL
        WHEN (SELECT sum(share) FROM parties) > 1 THEN 'disputed'
        WHEN EXISTS (SELECT FROM counted WHERE status = 'granted') THEN 'regularized'
        ELSE 'regularizing'
    END
$$;

-- The tenure the rule replaced on a parcel: walking its history back from the last change,
-- through the changes the rule made (by_rule), what the first of them changed from. NULL when
-- the last change was not the rule's (a person's word stands) or there is none.
CREATE OR REPLACE FUNCTION tenure_before_rights(p_parcel integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    change record;
    before text;
BEGIN
    FOR change IN
        SELECT from_status, by_rule FROM parcel_history
        WHERE parcel_id = p_parcel AND to_status IS NOT NULL
        ORDER BY id DESC
    LOOP
        EXIT WHEN NOT change.by_rule;
        before := change.from_status;
    END LOOP;
    RETURN before;
END $$;

-- Apply the rule to one parcel: its tenure changes (so parcel_history and audit_log record
-- it, by their own triggers, the history marking it as the rule's and naming the right,
-- p_right) only when the rule says something else, or, silent now, when it had set the
-- tenure: then it goes back to the one the rights replaced (rule_back); p_event says what
-- was done to the right (recorded, changed, deleted; started, ended: the calendar's), p_on
-- the day the rule is worked out for. The writer's note, if any, is the change's note.
CREATE OR REPLACE FUNCTION tenure_follow_rights(p_parcel integer, p_right integer,
                                                p_event text DEFAULT NULL,
                                                p_on date DEFAULT current_date)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    wanted text;
    how text := 'on';
BEGIN
    -- One change of a parcel's rights at a time applies the rule: two rights deleted at once
    -- each saw the other still there, and the parcel kept a tenure no right held. Waiting
    -- here, the second reads the rights as the first left them (read committed: a statement
    -- after the wait sees what committed meanwhile). NO KEY UPDATE: a right being added holds
    -- its parcel KEY SHARE (the foreign key), which this lock lets be.
    PERFORM 1 FROM parcels WHERE id = p_parcel FOR NO KEY UPDATE;
    wanted := parcel_tenure_from_rights(p_parcel, p_on);
    IF wanted IS NULL THEN
        wanted := tenure_before_rights(p_parcel);
        IF wanted IS NULL THEN
            RETURN;
        END IF;
        how := 'back';
    END IF;
    -- no UPDATE when nothing changes: even one of no row bumps the layer's version (its
    -- statement trigger), and every package and page kept of it was made again for nothing
    IF NOT EXISTS (SELECT FROM parcels WHERE id = p_parcel AND tenure IS DISTINCT FROM wanted) THEN
        RETURN;
    END IF;
    PERFORM set_config('geo_comuna.by_rule', how, true);
    PERFORM set_config('geo_comuna.rule_right', p_right::text, true);
    PERFORM set_config('geo_comuna.rule_event', coalesce(p_event, ''), true);
    UPDATE parcels SET tenure = wanted WHERE id = p_parcel AND tenure IS DISTINCT FROM wanted;
    PERFORM set_config('geo_comuna.by_rule', '', true);
    PERFORM set_config('geo_comuna.rule_right', '', true);
    PERFORM set_config('geo_comuna.rule_event', '', true);
END $$;

-- Trigger rights_tenure: a right written, changed or deleted re-applies the rule to its
-- parcel, and to the parcel it left when it moved.
CREATE OR REPLACE FUNCTION apply_tenure_rule() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM tenure_follow_rights(OLD.parcel_id, OLD.id,
                                     CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'changed' END);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM tenure_follow_rights(NEW.parcel_id, NEW.id,
                                     CASE TG_OP WHEN 'INSERT' THEN 'recorded' ELSE 'changed' END);
    END IF;
    RETURN NULL;
END $$;

-- The rule on the calendar. A right counts from its start date through its end date, but the
-- rule ran only when a right was written: a lease that ended left its parcel regularized, and
-- a title starting tomorrow left the parcel occupied once it had started (found from
-- outside). This applies the rule to each parcel one of whose rights started, or stopped
-- counting (the day after its end date), between the last run (tenure_calendar, migration
-- 0031) and p_on, and after the parcel's tenure last changed (a change since has seen it);
-- the change names that right, its event 'started' or 'ended'. One run at a time (the
-- server's workers each run it: api/app.py); returns how many parcels it changed.
CREATE OR REPLACE FUNCTION tenure_follow_calendar(p_on date DEFAULT current_date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    since date;
    due record;
    before text;
    changed integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('tenure_follow_calendar')) THEN
        RETURN 0;  -- another run is at it
    END IF;
    SELECT applied_through INTO since FROM tenure_calendar FOR UPDATE;
    IF since >= p_on THEN
        RETURN 0;
    END IF;
    PERFORM set_config('geo_comuna.reason', 'tenure rule: a right started or ended', true);
    FOR due IN
        SELECT DISTINCT ON (b.parcel_id) b.parcel_id, b.right_id, b.event
        FROM (SELECT parcel_id, id AS right_id, starts_on AS day, 'started' AS event
              FROM rights WHERE starts_on > since AND starts_on <= p_on
              UNION ALL
              SELECT parcel_id, id, ends_on + 1, 'ended'
              FROM rights WHERE ends_on + 1 > since AND ends_on + 1 <= p_on) b
        WHERE b.day > coalesce((SELECT max(h.changed_at)::date FROM parcel_history h
                                WHERE h.parcel_id = b.parcel_id AND h.to_status IS NOT NULL),
                               '-infinity'::date)
        ORDER BY b.parcel_id, b.day DESC, b.right_id
    LOOP
        SELECT tenure INTO before FROM parcels WHERE id = due.parcel_id;
        PERFORM tenure_follow_rights(due.parcel_id, due.right_id, due.event, p_on);
        IF (SELECT tenure FROM parcels WHERE id = due.parcel_id) IS DISTINCT FROM before THEN
            changed := changed + 1;
        END IF;
    END LOOP;
    PERFORM set_config('geo_comuna.reason', '', true);
    UPDATE tenure_calendar SET applied_through = p_on;
    RETURN changed;
END $$;
