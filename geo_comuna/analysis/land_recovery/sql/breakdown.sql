-- Land recovery breakdown of one commune's parcels (%(commune)s): parcel counts and areas
-- (m², geodesic on the WGS 84 spheroid) by tenure, land use and year recovered, for the whole
-- commune and per state; and, in the last column of every row (the same JSON array each
-- time), the timeline of tenure transitions, measured with the same areas (timeline below).
--
-- Per state a parcel is COUNTED once, in the state commune_state_placement() counts it in
-- (db/functions/commune_state_placement.sql: the same function places parcels for
-- commune_state_breakdown(), so both always agree), while its AREA is split by the actual
-- intersection with each state's pieces (state_parts), so the states' areas add up to the
-- commune's total. Area in no state polygon (generalised coast) goes to a NULL state.
-- "Recovered" means recovered_on is set.
--
-- A parcel wholly in a state part keeps the area measured once in p: the spheroidal area
-- is the costly step (~30 µs a parcel), and ST_Covers(part, parcel) rather than the same
-- ST_CoveredBy(parcel, part) lets PostGIS keep the part prepared across the parcels (2.5x
-- faster for 20,000 parcels). Each piece is measured before the pieces are grouped: grouped
-- first, the sort carried both shapes of every piece (315 MB on disk for 200,000 parcels).
-- The pieces read the shapes from the table, not from p, which keeps none: p is read
-- several times, and with its shapes it was written to disk and read back (4.9 s -> 2.7 s
-- for 200,000 parcels).
WITH counted AS (
    SELECT u.id, pl.state_id
    FROM commune_state_placement(ARRAY[%(commune)s]::integer[]) pl
    CROSS JOIN LATERAL unnest(pl.parcel_ids) AS u(id)
), p AS (
    SELECT p.id, p.tenure, coalesce(p.land_use, 'unspecified') AS land_use,
           extract(year FROM p.recovered_on)::integer AS year_recovered,
           ST_Area(p.geom::geography) AS area_m2, c.state_id AS counted_in
    FROM parcels p
    LEFT JOIN counted c ON c.id = p.id
    WHERE p.commune_id = %(commune)s
), inside AS (
    SELECT x.id, x.state_id, sum(coalesce(x.area_m2, p.area_m2)) AS area_m2
    FROM (SELECT q.id, sp.state_id,  -- measured here: sorted for the sum, rows keep no shapes
                 CASE WHEN ST_Covers(sp.geom, q.geom) THEN NULL  -- wholly in: p's area
                      ELSE ST_Area(ST_Intersection(q.geom, sp.geom)::geography) END AS area_m2
          FROM parcels q JOIN state_parts sp ON ST_Intersects(q.geom, sp.geom)
          WHERE q.commune_id = %(commune)s
          OFFSET 0) x
    JOIN p ON p.id = x.id
    GROUP BY 1, 2
), pieces AS (
    SELECT id, state_id, area_m2 FROM inside
    UNION ALL
    SELECT p.id, NULL, p.area_m2 - coalesce(sum(i.area_m2), 0)
    FROM p LEFT JOIN inside i ON i.id = p.id
    GROUP BY p.id, p.area_m2
    HAVING p.area_m2 - coalesce(sum(i.area_m2), 0) > 1  -- m², as commune_state_breakdown()
), placed AS (  -- one row per parcel and state where it has area or is counted
    SELECT coalesce(pc.id, c.id) AS id, coalesce(pc.state_id, c.state_id) AS state_id,
           coalesce(pc.area_m2, 0) AS area_m2, (c.id IS NOT NULL)::integer AS counted
    FROM pieces pc
    FULL JOIN (SELECT id, counted_in AS state_id FROM p) c
           ON c.id = pc.id AND coalesce(c.state_id, -1) = coalesce(pc.state_id, -1)
), grouped AS (
    SELECT CASE WHEN GROUPING(p.tenure) = 0 THEN 'tenure'
                WHEN GROUPING(p.land_use) = 0 THEN 'land_use'
                WHEN GROUPING(p.year_recovered) = 0 THEN 'year_recovered'
                ELSE 'all' END AS dimension,
           coalesce(p.tenure, p.land_use, p.year_recovered::text) AS value,
           GROUPING(x.state_id) = 0 AS per_state, x.state_id,
           coalesce(sum(x.counted), 0)::integer AS parcels,
           coalesce(sum(x.area_m2), 0) AS area_m2,
           coalesce(sum(x.counted) FILTER (WHERE p.year_recovered IS NOT NULL), 0)::integer
               AS recovered_parcels,
           coalesce(sum(x.area_m2) FILTER (WHERE p.year_recovered IS NOT NULL), 0)
               AS recovered_m2
    FROM placed x JOIN p ON p.id = x.id
    GROUP BY GROUPING SETS ((), (p.tenure), (p.land_use), (p.year_recovered),
                            (x.state_id), (x.state_id, p.tenure), (x.state_id, p.land_use),
                            (x.state_id, p.year_recovered))
), timeline AS (
    -- Tenure transitions per calendar year (in the session's time zone): how many parcels
    -- went INTO each status, and their current area. A parcel's first history entry
    -- (from_status NULL) counts as entering its first status; deletions (to_status NULL)
    -- are left out: only parcels that still exist can be placed in a commune. The history
    -- comes one row per parcel and change from parcel_tenure_history()
    -- (db/functions/tenure_history.sql). Its own statement measured every parcel's area
    -- again, as costly as the breakdown's (2.5 s for 100 parcels of 50,000 vertices).
    SELECT extract(year FROM h.changed_at)::integer AS year, h.to_status AS status,
           count(*)::integer AS transitions, sum(p.area_m2) AS area_m2
    FROM parcel_tenure_history(ARRAY(SELECT id FROM p)) h
    JOIN p ON p.id = h.parcel_id
    WHERE h.to_status IS NOT NULL
    GROUP BY 1, 2
)
SELECT g.dimension, g.value, g.per_state, s.code, s.name, g.parcels, g.area_m2,
       g.recovered_parcels, g.recovered_m2,
       (SELECT coalesce(json_agg(json_build_array(year, status, transitions, area_m2)
                                 ORDER BY year, status), '[]')
        FROM timeline) AS timeline
FROM grouped g LEFT JOIN states s ON s.id = g.state_id
ORDER BY g.per_state, s.code NULLS LAST, g.dimension, g.value NULLS LAST
