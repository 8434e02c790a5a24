"""What the visma-reader tests share: the reader on the real broker and PostgreSQL, reading a
company of the Visma sandbox over HTTP, and a consumer-side view of what it published.

Each test gets a company of its own (its own tenant, token and quota) and a private
single-partition copy of visma.changes, so reading that topic up to a sentinel event shows
everything the reader published, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from pydantic import SecretStr

from mlconnector.contracts import (
    MODEL_OF_ENTITY,
    ChangeEvent,
    Entity,
    VismaNotification,
    change_from_record,
)
from mlconnector.kafka import ensure_topics, event_from_message, make_broker, publish_events
from mlconnector.migrations import apply_migrations
from mlconnector.retry import Backoff
from mlconnector.settings import KafkaSettings
from mlconnector.visma import (
    READ_SCOPE,
    VismaClient,
    VismaClientSettings,
    VismaCredentials,
    VismaEndpoints,
)
from mlconnector.visma.models import (
    VismaPurchaseReceipt,
    VismaRecord,
)
from visma_reader.cursor_store import CursorStore
from visma_reader.poller import PollReport, Stream
from visma_reader.reader import Publish, Published, Reader
from visma_reader.receipt_index import ReceiptIndex, order_numbers
from visma_reader.settings import ReaderSettings
from visma_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, CompanyInfo, CompanyState
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox
from visma_sandbox.seed import demo_company_records, demo_suppliers

FAST_RETRIES = Backoff(base_seconds=0.01, cap_seconds=0.05, max_attempts=6)
_company_numbers = itertools.count(20)


def add_company(sandbox: RunningSandbox) -> CompanyState:
    """An empty company of its own: its own tenant, token and quota window."""
    return sandbox.state.add_company(CompanyInfo.demo(next(_company_numbers)))


def seed_company(
    company: CompanyState, options: SeedOptions, *, at: datetime | None = None, seed: int = 7
) -> None:
    """Nordic demo data (suppliers, orders with receipts, invoices), all stamped `at`."""
    records = demo_company_records(company.info, options, random.Random(seed))
    for entity, rows in records.items():
        company.load(entity, rows, at=at)


def load_suppliers(
    company: CompanyState, count: int, *, at: datetime | None = None, start: int = 1
) -> list[str]:
    """Adds `count` demo suppliers sharing one timestamp; returns every supplier number of
    the company in list (key) order."""
    rng = random.Random(start)
    company.load("supplier", demo_suppliers(rng, company.info.country, count, start), at=at)
    return [company.table("supplier").spec.key_text(r.key) for r in company.table("supplier")]


def visma_credentials(company: CompanyState) -> VismaCredentials:
    return VismaCredentials(
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretStr(DEMO_CLIENT_SECRET),
        tenant_id=company.info.tenant_id,
        company_id=company.company_id,
        scopes=(READ_SCOPE,),
    )


def visma_endpoints(sandbox: RunningSandbox) -> VismaEndpoints:
    return VismaEndpoints(token_url=sandbox.token_url, api_base_url=sandbox.api_base_url)


async def private_topic(kafka: KafkaSettings, name: str = "visma.changes") -> str:
    topic = f"{name}.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka.model_copy(update={"partitions": 1}), [topic])
    return topic


async def published_events(kafka: KafkaSettings, broker: KafkaBroker, topic: str) -> list[Any]:
    """Everything on the single-partition topic so far: a sentinel is published last and
    the topic is read from the start up to it."""
    sentinel = VismaNotification(
        event_id=str(uuid.uuid4()), tenant="sentinel", notification_id="-", entity=None, event="-"
    )
    await publish_events(broker, topic, [sentinel])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    events: list[Any] = []
    try:
        # A guard against a hang, not a timed assertion.
        async with asyncio.timeout(60):
            while True:
                batch = await consumer.getmany(partition, timeout_ms=200)
                for message in batch.get(partition, []):
                    event = event_from_message(dict(message.headers), message.value or b"")
                    if event.event_id == sentinel.event_id:
                        return events
                    if isinstance(event, ChangeEvent):
                        events.append(event)
    finally:
        await consumer.stop()


def deduped(events: Sequence[ChangeEvent]) -> dict[str, ChangeEvent]:
    """What a consumer keeps after dropping events whose id it has seen."""
    return {event.event_id: event for event in events}


async def read_all(client: VismaClient, model: type[VismaRecord]) -> list[VismaRecord]:
    return [r async for page in client.iter_pages(model, page_size=1000) for r in page]


async def current_events(
    client: VismaClient, tenant: str, entity: Entity
) -> dict[str, ChangeEvent]:
    """The event each record as Visma holds it now must have reached: by record id."""
    records = await read_all(client, MODEL_OF_ENTITY[entity])
    receipts: dict[str, list[VismaPurchaseReceipt]] = defaultdict(list)
    if entity is Entity.PURCHASE_ORDER:
        for receipt in await read_all(client, VismaPurchaseReceipt):
            assert isinstance(receipt, VismaPurchaseReceipt)
            for order in order_numbers(receipt):
                receipts[order].append(receipt)
    events = {}
    for record in records:
        own = sorted(receipts.get(record.record_id, ()), key=lambda r: r.receipt_nbr)
        events[record.record_id] = change_from_record(tenant, record, own)
    return events


@dataclass
class ReaderHarness:
    sandbox: RunningSandbox
    company: CompanyState
    kafka: KafkaSettings
    topic: str
    pool: asyncpg.Pool
    broker: KafkaBroker
    client: VismaClient
    settings: ReaderSettings = field(
        default_factory=lambda: ReaderSettings(page_size=25, progress_log_seconds=0.01)
    )

    @property
    def tenant(self) -> str:
        return self.company.company_id

    def reader(self, publish: Publish | None = None, **settings: Any) -> Reader:
        async def to_kafka(events: Sequence[Published]) -> None:
            await publish_events(self.broker, self.topic, events)

        return Reader(
            CursorStore(self.pool),
            ReceiptIndex(self.pool),
            publish or to_kafka,
            self.settings.model_copy(update=settings),
        )

    async def poll(self, *entities: Entity, **settings: Any) -> list[PollReport]:
        reader = self.reader(**settings)
        reports: list[PollReport] = []
        for entity in entities or tuple(Entity):
            reports += await reader.poll(self.client, self.tenant, entity)
        return reports

    async def events(self) -> list[ChangeEvent]:
        return await published_events(self.kafka, self.broker, self.topic)

    async def cursor(self, stream: Stream) -> datetime | None:
        return (await CursorStore(self.pool).cursor(self.tenant, stream)).high_water

    def calls(self, route: str) -> int:
        return self.sandbox.state.log.count(route, company_id=self.tenant)

    async def expected(self, entity: Entity) -> dict[str, ChangeEvent]:
        return await current_events(self.client, self.tenant, entity)


@contextlib.asynccontextmanager
async def reader_harness(
    sandbox: RunningSandbox, company: CompanyState, kafka: KafkaSettings, database_url: str
) -> AsyncIterator[ReaderHarness]:
    topic = await private_topic(kafka)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "visma_reader", owner="visma-reader")
    broker = make_broker(kafka, client_id="test-visma-reader")
    client = VismaClient(
        visma_credentials(company),
        visma_endpoints(sandbox),
        VismaClientSettings(backoff=FAST_RETRIES),
    )
    try:
        async with broker:
            await broker.start()
            yield ReaderHarness(sandbox, company, kafka, topic, pool, broker, client)
    finally:
        await client.aclose()
        await pool.close()
