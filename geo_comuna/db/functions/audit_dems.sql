-- DEM writes join the audit trail like every other write (triggers dems_audit_*, migration
-- 0009): the raster's description and footprint are recorded, not its bytes, which the dems
-- table itself keeps. One row per raster: they are uploaded one at a time.

CREATE OR REPLACE FUNCTION dem_props(d dems) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('commune_id', d.commune_id, 'name', d.name, 'crs', d.crs,
                              'resolution_m', d.resolution_m, 'bytes', length(d.tiff))
$$;

CREATE OR REPLACE FUNCTION audit_dems() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    uid integer := nullif(current_setting('geo_comuna.user_id', true), '')::int;
    uname text := nullif(current_setting('geo_comuna.user_name', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, after, after_geom)
        SELECT uid, uname, 'dems', n.id, 'insert', dem_props(n), n.footprint FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, before,
                               before_geom, after, after_geom)
        SELECT uid, uname, 'dems', n.id, 'update', dem_props(o), o.footprint, dem_props(n),
               n.footprint
        FROM new_rows n JOIN old_rows o ON o.id = n.id;
    ELSE
        INSERT INTO audit_log (user_id, user_name, layer, feature_id, action, before,
                               before_geom)
        SELECT uid, uname, 'dems', o.id, 'delete', dem_props(o), o.footprint FROM old_rows o;
    END IF;
    RETURN NULL;
END $$;
