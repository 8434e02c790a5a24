-- The log partitioned by month of arrival (arrived_at, which audit-store sets as it reads a
-- batch), so that it can grow for years: a month's rows are one table, exported and dropped
-- whole once the deployment's retention has passed (audit_store/retention.py), and the
-- queries that name a time read only the months they name.
--
-- The rows, their hashes and their seq move over unchanged: a chain runs across partitions
-- as it ran within the one table (verify walks it by topic, partition and position).
--
-- A partitioned table enforces uniqueness only with the partition key in it, and an event id
-- is unique across months: the recorder keeps that (one append at a time checks and inserts,
-- under an advisory lock), and the index on event_id makes the check a lookup.
--
-- The append-only trigger as in 001. The status view as in 005, but with every part of it
-- NOT MATERIALIZED: a read of one record (`WHERE entity_id = ...`) then reaches each part
-- as an index condition on every partition (audit_log_record, audit_log_event_id) instead
-- of computing every record's state first; a read of every record is as before.
DROP VIEW audit_record_status;

ALTER TABLE audit_log RENAME TO audit_log_before_006;
DO $$
DECLARE
    old record;
BEGIN
    -- The old table's indexes and identity sequence free their names for the new table's.
    FOR old IN
        SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'audit_log_before_006'::regclass
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', old.relname, 'before_006_' || old.relname);
    END LOOP;
    EXECUTE format('ALTER SEQUENCE %s RENAME TO audit_log_before_006_seq',
                   pg_get_serial_sequence('audit_log_before_006', 'seq'));
END
$$;

CREATE TABLE audit_log (
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     bytea,
    headers         jsonb       NOT NULL,
    body            bytea,
    kafka_time      timestamptz,
    arrived_at      timestamptz NOT NULL,
    chain_position  bigint      NOT NULL,
    row_hash        bytea       NOT NULL,
    event_id        text        NOT NULL,
    event_type      text,
    replay_of       text,
    correlation_id  text,
    payload         jsonb,
    tenant          text,
    entity          text,
    entity_id       text,
    event_time      timestamptz NOT NULL,
    PRIMARY KEY (seq, arrived_at)
) PARTITION BY RANGE (arrived_at);

CREATE INDEX audit_log_event_id ON audit_log (event_id);
CREATE INDEX audit_log_chain ON audit_log (topic, kafka_partition, chain_position);
CREATE INDEX audit_log_record ON audit_log (entity_id, entity, tenant);
CREATE INDEX audit_log_offset ON audit_log (topic, kafka_partition, kafka_offset);
CREATE INDEX audit_log_replay_of ON audit_log (replay_of) WHERE replay_of IS NOT NULL;
-- The delivery rate over a recent window, and the status view's parts by event type.
CREATE INDEX audit_log_type_time ON audit_log (event_type, event_time);

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- The functions below run as the log's owner for audit-store, which may call them and
-- nothing more: one lock orders them, and their search path is this schema's, so no
-- schema another role made can stand in for the log.
SELECT set_config('search_path', quote_ident(current_schema()), true);

-- The month's partition that holds `at`, made when missing; its name.
CREATE FUNCTION audit_log_partition_for(at timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    month_start timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    name text := 'audit_log_' || to_char(month_start, 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('audit_log partitions'));
    IF NOT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass AND c.relname = name
    ) THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                       name, month_start AT TIME ZONE 'UTC',
                       (month_start + interval '1 month') AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
END
$$;
REVOKE ALL ON FUNCTION audit_log_partition_for(timestamptz) FROM PUBLIC;

-- What a partition held when it was dropped, chain by chain: where each chain's rows in it
-- ended (position and hash), so that verify links the live rows to the exported ones, and
-- checks the live table alone from there when the export is not at hand.
CREATE TABLE audit_log_retired (
    partition_name  text        NOT NULL,
    range_from      timestamptz NOT NULL,
    range_to        timestamptz NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    first_position  bigint      NOT NULL,
    last_position   bigint      NOT NULL,
    last_hash       bytea       NOT NULL,
    row_count       bigint      NOT NULL,
    retired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_name, topic, kafka_partition)
);

