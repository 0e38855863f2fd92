-- Parcels of the commune by the status of their rights: one row per status (parcels having
-- at least one right of it), and a row with status NULL counting parcels with any right.
-- Restrictions count as rights here: a protected zone on record is a record.
SELECT r.status, count(DISTINCT r.parcel_id)
FROM rights r JOIN parcels p ON p.id = r.parcel_id
WHERE p.commune_id = %(commune)s
GROUP BY GROUPING SETS ((r.status), ())
ORDER BY array_position(ARRAY['claimed', 'under_review', 'granted', 'revoked'], r.status)
