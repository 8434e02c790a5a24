"""invoice-follow-up's FastStream app, wiring only: the broker, one batch subscriber over
basware.events, visma.changes and basware.results, and the lifecycle object.

One member of one group reads both topics: two members of one group on different topics
would rebalance each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage

from invoice_follow_up import SERVICE_NAME
from invoice_follow_up.handlers import FOLLOWED_EVENTS, follow
from invoice_follow_up.lifecycle import FollowUpLifecycle
from invoice_follow_up.settings import FollowUpSettings
from mlconnector.connections import ConnectionSource
from mlconnector.contracts import Event
from mlconnector.kafka import consumer_options, decode_batch, make_broker, publish_events, raw_batch
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: FollowUpSettings | None = None,
    connections: ConnectionSource | None = None,
) -> AsgiFastStream:
    kafka = kafka or KafkaSettings()
    settings = settings or FollowUpSettings()
    broker = make_broker(kafka, client_id=SERVICE_NAME)

    async def publish_status(events: Sequence[Event]) -> None:
        await publish_events(broker, settings.topics.invoice_status, events)

    lifecycle = FollowUpLifecycle(
        database or DatabaseSettings(), settings, connections, publish_status
    )

    @broker.subscriber(
        settings.topics.basware_events,
        settings.topics.visma_changes,
        settings.topics.basware_results,
        group_id=settings.group,
        batch=True,
        max_records=settings.batch_max_records,
        decoder=raw_batch,
        **consumer_options(kafka),
    )
    async def on_invoice_events(message: KafkaMessage) -> None:
        await follow(lifecycle.follow_up, decode_batch(message.raw_message, FOLLOWED_EVENTS))
        await message.ack()

    return service_app(broker, lifecycle, kafka=kafka)
