"""reconciler's app, wiring only: a broker without subscribers, which publishes heals when
RECONCILER_HEAL is on, and the lifecycle with its schedule."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from mlconnector.connections import ConnectionSource
from mlconnector.kafka import make_broker
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from reconciler import SERVICE_NAME
from reconciler.heal import BrokerPublisher
from reconciler.lifecycle import ReconcilerLifecycle
from reconciler.settings import ReconcilerSettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: ReconcilerSettings | None = None,
    connections: ConnectionSource | None = None,
) -> AsgiFastStream:
    settings = settings or ReconcilerSettings()
    broker = make_broker(kafka or KafkaSettings(), client_id=SERVICE_NAME)
    publisher = BrokerPublisher(broker, settings.changes_topic) if settings.heal else None
    lifecycle = ReconcilerLifecycle(
        database or DatabaseSettings(), settings, connections, publisher
    )
    return service_app(broker, lifecycle)
