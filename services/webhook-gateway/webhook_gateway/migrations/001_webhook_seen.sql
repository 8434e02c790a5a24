-- Webhook ids already republished, so a redelivered or replayed webhook is not published
-- twice. Rows older than the dedupe TTL are deleted by the gateway (this is not the audit
-- log: it only remembers what the gateway has seen recently).
CREATE TABLE webhook_seen (
    source    text        NOT NULL,  -- basware | visma
    tenant    text        NOT NULL,
    event_id  text        NOT NULL,  -- Basware taskId, Visma x-vwd-notification-id
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, tenant, event_id)
);
CREATE INDEX webhook_seen_seen_at ON webhook_seen (seen_at);
