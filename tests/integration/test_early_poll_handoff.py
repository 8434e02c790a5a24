"""A notification that reaches a reader not holding its connection's lease still makes that
connection's holder poll early (handoff.py): two readers in one consumer group share two
companies, one each, and the notifications topic has one partition, so one reader reads the
notifications of both companies and hands one of them to the other reader. The Visma
sandbox's request log shows each company polled early by its holder (the token of the
holder's last cycle), long before the scheduled poll. And requests for one connection merge
into one early poll of the widest entity asked."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from faststream.kafka import KafkaBroker
from pydantic import SecretStr
from reader_support import (
    add_company,
    private_topic,
    seed_company,
    visma_credentials,
    visma_endpoints,
)

from mlconnector.asgi import serve_asgi
from mlconnector.basware import BaswareCredentials
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import Entity, VismaNotification
from mlconnector.kafka import make_broker, publish_events
from mlconnector.migrations import apply_migrations
from mlconnector.settings import DatabaseSettings, KafkaSettings
from visma_reader.app import create_app
from visma_reader.handoff import EarlyPollHandoff
from visma_reader.settings import ReaderSettings
from visma_sandbox import (
    CompanyState,
    RunningSandbox,
    SandboxConfig,
    SeedOptions,
    run_visma_sandbox,
)

pytestmark = pytest.mark.integration

# Far longer than the test's guard: an early poll seen in the test came from a notification.
POLL_SECONDS = 300.0
# Renewed every third of it: a handoff taken on renewal alone would come this late.
LEASE_SECONDS = 30.0
LAST_OF_A_CYCLE = "supplierinvoice.list"


async def until(done: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    # A guard against a hang, not a timed assertion; shorter than POLL_SECONDS.
    async with asyncio.timeout(120):
        while True:
            answer = done()
            if answer if isinstance(answer, bool) else await answer:
                return
            await asyncio.sleep(0.1)


def cycle_tokens(sandbox: RunningSandbox, company: str) -> list[str]:
    """The tokens that made a whole poll cycle of the company, by first use: one per tenure."""
    tokens: list[str] = []
    for entry in sandbox.state.log.entries(company_id=company):
        if entry.route == LAST_OF_A_CYCLE and entry.token_id and entry.token_id not in tokens:
            tokens.append(entry.token_id)
    return tokens


async def lease_holders(database_url: str, names: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT connection, holder FROM visma_connection_lease"
            " WHERE connection = ANY($1::text[]) AND holder IS NOT NULL AND expires_at > now()",
            names,
        )
    finally:
        await conn.close()
    return {row["connection"]: row["holder"] for row in rows}


@contextlib.asynccontextmanager
async def reader(
    kafka: KafkaSettings,
    database_url: str,
    connections: list[Connection],
    instance: str,
    changes: str,
    notifications: str,
) -> AsyncIterator[None]:
    app = create_app(
        kafka,
        DatabaseSettings(database_url=database_url),
        ReaderSettings(
            poll_interval_seconds=POLL_SECONDS,
            lease_seconds=LEASE_SECONDS,
            instance=instance,
        ),
        connections=StaticConnectionSource(connections),
        changes_topic=changes,
        notifications_topic=notifications,
    )
    async with serve_asgi(app):
        yield


def connection_of(sandbox: RunningSandbox, company: CompanyState) -> Connection:
    return Connection(
        name=f"handoff-{company.company_id}-{uuid.uuid4().hex[:6]}",
        visma=visma_credentials(company),
        visma_endpoints=visma_endpoints(sandbox),
        basware=BaswareCredentials(client_id="unused", client_secret=SecretStr("unused")),
    )


async def test_a_notification_read_by_the_other_reader_makes_the_holder_poll_early(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    async with run_visma_sandbox(SandboxConfig(seed=SeedOptions(companies=0))) as sandbox:
        companies = [add_company(sandbox) for _ in range(2)]
        for company in companies:
            seed_company(company, SeedOptions(suppliers=3, purchase_orders=1, invoices=1))
        connections = [connection_of(sandbox, company) for company in companies]
        names = [c.name for c in connections]
        ids = [company.company_id for company in companies]
        changes = await private_topic(kafka_settings)
        notifications = await private_topic(kafka_settings, "visma.notifications")
        first, second = (f"handoff-{n}-{uuid.uuid4().hex[:6]}" for n in (1, 2))
        run = (kafka_settings, database_url, connections)
        async with reader(*run, first, changes, notifications):
            # Alone, the first reader holds both connections and backfills both.
            await until(lambda: all(cycle_tokens(sandbox, c) for c in ids), "both backfilled")
            async with reader(*run, second, changes, notifications):

                async def split() -> bool:
                    holders = await lease_holders(database_url, names)
                    return len(holders) == 2 and set(holders.values()) == {first, second}

                await until(split, "one connection each")
                # The connection that moved is polled by its new holder from its cursor.
                await until(
                    lambda: any(len(cycle_tokens(sandbox, c)) == 2 for c in ids),
                    "the moved connection polled by the second reader",
                )
                holders = await lease_holders(database_url, names)
                holder_tokens = {c: cycle_tokens(sandbox, c)[-1] for c in ids}
                notified_at = time.time()
                broker: KafkaBroker = make_broker(kafka_settings, client_id="test-handoff")
                async with broker:
                    await broker.start()
                    await publish_events(
                        broker,
                        notifications,
                        [
                            VismaNotification(
                                event_id=str(uuid.uuid4()),
                                tenant=company_id,
                                notification_id=str(uuid.uuid4()),
                                entity=Entity.SUPPLIER,
                                event="Updated",
                                record_key="1",
                            )
                            for company_id in ids
                        ],
                    )

                def early_polls() -> dict[str, list[tuple[float, str | None]]]:
                    return {
                        c: [
                            (e.at, e.token_id)
                            for e in sandbox.state.log.entries(company_id=c)
                            if e.route == "supplier.list" and e.at > notified_at
                        ]
                        for c in ids
                    }

                await until(lambda: all(early_polls().values()), "both companies polled early")
                polls = early_polls()
                assert await lease_holders(database_url, names) == holders
    for company_id in ids:
        assert polls[company_id][0][1] == holder_tokens[company_id], (polls, holder_tokens)
    latency = max(polls[c][0][0] for c in ids) - notified_at
    print(f"both companies polled early {latency:.2f} s after the notifications were published")


async def test_requests_merge_into_the_widest_entity_and_are_taken_once(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, "visma_reader", owner="visma-reader")
    finally:
        await conn.close()
    narrow, everything = (f"handoff-merge-{uuid.uuid4().hex[:6]}" for _ in range(2))
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        handoff = EarlyPollHandoff(pool, database_url)
        for entity in (Entity.SUPPLIER, Entity.PURCHASE_ORDER, Entity.SUPPLIER):
            await handoff.request(narrow, entity)
        await handoff.request(everything, None)
        await handoff.request(everything, Entity.SUPPLIER)
        assert await handoff.take([narrow, everything]) == {
            narrow: Entity.PURCHASE_ORDER,
            everything: None,
        }
        assert await handoff.take([narrow, everything]) == {}
