-- Who the current request is, for row-level security (migrations 0006 and 0014): writes run
-- as geo_comuna_writer with the request's user, role and communes in transaction-local
-- settings (set_config(..., true)).

-- May the current request write a row of this commune? Admins everywhere; editors in their
-- communes; nobody else. Settings are transaction-local (set_config(..., true)).
CREATE OR REPLACE FUNCTION geo_comuna_may_edit(p_commune integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT current_setting('geo_comuna.role', true) = 'admin'
        OR (current_setting('geo_comuna.role', true) = 'editor'
            AND p_commune = ANY (string_to_array(
                    nullif(current_setting('geo_comuna.communes', true), ''), ',')::integer[]))
$$;

-- Is the current request an admin's? Admins pass every place rule.
CREATE OR REPLACE FUNCTION geo_comuna_is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('geo_comuna.role', true) = 'admin', false)
$$;

-- Refuse with a reason: insufficient_privilege like any row-level security refusal. NULL
-- (no reason found) returns false, so the policy's own refusal stands.
CREATE OR REPLACE FUNCTION geo_comuna_refuse(p_layer text, p_reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    feature text := nullif(current_setting('geo_comuna.feature', true), '');
BEGIN
    IF p_reason IS NULL THEN
        RETURN false;
    ELSIF feature IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = p_reason,
            TABLE = p_layer, CONSTRAINT = 'geo_comuna_scope';
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = p_reason,
            DETAIL = 'feature ' || feature, TABLE = p_layer, CONSTRAINT = 'geo_comuna_scope';
    END IF;
END $$;
