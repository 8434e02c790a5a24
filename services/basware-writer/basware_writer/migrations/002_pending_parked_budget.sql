-- Writer instances alive now: a claim (on a pending record, an upload or a parked key) is
-- honoured while its instance keeps beating; a killed instance's claims are taken over.
CREATE TABLE writer_instances (
    instance   text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Records Basware answered 200 for whose requestStatus is not final yet. Written right after
-- the POST, so that a crash, a restart or a rebalance follows the same requests instead of
-- posting again. `stage` is where the record is: vendor, order (header) or lines.
CREATE TABLE writer_pending (
    tenant          text        NOT NULL,
    entity          text        NOT NULL,
    entity_id       text        NOT NULL,
    payload_hash    text        NOT NULL,
    supplier_number text        NOT NULL,
    stage           text        NOT NULL CHECK (stage IN ('vendor', 'order', 'lines')),
    request_ids     text[]      NOT NULL,
    attempts        integer     NOT NULL,
    -- The change events the record answers for, in Kafka order (the last one was sent).
    changes         jsonb       NOT NULL,
    posted_at       timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    PRIMARY KEY (tenant, entity, entity_id, payload_hash)
);
CREATE INDEX writer_pending_key ON writer_pending (tenant, supplier_number);

-- SmartPDF uploads, claimed before the upload starts: an invoice version is uploaded by one
-- writer once. 'uploading' rows whose writer died are looked up in Basware before any re-send.
CREATE TABLE writer_uploads (
    tenant          text        NOT NULL,
    entity_id       text        NOT NULL,
    payload_hash    text        NOT NULL,
    supplier_number text        NOT NULL,
    invoice_number  text        NOT NULL,
    invoice_date    date        NOT NULL,
    changes         jsonb       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('uploading', 'uploaded')),
    bum_id          text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    PRIMARY KEY (tenant, entity_id, payload_hash)
);
CREATE INDEX writer_uploads_open ON writer_uploads (tenant) WHERE state = 'uploading';

-- Keys (tenant:supplier) whose dependents wait for a prerequisite, and what waits, in Kafka
-- order. While a key has a row here, every later purchase order and invoice of it queues
-- behind; the releaser claims a key once its vendor is accepted and nothing of it is pending.
CREATE TABLE writer_parked_keys (
    tenant          text        NOT NULL,
    supplier_number text        NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    PRIMARY KEY (tenant, supplier_number)
);
CREATE TABLE writer_parked (
    seq             bigserial   PRIMARY KEY,
    tenant          text        NOT NULL,
    supplier_number text        NOT NULL,
    change_event_id text        NOT NULL,
    change          jsonb       NOT NULL,
    reason          text        NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, change_event_id)
);
CREATE INDEX writer_parked_key ON writer_parked (tenant, supplier_number, seq);

-- One request budget per Basware tenant and region, shared by every writer instance:
-- a token bucket kept as GCRA (the theoretical arrival time `tat` of the next request).
-- A 429 halves the rate (it recovers linearly) and its Retry-After blocks the budget.
CREATE TABLE writer_budget (
    tenant        text             NOT NULL,
    region        text             NOT NULL,
    rate          double precision NOT NULL,
    rate_at       timestamptz      NOT NULL,
    tat           timestamptz      NOT NULL,
    blocked_until timestamptz      NOT NULL,
    PRIMARY KEY (tenant, region)
);

-- Reserves the next request slot; returns the seconds to wait before sending it.
CREATE FUNCTION writer_take_budget(
    p_tenant text, p_region text, p_rate double precision, p_burst double precision,
    p_recovery_seconds double precision
) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_now     timestamptz := clock_timestamp();
    b         writer_budget;
    v_rate    double precision;
    v_step    interval;
    v_send_at timestamptz;
BEGIN
    INSERT INTO writer_budget (tenant, region, rate, rate_at, tat, blocked_until)
    VALUES (p_tenant, p_region, p_rate, v_now, v_now, '-infinity')
    ON CONFLICT DO NOTHING;
    SELECT * INTO b FROM writer_budget WHERE tenant = p_tenant AND region = p_region FOR UPDATE;
    v_rate := least(
        p_rate,
        b.rate + p_rate / p_recovery_seconds * extract(epoch FROM v_now - b.rate_at)
    );
    v_step := make_interval(secs => 1.0 / v_rate);
    -- GCRA: up to p_burst requests at once, then one every 1/rate seconds.
    v_send_at := greatest(v_now, b.tat - v_step * (p_burst - 1), b.blocked_until);
    UPDATE writer_budget
    SET rate = v_rate, rate_at = v_now, tat = greatest(b.tat, v_send_at) + v_step
    WHERE tenant = p_tenant AND region = p_region;
    RETURN extract(epoch FROM v_send_at - v_now);
END
$$;

-- Basware pushed back: halve the rate (not below p_min_rate) on a 429 and, with a
-- Retry-After, send nothing before it has passed (then resume at the rate, without a burst).
CREATE FUNCTION writer_slow_budget(
    p_tenant text, p_region text, p_rate double precision, p_burst double precision,
    p_min_rate double precision, p_recovery_seconds double precision,
    p_retry_after double precision, p_halve boolean
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_now   timestamptz := clock_timestamp();
    b       writer_budget;
    v_rate  double precision;
    v_until timestamptz;
BEGIN
    INSERT INTO writer_budget (tenant, region, rate, rate_at, tat, blocked_until)
    VALUES (p_tenant, p_region, p_rate, v_now, v_now, '-infinity')
    ON CONFLICT DO NOTHING;
    SELECT * INTO b FROM writer_budget WHERE tenant = p_tenant AND region = p_region FOR UPDATE;
    v_rate := least(
        p_rate,
        b.rate + p_rate / p_recovery_seconds * extract(epoch FROM v_now - b.rate_at)
    );
    IF p_halve THEN
        v_rate := greatest(p_min_rate, v_rate / 2);
    END IF;
    v_until := greatest(
        b.blocked_until, v_now + make_interval(secs => coalesce(p_retry_after, 0))
    );
    UPDATE writer_budget
    SET rate = v_rate,
        rate_at = v_now,
        blocked_until = v_until,
        tat = greatest(b.tat, v_until + make_interval(secs => (p_burst - 1) / v_rate))
    WHERE tenant = p_tenant AND region = p_region;
END
$$;

-- Whether a claim may be taken: nobody holds it, or its instance stopped beating.
CREATE FUNCTION writer_claim_open(p_claimed_by text, p_timeout_seconds double precision)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_claimed_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM writer_instances i
        WHERE i.instance = p_claimed_by
          AND i.seen_at > now() - make_interval(secs => p_timeout_seconds)
    )
$$;
