-- What could not be read is a state of its own, `malformed`, never a silent pending:
-- - an UnreadableRecord (a Visma record visma-reader could not read) is the record's latest
--   change and answers itself;
-- - a MalformedMessage (a message on visma.changes the writer could not read) answers the
--   change its body names, when the log holds that change (same record, same version), like
--   a result;
-- - any other MalformedMessage (garbage) is a row of its own: entity 'message', the id its
--   place in Kafka (topic[partition]@offset).
-- Reasons name the fields that failed (category Malformed), never their values. Otherwise as
-- 004 (reference data counted like suppliers, orders and invoices).
CREATE OR REPLACE VIEW audit_record_status AS
WITH changes AS (
    SELECT *
    FROM audit_log
    WHERE event_type IN ('SupplierChanged', 'PurchaseOrderChanged', 'SupplierInvoiceChanged',
                         'CreditTermChanged', 'VatCategoryChanged', 'AccountChanged',
                         'DimensionValueChanged', 'UnreadableRecord')
      AND tenant IS NOT NULL AND entity IS NOT NULL AND entity_id IS NOT NULL
), answers AS (
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
), results AS (
    SELECT seq, tenant, entity, entity_id, event_id, event_time, event_type,
           payload ->> 'change_event_id' AS answers_change, payload
    FROM answers
    UNION ALL
    SELECT seq, tenant, entity, entity_id, event_id, event_time, event_type,
           event_id AS answers_change, payload
    FROM changes
    WHERE event_type = 'UnreadableRecord'
), unreadable AS (
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
), latest_change AS (
    SELECT DISTINCT ON (tenant, entity, entity_id)
        tenant, entity, entity_id,
        event_id AS latest_change_id,
        event_time AS latest_change_at,
        replay_of AS latest_change_replay_of,
        payload ->> 'supplier_number' AS change_supplier_number,
        payload ->> 'content_hash' AS content_hash
    FROM changes
    ORDER BY tenant, entity, entity_id, event_time DESC, seq DESC
), latest_result AS (
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
), change_counts AS (
    SELECT tenant, entity, entity_id,
        count(*) AS changes,
        count(replay_of) AS replays,
        min(event_time) AS first_change_at
    FROM changes
    GROUP BY tenant, entity, entity_id
), result_counts AS (
    SELECT tenant, entity, entity_id, count(*) AS results
    FROM results
    GROUP BY tenant, entity, entity_id
), stray_messages AS (
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
