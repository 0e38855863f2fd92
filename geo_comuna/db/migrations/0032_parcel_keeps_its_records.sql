-- A parcel holding land records cannot be deleted with them: deleting a parcel deleted its
-- rights and their documents, and the documents attached to it, without a word, through the
-- API and through a field sync that deleted the parcel (found from outside). Now it is
-- refused until its rights are deleted or moved to another parcel (a division) and its own
-- documents deleted (DELETE /documents/{id}); a right deleted on purpose still takes its
-- documents with it.
ALTER TABLE rights
    DROP CONSTRAINT rights_parcel_id_fkey,
    ADD CONSTRAINT rights_parcel_id_fkey
        FOREIGN KEY (parcel_id) REFERENCES parcels (id) ON DELETE RESTRICT;
ALTER TABLE documents
    DROP CONSTRAINT documents_parcel_id_fkey,
    ADD CONSTRAINT documents_parcel_id_fkey
        FOREIGN KEY (parcel_id) REFERENCES parcels (id) ON DELETE RESTRICT;
