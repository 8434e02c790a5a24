"""visma-reader's FastStream app: the poll scheduler, and notifications that wake it early."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage

from mlconnector.connection_store.source import open_connection_source
from mlconnector.connections import Connection, ConnectionSource
from mlconnector.contracts import ChangeEvent, Entity, VismaNotification
from mlconnector.kafka import consumer_options, make_broker, publish_events
from mlconnector.migrations import apply_migrations
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.schedule import IntervalSchedule
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.visma.client import VismaClient
from visma_reader.cursor_store import CursorStore
from visma_reader.metrics import ReaderMetrics
from visma_reader.reader import Reader
from visma_reader.receipt_index import ReceiptIndex
from visma_reader.scheduler import ConnectionPoller, PollScheduler
from visma_reader.settings import ReaderSettings

log = logging.getLogger("visma_reader")


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: ReaderSettings | None = None,
    connections: ConnectionSource | None = None,
    changes_topic: str | None = None,
    notifications_topic: str | None = None,
) -> AsgiFastStream:
    """Topics given here win over the settings' (tests use private copies of every topic)."""
    kafka = kafka or KafkaSettings()
    database = database or DatabaseSettings()
    reader_settings = settings or ReaderSettings()
    changes = changes_topic or reader_settings.changes_topic
    notifications = notifications_topic or reader_settings.notifications_topic
    broker = make_broker(kafka, client_id="visma-reader")
    clients: dict[str, VismaClient] = {}
    exits = contextlib.AsyncExitStack()
    state: dict[str, object] = {}
    readiness = Readiness(broker)

    def pool() -> asyncpg.Pool | None:
        found = state.get("pool")
        return found if isinstance(found, asyncpg.Pool) else None

    def poll_tasks() -> list[asyncio.Task[None]] | None:
        scheduler = state.get("scheduler")
        return scheduler.tasks if isinstance(scheduler, PollScheduler) else None

    readiness.add("database", database_probe(pool))
    readiness.add("poll scheduler", tasks_probe("the poll scheduler", poll_tasks))

    async def publish(events: Sequence[ChangeEvent]) -> None:
        await publish_events(broker, changes, events)

    async def client_for(connection: Connection) -> VismaClient:
        client = clients.get(connection.name)
        if client is not None and (
            client.credentials != connection.visma or client.endpoints != connection.visma_endpoints
        ):
            # Rotated credentials or moved endpoints: the old token is of no use.
            await client.aclose()
            client = None
        if client is None:
            client = clients[connection.name] = connection.visma_client()
        return client

    async def poll(connection: Connection, entity: Entity) -> None:
        reader = state["reader"]
        assert isinstance(reader, Reader)
        await reader.poll(await client_for(connection), connection.tenant, entity)

    @broker.subscriber(notifications, group_id="visma-reader", **consumer_options(kafka))
    async def on_notification(notification: VismaNotification, message: KafkaMessage) -> None:
        scheduler = state.get("scheduler")
        if isinstance(scheduler, PollScheduler) and not scheduler.wake(
            notification.tenant, notification.entity
        ):
            log.warning("notification for unknown tenant %s ignored", notification.tenant)
        await message.ack()

    async def start() -> None:
        pool = await asyncpg.create_pool(database.database_url, min_size=1, max_size=4)
        state["pool"] = pool
        async with pool.acquire() as conn:
            await apply_migrations(conn, "visma_reader", owner="visma-reader")
        state["reader"] = Reader(
            CursorStore(pool),
            ReceiptIndex(pool),
            publish,
            reader_settings,
            ReaderMetrics(reader_settings.progress_log_seconds),
        )
        source = connections
        if source is None:
            source = await exits.enter_async_context(open_connection_source(database.database_url))
        default = IntervalSchedule(seconds=reader_settings.poll_interval_seconds)

        def poller(c: Connection) -> ConnectionPoller:
            return ConnectionPoller(c.name, c.tenant, source, poll, default=default)

        scheduler = PollScheduler([poller(c) for c in await source.list()])
        scheduler.start()
        scheduler.follow(source, poller)
        state["scheduler"] = scheduler

    async def stop() -> None:
        scheduler = state.pop("scheduler", None)
        if isinstance(scheduler, PollScheduler):
            await scheduler.stop()
        for client in clients.values():
            await client.aclose()
        await exits.aclose()
        pool = state.pop("pool", None)
        if isinstance(pool, asyncpg.Pool):
            await pool.close()

    return service_app(broker, readiness=readiness, after_startup=[start], on_shutdown=[stop])
