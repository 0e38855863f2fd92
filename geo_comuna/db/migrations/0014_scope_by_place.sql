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
--
-- The functions are in db/functions/ (place_refusals.sql, refresh_commune_reach.sql,
-- editing_rights.sql).
-- functions: editing_rights, place_refusals, refresh_commune_reach

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

-- How far an editor's feature may reach beyond its commune's boundary:
-- geo_comuna_place_tolerance_m() (db/functions/place_refusals.sql).

-- Each commune's boundary grown by the tolerance (geodesic buffer), kept in step by a trigger.
-- Policies test ST_Covers(reach, feature): the same reach row after row lets PostGIS keep it
-- prepared (ST_CoveredBy, the same test the other way round, would parse it for every row).
CREATE TABLE commune_reach (
    commune_id  integer PRIMARY KEY REFERENCES communes (id) ON DELETE CASCADE ON UPDATE CASCADE,
    geom        geometry(Geometry, 4326) NOT NULL
);

CREATE TRIGGER communes_reach AFTER INSERT OR UPDATE OF geom ON communes
    FOR EACH ROW EXECUTE FUNCTION refresh_commune_reach();
ALTER TABLE communes ENABLE ALWAYS TRIGGER communes_reach;  -- like every trigger (0010)

INSERT INTO commune_reach (commune_id, geom)
SELECT id, ST_Buffer(geom::geography, geo_comuna_place_tolerance_m())::geometry FROM communes;
GRANT SELECT ON commune_reach TO geo_comuna_writer;

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
