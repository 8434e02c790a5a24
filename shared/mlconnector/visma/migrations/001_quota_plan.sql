-- One quota plan per Visma company and API client (Visma counts calls per both, in a fixed
-- window; docs/visma-net.md §8.1), shared by every process that calls Visma for it: what
-- the window's calls used, as this plan counted them and as Visma's headers said, and when
-- the window ends. Every call writes the row, so it is unlogged: a crash loses it and the
-- next answer's headers make it again.
CREATE UNLOGGED TABLE visma_quota_plan (
    company_id       text             NOT NULL,
    client_id        text             NOT NULL,
    -- X-RateLimit-Limit; NULL until an answer said it (every call goes meanwhile).
    quota_limit      integer,
    -- The share kept for live work, of the limit.
    reserve_fraction double precision NOT NULL,
    -- How long a window lasts: not in the headers, so the setting's.
    window_seconds   double precision NOT NULL,
    used             integer          NOT NULL DEFAULT 0,
    -- NULL until an answer said it.
    resets_at        timestamptz,
    -- Calls refused in this window, by lane: the work they belong to waits for the reset.
    live_refused     integer          NOT NULL DEFAULT 0,
    bulk_refused     integer          NOT NULL DEFAULT 0,
    bulk_spent_at    timestamptz,
    -- Whether the latest take was granted (what that statement returns).
    granted          boolean          NOT NULL DEFAULT true,
    PRIMARY KEY (company_id, client_id)
);
