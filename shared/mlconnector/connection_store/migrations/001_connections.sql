-- Connections: one Visma.net company joined to one Basware tenant.
-- `settings` holds everything but secrets and schedules; secrets live sealed (AES-256-GCM)
-- in connection_secrets, one row per field, bound to (connection id, field) by the GCM
-- associated data, so no column here can be read without a master key.
CREATE TABLE connections (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    tenant     text        NOT NULL,
    settings   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE connection_secrets (
    connection_id uuid  NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    field         text  NOT NULL,
    key_id        text  NOT NULL,
    nonce         bytea NOT NULL,
    ciphertext    bytea NOT NULL,
    PRIMARY KEY (connection_id, field)
);

CREATE INDEX connection_secrets_key_id ON connection_secrets (key_id);

-- A poll schedule per connection and entity: an interval or a cron expression, never both.
CREATE TABLE connection_schedules (
    connection_id    uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    entity           text        NOT NULL,
    interval_seconds double precision CHECK (interval_seconds > 0),
    cron             text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, entity),
    CHECK ((interval_seconds IS NULL) <> (cron IS NULL))
);
