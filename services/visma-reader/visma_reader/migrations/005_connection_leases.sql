-- Readers alive now: each beats its row while it runs. The live readers are those whose row
-- is fresher than the lease timeout; each caps itself at its fair share of the connections.
CREATE TABLE visma_reader_instance (
    instance   text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Who polls each connection (leases.py). A lease is held while it has not expired; each new
-- holder raises the epoch, and a cursor write carries its poller's epoch, so a reader that
-- lost its lease (stalled past the timeout, then resumed) cannot move a cursor any more.
-- Rows are never deleted: a connection removed and added again keeps counting its epoch up.
CREATE TABLE visma_connection_lease (
    connection text        PRIMARY KEY,
    holder     text,  -- NULL: free
    epoch      bigint      NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
