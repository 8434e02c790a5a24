-- The quota plan of one Visma company and client (docs/visma-net.md §8.3), in the row
-- visma_quota_plan: each statement reads and writes the row under its own row lock, so the
-- processes sharing it never race and nobody holds a lock while waiting for the window.
-- The live lane may use the whole limit, the bulk lane stops `reserve` calls short of it.
-- A parameter's type is given where it first appears.

-- name: take
-- Counts $6 calls of lane $5 ('live' or 'bulk') against the window, if the lane has them
-- left. A window past its end starts anew (its end estimated until an answer says it).
-- Returns whether the calls were granted and when the window ends (NULL: not known yet).
-- $1 company, $2 client, $3 reserve fraction, $4 window seconds.
INSERT INTO visma_quota_plan AS q (company_id, client_id, reserve_fraction, window_seconds,
                                   used, granted)
VALUES ($1::text, $2::text, $3::float8, $4::float8, $6::int, true)
ON CONFLICT (company_id, client_id) DO UPDATE
SET (reserve_fraction, window_seconds, used, resets_at, granted,
     live_refused, bulk_refused, bulk_spent_at) = (
    SELECT $3, $4,
           w.used + CASE WHEN g.ok THEN $6 ELSE 0 END,
           w.resets_at,
           g.ok,
           w.live_refused + CASE WHEN NOT g.ok AND $5::text = 'live' THEN 1 ELSE 0 END,
           w.bulk_refused + CASE WHEN NOT g.ok AND $5 = 'bulk' THEN 1 ELSE 0 END,
           CASE WHEN NOT g.ok AND $5 = 'bulk' THEN coalesce(w.bulk_spent_at, w.now)
                ELSE w.bulk_spent_at END
    FROM (
        SELECT c.now,
               CASE WHEN f.fresh THEN 0 ELSE q.used END AS used,
               CASE WHEN f.fresh THEN c.now + make_interval(secs => $4)
                    ELSE q.resets_at END AS resets_at,
               CASE WHEN f.fresh THEN 0 ELSE q.live_refused END AS live_refused,
               CASE WHEN f.fresh THEN 0 ELSE q.bulk_refused END AS bulk_refused,
               CASE WHEN f.fresh THEN NULL ELSE q.bulk_spent_at END AS bulk_spent_at
        FROM (SELECT clock_timestamp() AS now) AS c,
             LATERAL (SELECT q.resets_at IS NOT NULL AND q.resets_at <= c.now AS fresh) AS f
    ) AS w,
    LATERAL (
        SELECT q.quota_limit IS NULL
               OR w.used + $6 <= q.quota_limit - CASE WHEN $5 = 'bulk'
                   THEN ceil(q.quota_limit * $3)::int ELSE 0 END AS ok
    ) AS g
)
RETURNING q.granted, q.resets_at;

-- name: observe
-- What an answer's headers said: $3 limit, $4 remaining, $5 seconds until the window ends;
-- $6 the seconds of slack the comparisons allow (the header is rounded up to a second).
-- An answer whose window ends well after the plan's is the first of a new window: Visma's
-- count replaces the plan's. One whose window ends well before it is from the window
-- before, answered late: ignored. Otherwise the higher count wins (calls in flight are
-- counted here before Visma counts them), and the later end.
UPDATE visma_quota_plan q
SET (quota_limit, used, resets_at, live_refused, bulk_refused, bulk_spent_at) = (
    SELECT $3::int,
           CASE WHEN s.newer THEN $3 - $4::int ELSE greatest(q.used, $3 - $4) END,
           CASE WHEN s.newer THEN s.ends ELSE greatest(q.resets_at, s.ends) END,
           CASE WHEN s.newer THEN 0 ELSE q.live_refused END,
           CASE WHEN s.newer THEN 0 ELSE q.bulk_refused END,
           CASE WHEN s.newer THEN NULL ELSE q.bulk_spent_at END
    FROM (
        SELECT e.ends,
               q.resets_at IS NULL
               OR e.ends > q.resets_at + make_interval(secs => $6::float8) AS newer
        FROM (SELECT clock_timestamp() + make_interval(secs => $5::float8) AS ends) AS e
    ) AS s
)
WHERE q.company_id = $1::text AND q.client_id = $2::text
  AND (q.resets_at IS NULL
       OR clock_timestamp() + make_interval(secs => $5) >= q.resets_at - make_interval(secs => $6));

-- name: plans
-- Every company's plan as it stands, for the status and the console.
SELECT company_id, client_id, quota_limit, reserve_fraction, window_seconds, used, resets_at,
       live_refused, bulk_refused, bulk_spent_at, clock_timestamp() AS now
FROM visma_quota_plan
ORDER BY company_id, client_id;
