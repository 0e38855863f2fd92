-- An INSERT statement's audit row (0010) names its ids as an int4multirange built by
-- range_agg over one range per row: ~0.1-0.2 s of server time for 200,000 parcels, paid after
-- the COPY, while the import waits. The ids of one statement are nearly always contiguous
-- (the identity sequence hands them out in a row), and then the multirange is the single range
-- [min, max]: min, max and count are one cheap pass, and range_agg only runs when they say
-- there are gaps (explicit ids, or another writer's rows interleaved). The ids are a table's
-- primary key, so max - min + 1 = count means no gap. The result is the same multirange either
-- way (tests/test_audit.py covers both and the largest integer id).
--
-- Only that expression of 0010's functions changes; their UPDATE and DELETE branches, owner,
-- SECURITY DEFINER and search_path stay as they are, so the new text is made from the old.
DO $$
DECLARE
    t text;
    fn regprocedure;
    old_def text;
    new_def text;
    per_row constant text := 'range_agg(int4range(id, nullif(id, 2147483647) + 1)), count(*)';
    contiguous constant text :=
        'CASE WHEN max(id)::bigint - min(id) + 1 = count(*)
                                THEN int4multirange(
                                    int4range(min(id), nullif(max(id), 2147483647) + 1))
                                ELSE (SELECT range_agg(int4range(id, nullif(id, 2147483647) + 1))
                                      FROM new_rows)
                           END, count(*)';
BEGIN
    FOREACH t IN ARRAY ARRAY['states', 'communes', 'parcels', 'production_units', 'greenhouses',
                             'exchanges', 'dwellings', 'water_mains', 'power_lines', 'paths',
                             'facilities'] LOOP  -- 0010's tables
        fn := format('%I()', 'audit_' || t)::regprocedure;
        old_def := pg_get_functiondef(fn);
        new_def := replace(old_def, per_row, contiguous);
        IF new_def = old_def THEN
            RAISE EXCEPTION '% does not hold the INSERT branch of migration 0010', fn;
        END IF;
        EXECUTE new_def;
    END LOOP;
END $$;
