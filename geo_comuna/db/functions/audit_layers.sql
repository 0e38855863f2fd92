-- One audit function per layer, audit_<layer>(), behind its three statement triggers
-- <layer>_audit_insert, _update and _delete (migration 0006). The layer's columns are listed
-- (the geometry kept apart) as the table has them when this file is applied, so a column a
-- migration adds is audited from then on.
--
-- An INSERT statement is ONE audit row: who, when, which layer, how many features and exactly
-- which ids as an int4multirange (migration 0010: one row per feature cost ~2 s of a
-- 200,000-parcel import). Nothing is lost: an inserted feature's content is the row itself,
-- and any later UPDATE or DELETE records its `before`. The ids of one statement are nearly
-- always contiguous (the identity sequence hands them out in a row), and then the multirange
-- is the single range [min, max]: min, max and count are one cheap pass, and range_agg only
-- runs when they say there are gaps (explicit ids, another writer's rows interleaved); the
-- ids are a primary key, so max - min + 1 = count means no gap (tests/test_audit.py covers
-- both and the largest integer id). int4range(id, id + 1) is [id, id]; for the largest integer
-- id + 1 would overflow and fail the insert, so its range is left open above (it holds that
-- one integer only). UPDATEs and DELETEs stay one row per feature with before and after.
DO $$
DECLARE
    t text;
    cols text;
BEGIN
    FOREACH t IN ARRAY ARRAY['states', 'communes', 'parcels', 'production_units', 'greenhouses',
                             'exchanges', 'dwellings', 'water_mains', 'power_lines', 'paths',
                             'facilities'] LOOP
        SELECT string_agg(format('%1$L, r.%1$I', column_name), ', ' ORDER BY ordinal_position)
          INTO cols
          FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = t AND column_name <> 'geom';
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = public, pg_temp AS $body$
            DECLARE
                uid integer := nullif(current_setting('geo_comuna.user_id', true), '')::int;
                uname text := nullif(current_setting('geo_comuna.user_name', true), '');
                why text := nullif(current_setting('geo_comuna.reason', true), '');
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO audit_log (user_id, user_name, layer, action, feature_ids,
                                           features, reason)
                    SELECT uid, uname, %2$L, 'insert',
                           CASE WHEN max(id)::bigint - min(id) + 1 = count(*)
                                THEN int4multirange(
                                    int4range(min(id), nullif(max(id), 2147483647) + 1))
                                ELSE (SELECT range_agg(int4range(id, nullif(id, 2147483647) + 1))
                                      FROM new_rows)
                           END, count(*), why
                    FROM new_rows
                    HAVING count(*) > 0;
                ELSIF TG_OP = 'UPDATE' THEN
                    INSERT INTO audit_log (user_id, user_name, layer, feature_id, action,
                                           before, before_geom, after, after_geom, reason)
                    SELECT uid, uname, %2$L, r.id, 'update', b.props, b.geom,
                           jsonb_build_object(%3$s), r.geom, why
                    FROM new_rows r
                    JOIN (SELECT r.id, jsonb_build_object(%3$s) AS props, r.geom
                          FROM old_rows r) b ON b.id = r.id;
                ELSE
                    INSERT INTO audit_log (user_id, user_name, layer, feature_id, action,
                                           before, before_geom, reason)
                    SELECT uid, uname, %2$L, r.id, 'delete', jsonb_build_object(%3$s), r.geom,
                           why
                    FROM old_rows r;
                END IF;
                RETURN NULL;
            END $body$;
        $f$, 'audit_' || t, t, cols);
    END LOOP;
END $$;
