-- Editors are held to places, not only to the commune column. Under 0006 an editor could
-- write a parcel over Caracas as long as it named its own commune, redraw its own commune to
-- 9.7 million ha, give it the code "1" (which ?commune=1 then found before the commune whose
-- id is 1), record an exchange from another commune into its own and link its production
-- units to another commune's parcels. From here on, for an editor (admins are unchanged):
--
-- * a feature must lie within the territory of its commune: covered by the commune's
--   boundary grown by geo_comuna_place_tolerance_m() (5 m), kept per commune in
--   commune_reach so that the check is one prepared containment test per row;
-- * a production unit may link only to a parcel of a commune the editor may edit;
-- * an exchange is recorded by the commune it comes from: its from_commune must be one of
--   the editor's, its line must start inside that commune and end inside the other;
-- * on its own commune's row an editor may change the figures (families, population), kind,
--   founding date and source; code, name, status and boundary are for admins, and only admins
--   add or delete communes;
-- * a commune's code is never made of digits only, so it cannot be read as an id.
--
-- The rules are row-level security policies like 0006's, so they hold for any SQL run as
-- geo_comuna_writer. A refused row raises insufficient_privilege with the reason as its
-- message (constraint name geo_comuna_scope; detail "feature N" when an import labels its
-- rows, see features/write.py copy_in), instead of PostgreSQL's reasonless policy error.
-- The audit trail is untouched: what is refused is never written, so never recorded.

