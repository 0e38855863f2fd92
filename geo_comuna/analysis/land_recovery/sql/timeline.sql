-- Tenure transitions of one commune's parcels (%(commune)s) per calendar year (in the
-- session's time zone): how many parcels went INTO each status, and their current area (m²,
-- geodesic). A parcel's first history entry (from_status NULL) counts as entering its first
-- status. Only parcels that still exist can be placed in a commune; deletions (to_status NULL)
-- are left out. The history is read one row per parcel and change through
-- parcel_tenure_history() (db/functions/tenure_history.sql), given the commune's parcels.
WITH commune_parcels AS (
    SELECT id, geom FROM parcels WHERE commune_id = %(commune)s
), entered AS (
    SELECT h.changed_at, h.to_status, p.geom
    FROM parcel_tenure_history(ARRAY(SELECT id FROM commune_parcels)) h
    JOIN commune_parcels p ON p.id = h.parcel_id
    WHERE h.to_status IS NOT NULL
)
SELECT extract(year FROM changed_at)::integer AS year, to_status AS status,
       count(*)::integer AS transitions, sum(ST_Area(geom::geography)) AS area_m2
FROM entered
GROUP BY 1, 2
ORDER BY 1, 2
