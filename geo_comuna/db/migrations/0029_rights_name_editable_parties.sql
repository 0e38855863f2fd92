-- A right's party must be one the writer may edit too, not only the right's parcel: an editor
-- of one commune could record a right of another commune's party on their own land, and that
-- commune's editors could then neither delete their party (the right holds it) nor the right
-- (it is on land they may not edit). Found from outside. A right across communes is recorded
-- by someone who may edit both, an admin.
DROP POLICY rights_write ON rights;
CREATE POLICY rights_write ON rights FOR ALL TO geo_comuna_writer
USING (geo_comuna_may_edit((SELECT p.commune_id FROM parcels p WHERE p.id = parcel_id)))
WITH CHECK ((geo_comuna_may_edit((SELECT p.commune_id FROM parcels p WHERE p.id = parcel_id))
             OR geo_comuna_refuse('rights', 'a right on a parcel of a commune you may not edit'))
            -- no such party: the foreign key says so (409), not this policy
            AND (NOT EXISTS (SELECT FROM parties p WHERE p.id = party_id)
                 OR geo_comuna_may_edit((SELECT p.commune_id FROM parties p WHERE p.id = party_id))
                 OR geo_comuna_refuse('rights',
                                      'a right of a party of a commune you may not edit')));
