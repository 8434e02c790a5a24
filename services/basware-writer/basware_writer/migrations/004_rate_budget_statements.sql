-- The request budget's statements live in basware_writer/rate_budget.sql now, read and
-- tested in one place; the PL/pgSQL functions of 002 that held them go.
DROP FUNCTION writer_take_budget(text, text, double precision, double precision, double precision);
DROP FUNCTION writer_slow_budget(
    text, text, double precision, double precision, double precision, double precision,
    double precision, boolean
);
