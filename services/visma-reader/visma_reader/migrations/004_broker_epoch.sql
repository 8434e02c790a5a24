-- The broker epochs visma-reader marked (broker_watch.py): the mark it committed on the
-- broker after each recovery from a lost broker (and on a database's first start), what the
-- broker had lost, and what the recovery re-published and made the reader read again. The
-- latest row is the epoch the broker is expected to carry.
CREATE TABLE visma_broker_epoch (
    id bigserial PRIMARY KEY,
    epoch bigint NOT NULL UNIQUE,
    marked_at timestamptz NOT NULL DEFAULT now(),
    lost_topics text[] NOT NULL,
    republished integer NOT NULL,
    reread integer NOT NULL,
    instance text NOT NULL
);
