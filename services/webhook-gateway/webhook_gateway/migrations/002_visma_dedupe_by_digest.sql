-- Visma notifications are deduplicated by what Visma signed: the event_id of a Visma row is
-- the SHA-256 (hex) of the signed body, no longer the unsigned x-vwd-notification-id header,
-- which a replayer could change at will.
COMMENT ON COLUMN webhook_seen.event_id IS
    'Basware: the taskId of the signed body; Visma: SHA-256 hex of the signed body';
