"""Reads every topic in audit-store's consumer group and appends each batch to the log.

`run` is audit-store's one loop (its lifecycle runs it between `start` and `stop`). Offsets
are committed only after the batch is in PostgreSQL. A crash in between re-reads
the batch, and the log drops what it already holds (idempotent on event id), so every
message lands exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from audit_store.recorder import AppendReport, Recorder
from audit_store.settings import AuditSettings
from mlconnector.audit.rows import ReceivedMessage, kafka_timestamp, log_entry
from mlconnector.kafka import client_security, consumer_tuning
from mlconnector.lag import GroupConsumer
from mlconnector.retry import Backoff
from mlconnector.settings import KafkaSettings

log = logging.getLogger(__name__)

MESSAGES_READ = Counter("mlc_audit_messages_read", "Messages audit-store read", ["topic"])
ROWS_STORED = Counter("mlc_audit_rows_stored", "Rows appended to the audit log")
DUPLICATES = Counter("mlc_audit_duplicates", "Messages whose event id the log already held")
WRITE_FAILURES = Counter("mlc_audit_write_failures", "Batch writes that failed and were retried")


def received_message(record: ConsumerRecord[bytes, bytes], arrived_at: datetime) -> ReceivedMessage:
    return ReceivedMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        headers=tuple(record.headers),
        value=record.value,
        kafka_time=kafka_timestamp(record.timestamp),
        arrived_at=arrived_at,
    )


class Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count = 0

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.count += 1


class LogConsumer:
    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        recorder: Recorder,
        settings: AuditSettings,
    ) -> None:
        self._recorder = recorder
        self._settings = settings
        self._backoff = Backoff(
            base_seconds=0.2, cap_seconds=settings.retry_cap_seconds, max_attempts=None
        )
        self._topics = topics
        # Counts partition assignments, so that a batch read before one commits nothing after.
        self._assignments = Assignments()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=settings.consumer_group,
            client_id="audit-store",
            enable_auto_commit=False,
            max_poll_records=settings.batch_max_records,
            **consumer_tuning(kafka),
            **client_security(kafka),
        )

    @property
    def group_consumer(self) -> GroupConsumer:
        return (self._settings.consumer_group, self._consumer)

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(list(self._topics), listener=self._assignments)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                fetched = await self._consumer.getmany(
                    timeout_ms=self._settings.batch_timeout_ms,
                    max_records=self._settings.batch_max_records,
                )
            except KafkaError:
                failures += 1
                delay = self._backoff.delay(failures)
                log.exception("reading from Kafka failed; retry in %.1f s", delay)
                await asyncio.sleep(delay)
                continue
            # Taken once the batch is in hand, not before the read: the read itself may be
            # the one that joins the group (every start does), and its records belong to the
            # assignment it ended on. aiokafka returns no record of an assignment that is gone.
            assignment = self._assignments.count
            failures = 0
            if fetched:
                await self._store(fetched, assignment)

    async def _store(
        self,
        fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        assignment: int,
    ) -> None:
        records = [r for batch in fetched.values() for r in batch]
        for record in records:
            MESSAGES_READ.labels(record.topic).inc()
        report = await self._append_until_stored(records, datetime.now(UTC))
        ROWS_STORED.inc(report.stored)
        DUPLICATES.inc(report.duplicates)
        if self._assignments.count != assignment:
            # Assigned again while the batch was written (a rebalance, or a new broker after
            # a lost one): its offsets belong to the assignment before, maybe to a broker
            # that is gone, and committed now they would skip records of the new one.
            log.info("partitions assigned again during a batch: its offsets are not committed")
            return
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as error:
            # The partitions moved to another member (or the broker is away): the batch is
            # re-read later, and the log drops the duplicates.
            log.warning("offsets not committed (%s); the batch will be re-read", error)

    async def _append_until_stored(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], arrived_at: datetime
    ) -> AppendReport:
        failures = 0
        while True:
            try:
                entries = [log_entry(received_message(r, arrived_at)) for r in records]
                return await self._recorder.append(entries)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Nothing is skipped: the batch waits (and its offsets stay uncommitted)
                # until PostgreSQL takes it.
                failures += 1
                WRITE_FAILURES.inc()
                delay = self._backoff.delay(failures)
                log.exception("writing a batch to the audit log failed; retry in %.1f s", delay)
                await asyncio.sleep(delay)
