"""visma-reader's FastStream app, wiring only: the broker, the notification subscriber that
wakes the poll scheduler early, and the lifecycle object that runs the polls."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage

from mlconnector.connections import ConnectionSource
from mlconnector.contracts import ChangeEvent, UnreadableRecord, VismaNotification
from mlconnector.kafka import consumer_options, make_broker, publish_events
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from visma_reader import SERVICE_NAME
from visma_reader.handlers import wake_poller
from visma_reader.lifecycle import ReaderLifecycle, ReaderTopics
from visma_reader.settings import ReaderSettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: ReaderSettings | None = None,
    connections: ConnectionSource | None = None,
    changes_topic: str | None = None,
    notifications_topic: str | None = None,
    results_topic: str | None = None,
) -> AsgiFastStream:
    """Topics given here win over the settings' (tests use private copies of every topic)."""
    kafka = kafka or KafkaSettings()
    settings = settings or ReaderSettings()
    topics = ReaderTopics(
        changes=changes_topic or settings.changes_topic,
        notifications=notifications_topic or settings.notifications_topic,
        results=results_topic or settings.results_topic,
    )
    broker = make_broker(kafka, client_id=SERVICE_NAME)

    async def publish(events: Sequence[ChangeEvent | UnreadableRecord]) -> None:
        await publish_events(broker, topics.changes, events)

    lifecycle = ReaderLifecycle(
        kafka, database or DatabaseSettings(), settings, topics, connections, publish
    )

    @broker.subscriber(
        topics.notifications,
        group_id=SERVICE_NAME,
        **consumer_options(kafka),
    )
    async def on_notification(notification: VismaNotification, message: KafkaMessage) -> None:
        await wake_poller(lifecycle.scheduler, notification)
        await message.ack()

    return service_app(broker, lifecycle, kafka=kafka)
