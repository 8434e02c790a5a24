-- A writer instance's presence: a session-level advisory lock it holds on a connection of
-- its own for as long as it runs. PostgreSQL drops the lock the moment that session ends, a
-- kill -9 included, so a dead instance's claims are free at once instead of once it missed
-- its heartbeats for the instance timeout. An instance that never took the lock (an older
-- writer) is judged by its heartbeats alone.
ALTER TABLE writer_instances ADD COLUMN holds_presence boolean NOT NULL DEFAULT false;

CREATE FUNCTION writer_hold_presence(p_instance text)
RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_lock(hashtext('basware-writer.presence'), hashtext(p_instance))
$$;

-- Whether the instance's session still holds its presence lock: a shared try conflicts with
-- it while it is held, and what the try takes goes with the asking transaction.
CREATE FUNCTION writer_present(p_instance text)
RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT NOT pg_try_advisory_xact_lock_shared(
        hashtext('basware-writer.presence'), hashtext(p_instance)
    )
$$;

-- Whether a claim may be taken: nobody holds it, or its instance stopped beating, or its
-- instance's session is gone.
CREATE OR REPLACE FUNCTION writer_claim_open(p_claimed_by text, p_timeout_seconds double precision)
RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT p_claimed_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM writer_instances i
        WHERE i.instance = split_part(p_claimed_by, '#', 1)
          AND i.seen_at > now() - make_interval(secs => p_timeout_seconds)
          AND (NOT i.holds_presence OR writer_present(i.instance))
    )
$$;
