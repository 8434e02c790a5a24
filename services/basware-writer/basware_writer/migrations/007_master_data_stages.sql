-- Master data (payment terms, tax codes, accounts, cost centers, projects) is followed to
-- requestStatus like vendors: one pending stage per Basware route.
ALTER TABLE writer_pending DROP CONSTRAINT writer_pending_stage_check;
ALTER TABLE writer_pending ADD CONSTRAINT writer_pending_stage_check CHECK (
    stage IN (
        'payment_term', 'tax_code', 'account', 'cost_center', 'project',
        'vendor', 'order', 'lines'
    )
);
