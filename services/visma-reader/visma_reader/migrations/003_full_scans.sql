-- When a poll last read a stream's whole list (the first backfill, then the periodic
-- reconciliation that catches whatever an incremental window could not see).
ALTER TABLE visma_poll_cursor ADD COLUMN full_scan_at timestamptz;
