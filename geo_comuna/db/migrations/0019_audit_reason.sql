-- Why a write happened, when more than "an edit": a commune package synced back from the field
-- records "sync <file name>" (features/sync.py). The writer sets geo_comuna.reason for its
-- transaction and the audit triggers copy it (db/functions/audit_layers.sql); null otherwise.

ALTER TABLE audit_log ADD COLUMN reason text;
