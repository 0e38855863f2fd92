-- Source documents may be HEIC photos (what phones take by default), now that a maintained
-- reader (pillow-heif, over libheif) is a dependency: tenure/documents.py sniffs them by
-- their ftyp box and reads their EXIF GPS position like a JPEG's. They are stored as sent,
-- so their SHA-256 is the file's; nothing is converted.
ALTER TABLE documents DROP CONSTRAINT documents_media_type_check;
ALTER TABLE documents ADD CONSTRAINT documents_media_type_check
    CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png', 'image/heic'));
