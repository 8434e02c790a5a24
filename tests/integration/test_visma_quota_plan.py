"""The Visma quota plan in PostgreSQL (mlconnector/visma/quota_plan.sql), shared by every
process that calls Visma for a company (here: two pools), and a client that asks it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from pydantic import SecretStr

from mlconnector.retry import Backoff
from mlconnector.visma import (
    VismaClient,
    VismaCredentials,
    VismaEndpoints,
    VismaNotFoundError,
    VismaSupplier,
)
from mlconnector.visma.credentials import VismaClientSettings
from mlconnector.visma.quota_plan import (
    QuotaPlan,
    QuotaSettings,
    migrate_quota_plan,
    read_quota_plans,
)
from mlconnector.visma.ratelimit import QuotaLane, QuotaSpent, RateLimitStatus
from visma_sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SandboxConfig, SeedOptions
from visma_sandbox.runner import run_visma_sandbox

pytestmark = pytest.mark.integration

COMPANY, CLIENT = "1000001", "client"


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    first = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    second = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    await migrate_quota_plan(first)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def plans(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], window: float = 3600
) -> tuple[QuotaPlan, QuotaPlan]:
    settings = QuotaSettings(reserve=0.1, window_seconds=window)
    return QuotaPlan(pools[0], settings), QuotaPlan(pools[1], settings)


async def test_processes_share_one_plan_and_bulk_work_stops_at_the_live_reserve(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    reader, writer = plans(pools)
    # Before any answer the limit is unknown: calls go.
    assert (await writer.take(COMPANY, CLIENT, QuotaLane.BULK))[0]
    await reader.observe(
        COMPANY, CLIENT, RateLimitStatus(limit=20, remaining=19, reset_seconds=600)
    )
    # 20 calls, 2 kept for live work: 17 more bulk calls, taken by both processes at once.
    taken = await asyncio.gather(
        *(p.take(COMPANY, CLIENT, QuotaLane.BULK) for _ in range(10) for p in (reader, writer))
    )
    assert sum(granted for granted, _ in taken) == 17
    refused_until = {resets_at for granted, resets_at in taken if not granted}
    assert len(refused_until) == 1
    (resets_at,) = refused_until
    assert resets_at is not None
    assert 590 < (resets_at - datetime.now(UTC)).total_seconds() <= 601
    # The live lane still has its reserve, and then no more.
    assert [(await reader.take(COMPANY, CLIENT, QuotaLane.LIVE))[0] for _ in range(3)] == [
        True,
        True,
        False,
    ]
    async with pools[0].acquire() as conn:
        (standing,) = await read_quota_plans(conn)
    assert (standing.used, standing.quota_limit, standing.reserve) == (20, 20, 2)
    assert standing.bulk_spent
    assert (standing.bulk_refused, standing.live_refused) == (3, 1)
    # Another company (or client) has a plan of its own.
    assert (await writer.take("1000002", CLIENT, QuotaLane.BULK))[0]


async def test_a_new_window_counts_afresh_and_a_late_answer_of_the_last_one_is_ignored(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    reader, writer = plans(pools)
    await writer.take(COMPANY, CLIENT, QuotaLane.BULK)
    await writer.observe(COMPANY, CLIENT, RateLimitStatus(limit=10, remaining=0, reset_seconds=1))
    granted, _ = await writer.take(COMPANY, CLIENT, QuotaLane.LIVE)
    assert not granted
    # The first answer of the next window: Visma's count replaces the plan's.
    await reader.observe(COMPANY, CLIENT, RateLimitStatus(limit=10, remaining=9, reset_seconds=60))
    assert (await writer.take(COMPANY, CLIENT, QuotaLane.BULK))[0]
    # An answer of the window before, arriving late, changes nothing.
    await reader.observe(COMPANY, CLIENT, RateLimitStatus(limit=10, remaining=0, reset_seconds=1))
    async with pools[0].acquire() as conn:
        (standing,) = await read_quota_plans(conn)
    assert standing.used == 2
    assert not standing.bulk_spent


async def bulk_until_refused(client: VismaClient) -> QuotaSpent:
    """Bulk downloads that may not wait, until the plan refuses one."""
    while True:
        try:
            await client.get_attachment("none", lane=QuotaLane.BULK, wait_for_quota=False)
        except VismaNotFoundError:
            continue
        except QuotaSpent as spent:
            return spent


async def test_a_client_on_the_plan_reads_past_a_spent_window_without_a_429(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    config = SandboxConfig(
        seed=SeedOptions(companies=1, suppliers=20, purchase_orders=0, invoices=0)
    )
    config.settings.rate_limit = 6
    config.settings.rate_limit_window_seconds = 2
    reader, writer = plans(pools, window=2)
    async with run_visma_sandbox(config) as sandbox:
        company = sandbox.state.company(COMPANY).info
        creds = VismaCredentials(
            client_id=DEMO_CLIENT_ID,
            client_secret=SecretStr(DEMO_CLIENT_SECRET),
            tenant_id=company.tenant_id,
            company_id=COMPANY,
        )
        endpoints = VismaEndpoints(token_url=sandbox.token_url, api_base_url=sandbox.api_base_url)
        fast = VismaClientSettings(backoff=Backoff(base_seconds=0.01, cap_seconds=0.05))
        live = VismaClient(creds, endpoints, fast, quota=reader.gate(COMPANY, DEMO_CLIENT_ID))
        bulk = VismaClient(creds, endpoints, fast, quota=writer.gate(COMPANY, DEMO_CLIENT_ID))
        async with live, bulk:
            rows = [r async for page in live.iter_pages(VismaSupplier, page_size=2) for r in page]
            # The live reader waited for each reset; a bulk call that may not wait is refused
            # by the plan, without asking Visma, once only the reserve is left.
            spent = await bulk_until_refused(bulk)
        assert spent.lane is QuotaLane.BULK
        assert len({r.record_id for r in rows}) == 20
        statuses = [e.status for e in sandbox.state.log.entries() if e.route == "supplier.list"]
        assert 429 not in statuses
        assert statuses.count(200) >= 10
