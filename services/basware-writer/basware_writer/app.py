"""basware-writer's FastStream app, wired: the broker, the changes subscriber, the lifecycle
object (lifecycle.py) and the handlers beside it (handlers.py)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from faststream.asgi import AsgiFastStream

from basware_writer.handlers import WriterHandlers
from basware_writer.lifecycle import WriterLifecycle
from basware_writer.settings import WriterSettings
from mlconnector.connections import ConnectionSource
from mlconnector.contracts import DeliveryResult, MalformedMessage
from mlconnector.kafka import consumer_options, make_broker, publish_events, raw_batch
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: WriterSettings | None = None,
    connections: ConnectionSource | None = None,
    changes_topic: str | None = None,
    results_topic: str | None = None,
) -> AsgiFastStream:
    kafka = kafka or KafkaSettings()
    settings = settings or WriterSettings()
    broker = make_broker(kafka, client_id="basware-writer")
    lifecycle = WriterLifecycle(database or DatabaseSettings(), settings, connections)

    async def publish(results: Sequence[DeliveryResult | MalformedMessage]) -> None:
        await publish_events(broker, results_topic or settings.results_topic, results)

    handlers = WriterHandlers(lifecycle, publish, settings)
    broker.subscriber(
        changes_topic or settings.changes_topic,
        group_id="basware-writer",
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms(),
        decoder=raw_batch,
        **consumer_options(kafka),
    )(handlers.on_changes)

    readiness = Readiness(broker)
    readiness.add("database", database_probe(lambda: lifecycle.pool))
    readiness.add("follow-up", tasks_probe("the follow-up", lambda: lifecycle.tasks))
    return service_app(
        broker,
        kafka=kafka,
        readiness=readiness,
        on_startup=[partial(lifecycle.start, handlers.on_follow_up)],
        after_startup=[lifecycle.begin],
        on_shutdown=[lifecycle.halt],
        after_shutdown=[lifecycle.stop],
    )
