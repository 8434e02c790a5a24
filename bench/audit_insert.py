"""audit-store's sustained insert rate: messages per second from Kafka into the log.

Publishes N change and result events (about 1.6 KB each, half and half) to private topics,
then starts audit-store's own app on them, which reads from offset 0, and times the rows
reaching PostgreSQL. The sustained rate is taken from the first row to the last, so the
consumer group's join does not count; the whole time is reported beside it. A second figure
appends the same messages with the recorder alone (no Kafka), in the consumer's batch size.

    .venv/bin/python bench/audit_insert.py --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from audit_store.app import create_app
from audit_store.lifecycle import migrate
from audit_store.recorder import Recorder
from audit_store.settings import AuditSettings
from mlconnector.audit.rows import ReceivedMessage, log_entry
from mlconnector.contracts import (
    ChangeEvent,
    DeliveryResult,
    Event,
    Outcome,
    change_from_record,
    result_event_id,
)
from mlconnector.kafka import ensure_topics, event_headers
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.visma.models import VismaSupplier
from mlconnector_cli.stack import fresh_database, local_stack

TENANT = "bench"


class AuditInsertFigures(BaseModel):
    messages: int
    batch_max_records: int
    # From Kafka into PostgreSQL through audit-store's app.
    first_row_seconds: float  # start-up and the consumer group's join
    sustained_seconds: float  # first row to last
    total_seconds: float
    # The recorder alone: PostgreSQL writes, hash chain and row building, no Kafka.
    recorder_seconds: float
    log_megabytes: float

    @property
    def sustained_per_second(self) -> float:
        return self.messages / self.sustained_seconds if self.sustained_seconds else 0.0

    @property
    def recorder_per_second(self) -> float:
        return self.messages / self.recorder_seconds if self.recorder_seconds else 0.0


def bench_events(n: int) -> list[Event]:
    """n events, alternately a supplier change and its delivered result."""
    events: list[Event] = []
    for i in range(n // 2 + n % 2):
        number = f"B{i:07d}"
        record = VismaSupplier(
            number=number,
            name=f"Leverandør {i} " + "Nordisk Trelast og Byggevare " * 40,
            last_modified_date_time=datetime(2026, 11, 1),
        )
        change: ChangeEvent = change_from_record(TENANT, record)
        events.append(change)
        events.append(
            DeliveryResult(
                event_id=result_event_id(change.event_id, Outcome.DELIVERED, 1),
                tenant=TENANT,
                change_event_id=change.event_id,
                entity=change.entity,
                entity_id=change.entity_id,
                supplier_number=number,
                content_hash=change.content_hash,
                outcome=Outcome.DELIVERED,
            )
        )
    return events[:n]


async def _publish(kafka: KafkaSettings, topic: str, events: list[Event]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=262_144,
    )
    await producer.start()
    try:
        for event in events:
            await producer.send(
                topic,
                event.model_dump_json().encode(),
                key=event.key.encode(),
                headers=[(k, v.encode()) for k, v in event_headers(event).items()],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _count(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM audit_log")
    return count


async def _through_kafka(
    database_url: str, kafka: KafkaSettings, topic: str, n: int, settings: AuditSettings
) -> tuple[float, float, float]:
    app = create_app(kafka, DatabaseSettings(database_url=database_url), settings, topics=[topic])
    started = time.perf_counter()
    await app.start()
    first: float | None = None
    conn = await asyncpg.connect(database_url)
    try:
        while (count := await _count(conn)) < n:
            if count and first is None:
                first = time.perf_counter()
            await asyncio.sleep(0.02)
        done = time.perf_counter()
    finally:
        await conn.close()
        await app.stop()
    first = first or done
    return first - started, done - first, done - started


async def recorder_alone(database_url: str, events: list[Event], batch: int) -> float:
    """Times what audit-store does with a fetched batch: build the rows, append them."""
    now = datetime.now(UTC)
    received = [
        ReceivedMessage(
            topic="bench.recorder",
            partition=offset % 12,
            offset=offset,
            key=event.key.encode(),
            headers=tuple((k, v.encode()) for k, v in event_headers(event).items()),
            value=event.model_dump_json().encode(),
            kafka_time=now,
            arrived_at=now,
        )
        for offset, event in enumerate(events)
    ]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        recorder = Recorder(pool)
        started = time.perf_counter()
        for first in range(0, len(received), batch):
            await recorder.append([log_entry(m) for m in received[first : first + batch]])
        return time.perf_counter() - started
    finally:
        await pool.close()


async def measure_audit_insert(
    database_url: str, kafka_settings: KafkaSettings, n: int, *, batch_max_records: int = 2000
) -> AuditInsertFigures:
    """Runs both measurements in fresh databases on `database_url`'s server."""
    events = bench_events(n)
    topic = f"bench.audit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_settings, [topic])
    await _publish(kafka_settings, topic, events)
    settings = AuditSettings(
        consumer_group=f"bench-{topic}", batch_max_records=batch_max_records, batch_timeout_ms=50
    )
    async with fresh_database(database_url, "bench_audit") as url:
        first_row, sustained, total = await _through_kafka(url, kafka_settings, topic, n, settings)
        conn = await asyncpg.connect(url)
        try:
            size = await conn.fetchval("SELECT pg_total_relation_size('audit_log')")
        finally:
            await conn.close()
    async with fresh_database(database_url, "bench_audit") as url:
        await migrate(url)
        recorder = await recorder_alone(url, events, batch_max_records)
    return AuditInsertFigures(
        messages=n,
        batch_max_records=batch_max_records,
        first_row_seconds=first_row,
        sustained_seconds=sustained,
        total_seconds=total,
        recorder_seconds=recorder,
        log_megabytes=size / 1e6,
    )


async def _main(n: int, batch: int) -> None:
    async with local_stack(purpose="bench") as stack:
        figures = await measure_audit_insert(
            stack.database_url, stack.kafka_settings(), n, batch_max_records=batch
        )
    print(figures.model_dump_json(indent=2))
    print(
        f"audit-store: {figures.sustained_per_second:,.0f} messages/s sustained from Kafka "
        f"({figures.messages} in {figures.sustained_seconds:.2f} s after "
        f"{figures.first_row_seconds:.2f} s to the first row); recorder alone "
        f"{figures.recorder_per_second:,.0f} rows/s; {figures.log_megabytes:.1f} MB of log"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(_main(args.messages, args.batch))
