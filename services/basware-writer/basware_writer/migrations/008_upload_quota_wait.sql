-- An upload whose attachment download found Visma's quota spent for its lane is parked
-- here until the window resets (docs/visma-net.md §8.3): claimed, not sent, and handed off
-- with `quota_until`, so the batch commits and moves on; the follow-up of any instance
-- takes it once that time has passed. Sending its PDF clears it (from then on the upload is
-- followed like any other).
ALTER TABLE writer_uploads ADD COLUMN quota_until timestamptz;
CREATE INDEX writer_uploads_quota ON writer_uploads (quota_until) WHERE quota_until IS NOT NULL;
