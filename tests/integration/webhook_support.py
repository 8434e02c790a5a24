"""webhook-gateway and invoice-follow-up over real HTTP, on private single-partition topics,
and a reader of those topics.

Reading a single-partition topic up to a sentinel event (a good webhook sent last) shows
everything published before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sandbox_support import SANDBOX_BASWARE_SECRET

from invoice_follow_up.app import create_app as create_follow_up
from invoice_follow_up.settings import FollowUpSettings, FollowUpTopics
from mlconnector.asgi import serve_asgi
from mlconnector.basware import Subscription
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import Event
from mlconnector.kafka import ensure_topics, event_from_message
from mlconnector.settings import DatabaseSettings, KafkaSettings
from webhook_gateway.app import create_app as create_gateway
from webhook_gateway.secret_source import SecretSource
from webhook_gateway.settings import BASWARE_DEFAULT_SCHEME, GatewaySettings, GatewayTopics
from webhook_gateway.verify import SignatureScheme, sign

BASWARE_SECRET = "basware-current-secret"


@dataclass
class RunningGateway:
    url: str
    client: httpx.AsyncClient
    settings: GatewaySettings
    kafka: KafkaSettings

    def basware_headers(
        self, body: bytes, *, secret: str = BASWARE_SECRET, at: datetime | None = None
    ) -> dict[str, str]:
        scheme = self.settings.basware_signature
        headers = {"content-type": "application/json"}
        stamp: str | None = None
        if scheme.timestamp_header is not None:
            stamp = str(int((at or datetime.now(UTC)).timestamp()))
            headers[scheme.timestamp_header] = stamp
        headers[scheme.header] = sign(secret.encode(), body, scheme, stamp)
        return headers

    async def post_basware(
        self, tenant: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/webhooks/basware/{tenant}",
            content=body,
            headers=self.basware_headers(body) if headers is None else headers,
        )

    async def refusals(self, source: str, reason: str) -> float:
        return await self.metric("mlc_gateway_refusals_total", source=source, reason=reason)

    async def metric(self, name: str, **labels: str) -> float:
        return await metric(self.client, name, **labels)


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels on the service's /metrics."""
    text = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def single_partition_topic(kafka: KafkaSettings, name: str) -> str:
    """A private topic with one partition: one total order, so reading up to a sentinel
    event proves that nothing else was published before it."""
    topic = f"{name}.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka.model_copy(update={"partitions": 1}), [topic])
    return topic


@contextlib.asynccontextmanager
async def running_gateway(
    kafka: KafkaSettings,
    database_url: str,
    *,
    basware_signature: SignatureScheme = BASWARE_DEFAULT_SCHEME,
    secrets: SecretSource | None = None,
    **settings_given: Any,
) -> AsyncIterator[RunningGateway]:
    """`settings_given` are further GatewaySettings fields (limits, windows)."""
    settings = GatewaySettings(
        **settings_given,
        basware_signature=basware_signature,
        topics=GatewayTopics(
            basware_events=await single_partition_topic(kafka, "basware.events"),
            visma_notifications=await single_partition_topic(kafka, "visma.notifications"),
        ),
    )
    app = create_gateway(
        kafka, DatabaseSettings(database_url=database_url), settings, secrets=secrets
    )
    limits = settings.server_limits()
    async with serve_asgi(app, limits=limits) as url, httpx.AsyncClient(base_url=url) as client:
        # As a load balancer would: no webhook before the gateway says it is ready.
        async with asyncio.timeout(30):
            while (await client.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.05)
        yield RunningGateway(url=url, client=client, settings=settings, kafka=kafka)


@dataclass
class RunningFollowUp:
    client: httpx.AsyncClient
    settings: FollowUpSettings
    kafka: KafkaSettings


@contextlib.asynccontextmanager
async def running_follow_up(
    kafka: KafkaSettings,
    database_url: str,
    connections: list[Connection],
    *,
    basware_events: str,
    check_interval: timedelta | None = None,
    basware_results: str | None = None,
) -> AsyncIterator[RunningFollowUp]:
    """invoice-follow-up reading `basware_events` (where a gateway republishes), a private
    single-partition visma.changes and `basware_results` (else a private one too), and
    publishing its states to `basware_events`."""
    settings = FollowUpSettings(
        topics=FollowUpTopics(
            basware_events=basware_events,
            visma_changes=await single_partition_topic(kafka, "visma.changes"),
            basware_results=basware_results
            or await single_partition_topic(kafka, "basware.results"),
            invoice_status=basware_events,
        ),
        # Its own group: a member another test left behind never delays this one's join.
        group=f"invoice-follow-up-{uuid.uuid4().hex}",
        check_interval=check_interval or timedelta(hours=1),
    )
    app = create_follow_up(
        kafka,
        DatabaseSettings(database_url=database_url),
        settings,
        StaticConnectionSource(connections),
    )
    async with serve_asgi(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield RunningFollowUp(client=client, settings=settings, kafka=kafka)


async def events_until(
    kafka: KafkaSettings, topic: str, last: Callable[[Event], bool]
) -> list[Event]:
    """Every event on the (single-partition) topic, up to and including the `last` one."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    events: list[Event] = []
    try:
        # A guard against a hang when the event never arrives, not a timed assertion.
        async with asyncio.timeout(30):
            while True:
                batch = await consumer.getmany(partition, timeout_ms=200)
                for message in batch.get(partition, []):
                    event = event_from_message(dict(message.headers), message.value or b"")
                    events.append(event)
                    if last(event):
                        return events
    finally:
        await consumer.stop()


async def subscribe_gateway(connection: Connection, gateway: RunningGateway) -> None:
    """Subscribes the gateway to every AccountingDocuments notification, as an operator
    would; the ConnectionTest this triggers must be answered 200."""
    async with connection.basware_client() as client:
        await client.subscribe(
            [
                Subscription(
                    task_type="AccountingDocuments",
                    notification_webhook_url=f"{gateway.url}/webhooks/basware/{connection.tenant}",
                    webhook_authentication_token=SecretStr(SANDBOX_BASWARE_SECRET),
                )
            ]
        )
