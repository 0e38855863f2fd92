-- A natural key's text (a state's, a commune's or a parcel's code) is written without its
-- surrounding blanks since this version: 'EM-P007 ' beside 'EM-P007' had passed the parcels'
-- key by a sync, a PATCH and a POST, and ?code=EM-P007 found one of them or none (found from
-- outside). Codes stored before with blanks around them are trimmed here, so that an upsert
-- or a filter by the code finds them, wherever the trimmed code is not one the table (the
-- commune, for parcels) holds already; such a pair is left as it is, for a person to settle
-- (an import's key check names both). Blanks: what Python's str.strip() takes away.
SELECT set_config('geo_comuna.reason', 'migration 0034: codes without surrounding blanks', true);

UPDATE states s SET code = t.code
FROM (SELECT id, regexp_replace(code, '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$', '', 'g') AS code
      FROM states) t
WHERE t.id = s.id AND s.code <> t.code
  AND NOT EXISTS (SELECT FROM states o WHERE o.code = t.code);

UPDATE communes c SET code = t.code
FROM (SELECT id, regexp_replace(code, '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$', '', 'g') AS code
      FROM communes) t
WHERE t.id = c.id AND c.code <> t.code
  AND NOT EXISTS (SELECT FROM communes o WHERE o.code = t.code);

UPDATE parcels p SET code = t.code
FROM (SELECT id, regexp_replace(code, '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$', '', 'g') AS code
      FROM parcels WHERE code IS NOT NULL) t
WHERE t.id = p.id AND p.code <> t.code
  AND NOT EXISTS (
      SELECT FROM parcels o
      WHERE o.commune_id IS NOT DISTINCT FROM p.commune_id AND o.code = t.code
  );
