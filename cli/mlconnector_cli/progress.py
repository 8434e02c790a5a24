"""Live progress of a run, read from the topics themselves: what was published, what Basware did.

The tracker reads visma.changes and basware.results from the beginning with its own consumer
(no group, no commits), so it shows exactly what the pipeline produced, nothing estimated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from mlconnector.contracts import ChangeEvent, DeliveryResult, Entity, Outcome
from mlconnector.kafka import event_from_message
from mlconnector.topics import Topic

RecordKey = tuple[str, Entity, str]


class EntityProgress(BaseModel):
    published: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    parked: int = 0


class ProgressTracker:
    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap = bootstrap_servers
        self._published: dict[Entity, set[tuple[str, str]]] = defaultdict(set)
        self._latest: dict[RecordKey, Outcome] = {}
        self.malformed = 0
        self._task: asyncio.Task[None] | None = None

    def snapshot(self) -> dict[Entity, EntityProgress]:
        view = {entity: EntityProgress() for entity in Entity}
        for entity, records in self._published.items():
            view[entity].published = len(records)
        for (_, entity, _), outcome in self._latest.items():
            progress = view[entity]
            setattr(progress, outcome.value, getattr(progress, outcome.value) + 1)
        return view

    def render(self) -> str:
        parts = []
        for entity, p in self.snapshot().items():
            parts.append(
                f"{entity.value}: {p.published} published, {p.delivered} delivered, "
                f"{p.rejected} rejected, {p.failed} failed"
                + (f", {p.parked} parked" if p.parked else "")
            )
        return " | ".join(parts)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._consume())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, p)
                for topic in (Topic.VISMA_CHANGES, Topic.BASWARE_RESULTS)
                for p in (
                    consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
                )
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._observe(dict(record.headers), record.value or b"")
        finally:
            await consumer.stop()

    def _observe(self, headers: dict[str, bytes], body: bytes) -> None:
        try:
            event = event_from_message(headers, body)
        except (KeyError, ValueError):
            self.malformed += 1
            return
        if isinstance(event, ChangeEvent):
            self._published[event.entity].add((event.tenant, event.entity_id))
        elif isinstance(event, DeliveryResult):
            self._latest[(event.tenant, event.entity, event.entity_id)] = event.outcome


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()
    return consumer.partitions_for_topic(topic) or set()
