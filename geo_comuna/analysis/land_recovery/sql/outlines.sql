-- The outlines (WKB, lon/lat) of one commune's parcels (%(commune)s), in the order of their ids.
SELECT id, ST_AsBinary(geom) FROM parcels WHERE commune_id = %(commune)s ORDER BY id
