"""The request budget in PostgreSQL (mlconnector/basware/rate_budget.sql), shared by writer
instances (here: two pools)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from writer_support import quick_settings

from mlconnector.basware.rate_budget import RateBudget
from mlconnector.migrations import apply_migrations

pytestmark = pytest.mark.integration

RATE, BURST = 20.0, 4.0


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    first = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    second = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with first.acquire() as conn:
        await apply_migrations(conn, "basware_writer", owner="basware-writer")
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


LIMITS = quick_settings(rate_per_second=RATE, rate_burst=BURST, rate_recovery_seconds=30.0)


async def reserve(pool: asyncpg.Pool, tenant: str = "t1", region: str = "EU") -> float:
    """The wait the budget hands out, without sleeping it."""
    (wait,) = await RateBudget(pool, LIMITS).reserve(tenant, region)
    return wait


async def test_instances_take_from_one_budget_at_its_rate(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    first, second = pools
    started = time.monotonic()
    waits = await asyncio.gather(*(reserve(p) for _ in range(10) for p in (first, second)))
    elapsed = time.monotonic() - started
    # 20 reservations: BURST at once, the rest one every 1/RATE seconds, whoever asks.
    assert sorted(waits)[: int(BURST)] == [0.0] * int(BURST)
    assert max(waits) + elapsed >= (20 - BURST) / RATE
    # Another tenant (or region) has a budget of its own.
    assert await reserve(first, tenant="t2") == 0.0
    assert await reserve(second, region="US") == 0.0


async def test_a_429_halves_the_rate_and_its_retry_after_holds_every_instance(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    first, second = pools
    settings = quick_settings(rate_per_second=RATE, rate_burst=BURST, rate_min_per_second=1.0)
    budget = RateBudget(first, settings)
    await reserve(second)
    pushed = time.monotonic()
    await budget.push_back("t1", "EU", retry_after=0.5, rate_limited=True)
    waits = [await reserve(second) for _ in range(3)]
    since = time.monotonic() - pushed
    state = await first.fetchrow(
        "SELECT rate, extract(epoch FROM tat - blocked_until)::float8 AS ahead FROM writer_budget "
        "WHERE tenant = 't1' AND region = 'EU'"
    )
    assert state is not None
    assert state["rate"] == pytest.approx(RATE / 2, rel=0.01)
    # Nobody sends before the Retry-After has passed ...
    assert waits[0] + since >= 0.5
    assert waits == sorted(waits)
    # ... and then one every 1/rate without a burst: the three slots taken end 3/rate (plus
    # the burst allowance) after the block.
    assert state["ahead"] == pytest.approx(3 * 2 / RATE + (BURST - 1) * 2 / RATE, abs=0.01)

    # A 503 with Retry-After holds the budget without lowering the rate.
    await budget.push_back("t1", "EU", retry_after=1.0, rate_limited=False)
    held = await first.fetchrow(
        "SELECT rate, extract(epoch FROM blocked_until - clock_timestamp())::float8 AS left "
        "FROM writer_budget WHERE tenant = 't1' AND region = 'EU'"
    )
    assert held is not None
    assert held["rate"] >= RATE / 2
    assert 0 < held["left"] <= 1.0


async def test_slots_reserved_together_keep_the_rate_and_the_burst(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    first, _ = pools
    waits = await RateBudget(first, LIMITS).reserve("t1", "EU", slots=10)
    # BURST at once, then one every 1/RATE, as if they had been taken one by one.
    assert waits[: int(BURST)] == [0.0] * int(BURST)
    steps = [b - a for a, b in zip(waits[int(BURST) - 1 :], waits[int(BURST) :], strict=False)]
    assert steps == pytest.approx([1 / RATE] * (10 - int(BURST)), abs=0.002)
    # The next taker queues behind all ten.
    assert await reserve(first) == pytest.approx(10 / RATE - BURST / RATE + 1 / RATE, abs=0.01)


async def test_a_slot_waited_for_is_not_used_inside_a_retry_after_given_meanwhile(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    """An instance reserves a slot half a second ahead; while it waits, another instance is
    told Retry-After: 1. The slot is not used before that block has passed."""
    first, second = pools
    settings = quick_settings(rate_per_second=2.0, rate_burst=1.0, rate_min_per_second=1.0)
    waiting, told = RateBudget(first, settings), RateBudget(second, settings)
    await waiting.take("t1", "EU")  # the burst: the next slot is 1/rate ahead
    taking = asyncio.create_task(waiting.take("t1", "EU"))
    async with asyncio.timeout(10):
        while await first.fetchval(
            "SELECT tat < clock_timestamp() + interval '0.8 s' FROM writer_budget "
            "WHERE tenant = 't1' AND region = 'EU'"
        ):
            await asyncio.sleep(0.01)  # until the waiting instance has its slot
    await told.push_back("t1", "EU", retry_after=1.0, rate_limited=True)
    pushed = time.monotonic()
    await taking
    assert time.monotonic() - pushed >= 1.0
