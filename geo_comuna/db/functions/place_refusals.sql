-- Why a row an editor writes is refused (migration 0014's policies): a feature must lie within
-- its commune's territory (grown by the tolerance), link only to parcels the editor may edit,
-- and an exchange is recorded by the commune it comes from. Each function only runs for a row
-- the policy's cheap test refused, to say why.

-- How far (m) an editor's feature may reach beyond its commune's boundary: a parcel drawn
-- along the boundary strays a little outside it (digitising, reprojection, coordinates
-- rounded to 6 decimals), while a feature in the neighbouring commune lies well beyond.
CREATE OR REPLACE FUNCTION geo_comuna_place_tolerance_m() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 5.0::double precision';

-- A distance for a message: metres below 1 km, else km with one decimal.
CREATE OR REPLACE FUNCTION geo_comuna_distance_text(p_m double precision) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_m < 1000 THEN round(p_m) || ' m'
                ELSE round((p_m / 1000)::numeric, 1) || ' km' END
$$;

-- Why the current request may not write a feature of commune p_commune lying at p_geom; NULL
-- when it may. Only run for a row the policy refused, to say why.
CREATE OR REPLACE FUNCTION geo_comuna_place_refusal(p_commune integer, p_geom geometry)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN p_commune IS NULL THEN
            'outside the communes you may edit: the feature names no commune'
        WHEN NOT coalesce(geo_comuna_may_edit(p_commune), false) THEN
            format('outside the communes you may edit: commune %s is not one of them',
                   coalesce(c.code, p_commune::text))
        WHEN p_geom IS NULL OR coalesce(ST_Covers(r.geom, p_geom), false) THEN NULL
        ELSE format('outside the territory of commune %s: %s%s (up to %s m beyond its '
                    'boundary is allowed)',
                    c.code,
                    CASE WHEN ST_Intersects(c.geom, p_geom) THEN 'it reaches beyond its boundary'
                         ELSE 'it lies ' || geo_comuna_distance_text(
                                 ST_Distance(c.geom::geography, p_geom::geography)) || ' from it'
                    END,
                    (SELECT ', inside commune ' || string_agg(o.code, ', ' ORDER BY o.code)
                       FROM communes o
                      WHERE o.id <> p_commune AND ST_Intersects(o.geom, p_geom)),
                    geo_comuna_place_tolerance_m())
    END
    FROM (SELECT) AS one
    LEFT JOIN communes c ON c.id = p_commune
    LEFT JOIN commune_reach r ON r.commune_id = p_commune
$$;

-- Why a production unit may not link to parcel p_parcel; NULL when it may.
CREATE OR REPLACE FUNCTION geo_comuna_parcel_refusal(p_parcel integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() OR p.id IS NULL THEN NULL  -- no such parcel: the key says so
        WHEN coalesce(geo_comuna_may_edit(p.commune_id), false) THEN NULL
        ELSE format('outside the communes you may edit: parcel %s belongs to %s', p.id,
                    coalesce('commune ' || c.code, 'no commune'))
    END
    FROM (SELECT) AS one
    LEFT JOIN parcels p ON p.id = p_parcel
    LEFT JOIN communes c ON c.id = p.commune_id
$$;

-- Why an exchange from p_from to p_to drawn as p_geom may not be written; NULL when it may.
CREATE OR REPLACE FUNCTION geo_comuna_exchange_refusal(p_from integer, p_to integer,
                                                       p_geom geometry)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN NOT coalesce(geo_comuna_may_edit(p_from), false) THEN
            format('outside the communes you may edit: an exchange is recorded by the commune '
                   'it comes from, and %s is not one of yours', coalesce(f.code, p_from::text))
        WHEN p_geom IS NULL THEN NULL
        WHEN NOT coalesce(ST_Covers(rf.geom, ST_StartPoint(p_geom)), false) THEN
            format('the line must start inside commune %s, where the exchange comes from '
                   '(leave the geometry out to have it drawn)', f.code)
        WHEN NOT coalesce(ST_Covers(rt.geom, ST_EndPoint(p_geom)), false) THEN
            format('the line must end inside commune %s, where the exchange goes '
                   '(leave the geometry out to have it drawn)', t.code)
    END
    FROM (SELECT) AS one
    LEFT JOIN communes f ON f.id = p_from
    LEFT JOIN communes t ON t.id = p_to
    LEFT JOIN commune_reach rf ON rf.commune_id = p_from
    LEFT JOIN commune_reach rt ON rt.commune_id = p_to
$$;

-- A commune's row as it is stored (the statement's snapshot: before the update) against the
-- new one. SECURITY DEFINER: it reads communes from inside communes' own policy.
CREATE OR REPLACE FUNCTION geo_comuna_commune_refusal(p_id integer, p_code text, p_name text,
                                                      p_status text, p_geom geometry)
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN geo_comuna_is_admin() THEN NULL
        WHEN NOT coalesce(geo_comuna_may_edit(p_id), false) OR o.id IS NULL THEN
            format('outside the communes you may edit: commune %s is not one of them',
                   coalesce(o.code, p_code))
        WHEN changed <> '{}' THEN
            format('only admins change a commune''s %s', array_to_string(changed, ', '))
    END
    FROM (SELECT) AS one
    LEFT JOIN communes o ON o.id = p_id
    CROSS JOIN LATERAL (SELECT array_remove(ARRAY[
        CASE WHEN o.code IS DISTINCT FROM p_code THEN 'code' END,
        CASE WHEN o.name IS DISTINCT FROM p_name THEN 'name' END,
        CASE WHEN o.status IS DISTINCT FROM p_status THEN 'status' END,
        -- = on geometries: the same coordinates in the same order (PostGIS >= 2.4)
        CASE WHEN NOT coalesce(o.geom = p_geom, false) THEN 'boundary' END], NULL) AS changed
    ) AS c
$$;

-- Is the feature p_id of p_table stored in commune p_commune with the shape p_geom, exactly
-- (the statement's snapshot: as it was before the update)? A feature an editor leaves where
-- it lies passes the place rule, wherever an admin put it (migration 0033). SECURITY
-- DEFINER: it reads the table from inside the table's own policy, which may not name it.
CREATE OR REPLACE FUNCTION geo_comuna_unmoved(p_table regclass, p_id integer,
                                              p_commune integer, p_geom geometry)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF p_table NOT IN ('parcels'::regclass, 'production_units'::regclass,
                       'greenhouses'::regclass, 'dwellings'::regclass, 'water_mains'::regclass,
                       'power_lines'::regclass, 'paths'::regclass, 'facilities'::regclass) THEN
        RETURN false;
    END IF;
    -- = on geometries: the same coordinates in the same order (PostGIS >= 2.4)
    EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE id = $1 AND commune_id = $2 '
                   'AND geom = $3)', p_table)
       INTO found USING p_id, p_commune, p_geom;
    RETURN found;
END $$;
