-- Tenure transitions of one commune's parcels (%(commune)s) per calendar year (in the
-- session's time zone): how many parcel_history rows went INTO each status, and the parcels'
-- current area (m², geodesic). A parcel's first row (from_status NULL) counts as entering its
-- first status. Only parcels that still exist can be placed in a commune; deletions
-- (to_status NULL) are left out.
SELECT extract(year FROM h.changed_at)::integer AS year, h.to_status AS status,
       count(*)::integer AS transitions, sum(ST_Area(p.geom::geography)) AS area_m2
FROM parcel_history h
JOIN parcels p ON p.id = h.parcel_id
WHERE p.commune_id = %(commune)s AND h.to_status IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2