-- Codes that read like ids: refuse to go on rather than rename what people link to.
DO $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(format('%L (id %s)', code, id), ', ' ORDER BY id)
      INTO found
      FROM communes
     WHERE code !~ '[^0-9]';
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'commune codes made only of digits read like ids: %. Give each a code '
            'with a letter before upgrading (as an admin: PATCH /collections/communes/items/ID '
            'with {"properties": {"code": "NEW-CODE"}}; or in SQL: UPDATE communes SET code = '
            '''C-'' || code WHERE code !~ ''[^0-9]''), then start geo-comuna again', found;
    END IF;
END $$;
ALTER TABLE communes ADD CONSTRAINT communes_code_not_an_id CHECK (code ~ '[^0-9]');

-- How far (m) an editor's feature may reach beyond its commune's boundary: a parcel drawn
-- along the boundary strays a little outside it (digitising, reprojection, coordinates
-- rounded to 6 decimals), while a feature in the neighbouring commune lies well beyond.
CREATE FUNCTION geo_comuna_place_tolerance_m() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 5.0::double precision';

-- Each commune's boundary grown by the tolerance (geodesic buffer), kept in step by a trigger.
-- Policies test ST_Covers(reach, feature): the same reach row after row lets PostGIS keep it
-- prepared (ST_CoveredBy, the same test the other way round, would parse it for every row).
CREATE TABLE commune_reach (
    commune_id  integer PRIMARY KEY REFERENCES communes (id) ON DELETE CASCADE ON UPDATE CASCADE,
    geom        geometry(Geometry, 4326) NOT NULL
);

CREATE FUNCTION refresh_commune_reach() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO commune_reach (commune_id, geom)
    VALUES (NEW.id, ST_Buffer(NEW.geom::geography, geo_comuna_place_tolerance_m())::geometry)
    ON CONFLICT (commune_id) DO UPDATE SET geom = excluded.geom;
    RETURN NULL;
END $$;
CREATE TRIGGER communes_reach AFTER INSERT OR UPDATE OF geom ON communes
    FOR EACH ROW EXECUTE FUNCTION refresh_commune_reach();
ALTER TABLE communes ENABLE ALWAYS TRIGGER communes_reach;  -- like every trigger (0010)

INSERT INTO commune_reach (commune_id, geom)
SELECT id, ST_Buffer(geom::geography, geo_comuna_place_tolerance_m())::geometry FROM communes;
GRANT SELECT ON commune_reach TO geo_comuna_writer;

CREATE FUNCTION geo_comuna_is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('geo_comuna.role', true) = 'admin', false)
$$;

CREATE FUNCTION geo_comuna_distance_text(p_m double precision) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_m < 1000 THEN round(p_m) || ' m'
                ELSE round((p_m / 1000)::numeric, 1) || ' km' END
$$;

-- Why the current request may not write a feature of commune p_commune lying at p_geom; NULL
-- when it may. Only run for a row the policy refused, to say why.
CREATE FUNCTION geo_comuna_place_refusal(p_commune integer, p_geom geometry) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN p_commune IS NULL THEN
            'outside the communes you may edit: the feature names no commune'
        WHEN NOT coalesce(geo_comuna_may_edit(p_commune), false) THEN
            format('outside the communes you may edit: commune %s is not one of them',
                   coalesce(c.code, p_commune::text))
        WHEN p_geom IS NULL OR coalesce(ST_Covers(r.geom, p_geom), false) THEN NULL
        ELSE format('outside the territory of commune %s: %s%s (up to %s m beyond its '
                    'boundary is allowed)',
                    c.code,
                    CASE WHEN ST_Intersects(c.geom, p_geom) THEN 'it reaches beyond its boundary'
                         ELSE 'it lies ' || geo_comuna_distance_text(
                                 ST_Distance(c.geom::geography, p_geom::geography)) || ' from it'
                    END,
                    (SELECT ', inside commune ' || string_agg(o.code, ', ' ORDER BY o.code)
                       FROM communes o
                      WHERE o.id <> p_commune AND ST_Intersects(o.geom, p_geom)),
                    geo_comuna_place_tolerance_m())
    END
    FROM (SELECT) AS one
    LEFT JOIN communes c ON c.id = p_commune
    LEFT JOIN commune_reach r ON r.commune_id = p_commune
$$;

CREATE FUNCTION geo_comuna_parcel_refusal(p_parcel integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() OR p.id IS NULL THEN NULL  -- no such parcel: the key says so
        WHEN coalesce(geo_comuna_may_edit(p.commune_id), false) THEN NULL
        ELSE format('outside the communes you may edit: parcel %s belongs to %s', p.id,
                    coalesce('commune ' || c.code, 'no commune'))
    END
    FROM (SELECT) AS one
    LEFT JOIN parcels p ON p.id = p_parcel
    LEFT JOIN communes c ON c.id = p.commune_id
$$;

CREATE FUNCTION geo_comuna_exchange_refusal(p_from integer, p_to integer, p_geom geometry)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN NOT coalesce(geo_comuna_may_edit(p_from), false) THEN
            format('outside the communes you may edit: an exchange is recorded by the commune '
                   'it comes from, and %s is not one of yours', coalesce(f.code, p_from::text))
        WHEN p_geom IS NULL THEN NULL
        WHEN NOT coalesce(ST_Covers(rf.geom, ST_StartPoint(p_geom)), false) THEN
            format('the line must start inside commune %s, where the exchange comes from '
                   '(leave the geometry out to have it drawn)', f.code)
        WHEN NOT coalesce(ST_Covers(rt.geom, ST_EndPoint(p_geom)), false) THEN
            format('the line must end inside commune %s, where the exchange goes '
                   '(leave the geometry out to have it drawn)', t.code)
    END
    FROM (SELECT) AS one
    LEFT JOIN communes f ON f.id = p_from
    LEFT JOIN communes t ON t.id = p_to
    LEFT JOIN commune_reach rf ON rf.commune_id = p_from
    LEFT JOIN commune_reach rt ON rt.commune_id = p_to
$$;

-- A commune's row as it is stored (the statement's snapshot: before the update) against the
-- new one. SECURITY DEFINER: it reads communes from inside communes' own policy.
CREATE FUNCTION geo_comuna_commune_refusal(p_id integer, p_code text, p_name text,
                                           p_status text, p_geom geometry)
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN NOT coalesce(geo_comuna_may_edit(p_id), false) OR o.id IS NULL THEN
            format('outside the communes you may edit: commune %s is not one of them',
                   coalesce(o.code, p_code))
        WHEN changed <> '{}' THEN
            format('only admins change a commune''s %s', array_to_string(changed, ', '))
    END
    FROM (SELECT) AS one
    LEFT JOIN communes o ON o.id = p_id
    CROSS JOIN LATERAL (SELECT array_remove(ARRAY[
        CASE WHEN o.code IS DISTINCT FROM p_code THEN 'code' END,
        CASE WHEN o.name IS DISTINCT FROM p_name THEN 'name' END,
        CASE WHEN o.status IS DISTINCT FROM p_status THEN 'status' END,
        -- = on geometries: the same coordinates in the same order (PostGIS >= 2.4)
        CASE WHEN NOT coalesce(o.geom = p_geom, false) THEN 'boundary' END], NULL) AS changed
    ) AS c
$$;

-- Refuse with a reason: insufficient_privilege like any row-level security refusal. NULL
-- (no reason found) returns false, so the policy's own refusal stands.
CREATE FUNCTION geo_comuna_refuse(p_layer text, p_reason text) RETURNS boolean
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

-- The policies. Each WITH CHECK is a cheap test first (admins pass at once, editors by one
-- ST_Covers against their commune's reach); only a row that fails it asks for the reason.
DO $$
DECLARE
    t text;
    extra text;
BEGIN
    FOREACH t IN ARRAY ARRAY['parcels', 'production_units', 'greenhouses', 'dwellings',
                             'water_mains', 'power_lines', 'paths', 'facilities'] LOOP
        extra := CASE t WHEN 'production_units' THEN
            ' AND (SELECT coalesce(geo_comuna_may_edit(p.commune_id), false) FROM parcels p '
            'WHERE p.id = production_units.parcel_id) IS NOT FALSE' ELSE '' END;
        EXECUTE format('DROP POLICY %I ON %I', t || '_write', t);
        EXECUTE format($p$
            CREATE POLICY %1$I ON %2$I FOR ALL TO geo_comuna_writer
            USING (geo_comuna_may_edit(commune_id))
            WITH CHECK (
                (geo_comuna_may_edit(commune_id)
                 AND (geo_comuna_is_admin()
                      OR ST_Covers((SELECT r.geom FROM commune_reach r
                                    WHERE r.commune_id = %2$I.commune_id), geom))%3$s)
                OR geo_comuna_refuse(%2$L, %4$s))
        $p$, t || '_write', t, extra,
            CASE t WHEN 'production_units'
                THEN 'coalesce(geo_comuna_place_refusal(commune_id, geom), '
                     'geo_comuna_parcel_refusal(parcel_id))'
                ELSE 'geo_comuna_place_refusal(commune_id, geom)' END);
    END LOOP;
END $$;

DROP POLICY exchanges_write ON exchanges;
CREATE POLICY exchanges_write ON exchanges FOR ALL TO geo_comuna_writer
USING (geo_comuna_may_edit(from_commune_id))
WITH CHECK (
    (geo_comuna_may_edit(from_commune_id)
     AND (geo_comuna_is_admin()
          OR (ST_Covers((SELECT r.geom FROM commune_reach r
                         WHERE r.commune_id = exchanges.from_commune_id), ST_StartPoint(geom))
              AND ST_Covers((SELECT r.geom FROM commune_reach r
                             WHERE r.commune_id = exchanges.to_commune_id), ST_EndPoint(geom)))))
    OR geo_comuna_refuse('exchanges',
                         geo_comuna_exchange_refusal(from_commune_id, to_commune_id, geom)));

DROP POLICY communes_write ON communes;
CREATE POLICY communes_insert ON communes FOR INSERT TO geo_comuna_writer
WITH CHECK (geo_comuna_is_admin() OR geo_comuna_refuse('communes', 'only admins add communes'));
CREATE POLICY communes_update ON communes FOR UPDATE TO geo_comuna_writer
USING (geo_comuna_may_edit(id))
WITH CHECK (geo_comuna_commune_refusal(id, code, name, status, geom) IS NULL
            OR geo_comuna_refuse('communes',
                                 geo_comuna_commune_refusal(id, code, name, status, geom)));
-- refused with its reason at the first row an editor would delete (a USING that raises)
CREATE POLICY communes_delete ON communes FOR DELETE TO geo_comuna_writer
USING (geo_comuna_is_admin() OR geo_comuna_refuse('communes', 'only admins delete communes'));
