-- Each reconcile of a connection (README: "Reconcile"): when, what it cost, whether the two
-- systems agreed, or why it could not run.
CREATE TABLE reconcile_run (
    run_id        bigserial   PRIMARY KEY,
    connection    text        NOT NULL,
    tenant        text        NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    visma_calls   integer     NOT NULL DEFAULT 0,
    basware_calls integer     NOT NULL DEFAULT 0,
    all_equal     boolean     NOT NULL,
    error         text
);
CREATE INDEX reconcile_run_latest ON reconcile_run (connection, finished_at DESC);

-- The totals of each entity in a run.
CREATE TABLE reconcile_totals (
    run_id     bigint  NOT NULL REFERENCES reconcile_run ON DELETE CASCADE,
    entity     text    NOT NULL,
    visma      integer NOT NULL,
    basware    integer NOT NULL,
    equal      integer NOT NULL,
    missing    integer NOT NULL,
    extra      integer NOT NULL,
    different  integer NOT NULL,
    duplicate  integer NOT NULL,
    unmappable integer NOT NULL,
    -- Basware's processing status of the records it holds, counted (invoices).
    statuses   jsonb   NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, entity)
);

-- Every record of a run that was not equal, with its fields and both values.
CREATE TABLE reconcile_difference (
    run_id     bigint NOT NULL REFERENCES reconcile_run ON DELETE CASCADE,
    entity     text   NOT NULL,
    record_key text   NOT NULL,
    outcome    text   NOT NULL,
    body       jsonb  NOT NULL
);
CREATE INDEX reconcile_difference_run ON reconcile_difference (run_id, entity);
