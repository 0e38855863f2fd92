-- Which feature each new row of a commune package became when it was synced. A package never
-- learns the ids its new features get (the field team keeps editing its own file), so a row
-- edited again after its first sync, its shape moved, was stored a second time (or, with a
-- code, refused the whole sync as a repeated key). A package now carries its own id
-- (geo_comuna_info.package_id, maps/package.py) and the sync records here, by that id, the
-- layer and the row's GeoPackage fid, the feature it stored and the row version it wrote
-- (xmin, as the feature's ETag carries it): the next sync of the same file finds the row's
-- feature (maps/sync.py).
CREATE TABLE package_rows (
    package text NOT NULL,
    layer text NOT NULL,
    fid bigint NOT NULL,
    feature_id bigint NOT NULL,
    version bigint NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (package, layer, fid)
);
