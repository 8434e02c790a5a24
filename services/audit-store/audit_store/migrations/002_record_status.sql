-- Where each record (tenant, entity, entity_id) stands: its latest change, its latest
-- result and their counts and times. A view over the log, so it is derived on every read
-- and can never disagree with it.
--
-- state is the latest result's outcome when that result answers the latest change, and
-- 'pending' while the latest change (a new version, or a replay) has no result yet.
CREATE VIEW audit_record_status AS
WITH changes AS (
    SELECT *
    FROM audit_log
    WHERE event_type IN ('SupplierChanged', 'PurchaseOrderChanged', 'SupplierInvoiceChanged')
      AND tenant IS NOT NULL AND entity IS NOT NULL AND entity_id IS NOT NULL
), results AS (
    SELECT *
    FROM audit_log
    WHERE event_type = 'DeliveryResult'
      AND tenant IS NOT NULL AND entity IS NOT NULL AND entity_id IS NOT NULL
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
    SELECT DISTINCT ON (tenant, entity, entity_id)
        tenant, entity, entity_id,
        event_id AS latest_result_id,
        event_time AS latest_result_at,
        payload ->> 'change_event_id' AS result_change_id,
        payload ->> 'outcome' AS outcome,
        coalesce(payload -> 'reasons', '[]'::jsonb) AS reasons,
        CASE WHEN jsonb_typeof(payload -> 'attempts') = 'number'
             THEN round((payload ->> 'attempts')::numeric)::bigint END AS attempts,
        payload ->> 'region' AS region,
        payload ->> 'request_id' AS request_id,
        payload ->> 'supplier_number' AS result_supplier_number
    FROM results
    ORDER BY tenant, entity, entity_id, event_time DESC, seq DESC
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
LEFT JOIN result_counts rc USING (tenant, entity, entity_id);
