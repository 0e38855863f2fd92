-- What a package's new rows became is kept per commune: rows were found by the package's id
-- alone, which anyone can work out from a downloaded package, so an editor of one commune
-- syncing a file that carried another commune's package id recorded its own features under
-- it, and that commune's next sync took its new rows for them (found from outside). A sync
-- now reads and writes the rows of the commune it syncs only.
ALTER TABLE package_rows ADD COLUMN commune_id integer;
-- Rows recorded before: the commune of the feature they name (an exchange's: the commune it
-- comes from, whose editors record it). A row whose feature is gone names nothing to find.
DO $$
DECLARE
    l text;
    col text;
BEGIN
    FOR l IN SELECT DISTINCT layer FROM package_rows LOOP
        SELECT c.column_name INTO col FROM information_schema.columns c
        WHERE c.table_schema = 'public' AND c.table_name = l
          AND c.column_name IN ('commune_id', 'from_commune_id')
        ORDER BY c.column_name LIMIT 1;
        IF col IS NOT NULL THEN
            EXECUTE format('UPDATE package_rows r SET commune_id = f.%I FROM %I f '
                           'WHERE r.layer = %L AND f.id = r.feature_id', col, l, l);
        END IF;
    END LOOP;
END $$;
DELETE FROM package_rows WHERE commune_id IS NULL;
ALTER TABLE package_rows
    ALTER COLUMN commune_id SET NOT NULL,
    DROP CONSTRAINT package_rows_pkey,
    ADD PRIMARY KEY (commune_id, package, layer, fid);
