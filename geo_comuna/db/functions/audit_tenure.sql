-- The tenure records' bookkeeping (migration 0021): the audit trail, one row per written
-- party, right or document (a few at a time, unlike layers' bulk imports: row triggers), and
-- the commune a document belongs to.

-- audit_log rows hold the personal data written (names, ID numbers): /audit is for admins.
CREATE OR REPLACE FUNCTION audit_tenure() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    uid integer := nullif(current_setting('geo_comuna.user_id', true), '')::int;
    uname text := nullif(current_setting('geo_comuna.user_name', true), '');
    why text := nullif(current_setting('geo_comuna.reason', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, after, reason)
        VALUES (uid, uname, TG_TABLE_NAME, NEW.id, 'insert', to_jsonb(NEW), why);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, before, after,
                               reason)
        VALUES (uid, uname, TG_TABLE_NAME, NEW.id, 'update', to_jsonb(OLD), to_jsonb(NEW), why);
    ELSE
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, before, reason)
        VALUES (uid, uname, TG_TABLE_NAME, OLD.id, 'delete', to_jsonb(OLD), why);
    END IF;
    RETURN NULL;
END $$;

-- Trigger documents_place: a document belongs to the commune of what it is attached to (a
-- party's, a right's parcel's, a parcel's), which decides who may read and write it.
CREATE OR REPLACE FUNCTION document_place() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.party_id IS NOT NULL THEN
        NEW.commune_id := (SELECT commune_id FROM parties WHERE id = NEW.party_id);
    ELSIF NEW.right_id IS NOT NULL THEN
        NEW.commune_id := (SELECT p.commune_id FROM rights r JOIN parcels p ON p.id = r.parcel_id
                           WHERE r.id = NEW.right_id);
    ELSE
        NEW.commune_id := (SELECT commune_id FROM parcels WHERE id = NEW.parcel_id);
    END IF;
    RETURN NEW;
END $$;
