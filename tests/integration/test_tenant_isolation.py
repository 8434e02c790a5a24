"""One tenant's trouble never slows another (issue 21, item 2): one visma-reader polls four
companies on the real broker and database; Visma answers one company 401 on every call,
another 429, and a third takes 10 s per call. The healthy company goes on polling on its
schedule while the slow call is in flight, the failing ones back off on their own, and once
the faults are cleared every company's suppliers are published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from conftest import TopicNames
from pipeline_support import read_events
from sandbox_support import sandbox_connection, sandboxes, seeded_records

from mlconnector.asgi import serve_asgi
from mlconnector.connections import StaticConnectionSource
from mlconnector.contracts import ChangeEvent, Entity, Event
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from visma_reader.app import create_app as create_reader
from visma_reader.settings import ReaderSettings
from visma_sandbox.config import SeedOptions
from visma_sandbox.faults import FaultRule
from visma_sandbox.requestlog import LoggedRequest
from visma_sandbox.runner import RunningSandbox

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=4, suppliers=2, purchase_orders=0, invoices=0)
HEALTHY, UNAUTHORISED, LIMITED, SLOW = "1000001", "1000002", "1000003", "1000004"
SLOW_CALL_MS = 10_000
POLL_SECONDS = 0.5
# What the healthy company must poll while one slow call is in flight: a reader whose
# tenants waited on each other would manage none.
CYCLES_DURING_A_SLOW_CALL = 3


def api_calls(visma: RunningSandbox, company: str) -> list[LoggedRequest]:
    """The company's ERP calls, token fetches left out."""
    return [e for e in visma.state.log.entries(company_id=company) if e.route != "token"]


async def until(done: Callable[[], bool]) -> None:
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(90):
        while not done():
            await asyncio.sleep(0.05)


def suppliers_published(
    visma: RunningSandbox, companies: list[str]
) -> Callable[[list[Event]], bool]:
    wanted = {
        (tenant, entity_id)
        for company in companies
        for tenant, entity, entity_id in seeded_records(visma, company)
        if entity is Entity.SUPPLIER
    }

    def done(events: list[Event]) -> bool:
        seen = {
            (e.tenant, e.entity_id)
            for e in events
            if isinstance(e, ChangeEvent) and e.entity is Entity.SUPPLIER
        }
        return wanted <= seen

    return done


async def test_a_tenant_answered_401_429_or_slowly_never_delays_the_others(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    async with sandboxes(seed=SEED) as (basware, visma):
        state = visma.state
        state.add_fault(FaultRule(path="/v1/*", company_id=UNAUTHORISED, status=401))
        state.add_fault(FaultRule(path="/v1/*", company_id=LIMITED, status=429, retry_after=1))
        state.add_fault(FaultRule(path="/v1/*", company_id=SLOW, delay_ms=SLOW_CALL_MS))
        companies = [HEALTHY, UNAUTHORISED, LIMITED, SLOW]
        connections = [sandbox_connection(basware, visma, visma_company=c) for c in companies]
        reader = create_reader(
            kafka_settings,
            DatabaseSettings(database_url=database_url),
            ReaderSettings(poll_interval_seconds=POLL_SECONDS),
            connections=StaticConnectionSource(connections),
            changes_topic=topics[Topic.VISMA_CHANGES],
            notifications_topic=topics[Topic.VISMA_NOTIFICATIONS],
        )
        async with serve_asgi(reader):
            # The slow company's first call is logged once answered, with its arrival time.
            await until(lambda: bool(api_calls(visma, SLOW)))
            slow = api_calls(visma, SLOW)[0]
            in_flight = (slow.at, slow.at + SLOW_CALL_MS / 1000)
            healthy = [e.at for e in state.log.entries(company_id=HEALTHY, route="supplier.list")]
            during = [at for at in healthy if in_flight[0] <= at <= in_flight[1]]
            assert len(during) >= CYCLES_DURING_A_SLOW_CALL, (during, in_flight)

            # The failing companies were tried again, on their own backoff: every call
            # refused, and far fewer of them than the healthy company made meanwhile.
            healthy_calls = len(api_calls(visma, HEALTHY))
            for company, status in ((UNAUTHORISED, 401), (LIMITED, 429)):
                calls = api_calls(visma, company)
                assert calls, company
                assert {e.status for e in calls} == {status}
                assert len(calls) < healthy_calls, (company, len(calls), healthy_calls)

            print(
                f"healthy: {len(during)} cycles during one 10 s call of the slow company;"
                f" {healthy_calls} calls against 401: {len(api_calls(visma, UNAUTHORISED))},"
                f" 429: {len(api_calls(visma, LIMITED))}"
            )
            # The faults end: each company catches up on its own.
            state.faults.clear()
            await read_events(
                kafka_settings, topics[Topic.VISMA_CHANGES], suppliers_published(visma, companies)
            )
