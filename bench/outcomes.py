"""What Basware did with each record, read from basware.results as the pipeline wrote it.

The watcher reads from the beginning with its own consumer (no group, no commits), keeps
every DeliveryResult and, when asked, the change events of one message key (one supplier),
so completion and latency come from the events themselves. It skips the bodies of events
it does not need: on two cores the observer must not take the CPU the services are
measured with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from mlconnector.contracts import (
    ChangeEvent,
    DeliveryResult,
    Entity,
    Outcome,
    PurchaseOrderChanged,
    SupplierChanged,
    SupplierInvoiceChanged,
)
from mlconnector.kafka import HEADER_EVENT_TYPE, event_from_message
from mlconnector.topics import Topic

CHANGE_EVENTS = (SupplierChanged, PurchaseOrderChanged, SupplierInvoiceChanged)
FINAL = frozenset({Outcome.DELIVERED, Outcome.REJECTED, Outcome.FAILED})
CHANGE_EVENT_TYPES = frozenset(cls.event_type for cls in CHANGE_EVENTS)
WATCHED_EVENTS = frozenset({DeliveryResult.event_type, *CHANGE_EVENT_TYPES})


class OutcomeWatcher:
    def __init__(self, bootstrap_servers: str, *, changes_key: str | None = None) -> None:
        self._bootstrap = bootstrap_servers
        self._changes_key = changes_key.encode() if changes_key else None
        self._topics = [Topic.BASWARE_RESULTS, *([Topic.VISMA_CHANGES] if changes_key else [])]
        # Every result of each record, in order, and the latest one.
        self.history: dict[tuple[Entity, str], list[DeliveryResult]] = defaultdict(list)
        self.latest: dict[tuple[Entity, str], DeliveryResult] = {}
        self.changes: dict[str, ChangeEvent] = {}
        # Records whose latest outcome is final, per entity: kept up to date as results
        # arrive, so that asking "settled?" every few milliseconds costs nothing.
        self._final: Counter[Entity] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        await consumer.start()
        try:
            await consumer.topics()  # metadata for every topic
            partitions = [
                TopicPartition(topic, p)
                for topic in self._topics
                for p in consumer.partitions_for_topic(topic) or ()
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._task = asyncio.create_task(self._consume(consumer))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._observe(dict(record.headers), record.key, record.value or b"")
        finally:
            await consumer.stop()

    def _observe(
        self, headers: Mapping[str, bytes], message_key: bytes | None, body: bytes
    ) -> None:
        event_type = headers.get(HEADER_EVENT_TYPE, b"").decode()
        if event_type in CHANGE_EVENT_TYPES and message_key != self._changes_key:
            return
        if event_type not in WATCHED_EVENTS:
            return
        event = event_from_message(headers, body)
        if isinstance(event, DeliveryResult):
            key = (event.entity, event.entity_id)
            self.history[key].append(event)
            previous = self.latest.get(key)
            self._final[event.entity] += (event.outcome in FINAL) - (
                previous is not None and previous.outcome in FINAL
            )
            self.latest[key] = event
        elif isinstance(event, ChangeEvent):
            self.changes[event.event_id] = event

    def outcomes(self) -> dict[Entity, Counter[Outcome]]:
        """Each record's latest outcome, counted per entity."""
        counts: dict[Entity, Counter[Outcome]] = {entity: Counter() for entity in Entity}
        for (entity, _), result in self.latest.items():
            counts[entity][result.outcome] += 1
        return counts

    def settled(self, expected: Mapping[Entity, int]) -> bool:
        """Whether every expected record has a final outcome (parked is not final)."""
        return all(self._final[entity] >= n for entity, n in expected.items())
