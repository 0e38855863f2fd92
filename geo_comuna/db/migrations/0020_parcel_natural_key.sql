-- A parcel's code names it within its commune (layers/territory.py, natural_key): imports
-- refuse a code already stored and --upsert updates by it (io/importer.py). The index makes
-- both the rule and that look-up PostgreSQL's. Parcels without a code, or without a commune,
-- have no key and may repeat. A store that already holds repeated codes is refused with the
-- codes to fix rather than having them renamed behind its back.
DO $$
DECLARE
    repeated text;
BEGIN
    SELECT string_agg(format('%s in commune %s (parcels %s)', code, commune_id, ids), '; ')
      INTO repeated
      FROM (SELECT code, commune_id, string_agg(id::text, ', ' ORDER BY id) AS ids
              FROM parcels
             WHERE code IS NOT NULL AND commune_id IS NOT NULL
             GROUP BY code, commune_id
            HAVING count(*) > 1
             ORDER BY commune_id, code
             LIMIT 20) d;
    IF repeated IS NOT NULL THEN
        RAISE EXCEPTION 'parcel codes repeat within a commune: %', repeated
            USING HINT = 'give each parcel its own code (or none), then migrate again';
    END IF;
END $$;

-- code first: the commune's own index (parcels_commune_idx) stays the one for ?commune=
CREATE UNIQUE INDEX parcels_natural_key ON parcels (code, commune_id);
