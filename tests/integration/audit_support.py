"""audit-store on private topics, events to feed it, and a log filled without Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from conftest import TopicNames

from audit_store.app import create_app
from audit_store.lifecycle import migrate
from audit_store.recorder import Recorder, chained_records
from audit_store.settings import AuditSettings
from mlconnector.audit.rows import GENESIS_HASH, LogEntry, ReceivedMessage, log_entry
from mlconnector.audit.stored import LOG_COLUMNS
from mlconnector.contracts import (
    BaswareReason,
    ChangeEvent,
    DeliveryResult,
    Event,
    Outcome,
    change_from_record,
    result_event_id,
)
from mlconnector.kafka import event_headers
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.visma.models import VismaPurchaseOrder, VismaSupplier

TENANT = "1000001"


def supplier_change(
    number: str,
    name: str = "Bergen Trelast AS",
    *,
    tenant: str = TENANT,
    modified: datetime = datetime(2026, 11, 1),
) -> ChangeEvent:
    record = VismaSupplier(number=number, name=name, last_modified_date_time=modified)
    return change_from_record(tenant, record)


def order_change(order: str, supplier: str, *, tenant: str = TENANT) -> ChangeEvent:
    record = VismaPurchaseOrder.model_validate(
        {"orderNbr": order, "supplier": {"number": supplier}, "lastModifiedDateTime": "2026-11-01"}
    )
    return change_from_record(tenant, record)


def result_for(change: ChangeEvent, outcome: Outcome, reason: str | None = None) -> DeliveryResult:
    return DeliveryResult(
        event_id=result_event_id(change.event_id, outcome, 1),
        tenant=change.tenant,
        change_event_id=change.event_id,
        entity=change.entity,
        entity_id=change.entity_id,
        supplier_number=change.supplier_number,
        content_hash=change.content_hash,
        outcome=outcome,
        reasons=(BaswareReason(code="E1", message=reason, field="name"),) if reason else (),
    )


def received(event: Event, topic: str, partition: int, offset: int) -> ReceivedMessage:
    """The message audit-store would have read for the event at that place in Kafka."""
    now = datetime.now(UTC)
    return ReceivedMessage(
        topic=topic,
        partition=partition,
        offset=offset,
        key=event.key.encode(),
        headers=tuple((k, v.encode()) for k, v in event_headers(event).items()),
        value=event.model_dump_json().encode(),
        kafka_time=now,
        arrived_at=now,
    )


def logged(placed: Sequence[tuple[Event, str, int, int]]) -> list[LogEntry]:
    return [
        log_entry(received(event, topic, partition, offset))
        for event, topic, partition, offset in placed
    ]


async def fill_log(database_url: str, entries: Sequence[LogEntry]) -> None:
    """The log as audit-store would have written it, without a broker in between."""
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await Recorder(pool).append(entries)
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def running_audit_store(
    kafka: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    *,
    batch: int = 500,
    checkpoints: Path | None = None,
) -> AsyncIterator[None]:
    """audit-store's own app on the test's private topics, in a consumer group of its own;
    with `checkpoints`, it signs its chain heads into that file every 0.1 s."""
    app = create_app(
        kafka,
        DatabaseSettings(database_url=database_url),
        AuditSettings(
            consumer_group=f"audit-store-{topics.suffix}",
            batch_max_records=batch,
            batch_timeout_ms=50,
            checkpoint_file=checkpoints,
            checkpoint_interval_seconds=0.1,
        ),
        topics=topics.all(),
    )
    await app.start()
    try:
        yield
    finally:
        await app.stop()


async def fetch_log(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('audit_log') IS NOT NULL"):
            return []
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def wait_for_log(database_url: str, query: str, *args: object, count: int = 1) -> None:
    """Until the query over the log returns `count` rows or more."""
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(60):
        while len(await fetch_log(database_url, query, *args)) < count:
            await asyncio.sleep(0.05)


async def read_records(
    kafka: KafkaSettings, topic: str, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first `count` messages of the topic (all partitions), with their keys and headers."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        found: list[ConsumerRecord[bytes, bytes]] = []
        # A guard against a hang, not a timed assertion.
        async with asyncio.timeout(60):
            while len(found) < count:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    found += batch
        return found
    finally:
        await consumer.stop()


async def append_as_before_007(conn: asyncpg.Connection, entries: list[LogEntry]) -> None:
    """Rows of one chain as the recorders before migration 007 wrote them, into a database
    that an older migration left: chained on from the chain's head, the head moved (today's
    recorder needs 007's tables)."""
    chain = entries[0].chain
    head = await conn.fetchrow(
        "SELECT chain_position, row_hash FROM audit_chain_head"
        " WHERE topic = $1 AND kafka_partition = $2",
        *chain,
    )
    start = (head["chain_position"], bytes(head["row_hash"])) if head else (0, GENESIS_HASH)
    records, moved = chained_records(entries, {chain: start})
    await conn.copy_records_to_table("audit_log", records=records, columns=LOG_COLUMNS)
    await conn.execute(
        """
        INSERT INTO audit_chain_head (topic, kafka_partition, chain_position, row_hash)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (topic, kafka_partition)
        DO UPDATE SET chain_position = excluded.chain_position, row_hash = excluded.row_hash
        """,
        *chain,
        *moved[chain],
    )
