-- Purchase receipts as last read. A purchase order's change event carries the receipts whose
-- lines point at it (three-way matching); this index answers "which receipts has order N"
-- without asking Visma, and "which orders did this receipt touch" when a receipt changes.
CREATE TABLE visma_purchase_receipt (
    tenant        text      NOT NULL,
    receipt_nbr   text      NOT NULL,
    content_hash  text      NOT NULL,
    last_modified timestamp NOT NULL,
    record        jsonb     NOT NULL,  -- the receipt as read, without the list metadata
    PRIMARY KEY (tenant, receipt_nbr)
);

-- The orders each receipt's lines point at (PurchaseReceiptLine.poOrderNbr).
CREATE TABLE visma_purchase_receipt_order (
    tenant      text NOT NULL,
    order_nbr   text NOT NULL,
    receipt_nbr text NOT NULL,
    PRIMARY KEY (tenant, order_nbr, receipt_nbr)
);
CREATE INDEX visma_purchase_receipt_order_by_receipt
    ON visma_purchase_receipt_order (tenant, receipt_nbr);

-- Orders to publish again because one of their receipts changed. Written in the same
-- transaction as the receipt, deleted only after Kafka acknowledged the order's new event,
-- so a crash in between republishes rather than forgets.
CREATE TABLE visma_purchase_order_pending (
    tenant    text NOT NULL,
    order_nbr text NOT NULL,
    PRIMARY KEY (tenant, order_nbr)
);
