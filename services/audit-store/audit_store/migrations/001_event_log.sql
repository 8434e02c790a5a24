-- The event log: every message of every topic, once (by event id), as it arrived.
--
-- Rows are only ever appended. A statement trigger refuses UPDATE, DELETE and TRUNCATE,
-- and each row carries a hash chained to the previous row of its Kafka partition
-- (audit_store/rows.py), so `mlconnector audit verify` finds a row changed or removed
-- behind the trigger's back.
CREATE TABLE audit_log (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What arrived; hashed into the chain.
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     bytea,
    headers         jsonb       NOT NULL,  -- [[name, value], ...] in the order sent
    body            bytea,                 -- the message value, byte for byte
    kafka_time      timestamptz,
    arrived_at      timestamptz NOT NULL,  -- when audit-store read the message
    chain_position  bigint      NOT NULL,  -- 1, 2, 3, ... within (topic, kafka_partition)
    row_hash        bytea       NOT NULL,  -- sha256(previous row_hash || canonical content)
    -- Derived from what arrived; verify recomputes and compares them.
    event_id        text        NOT NULL UNIQUE,
    event_type      text,
    replay_of       text,
    correlation_id  text,
    payload         jsonb,                 -- body as JSON; NULL when the body is not JSON
    tenant          text,
    entity          text,
    entity_id       text,
    event_time      timestamptz NOT NULL,  -- occurred_at of the event, else Kafka's time
    UNIQUE (topic, kafka_partition, chain_position)
);

CREATE INDEX audit_log_record ON audit_log (entity_id, entity, tenant);
CREATE INDEX audit_log_offset ON audit_log (topic, kafka_partition, kafka_offset);
CREATE INDEX audit_log_replay_of ON audit_log (replay_of) WHERE replay_of IS NOT NULL;

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'A failed record is replayed (mlconnector replay), never edited.';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- The last row of each chain. Appends lock it (SELECT ... FOR UPDATE), which serialises
-- writers of one partition, and verify compares it with the last row found, which is how a
-- row removed from the end of a chain shows. It only ever moves forward.
CREATE TABLE audit_chain_head (
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    chain_position  bigint  NOT NULL,
    row_hash        bytea   NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

CREATE FUNCTION audit_chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.topic = OLD.topic
       AND NEW.kafka_partition = OLD.kafka_partition
       AND NEW.chain_position > OLD.chain_position THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain_head only moves forward: % refused', TG_OP;
END
$$;

CREATE TRIGGER audit_chain_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward_only();

CREATE TRIGGER audit_chain_head_no_truncate
    BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
