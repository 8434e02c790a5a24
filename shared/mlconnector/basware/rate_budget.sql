-- The request budget per Basware tenant and region, shared by every writer instance
-- (docs/basware-p2p.md §10.6): a token bucket kept as GCRA in the row writer_budget, where
-- `tat` is the theoretical arrival time of the next request. Up to `burst` requests go at
-- once, then one every 1/rate seconds. A 429 halves the rate (it climbs back linearly over
-- the recovery time) and a Retry-After blocks the whole budget until it has passed.
-- Each statement reads and writes the row under its own row lock, so instances never race.
-- A parameter's type is given where it first appears.

-- name: reserve
-- Reserves $6 consecutive request slots; returns the seconds to wait before each.
-- $1 tenant, $2 region, $3 rate per second, $4 burst, $5 recovery seconds, $6 slots.
INSERT INTO writer_budget AS b (tenant, region, rate, rate_at, tat, blocked_until)
SELECT $1::text, $2::text, $3::float8, c.now,
       c.now + make_interval(secs => $6::int / $3), '-infinity'
FROM (SELECT clock_timestamp() AS now) AS c
ON CONFLICT (tenant, region) DO UPDATE
SET (rate, rate_at, tat) = (
    SELECT r.rate, r.now,
           greatest(b.tat, r.now, b.blocked_until) + make_interval(secs => $6 / r.rate)
    FROM (
        SELECT c.now,
               least($3, b.rate + $3 / $5::float8
                         * greatest(0, extract(epoch FROM c.now - b.rate_at))) AS rate
        FROM (SELECT clock_timestamp() AS now) AS c
    ) AS r
)
RETURNING ARRAY(
    -- Slot k of n goes at tat - (n - k + burst - 1) / rate, not before now or the block.
    SELECT extract(epoch FROM greatest(
        b.rate_at,
        b.blocked_until,
        b.tat - make_interval(secs => ($6 - k + $4::float8 - 1) / b.rate)
    ) - b.rate_at)::float8
    FROM generate_series(0, $6 - 1) AS k
);

-- name: push_back
-- Basware pushed back: halve the rate (not below the floor) on a 429 ($8) and, with a
-- Retry-After ($7 seconds), send nothing before it has passed, then resume at the rate
-- without a burst.
-- $1 tenant, $2 region, $3 rate per second, $4 burst, $5 floor rate, $6 recovery seconds.
INSERT INTO writer_budget AS b (tenant, region, rate, rate_at, tat, blocked_until)
SELECT $1::text, $2::text, s.rate, s.now,
       s.until + make_interval(secs => ($4::float8 - 1) / s.rate), s.until
FROM (
    SELECT c.now,
           CASE WHEN $8::bool THEN greatest($5::float8, $3::float8 / 2) ELSE $3 END AS rate,
           c.now + make_interval(secs => coalesce($7::float8, 0)) AS until
    FROM (SELECT clock_timestamp() AS now) AS c
) AS s
ON CONFLICT (tenant, region) DO UPDATE
SET (rate, rate_at, blocked_until, tat) = (
    SELECT s.rate, s.now, s.until,
           greatest(b.tat, s.until + make_interval(secs => ($4 - 1) / s.rate))
    FROM (
        SELECT r.now,
               CASE WHEN $8 THEN greatest($5, r.rate / 2) ELSE r.rate END AS rate,
               greatest(b.blocked_until, r.now + make_interval(secs => coalesce($7, 0)))
                   AS until
        FROM (
            SELECT c.now,
                   least($3, b.rate + $3 / $6::float8
                             * greatest(0, extract(epoch FROM c.now - b.rate_at))) AS rate
            FROM (SELECT clock_timestamp() AS now) AS c
        ) AS r
    ) AS s
);

-- name: blocked
-- The seconds until the latest Retry-After of ($1 tenant, $2 region) has passed (0: none),
-- read again after every wait: a slot reserved before a 429 must not be used inside it.
SELECT coalesce(
    (SELECT extract(epoch FROM greatest(b.blocked_until, c.now) - c.now)::float8
     FROM writer_budget b, (SELECT clock_timestamp() AS now) AS c
     WHERE b.tenant = $1::text AND b.region = $2::text),
    0
);
