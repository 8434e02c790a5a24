-- The console's own tables: its users and their logins, the operators' actions waiting to
-- be published to the audit log, and the samples behind the Overview's charts.

CREATE TABLE console_users (
    name            text        PRIMARY KEY,
    role            text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    -- argon2id, with its parameters and salt (console/passwords.py).
    password_hash   text        NOT NULL,
    failed_logins   integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A login: the cookie holds a random token, the table only its sha256, so a copy of the
-- table opens no session. Each login has its own CSRF token.
CREATE TABLE console_sessions (
    token_hash  bytea       PRIMARY KEY,
    user_name   text        NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- Operators' actions written with the change they record and published to the
-- operator.actions topic afterwards, so an action is audited even while Kafka is down.
CREATE TABLE console_outbox (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      text        NOT NULL UNIQUE,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX console_outbox_unpublished ON console_outbox (seq) WHERE published_at IS NULL;

-- What the sync looked like, sampled (console/sampler.py): the latest sample whole, for the
-- Overview, and one row per minute and entity (and per failure category) for its charts.
CREATE TABLE console_samples (
    taken_at  timestamptz PRIMARY KEY,
    sample    jsonb       NOT NULL
);

CREATE TABLE console_minutes (
    minute                  timestamptz NOT NULL,
    entity                  text        NOT NULL,
    delivered               bigint      NOT NULL,  -- records delivered so far (all tenants)
    oldest_pending_seconds  double precision,      -- the oldest change not yet answered
    PRIMARY KEY (minute, entity)
);

CREATE TABLE console_failure_minutes (
    minute    timestamptz NOT NULL,
    category  text        NOT NULL,
    records   bigint      NOT NULL,  -- records failed or rejected with this category
    PRIMARY KEY (minute, category)
);
