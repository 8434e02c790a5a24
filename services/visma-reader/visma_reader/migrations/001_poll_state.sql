-- Poll cursors: the highest lastModifiedDateTime fully read, per tenant and entity.
CREATE TABLE visma_poll_cursor (
    tenant      text        NOT NULL,
    entity      text        NOT NULL,
    high_water  timestamp   NOT NULL,  -- zone-less, in the ERP's own frame (docs/visma-net.md §5.2)
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, entity)
);

-- The content hash last published for each record: the overlap window re-reads records,
-- and this is what keeps a re-read record from being published twice.
CREATE TABLE visma_published_record (
    tenant        text      NOT NULL,
    entity        text      NOT NULL,
    record_id     text      NOT NULL,
    content_hash  text      NOT NULL,
    last_modified timestamp NOT NULL,
    PRIMARY KEY (tenant, entity, record_id)
);
