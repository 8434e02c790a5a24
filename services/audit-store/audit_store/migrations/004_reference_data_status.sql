-- Reference data (credit terms, VAT categories, GL accounts, dimension values) has change
-- events of its own: the status view counts them as it counts suppliers, orders and invoices.
-- Otherwise as 003.
CREATE OR REPLACE VIEW audit_record_status AS
WITH changes AS (
    SELECT *
    FROM audit_log
    WHERE event_type IN ('SupplierChanged', 'PurchaseOrderChanged', 'SupplierInvoiceChanged',
                         'CreditTermChanged', 'VatCategoryChanged', 'AccountChanged',
                         'DimensionValueChanged')
      AND tenant IS NOT NULL AND entity IS NOT NULL AND entity_id IS NOT NULL
), results AS (
    SELECT r.*
    FROM audit_log r
    WHERE r.event_type = 'DeliveryResult'
      AND r.tenant IS NOT NULL AND r.entity IS NOT NULL AND r.entity_id IS NOT NULL
      -- A result counts only when it answers a change the log holds: same record, same
      -- version. One that answers nothing (forged, or from a stray producer) is in the log,
      -- visible in lineage, but moves no record's state.
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
