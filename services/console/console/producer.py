"""The console's one Kafka producer, started on first use, so the console serves its pages
(and logins) while the broker is away."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from mlconnector.contracts import Event
from mlconnector.kafka import event_headers
from mlconnector.settings import KafkaSettings


class EventProducer:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                # The embedded broker offers no idempotent producer (docs/event-broker.md §3.1).
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._settings.bootstrap_servers,
                    client_id="mlconnector-console",
                    acks="all",
                    enable_idempotence=False,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send(self, topic: str, event: Event) -> None:
        """Returns once Kafka acknowledged the event."""
        producer = await self._started()
        await producer.send_and_wait(
            topic,
            event.model_dump_json().encode(),
            key=event.key.encode(),
            headers=[(k, v.encode()) for k, v in event_headers(event).items()],
        )

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
