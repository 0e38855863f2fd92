-- Tokens expire, and a rotated token stays revoked.
--
-- users.expires_at: after it the token is refused with 401 "expired" (NULL: never, only when
-- asked for with `users add --expires never`). Tokens made before this migration had no end:
-- they get one year from now, the default lifetime of a new token (GEO_COMUNA_TOKEN_DAYS).
--
-- revoked_tokens: the hash of every token replaced by `geo-comuna users rotate`, with when;
-- a user's current token is revoked in users.revoked_at as before. db/backup.py reads both
-- before a restore, so that a restored backup brings back no token revoked since it was made.

ALTER TABLE users ADD COLUMN expires_at timestamptz;
UPDATE users SET expires_at = now() + interval '365 days' WHERE revoked_at IS NULL;

CREATE TABLE revoked_tokens (
    token_hash  text PRIMARY KEY,  -- sha256 of the token, as users.token_hash
    user_name   text NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
