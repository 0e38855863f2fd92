-- Run last in a restore's transaction, once the archive's contents are in (restore_before.sql
-- filled the pg_temp tables). The archive's tables are of a schema at least as new as the
-- live one's, so what the live database had, the restored one has a place for.
--
-- 1. A token rotated since the backup: the user keeps its current token (and its end), the
--    archive's old one stays revoked.
-- 2. Every token revoked since the backup stays revoked (and any other that matches).
-- 3. Users made since the backup are not in it: named, so the restore can say so.
-- 4. Every layer's version goes past both the archive's and the live one: caches keyed by
--    version (counts, tiles) in a running server can never take restored rows for old ones.
-- The last statement prints what was kept, for db/backup.py to report.

DO $$
BEGIN
    IF to_regclass('public.revoked_tokens') IS NOT NULL THEN
        WITH rotated AS (
            UPDATE public.users u
            SET token_hash = l.token_hash, expires_at = l.expires_at
            FROM pg_temp.restore_users l
            WHERE l.name = u.name AND u.revoked_at IS NULL AND l.revoked_at IS NULL
              AND l.token_hash <> u.token_hash
              AND u.token_hash IN (SELECT token_hash FROM pg_temp.restore_revoked)
              AND l.token_hash NOT IN (SELECT token_hash FROM pg_temp.restore_revoked)
            RETURNING u.name)
        INSERT INTO pg_temp.restore_outcome SELECT 'rotations_kept', name FROM rotated;
        INSERT INTO public.revoked_tokens (token_hash, user_name, revoked_at)
        SELECT r.token_hash, coalesce(l.name, ''), r.revoked_at
        FROM pg_temp.restore_revoked r LEFT JOIN pg_temp.restore_users l USING (token_hash)
        WHERE NOT EXISTS (SELECT FROM public.users u WHERE u.token_hash = r.token_hash)
        ON CONFLICT (token_hash) DO NOTHING;
    END IF;
    IF to_regclass('public.users') IS NOT NULL THEN
        WITH revoked AS (
            UPDATE public.users u SET revoked_at = r.revoked_at
            FROM pg_temp.restore_revoked r
            WHERE r.token_hash = u.token_hash AND u.revoked_at IS NULL
            RETURNING u.name)
        INSERT INTO pg_temp.restore_outcome SELECT 'revocations_kept', name FROM revoked;
        INSERT INTO pg_temp.restore_outcome
        SELECT 'users_not_in_backup', l.name FROM pg_temp.restore_users l
        WHERE NOT EXISTS (SELECT FROM public.users u WHERE u.name = l.name);
    END IF;
    IF to_regclass('public.layer_versions') IS NOT NULL THEN
        UPDATE public.layer_versions v
        SET version = greatest(v.version, coalesce(
            (SELECT c.version FROM pg_temp.restore_versions c WHERE c.layer = v.layer), 0)) + 1;
    END IF;
END $$;

SELECT 'geo_comuna-restore ' || coalesce(json_object_agg(what, names), '{}')::text
FROM (SELECT what, json_agg(name ORDER BY name) AS names
      FROM pg_temp.restore_outcome GROUP BY what) o;
