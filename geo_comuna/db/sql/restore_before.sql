-- Run first in a restore's transaction, before the archive replaces everything: what the live
-- database knows that an older archive may not. Every token revoked here (a user revoked, a
-- token replaced by `users rotate`), each user's token now, and each layer's version. The
-- database may be empty or of any schema the archive is not older than: each table is read
-- only if it is there.

CREATE TEMP TABLE restore_revoked (
    token_hash text PRIMARY KEY,
    revoked_at timestamptz NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE restore_users (
    name       text PRIMARY KEY,
    token_hash text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE restore_versions (
    layer   text PRIMARY KEY,
    version bigint NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE restore_outcome (what text NOT NULL, name text NOT NULL) ON COMMIT DROP;

DO $$
BEGIN
    IF to_regclass('public.users') IS NOT NULL THEN
        INSERT INTO pg_temp.restore_revoked
        SELECT token_hash, revoked_at FROM public.users WHERE revoked_at IS NOT NULL;
        INSERT INTO pg_temp.restore_users (name, token_hash, revoked_at)
        SELECT name, token_hash, revoked_at FROM public.users;
    END IF;
    IF to_regclass('public.revoked_tokens') IS NOT NULL THEN  -- migration 0015
        INSERT INTO pg_temp.restore_revoked
        SELECT token_hash, revoked_at FROM public.revoked_tokens
        ON CONFLICT (token_hash) DO NOTHING;
        UPDATE pg_temp.restore_users r SET expires_at = u.expires_at
        FROM public.users u WHERE u.name = r.name;
    END IF;
    IF to_regclass('public.layer_versions') IS NOT NULL THEN
        INSERT INTO pg_temp.restore_versions SELECT layer, version FROM public.layer_versions;
    END IF;
END $$;
