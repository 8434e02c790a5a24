-- Early polls asked for a connection by a reader that does not hold its lease (handoff.py):
-- one row per connection, the widest entity asked so far (NULL: all). The holder deletes the
-- row as it takes the request, woken by a NOTIFY on visma_early_poll, or on its next renewal.
CREATE TABLE visma_early_poll_request (
    connection   text        PRIMARY KEY,
    entity       text,
    requested_at timestamptz NOT NULL DEFAULT now()
);