CREATE TRIGGER audit_log_retired_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log_retired
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Drops the oldest partition once its month is over and its export holds all its rows
-- (`exported_rows`), keeping its chain ends in audit_log_retired. Refused when a chain's
-- rows in it do not all come before the chain's rows in later months (a clock stepped
-- back): dropped, they would leave a hole in the live chain. Returns the rows dropped.
CREATE FUNCTION audit_log_retire_partition(partition_name text, exported_rows bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    part regclass;
    month_start timestamp;
    counted bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('audit_log partitions'));
    SELECT c.oid::regclass INTO part
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit_log'::regclass AND c.relname = partition_name;
    IF part IS NULL THEN
        RAISE EXCEPTION 'audit_log has no partition %', partition_name;
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass AND c.relname < partition_name
    ) THEN
        RAISE EXCEPTION 'partition % is not the oldest: partitions retire in order',
            partition_name;
    END IF;
    month_start := to_date(substr(partition_name, 11), 'YYYY_MM')::timestamp;
    IF (month_start + interval '1 month') AT TIME ZONE 'UTC' > now() THEN
        RAISE EXCEPTION 'partition % holds a month not over yet', partition_name;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', part) INTO counted;
    IF counted <> exported_rows THEN
        RAISE EXCEPTION 'partition % holds % rows, the export %', partition_name, counted,
            exported_rows;
    END IF;
    EXECUTE format(
        'INSERT INTO audit_log_retired (partition_name, range_from, range_to, topic,'
        '    kafka_partition, first_position, last_position, last_hash, row_count)'
        ' SELECT %L, %L, %L, topic, kafka_partition, min(chain_position), max(chain_position),'
        '    (array_agg(row_hash ORDER BY chain_position DESC))[1], count(*)'
        ' FROM %s GROUP BY topic, kafka_partition',
        partition_name, month_start AT TIME ZONE 'UTC',
        (month_start + interval '1 month') AT TIME ZONE 'UTC', part);
    IF EXISTS (
        SELECT 1 FROM audit_log_retired r
        JOIN audit_log l ON l.topic = r.topic AND l.kafka_partition = r.kafka_partition
             AND l.chain_position <= r.last_position
        WHERE r.partition_name = audit_log_retire_partition.partition_name
          AND l.tableoid <> part
    ) THEN
        RAISE EXCEPTION 'partition %: a chain has earlier rows in a later partition',
            partition_name;
    END IF;
    EXECUTE format('DROP TABLE %s', part);
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION audit_log_retire_partition(text, bigint) FROM PUBLIC;

-- A partition for every month the old rows arrived in, and this one and the next three.
SELECT audit_log_partition_for(month AT TIME ZONE 'UTC')
FROM generate_series(
    date_trunc('month',
               coalesce((SELECT min(arrived_at) FROM audit_log_before_006), now())
               AT TIME ZONE 'UTC'),
    (now() AT TIME ZONE 'UTC') + interval '3 months',
    interval '1 month'
) AS month;

INSERT INTO audit_log OVERRIDING SYSTEM VALUE
SELECT seq, topic, kafka_partition, kafka_offset, message_key, headers, body, kafka_time,
       arrived_at, chain_position, row_hash, event_id, event_type, replay_of, correlation_id,
       payload, tenant, entity, entity_id, event_time
FROM audit_log_before_006;
SELECT setval(pg_get_serial_sequence('audit_log', 'seq'), max(seq))
FROM audit_log_before_006 HAVING max(seq) IS NOT NULL;

DROP TABLE audit_log_before_006;

