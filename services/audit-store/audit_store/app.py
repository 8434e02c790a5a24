"""audit-store's app, wiring only: every topic into the immutable log in PostgreSQL.

The consumer is aiokafka's own rather than a FastStream subscriber: the log needs whole
batches, raw headers (also ones that are not UTF-8) and offsets committed per batch only
after PostgreSQL took it, with the batch retried in place when it did not. The broker
serves /healthz; the lifecycle object runs the log consumer.
"""

from __future__ import annotations

from collections.abc import Sequence

from faststream.asgi import AsgiFastStream

from audit_store import SERVICE_NAME
from audit_store.lifecycle import AuditLifecycle
from audit_store.settings import AuditSettings
from mlconnector.kafka import make_broker
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import ALL_TOPICS


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: AuditSettings | None = None,
    topics: Sequence[str] = ALL_TOPICS,
) -> AsgiFastStream:
    kafka = kafka or KafkaSettings()
    broker = make_broker(kafka, client_id=SERVICE_NAME)
    lifecycle = AuditLifecycle(
        kafka, database or DatabaseSettings(), settings or AuditSettings(), topics
    )
    return service_app(broker, lifecycle, kafka=kafka)
