-- An invoice reaches Basware as one document: at most one live upload per invoice (tenant,
-- entity_id), whatever its version. A later version is not uploaded by itself; a forced
-- re-upload (replay --force, once Basware's document is gone or rejected) removes the live
-- row and claims its own. Rows of databases that uploaded two versions of one invoice before
-- are kept, all but the first marked superseded.
ALTER TABLE writer_uploads ADD COLUMN superseded boolean NOT NULL DEFAULT false;
UPDATE writer_uploads u SET superseded = true
WHERE EXISTS (
    SELECT 1 FROM writer_uploads e
    WHERE e.tenant = u.tenant AND e.entity_id = u.entity_id
      AND (e.started_at, e.payload_hash) < (u.started_at, u.payload_hash)
);
CREATE UNIQUE INDEX writer_uploads_one_per_invoice ON writer_uploads (tenant, entity_id)
    WHERE NOT superseded;
