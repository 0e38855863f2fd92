-- Each layer's temporal property (layers/model.py: parcels.recovered_on, communes.founded)
-- is what OGC API's ?datetime= filters by, and its first and last dates are the collection's
-- extent.temporal, asked for on every GET /collections. A btree makes both an index lookup
-- instead of a scan of the layer (200,000 parcels: ~15 ms on every request). Like the
-- layers' other secondary indexes, they are rebuilt after a bulk load (features/write.py).

CREATE INDEX parcels_recovered_on_idx ON parcels (recovered_on);
CREATE INDEX communes_founded_idx ON communes (founded);
