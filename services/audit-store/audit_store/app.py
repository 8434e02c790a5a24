"""audit-store's app: every topic into the immutable log in PostgreSQL.

The consumer is aiokafka's own rather than a FastStream subscriber: the log needs whole
batches, raw headers (also ones that are not UTF-8) and offsets committed per batch only
after PostgreSQL took it, with the batch retried in place when it did not.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from faststream.asgi import AsgiFastStream

from audit_store.consumer import LogConsumer
from audit_store.recorder import Recorder
from audit_store.settings import AuditSettings
from mlconnector.kafka import make_broker
from mlconnector.migrations import apply_migrations
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import ALL_TOPICS

MIGRATIONS_PACKAGE = "audit_store"
MIGRATIONS_OWNER = "audit-store"


async def migrate(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, MIGRATIONS_PACKAGE, owner=MIGRATIONS_OWNER)
    finally:
        await conn.close()


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: AuditSettings | None = None,
    topics: Sequence[str] = ALL_TOPICS,
) -> AsgiFastStream:
    kafka = kafka or KafkaSettings()
    database = database or DatabaseSettings()
    settings = settings or AuditSettings()
    # The broker serves /healthz; the log's own consumer does the reading.
    broker = make_broker(kafka, client_id="audit-store")
    running: list[LogConsumer] = []
    pools: list[asyncpg.Pool] = []
    readiness = Readiness(broker)
    readiness.add("database", database_probe(lambda: pools[0] if pools else None))
    readiness.add(
        "log consumer",
        tasks_probe("the log consumer", lambda: running[0].tasks if running else None),
    )

    async def start() -> None:
        await migrate(database.database_url)
        pool = await asyncpg.create_pool(database.database_url, min_size=1, max_size=2)
        pools.append(pool)
        consumer = LogConsumer(kafka, topics, Recorder(pool), settings)
        await consumer.start()
        running.append(consumer)

    async def stop() -> None:
        while running:
            await running.pop().stop()
        while pools:
            await pools.pop().close()

    return service_app(
        broker,
        readiness=readiness,
        consumers=lambda: [c.group_consumer for c in running],
        after_startup=[start],
        on_shutdown=[stop],
    )
