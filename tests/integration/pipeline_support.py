"""The services' own apps wired on private topics, and readers of what they published."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from conftest import TopicNames

from audit_store.app import create_app as create_audit_store
from basware_writer.app import create_app as create_writer
from basware_writer.settings import WriterSettings
from mlconnector.asgi import serve_asgi
from mlconnector.connections import Connection, ConnectionSource, StaticConnectionSource
from mlconnector.contracts import DeliveryResult, Entity, Event, Outcome
from mlconnector.kafka import event_from_message
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from visma_reader.app import create_app as create_reader
from visma_reader.settings import ReaderSettings


async def read_events(
    kafka: KafkaSettings,
    topic: str,
    done: Callable[[list[Event]], bool],
    timeout_seconds: float = 60,
) -> list[Event]:
    """Every event on every partition of the topic, until `done` says enough."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()  # metadata for a topic this consumer has not seen yet
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        events: list[Event] = []
        # A guard against a hang when the awaited events never come, not a timed assertion.
        async with asyncio.timeout(timeout_seconds):
            while not done(events):
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    events += [
                        event_from_message(dict(m.headers), m.value or b"") for m in messages
                    ]
        return events
    finally:
        await consumer.stop()


RecordRef = tuple[str, Entity, str]


def latest_results(events: list[Event]) -> dict[RecordRef, DeliveryResult]:
    """The last result per (tenant, entity, id)."""
    results: dict[RecordRef, DeliveryResult] = {}
    for event in events:
        if isinstance(event, DeliveryResult):
            results[(event.tenant, event.entity, event.entity_id)] = event
    return results


def covers(expected: set[RecordRef]) -> Callable[[list[Event]], bool]:
    """Every expected record has a final result (parked is not final: it waits for a vendor
    or a code, and is released once that is accepted)."""
    return lambda events: (
        expected
        <= {
            ref
            for ref, result in latest_results(events).items()
            if result.outcome != Outcome.PARKED
        }
    )


@contextlib.asynccontextmanager
async def pipeline(
    kafka: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    *connections: Connection,
    poll_interval_seconds: float = 0.3,
    source: ConnectionSource | None = None,
    reader_settings: ReaderSettings | None = None,
    writer_settings: WriterSettings | None = None,
) -> AsyncIterator[None]:
    """visma-reader, basware-writer and audit-store, each its own app, sharing only Kafka and
    PostgreSQL; the connections given, or those of `source` (the connection store)."""
    source = source or StaticConnectionSource(connections)
    database = DatabaseSettings(database_url=database_url)
    reader = create_reader(
        kafka,
        database,
        reader_settings or ReaderSettings(poll_interval_seconds=poll_interval_seconds, page_size=4),
        connections=source,
        changes_topic=topics[Topic.VISMA_CHANGES],
        notifications_topic=topics[Topic.VISMA_NOTIFICATIONS],
    )
    writer = create_writer(
        kafka,
        database,
        writer_settings or WriterSettings(batch_timeout_ms=50, backoff_base_seconds=0.01),
        connections=source,
        changes_topic=topics[Topic.VISMA_CHANGES],
        results_topic=topics[Topic.BASWARE_RESULTS],
    )
    audit = create_audit_store(kafka, database, topics=topics.all())
    async with serve_asgi(audit), serve_asgi(writer), serve_asgi(reader):
        yield


async def until_logged(database_url: str, event_ids: set[str]) -> None:
    """Waits until the audit log holds these events; the guard only stops a hang."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(30):
            while True:
                found = await conn.fetchval(
                    "SELECT count(DISTINCT event_id) FROM audit_log WHERE event_id = ANY($1)",
                    list(event_ids),
                )
                if found == len(event_ids):
                    return
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
