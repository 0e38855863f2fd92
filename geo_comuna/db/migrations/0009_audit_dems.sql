-- DEM writes join the audit trail like every other write: the raster's description and
-- footprint are recorded (not its bytes, which the dems table itself keeps). The functions
-- are in db/functions/audit_dems.sql.
-- functions: audit_dems

CREATE TRIGGER dems_audit_insert AFTER INSERT ON dems REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_dems();
CREATE TRIGGER dems_audit_update AFTER UPDATE ON dems
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_dems();
CREATE TRIGGER dems_audit_delete AFTER DELETE ON dems REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_dems();
