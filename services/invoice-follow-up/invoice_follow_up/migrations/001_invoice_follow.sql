-- Each uploaded invoice, its Visma side and its Basware side, and which of the connector's
-- own steps (transferResponse, paymentResponse) are claimed or done. A claim is taken with a
-- conditional UPDATE, so two instances never post twice.
-- webhook-gateway created this table (with these columns) before the follow-up became a
-- service of its own, so it is created only where it does not exist: a database the gateway
-- set up keeps its rows.
CREATE TABLE IF NOT EXISTS invoice_follow (
    tenant                 text        NOT NULL,
    supplier_code          text        NOT NULL,
    invoice_number         text        NOT NULL,
    visma_document_type    text,
    visma_reference_number text,
    visma_paid             boolean     NOT NULL DEFAULT false,
    visma_total            double precision,
    visma_note             text,
    basware_invoice_id     text,
    company_code           text,
    invoice_date           timestamptz,
    processing_status      text,
    outcome                text,
    transfer_claimed_at    timestamptz,
    transferred_at         timestamptz,
    payment_claimed_at     timestamptz,
    payment_posted_at      timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, supplier_code, invoice_number)
);
-- The periodic check reads the invoices still under way.
CREATE INDEX IF NOT EXISTS invoice_follow_open ON invoice_follow (tenant)
    WHERE payment_posted_at IS NULL AND outcome IS DISTINCT FROM 'rejected'
      AND outcome IS DISTINCT FROM 'paid';
