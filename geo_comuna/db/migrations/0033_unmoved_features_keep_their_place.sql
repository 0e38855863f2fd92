-- An editor may change what a feature says without moving it, wherever it lies. Under 0014 a
-- feature an admin had placed outside its commune's territory (a parcel 747 m beyond the
-- boundary, imported from the planner's own file) could not be changed by the commune's
-- editors at all: a PATCH of its land use, or an upsert of the commune's unchanged export
-- that changed another of its fields, was refused as "outside the territory" (found from
-- outside). The place rule is about where an editor puts a feature: a row whose commune and
-- shape are the ones stored passes it (geo_comuna_unmoved reads the stored row as it was
-- before the statement). It is only read for a row the containment test refused, so imports
-- inside the territory pay nothing.
-- functions: place_refusals
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
                      OR CASE WHEN ST_Covers((SELECT r.geom FROM commune_reach r
                                              WHERE r.commune_id = %2$I.commune_id), geom)
                              THEN true
                              ELSE geo_comuna_unmoved(%2$L, id, commune_id, geom)
                         END)%3$s)
                OR geo_comuna_refuse(%2$L, %4$s))
        $p$, t || '_write', t, extra,
            CASE t WHEN 'production_units'
                THEN 'coalesce(geo_comuna_place_refusal(commune_id, geom), '
                     'geo_comuna_parcel_refusal(parcel_id))'
                ELSE 'geo_comuna_place_refusal(commune_id, geom)' END);
    END LOOP;
END $$;
