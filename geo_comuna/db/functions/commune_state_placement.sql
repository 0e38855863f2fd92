-- Where each commune lies in the states, and in which state each of its parcels and dwellings
-- counts: the one placement rule, read by commune_state_breakdown() (the national view, the
-- API's /states/breakdown) and by the land-recovery analysis
-- (analysis/land_recovery/sql/breakdown.sql), so that both always count a parcel in the
-- same state.
--
-- One row per commune (all of them when p_communes is NULL) and state it touches, plus a row
-- with a NULL state for what lies in no state polygon (open water, generalised coast):
-- area_m2 (the commune's area inside the state, geodesic on the WGS 84 spheroid),
-- commune_m2 (the commune's whole area), parcel_ids (the commune's parcels counted in the
-- state), dwellings and residents (counted there). Every parcel and dwelling of the communes
-- is counted in exactly one row.
--
-- The rule: a feature counts in the state whose pieces (state_parts) hold its point (a
-- parcel's ST_PointOnSurface, a dwelling itself); a point on a line between pieces of two
-- states counts in the state with the smaller id; a point in no state counts in the NULL row.
-- A commune wholly inside one state (nothing elsewhere, within 1 m²: one that only shares a
-- border with another state meets it in slivers of rounding) has all its features
-- counted there by commune_id, without a point-in-state test per feature (migration 0007:
-- that test cost ~85 % of the national view's time for 3,600 communes and 200,000 parcels).
-- The parcels of the other communes are tested against the few state parts their commune
-- touches, part by part, so PostGIS keeps each part prepared across all of them (migration
-- 0013: 0.18 s against 0.82 s for the 43,000 such parcels of the national bench); a point in
-- none of those parts (a parcel reaching outside its commune) is looked up among all parts.
CREATE OR REPLACE FUNCTION commune_state_placement(p_communes integer[] DEFAULT NULL)
RETURNS TABLE (commune_id integer, state_id integer, area_m2 double precision,
               commune_m2 double precision, parcel_ids integer[], dwellings bigint,
               residents bigint)
LANGUAGE sql STABLE AS $$
WITH c AS (
    SELECT id, geom, ST_Area(geom::geography) AS area_m2
    FROM communes WHERE p_communes IS NULL OR id = ANY (p_communes)
), touching AS MATERIALIZED (  -- each commune with each state part it touches
    SELECT c.id AS commune_id, sp.state_id, sp.geom,
           ST_Area((CASE WHEN ST_CoveredBy(c.geom, sp.geom) THEN c.geom
                         WHEN ST_CoveredBy(sp.geom, c.geom) THEN sp.geom
                         ELSE ST_Intersection(c.geom, sp.geom) END)::geography) AS area_m2
    FROM c JOIN state_parts sp ON ST_Intersects(c.geom, sp.geom)
), inside AS (
    SELECT commune_id, state_id, sum(area_m2) AS area_m2 FROM touching GROUP BY 1, 2
), areas AS (
    SELECT commune_id, state_id, area_m2 FROM inside
    UNION ALL
    SELECT c.id, NULL, c.area_m2 - coalesce(sum(i.area_m2), 0)
    FROM c LEFT JOIN inside i ON i.commune_id = c.id
    GROUP BY c.id, c.area_m2
), single AS (  -- communes wholly inside one state (nothing left outside, within 1 m²)
    SELECT a.commune_id, min(a.state_id) AS state_id
    FROM areas a
    GROUP BY a.commune_id
    HAVING count(*) FILTER (WHERE a.state_id IS NOT NULL AND a.area_m2 > 1) = 1
       AND coalesce(sum(a.area_m2) FILTER (WHERE a.state_id IS NULL), 0) <= 1
), spread AS (  -- the other communes: their features are placed one by one
    SELECT c.id FROM c LEFT JOIN single s ON s.commune_id = c.id WHERE s.commune_id IS NULL
), parcel_points AS MATERIALIZED (  -- a point on each of their parcels, gathered per commune
    SELECT p.commune_id, array_agg(p.id) AS ids, array_agg(ST_PointOnSurface(p.geom)) AS points
    FROM spread JOIN parcels p ON p.commune_id = spread.id
    GROUP BY p.commune_id
), points_in_parts AS (  -- part by part: PostGIS keeps a part prepared across its parcels
    SELECT DISTINCT ON (u.id) u.id, t.state_id
    FROM touching t JOIN parcel_points pp USING (commune_id)
    CROSS JOIN LATERAL unnest(pp.ids, pp.points) AS u(id, point)
    WHERE ST_Intersects(t.geom, u.point)
    ORDER BY u.id, t.state_id
), placed_parcels AS (  -- a point outside every part its commune touches: any state part
    SELECT pp.commune_id, u.id,
           coalesce(pip.state_id,
                    (SELECT sp.state_id FROM state_parts sp
                     WHERE ST_Intersects(sp.geom, u.point) ORDER BY sp.state_id LIMIT 1))
               AS state_id
    FROM parcel_points pp CROSS JOIN LATERAL unnest(pp.ids, pp.points) AS u(id, point)
    LEFT JOIN points_in_parts pip ON pip.id = u.id
), parcel_states AS (
    SELECT commune_id, state_id, array_agg(id) AS ids FROM placed_parcels GROUP BY 1, 2
    UNION ALL
    SELECT p.commune_id, s.state_id, array_agg(p.id)
    FROM single s JOIN parcels p ON p.commune_id = s.commune_id
    GROUP BY 1, 2
), dwelling_counts AS (
    SELECT d.commune_id,
           coalesce(s.state_id,
                    (SELECT sp.state_id FROM state_parts sp
                     WHERE ST_Intersects(sp.geom, d.geom) ORDER BY sp.state_id LIMIT 1))
               AS state_id,
           count(*) AS n, sum(d.residents) AS residents
    -- every dwelling, or those of the communes asked for, found by their key: as a join of
    -- all dwellings to the communes, a call for one commune read every dwelling's key, and a
    -- page of 1,000 communes with 100,000 dwellings in one of them took 7 s instead of 0.6 s
    FROM (SELECT * FROM dwellings WHERE p_communes IS NULL
          UNION ALL
          SELECT * FROM dwellings WHERE commune_id = ANY (p_communes)) d
    JOIN c ON c.id = d.commune_id
    LEFT JOIN single s ON s.commune_id = d.commune_id
    GROUP BY 1, 2
)
SELECT coalesce(a.commune_id, ps.commune_id, dc.commune_id),
       coalesce(a.state_id, ps.state_id, dc.state_id),
       coalesce(a.area_m2, 0), c.area_m2, coalesce(ps.ids, '{}'),
       coalesce(dc.n, 0), coalesce(dc.residents, 0)
FROM areas a
FULL JOIN parcel_states ps
       ON ps.commune_id = a.commune_id AND ps.state_id IS NOT DISTINCT FROM a.state_id
FULL JOIN dwelling_counts dc
       ON dc.commune_id = coalesce(a.commune_id, ps.commune_id)
      AND dc.state_id IS NOT DISTINCT FROM coalesce(a.state_id, ps.state_id)
JOIN c ON c.id = coalesce(a.commune_id, ps.commune_id, dc.commune_id)
$$;
