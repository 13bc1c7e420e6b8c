-- What record search matches: the title and fields in one Unicode form
-- (NFC) and lower case, so "année" finds "Année" typed decomposed and
-- "ÉCOLE" finds "école". NULL for rows written before; filled when the
-- store opens.
ALTER TABLE records ADD COLUMN search_text TEXT;
