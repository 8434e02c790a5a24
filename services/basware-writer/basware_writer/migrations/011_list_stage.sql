-- Generic-list items (a coding dimension's values, /v1/lists/{listKey}) are followed to
-- requestStatus like the other master data: one more pending stage.
ALTER TABLE writer_pending DROP CONSTRAINT writer_pending_stage_check;
ALTER TABLE writer_pending ADD CONSTRAINT writer_pending_stage_check CHECK (
    stage IN (
        'payment_term', 'tax_code', 'account', 'cost_center', 'project', 'list',
        'vendor', 'order', 'lines'
    )
);