CREATE VIEW audit_record_status AS
WITH changes AS NOT MATERIALIZED (
    SELECT *
    FROM audit_log
    WHERE event_type IN ('SupplierChanged', 'PurchaseOrderChanged', 'SupplierInvoiceChanged',
                         'CreditTermChanged', 'VatCategoryChanged', 'AccountChanged',
                         'DimensionValueChanged', 'UnreadableRecord')
      AND tenant IS NOT NULL AND entity IS NOT NULL AND entity_id IS NOT NULL
), answers AS NOT MATERIALIZED (
    -- Results and malformed messages that answer a change the log holds: same record, same
    -- version. One that answers nothing (forged, or from a stray producer) is in the log,
    -- visible in lineage, but moves no record's state.
    SELECT r.*
    FROM audit_log r
    WHERE r.event_type IN ('DeliveryResult', 'MalformedMessage')
      AND r.tenant IS NOT NULL AND r.entity IS NOT NULL AND r.entity_id IS NOT NULL
      AND EXISTS (
          SELECT 1 FROM audit_log c
          WHERE c.event_id = r.payload ->> 'change_event_id'
            AND c.event_type IN ('SupplierChanged', 'PurchaseOrderChanged',
                                 'SupplierInvoiceChanged', 'CreditTermChanged',
                                 'VatCategoryChanged', 'AccountChanged',
                                 'DimensionValueChanged')
            AND c.tenant = r.tenant AND c.entity = r.entity AND c.entity_id = r.entity_id
            AND c.payload ->> 'content_hash' = r.payload ->> 'content_hash'
      )
), results AS NOT MATERIALIZED (
    SELECT seq, tenant, entity, entity_id, event_id, event_time, event_type,
           payload ->> 'change_event_id' AS answers_change, payload
    FROM answers
    UNION ALL
    SELECT seq, tenant, entity, entity_id, event_id, event_time, event_type,
           event_id AS answers_change, payload
    FROM changes
    WHERE event_type = 'UnreadableRecord'
), unreadable AS NOT MATERIALIZED (
    -- What could not be read, with its reasons: one per field that failed. A scalar subquery
    -- over the row's own problems, not a lateral join: the status read turns nested loops
    -- off (shared/mlconnector/audit/status.py), which a lateral join needs.
    SELECT m.event_id, m.event_type, m.tenant, m.payload, m.event_time,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'category', 'Malformed',
            'code', CASE WHEN m.event_type = 'MalformedMessage' THEN 'message' ELSE 'record' END,
            'field', p.problem ->> 'field',
            'message', CASE
                WHEN m.event_type = 'MalformedMessage'
                    THEN format('%s[%s]@%s: %s: %s', m.payload ->> 'topic',
                                m.payload ->> 'partition', m.payload ->> 'offset',
                                p.problem ->> 'field', p.problem ->> 'problem')
                ELSE format('the Visma record could not be read: %s: %s',
                            p.problem ->> 'field', p.problem ->> 'problem')
            END
        )), '[]'::jsonb)
         FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(m.payload -> 'problems') = 'array'
                  THEN m.payload -> 'problems' ELSE '[]'::jsonb END
         ) AS p(problem)) AS reasons
    FROM audit_log m
    WHERE m.event_type IN ('MalformedMessage', 'UnreadableRecord')
), latest_change AS NOT MATERIALIZED (
    SELECT DISTINCT ON (tenant, entity, entity_id)
        tenant, entity, entity_id,
        event_id AS latest_change_id,
        event_time AS latest_change_at,
        replay_of AS latest_change_replay_of,
        payload ->> 'supplier_number' AS change_supplier_number,
        payload ->> 'content_hash' AS content_hash
    FROM changes
    ORDER BY tenant, entity, entity_id, event_time DESC, seq DESC
), latest_result AS NOT MATERIALIZED (
    SELECT DISTINCT ON (x.tenant, x.entity, x.entity_id)
        x.tenant, x.entity, x.entity_id,
        x.event_id AS latest_result_id,
        x.event_time AS latest_result_at,
        x.answers_change AS result_change_id,
        CASE WHEN x.event_type = 'DeliveryResult' THEN x.payload ->> 'outcome'
             ELSE 'malformed' END AS outcome,
        CASE WHEN x.event_type = 'DeliveryResult'
             THEN coalesce(x.payload -> 'reasons', '[]'::jsonb)
             ELSE mr.reasons END AS reasons,
        CASE WHEN jsonb_typeof(x.payload -> 'attempts') = 'number'
             THEN round((x.payload ->> 'attempts')::numeric)::bigint END AS attempts,
        x.payload ->> 'region' AS region,
        x.payload ->> 'request_id' AS request_id,
        x.payload ->> 'supplier_number' AS result_supplier_number
    FROM results x
    LEFT JOIN unreadable mr ON mr.event_id = x.event_id
    ORDER BY x.tenant, x.entity, x.entity_id, x.event_time DESC, x.seq DESC
), change_counts AS NOT MATERIALIZED (
    SELECT tenant, entity, entity_id,
        count(*) AS changes,
        count(replay_of) AS replays,
        min(event_time) AS first_change_at
    FROM changes
    GROUP BY tenant, entity, entity_id
), result_counts AS NOT MATERIALIZED (
    SELECT tenant, entity, entity_id, count(*) AS results
    FROM results
    GROUP BY tenant, entity, entity_id
), stray_messages AS NOT MATERIALIZED (
    SELECT m.*
    FROM unreadable m
    WHERE m.event_type = 'MalformedMessage'
      AND NOT EXISTS (
          SELECT 1 FROM answers a
          WHERE a.event_type = 'MalformedMessage' AND a.event_id = m.event_id
      )
)
SELECT
    tenant, entity, entity_id,
    coalesce(c.change_supplier_number, r.result_supplier_number) AS supplier_number,
    CASE
        WHEN r.latest_result_id IS NULL THEN 'pending'
        WHEN c.latest_change_id IS NULL OR r.result_change_id = c.latest_change_id
            THEN r.outcome
        ELSE 'pending'
    END AS state,
    c.latest_change_id, c.latest_change_at, c.latest_change_replay_of, c.content_hash,
    coalesce(cc.changes, 0) AS changes,
    coalesce(cc.replays, 0) AS replays,
    cc.first_change_at,
    r.latest_result_id, r.latest_result_at, r.result_change_id, r.outcome, r.reasons,
    r.attempts, r.region, r.request_id,
    coalesce(rc.results, 0) AS results
FROM latest_change c
FULL JOIN latest_result r USING (tenant, entity, entity_id)
LEFT JOIN change_counts cc USING (tenant, entity, entity_id)
LEFT JOIN result_counts rc USING (tenant, entity, entity_id)
UNION ALL
SELECT
    coalesce(m.tenant, '') AS tenant,
    'message' AS entity,
    format('%s[%s]@%s', m.payload ->> 'topic', m.payload ->> 'partition',
           m.payload ->> 'offset') AS entity_id,
    m.payload ->> 'supplier_number' AS supplier_number,
    'malformed' AS state,
    NULL::text AS latest_change_id, NULL::timestamptz AS latest_change_at,
    NULL::text AS latest_change_replay_of, m.payload ->> 'content_hash' AS content_hash,
    0::bigint AS changes, 0::bigint AS replays, NULL::timestamptz AS first_change_at,
    m.event_id AS latest_result_id, m.event_time AS latest_result_at,
    NULL::text AS result_change_id, 'malformed' AS outcome,
    m.reasons,
    NULL::bigint AS attempts, NULL::text AS region, NULL::text AS request_id,
    1::bigint AS results
FROM stray_messages m;
