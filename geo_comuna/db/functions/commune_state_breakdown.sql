-- For each commune (all of them when p_communes is NULL) and each state it touches: the
-- commune's area inside the state (ha, geodesic on the WGS 84 spheroid), its share of the
-- commune (%), and the commune's parcels, dwellings and residents counted in the state, as
-- commune_state_placement() places them. A row with a NULL state holds what lies in no state
-- polygon (open water, generalised coast). A row appears only when non-empty: over 1 m² (or
-- half of a commune smaller than 2 m²), or holding a parcel or dwelling; a commune that only
-- shares a border with a state meets it in slivers of rounding (found from outside: one of
-- 0.02 m² made a commune of Lara "cross a state line" into Portuguesa and count among its
-- communes). Read by features/breakdown.py.
CREATE OR REPLACE FUNCTION commune_state_breakdown(p_communes integer[] DEFAULT NULL)
RETURNS TABLE (commune_id integer, state_id integer, code text, name text,
               area_ha double precision, share_pct double precision,
               parcels bigint, dwellings bigint, residents bigint)
LANGUAGE sql STABLE AS $$
SELECT pl.commune_id, pl.state_id, s.code, s.name,
       round((pl.area_m2 / 10000)::numeric, 4)::double precision,
       -- at most 100: a commune's area and its part in a state are computed apart, and
       -- their rounding made a share of 100.001 %
       round(least(100, 100 * pl.area_m2 / nullif(pl.commune_m2, 0))::numeric, 3)::double precision,
       cardinality(pl.parcel_ids)::bigint, pl.dwellings, pl.residents
FROM commune_state_placement(p_communes) pl
LEFT JOIN states s ON s.id = pl.state_id
WHERE pl.area_m2 > least(1, pl.commune_m2 / 2) OR cardinality(pl.parcel_ids) > 0
   OR pl.dwellings > 0
$$;
