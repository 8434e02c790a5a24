"""Wiring only: the broker, the database pool, the webhook routes, the invoice loop's
consumers and periodic check, and the service endpoints.

FastStream's ASGI app matches exact paths, and Basware's route carries the tenant in its
path, so a thin dispatcher sends /webhooks/* to a Starlette router and everything else
(lifespan, /healthz, /readyz, /metrics) to the FastStream service app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.routing import Route

from mlconnector.connection_store.source import open_connection_source
from mlconnector.connections import Connection, ConnectionSource
from mlconnector.contracts import BaswareNotification, Event, SupplierInvoiceChanged
from mlconnector.kafka import (
    HEADER_EVENT_TYPE,
    consumer_options,
    event_from_message,
    make_broker,
    publish_events,
    raw_batch,
)
from mlconnector.migrations import apply_migrations
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.vault import VaultError
from webhook_gateway.dedupe import SeenStore, forget_periodically
from webhook_gateway.invoice_loop import (
    LOOP_ERRORS,
    InvoiceLoop,
    Publish,
    TenantApis,
    check_periodically,
)
from webhook_gateway.invoice_store import InvoiceStore
from webhook_gateway.receiver import WebhookReceiver
from webhook_gateway.secret_source import (
    ConfiguredSecrets,
    ConnectionLoader,
    ConnectionSecrets,
    SecretSource,
)
from webhook_gateway.settings import GatewaySettings

SERVICE_NAME = "webhook-gateway"
# Messages per batch of the invoice loop's consumer: one offset commit each.
INVOICE_LOOP_BATCH = 500

log = logging.getLogger(__name__)


class GatewayResources:
    """What exists only while the app runs: the pool, the stores, the invoice loop and the
    background tasks."""

    def __init__(
        self,
        database: DatabaseSettings,
        settings: GatewaySettings,
        connections: ConnectionLoader | None,
        publish: Publish,
    ) -> None:
        self._database = database
        self._settings = settings
        self._given_connections = connections
        self._source: ConnectionSource | None = None
        self._exits = contextlib.AsyncExitStack()
        self._publish = publish
        self._pool: asyncpg.Pool | None = None
        self._store: SeenStore | None = None
        self._loop: InvoiceLoop | None = None
        self._apis: dict[str, TenantApis] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def connections(self) -> Sequence[Connection]:
        """The tenants: given ones (tests), else the environment's or the store's."""
        if self._given_connections is not None:
            return await self._given_connections()
        return await self._source.list() if self._source is not None else ()

    async def _open_connection_source(self) -> None:
        if self._given_connections is not None:
            return
        try:
            self._source = await self._exits.enter_async_context(
                open_connection_source(self._database.database_url)
            )
        except VaultError as error:
            # Without a master key the store cannot be read: the gateway still verifies
            # webhooks signed with MLC_GATEWAY_*_SECRETS, and the invoice loop idles.
            log.warning("no stored connections: %s", error)

    async def start(self) -> None:
        await self._open_connection_source()
        conn = await asyncpg.connect(self._database.database_url)
        try:
            await apply_migrations(conn, "webhook_gateway", SERVICE_NAME)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(self._database.database_url, min_size=1, max_size=8)
        self._store = SeenStore(self._pool)
        settings = self._settings
        self._background(
            forget_periodically(self._store, settings.dedupe_ttl, settings.dedupe_cleanup_interval)
        )
        if settings.invoice_loop:
            self._apis = {
                c.tenant: TenantApis(
                    basware=c.basware_client(), visma=c.visma_client(), write_back=c.write_back
                )
                for c in await self.connections()
            }
            store = InvoiceStore(self._pool, claim_timeout=settings.invoice_claim_timeout)
            self._loop = InvoiceLoop(store=store, apis=self._apis, publish=self._publish)
            self._background(check_periodically(self._loop, settings.invoice_check_interval))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(work))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for apis in self._apis.values():
            await apis.basware.aclose()
            await apis.visma.aclose()
        self._apis = {}
        self._loop = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self._exits.aclose()
        self._source = None

    def seen(self) -> SeenStore:
        if self._store is None:
            raise RuntimeError("the gateway has not started")
        return self._store

    def invoice_loop(self) -> InvoiceLoop | None:
        return self._loop

    def pool(self) -> asyncpg.Pool | None:
        return self._pool

    def tasks(self) -> list[asyncio.Task[None]] | None:
        """The background loops (dedupe cleanup, invoice checks); None before start-up."""
        return list(self._tasks) if self._pool is not None else None


class GatewayApp:
    """The ASGI app uvicorn serves."""

    def __init__(self, service: AsgiFastStream, router: Starlette) -> None:
        self.service = service
        self.router = router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            await self.router(scope, receive, send)
        else:
            await self.service(scope, receive, send)


def subscribe_invoice_loop(
    broker: KafkaBroker,
    kafka: KafkaSettings,
    settings: GatewaySettings,
    loop: Callable[[], InvoiceLoop | None],
) -> None:
    """The loop's consumer: one member of its group reading both topics in batches (two
    members of one group on different topics would rebalance each other, and most of
    visma.changes is suppliers and orders the loop skips: one commit per batch, not per
    message). A failed step is logged and acknowledged: the periodic check retries it, so
    one bad invoice never blocks its partition."""
    topics = settings.topics
    steps: dict[str, InvoiceStep] = {
        BaswareNotification.event_type: _on_notification,
        SupplierInvoiceChanged.event_type: _on_visma_invoice,
    }

    async def apply_steps(
        running: InvoiceLoop, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        for record in records:
            headers = dict(record.headers)
            step = steps.get(_event_type(headers))
            if step is None:
                continue
            try:
                await step(running, event_from_message(headers, record.value or b""))
            except (*LOOP_ERRORS, KeyError, ValueError, ValidationError) as error:
                log.warning("invoice loop step failed: %s", type(error).__name__)

    @broker.subscriber(
        topics.basware_events,
        topics.visma_changes,
        group_id=settings.invoice_loop_group,
        batch=True,
        max_records=INVOICE_LOOP_BATCH,
        decoder=raw_batch,
        **consumer_options(kafka),
    )
    async def on_invoice_events(message: KafkaMessage) -> None:
        running = loop()
        if running is not None:
            await apply_steps(running, message.raw_message)
        await message.ack()


InvoiceStep = Callable[[InvoiceLoop, Event], Awaitable[None]]


async def _on_notification(loop: InvoiceLoop, event: Event) -> None:
    if isinstance(event, BaswareNotification):
        await loop.on_basware_notification(event)


async def _on_visma_invoice(loop: InvoiceLoop, event: Event) -> None:
    if isinstance(event, SupplierInvoiceChanged):
        await loop.on_visma_invoice(event)


def _event_type(headers: Mapping[str, bytes | str]) -> str:
    # Checked before the body is parsed: visma.changes carries every supplier and order too.
    raw = headers.get(HEADER_EVENT_TYPE, "")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def build_app(
    *,
    settings: GatewaySettings,
    kafka: KafkaSettings,
    database: DatabaseSettings,
    secrets: SecretSource | None = None,
    connections: ConnectionLoader | None = None,
) -> GatewayApp:
    """`connections` gives the tenants (their webhook secrets, API clients, write-back);
    `secrets` replaces the secret source (tests); MLC_GATEWAY_*_SECRETS add to either."""
    broker = make_broker(kafka, client_id=SERVICE_NAME)
    configured = ConfiguredSecrets(settings.basware_secrets, settings.visma_secrets)

    async def publish_status(events: Sequence[Event]) -> None:
        await publish_events(broker, settings.topics.invoice_status, events)

    resources = GatewayResources(database, settings, connections, publish_status)
    receiver = WebhookReceiver(
        broker=broker,
        settings=settings,
        secrets=secrets
        or ConnectionSecrets(resources.connections, configured, settings.connections_refresh),
        seen=resources.seen,
    )
    if settings.invoice_loop:
        subscribe_invoice_loop(broker, kafka, settings, resources.invoice_loop)

    readiness = Readiness(broker)
    readiness.add("database", database_probe(resources.pool))
    readiness.add("background loops", tasks_probe("the background loops", resources.tasks))
    router = Starlette(
        routes=[
            Route("/webhooks/basware/{tenant}", receiver.basware, methods=["POST"]),
            Route("/webhooks/visma", receiver.visma, methods=["POST"]),
        ]
    )
    service = service_app(
        broker,
        readiness=readiness,
        on_startup=[resources.start],
        after_shutdown=[resources.stop],
    )
    return GatewayApp(service, router)
