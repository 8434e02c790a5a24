-- A batch holds the keys it parked changes in until their "parked" results are published
-- (so a release's "delivered" never precedes them), with a claim `<instance>#hold`. A claim
-- is alive while the instance before the '#' is; a hold left behind is swept after a while.
ALTER TABLE writer_parked_keys ADD COLUMN claimed_at timestamptz;

CREATE OR REPLACE FUNCTION writer_claim_open(p_claimed_by text, p_timeout_seconds double precision)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_claimed_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM writer_instances i
        WHERE i.instance = split_part(p_claimed_by, '#', 1)
          AND i.seen_at > now() - make_interval(secs => p_timeout_seconds)
    )
$$;
