-- The last payload Basware accepted per record: a send whose payload hash equals it is
-- skipped, so a Visma-side change Basware never sees (a note, a row version) costs no call.
CREATE TABLE writer_accepted (
    tenant       text        NOT NULL,
    entity       text        NOT NULL,
    entity_id    text        NOT NULL,
    payload_hash text        NOT NULL,
    request_id   text,
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, entity, entity_id)
);
