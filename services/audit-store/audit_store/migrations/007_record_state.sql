-- Two tables beside the log, so that neither a read of every record's state nor an append
-- has to go through every month of the log:
--
-- - audit_event_id: every event id the log holds, once (its primary key). The recorder
--   inserts a batch's ids first and stores the rows of the ids that were new: the check and
--   the claim are one statement, and two writers of one id take turns on the key, so the
--   advisory lock of 006 goes. A retired partition's ids leave with it, as its rows do.
-- - audit_record_state: the status view's rows, one per record, with indexes for counts
--   by state and for the latest records in a state. The view stays the one definition of a
--   record's state: audit_record_state_refresh() recomputes the rows of the records a batch
--   touched from the view, in the recorder's transaction, and this migration fills the
--   table from the view once.
--
-- The view is as in 006, with the id of a stray message (its place in Kafka) named by a
-- function, so that the refresh finds a stray message's row by the same rule.
SELECT set_config('search_path', quote_ident(current_schema()), true);

CREATE TABLE audit_event_id (
    event_id text PRIMARY KEY
);
INSERT INTO audit_event_id (event_id) SELECT event_id FROM audit_log;

CREATE FUNCTION audit_message_record_id(payload jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('%s[%s]@%s', payload ->> 'topic', payload ->> 'partition',
                  payload ->> 'offset')
$$;

CREATE OR REPLACE VIEW audit_record_status AS
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
    audit_message_record_id(m.payload) AS entity_id,
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


CREATE TABLE audit_record_state (
    LIKE audit_record_status,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, entity, entity_id)
);
-- The console's and the command line's lists, newest first: the latest records in a state,
-- and the latest of all.
CREATE INDEX audit_record_state_latest_in_state
    ON audit_record_state (state, (coalesce(latest_result_at, latest_change_at)) DESC,
                           tenant, entity, entity_id);
CREATE INDEX audit_record_state_latest
    ON audit_record_state ((coalesce(latest_result_at, latest_change_at)) DESC,
                           tenant, entity, entity_id);
-- Counts per tenant, entity and state, with the oldest change among them, from the index.
CREATE INDEX audit_record_state_counts
    ON audit_record_state (tenant, entity, state, latest_change_at);

-- Every record's state afresh from the view: this migration's fill, and a log written
-- otherwise than by the recorder (the benchmark's). The view computes every record's state
-- in one pass with hash joins; nested loops over its per-record parts grow with the square
-- of the records. Returns the records.
CREATE FUNCTION audit_record_state_rebuild() RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_nestloop = off
AS $$
DECLARE
    filled bigint;
BEGIN
    DELETE FROM audit_record_state;
    INSERT INTO audit_record_state SELECT * FROM audit_record_status;
    GET DIAGNOSTICS filled = ROW_COUNT;
    RETURN filled;
END
$$;
REVOKE ALL ON FUNCTION audit_record_state_rebuild() FROM PUBLIC;
SELECT audit_record_state_rebuild();

-- Recomputes from the view the state of the records that a batch of new log rows is about
-- (the rows' tenants, entities, record ids and event ids, position by position), and of the
-- stray messages among them or about those records (a change that arrives after a malformed
-- message answering it makes that message the record's, no longer a row of its own).
--
-- Each record's row is locked first, in one order (made when missing: a row lock, not one
-- more lock in the server's shared table per record), so that two writers of one record (its
-- change and its result on different topics) take turns, and the later one recomputes with
-- the earlier one's rows committed: each statement below sees what committed before it.
CREATE FUNCTION audit_record_state_refresh(
    tenants text[], entities text[], entity_ids text[], event_ids text[]
) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
-- One plan for every record: the record's key stays a parameter, reached as an index
-- condition on every partition (as for one record's status, 006).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    touched record;
BEGIN
    INSERT INTO audit_record_state AS s (tenant, entity, entity_id)
    SELECT DISTINCT t, e, i
    FROM unnest(tenants, entities, entity_ids) AS b(t, e, i)
    WHERE t IS NOT NULL AND e IS NOT NULL AND i IS NOT NULL
    ORDER BY 1, 2, 3
    ON CONFLICT (tenant, entity, entity_id) DO UPDATE SET updated_at = excluded.updated_at;
    FOR touched IN
        SELECT t AS tenant, e AS entity, i AS entity_id
        FROM unnest(tenants, entities, entity_ids) AS b(t, e, i)
        WHERE t IS NOT NULL AND e IS NOT NULL AND i IS NOT NULL
        UNION
        SELECT coalesce(m.tenant, ''), 'message', audit_message_record_id(m.payload)
        FROM audit_log m
        WHERE m.event_type = 'MalformedMessage'
          AND (m.event_id = ANY(event_ids)
               OR (m.tenant, m.entity, m.entity_id) IN
                  (SELECT * FROM unnest(tenants, entities, entity_ids)))
    LOOP
        DELETE FROM audit_record_state s
        WHERE s.tenant = touched.tenant AND s.entity = touched.entity
          AND s.entity_id = touched.entity_id;
        INSERT INTO audit_record_state
        SELECT * FROM audit_record_status v
        WHERE v.entity_id = touched.entity_id AND v.entity = touched.entity
          AND v.tenant = touched.tenant;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit_record_state_refresh(text[], text[], text[], text[]) FROM PUBLIC;

-- Retires a partition as in 006, and its event ids with it.
CREATE OR REPLACE FUNCTION audit_log_retire_partition(partition_name text, exported_rows bigint)
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
    EXECUTE format('DELETE FROM audit_event_id e USING %s p WHERE e.event_id = p.event_id',
                   part);
    EXECUTE format('DROP TABLE %s', part);
    RETURN counted;
END
$$;
