"""The webhook gateway over real HTTP, with the real broker and PostgreSQL.

Every gateway here publishes to private single-partition topics, so reading a topic up to
a sentinel event (a good webhook sent last) shows everything the gateway published
(webhook_support).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sandbox_support import (
    BASWARE_CLIENT,
    SANDBOX_VISMA_SECRET,
    VISMA_COMPANY,
    sandbox_connection,
    sandboxes,
)
from webhook_support import (
    BASWARE_SECRET,
    RunningGateway,
    events_until,
    running_gateway,
    subscribe_gateway,
)

from basware_sandbox import Region, WebhookSignature
from basware_sandbox import documents as sandbox_documents
from basware_sandbox.records import AccountingDocument as SandboxDocument
from mlconnector.connections import StaticConnectionSource
from mlconnector.contracts import BaswareNotification, Entity, Event, VismaNotification
from mlconnector.settings import KafkaSettings
from visma_sandbox.webhooks import Subscription as VismaSubscription
from webhook_gateway.secret_source import ConfiguredSecrets, ConnectionSecrets, WebhookSecret
from webhook_gateway.settings import VISMA_SCHEME
from webhook_gateway.verify import SignatureEncoding, SignatureScheme, sign

BASWARE_OLD_SECRET = "basware-previous-secret"
VISMA_SECRET = "visma-current-secret"
VISMA_OLD_SECRET = "visma-previous-secret"
VISMA_EXPIRED_SECRET = "visma-expired-secret"


def rotating(current: str, previous: str, *, retired: timedelta) -> list[WebhookSecret]:
    """A current secret and one retired `retired` ago (the default overlap is 24 h)."""
    return [
        WebhookSecret(value=SecretStr(current)),
        WebhookSecret(value=SecretStr(previous), retired_at=datetime.now(UTC) - retired),
    ]


def basware_task(
    *,
    task_id: str | None = None,
    document_id: str = "63255782d0a04d8d8defcc6a0062101d",
    **more: str,
) -> bytes:
    body = {
        "taskId": task_id or str(uuid.uuid4()),
        "taskStatus": "New",
        "taskType": "AccountingDocuments",
        "taskSubType": "WaitingForTransfer",
        "documentId": document_id,
        "expirationTime": "2031-12-11T08:53:31Z",
        **more,
    }
    return json.dumps(body).encode()


pytestmark = pytest.mark.integration

TENANT = "acme"
TIMESTAMPED = SignatureScheme(
    header="x-bwapi-signature-256",
    encoding=SignatureEncoding.HEX,
    timestamp_header="x-bwapi-timestamp",
    tolerance=timedelta(minutes=5),
)


@pytest.fixture
async def gateway(
    kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[RunningGateway]:
    visma = rotating(VISMA_SECRET, VISMA_OLD_SECRET, retired=timedelta(hours=1))
    visma.append(
        WebhookSecret(
            value=SecretStr(VISMA_EXPIRED_SECRET),
            retired_at=datetime.now(UTC) - timedelta(hours=48),
        )
    )
    async with running_gateway(
        kafka_settings,
        database_url,
        basware_signature=TIMESTAMPED,
        secrets=ConfiguredSecrets(
            basware={
                TENANT: rotating(BASWARE_SECRET, BASWARE_OLD_SECRET, retired=timedelta(hours=1))
            },
            visma={TENANT: visma},
        ),
    ) as running:
        yield running


async def post_sentinel(gateway: RunningGateway) -> str:
    """A good webhook sent last; returns its event id."""
    response = await gateway.post_basware(TENANT, basware_task())
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def basware_events_after(gateway: RunningGateway) -> list[Event]:
    """Everything published on basware.events, without the sentinel sent now."""
    sentinel = await post_sentinel(gateway)
    topic = gateway.settings.topics.basware_events
    events = await events_until(gateway.kafka, topic, lambda e: e.event_id == sentinel)
    return events[:-1]


async def test_signed_basware_webhook_is_republished_once(gateway: RunningGateway) -> None:
    body = basware_task(task_id="eb9ea3fa-69de-4a5a-8a1a-f4347cd18626")
    first = await gateway.post_basware(TENANT, body)
    assert first.status_code == 200
    assert first.json()["outcome"] == "accepted"
    # Basware redelivers (our 200 was lost, say): answered 200 so it stops, not republished.
    again = await gateway.post_basware(TENANT, body)
    assert again.status_code == 200
    assert again.json() == {"outcome": "duplicate", "event_id": first.json()["event_id"]}

    published = await basware_events_after(gateway)
    assert len(published) == 1
    event = published[0]
    assert isinstance(event, BaswareNotification)
    assert event.event_id == first.json()["event_id"]
    assert (event.tenant, event.task_id, event.task_type, event.task_sub_type) == (
        TENANT,
        "eb9ea3fa-69de-4a5a-8a1a-f4347cd18626",
        "AccountingDocuments",
        "WaitingForTransfer",
    )
    assert event.key == f"{TENANT}:63255782d0a04d8d8defcc6a0062101d"


async def test_old_secret_verifies_during_the_rotation_overlap(gateway: RunningGateway) -> None:
    body = basware_task()
    response = await gateway.post_basware(
        TENANT, body, gateway.basware_headers(body, secret=BASWARE_OLD_SECRET)
    )
    assert response.status_code == 200
    published = await basware_events_after(gateway)
    assert [e.event_id for e in published] == [response.json()["event_id"]]


async def test_refused_basware_webhooks_get_4xx_and_are_not_republished(
    gateway: RunningGateway,
) -> None:
    body = basware_task()
    good = gateway.basware_headers(body)
    one_byte_changed = body.replace(b"WaitingForTransfer", b"WaitingForTransfeR")
    old = datetime.now(UTC) - timedelta(minutes=10)
    malformed = b'{"taskId": "t-1", "taskType": '
    too_large = basware_task(padding="x" * gateway.settings.max_body_bytes)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_large), 16_384):
            yield too_large[start : start + 16_384]

    without_signature = {k: v for k, v in good.items() if k != TIMESTAMPED.header}
    without_timestamp = {k: v for k, v in good.items() if k != TIMESTAMPED.timestamp_header}
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("wrong secret", body, gateway.basware_headers(body, secret="guess"), 401, "bad_signature"),
        ("body changed by one byte", one_byte_changed, good, 401, "bad_signature"),
        ("stale timestamp", body, gateway.basware_headers(body, at=old), 401, "stale_timestamp"),
        ("missing signature header", body, without_signature, 401, "missing_signature"),
        ("missing timestamp header", body, without_timestamp, 401, "missing_timestamp"),
        ("malformed JSON", malformed, gateway.basware_headers(malformed), 400, "malformed_json"),
        ("oversized body", too_large, gateway.basware_headers(too_large), 413, "body_too_large"),
        ("not JSON", body, {**good, "content-type": "text/plain"}, 415, "unsupported_media_type"),
        ("unknown tenant", body, good, 404, "unknown_tenant"),
    ]
    for case, content, headers, status, reason in cases:
        tenant = "globex" if case == "unknown tenant" else TENANT
        before = await gateway.refusals("basware", reason)
        response = await gateway.post_basware(tenant, content, headers)
        assert (case, response.status_code, response.json()) == (case, status, {"error": reason})
        assert await gateway.refusals("basware", reason) == before + 1, case

    streamed = await gateway.client.post(
        f"/webhooks/basware/{TENANT}", content=chunks(), headers=gateway.basware_headers(too_large)
    )
    assert streamed.status_code == 413  # no Content-Length: the limit holds while reading

    assert await basware_events_after(gateway) == []


async def test_replayed_request_outside_the_tolerance_is_refused(gateway: RunningGateway) -> None:
    body = basware_task()
    captured = gateway.basware_headers(body, at=datetime.now(UTC) - timedelta(minutes=6))
    first_seen = await gateway.post_basware(TENANT, body, captured)
    assert first_seen.status_code == 401
    assert first_seen.json() == {"error": "stale_timestamp"}
    assert await basware_events_after(gateway) == []


async def test_connection_test_is_answered_verified_and_not_republished(
    gateway: RunningGateway,
) -> None:
    probe = json.dumps(
        {
            "taskId": str(uuid.uuid4()),
            "taskStatus": "New",
            "taskType": "ConnectionTest",
            "documentId": "ConnectionTest",
        }
    ).encode()
    answered = await gateway.post_basware(TENANT, probe)
    assert answered.status_code == 200
    assert answered.json() == {"outcome": "connection_test"}
    forged = await gateway.post_basware(
        TENANT, probe, gateway.basware_headers(probe, secret="guess")
    )
    assert forged.status_code == 401
    assert await basware_events_after(gateway) == []


async def test_gateway_keeps_serving_after_a_thousand_refusals(gateway: RunningGateway) -> None:
    body = basware_task()
    forged = gateway.basware_headers(body, secret="guess")
    unsigned = {"content-type": "application/json"}
    malformed = b"{" * 64
    attempts = [
        (body, forged),
        (body.replace(b"New", b"Old"), gateway.basware_headers(body)),
        (body, unsigned),
        (malformed, gateway.basware_headers(malformed)),
    ]
    before = await gateway.metric("mlc_gateway_refusals_total", source="basware")
    statuses = set()
    for number in range(1000):
        content, headers = attempts[number % len(attempts)]
        statuses.add((await gateway.post_basware(TENANT, content, headers)).status_code)
    assert statuses == {400, 401}
    after = await gateway.metric("mlc_gateway_refusals_total", source="basware")
    assert after - before == 1000

    assert (await gateway.client.get("/healthz")).is_success
    readiness = (await gateway.client.get("/readyz")).json()
    assert readiness["ready"] is True
    assert readiness["checks"]["broker"] == "ok"
    assert readiness["checks"]["database"] == "ok"
    assert await basware_events_after(gateway) == []


def visma_body(entity: str = "Supplier", record: str = "50012", tenant: str = TENANT) -> bytes:
    return json.dumps(
        {
            "entity": entity,
            "event": "Changed",
            "id": record,
            "tenantId": tenant,
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()


async def post_visma(
    gateway: RunningGateway,
    body: bytes,
    *,
    secret: str = VISMA_SECRET,
    notification_id: str | None = None,
    tenant: str = TENANT,
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "x-vwd-signature-v1": sign(secret.encode(), body, VISMA_SCHEME),
        "x-vwd-notification-id": notification_id or str(uuid.uuid4()),
        "x-vwd-tenant-id": tenant,
        "x-vwd-event-id": "Changed",
        "x-vwd-notification-timestamp": str(int(datetime.now(UTC).timestamp() * 1000)),
    }
    return await gateway.client.post("/webhooks/visma", content=body, headers=headers)


async def visma_events_after(gateway: RunningGateway) -> list[Event]:
    sentinel = await post_visma(gateway, visma_body(record="sentinel"))
    assert sentinel.status_code == 200, sentinel.text
    topic = gateway.settings.topics.visma_notifications
    sentinel_id = sentinel.json()["event_id"]
    events = await events_until(gateway.kafka, topic, lambda e: e.event_id == sentinel_id)
    return events[:-1]


async def test_visma_notification_verified_with_the_new_and_the_old_secret(
    gateway: RunningGateway,
) -> None:
    new = await post_visma(gateway, visma_body(record="50012"), notification_id="n-new")
    old = await post_visma(
        gateway,
        visma_body("Purchase Order", "000123"),
        secret=VISMA_OLD_SECRET,
        notification_id="n-old",
    )
    assert (new.status_code, old.status_code) == (200, 200)

    published = await visma_events_after(gateway)
    notifications = [e for e in published if isinstance(e, VismaNotification)]
    assert len(notifications) == len(published)
    assert [(e.notification_id, e.entity, e.record_key, e.key) for e in notifications] == [
        ("n-new", Entity.SUPPLIER, "50012", f"{TENANT}:supplier"),
        ("n-old", Entity.PURCHASE_ORDER, "000123", f"{TENANT}:purchase_order"),
    ]


async def test_refused_and_repeated_visma_notifications_are_not_republished(
    gateway: RunningGateway,
) -> None:
    body = visma_body()
    first = await post_visma(gateway, body, notification_id="n-1")
    assert first.json()["outcome"] == "accepted"
    # The same signed bytes are the same notification, whatever id the header gives them.
    repeated = await post_visma(gateway, body, notification_id="n-2")
    assert repeated.json()["outcome"] == "duplicate"
    expired = await post_visma(gateway, visma_body(), secret=VISMA_EXPIRED_SECRET)
    assert (expired.status_code, expired.json()) == (401, {"error": "bad_signature"})
    other_tenant = await post_visma(gateway, visma_body(tenant="globex"))
    assert (other_tenant.status_code, other_tenant.json()) == (400, {"error": "tenant_mismatch"})
    account = await post_visma(gateway, visma_body(entity="Account"))
    assert (account.status_code, account.json()) == (200, {"outcome": "ignored"})

    published = await visma_events_after(gateway)
    assert [e.event_id for e in published] == [first.json()["event_id"]]


# --- the sandboxes themselves send the webhooks ---


async def test_sandbox_webhooks_reach_the_topics_through_the_gateway(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    """Both sandboxes sign and post their own webhooks; the gateway maps each to the
    connection's tenant (the Visma company id) and republishes it."""
    signature = WebhookSignature(timestamp_header="x-bwapi-timestamp")
    async with sandboxes(signature) as (basware, visma):
        company = visma.state.company(VISMA_COMPANY).info
        connection = sandbox_connection(basware, visma)
        scheme = SignatureScheme(
            header=signature.header,
            encoding=SignatureEncoding.HEX,
            timestamp_header=signature.timestamp_header,
        )
        secrets = ConnectionSecrets(
            StaticConnectionSource([connection]).list,
            ConfiguredSecrets({}, {}),
            refresh=timedelta(minutes=1),
        )
        async with running_gateway(
            kafka_settings, database_url, basware_signature=scheme, secrets=secrets
        ) as gateway:
            await subscribe_gateway(connection, gateway)
            invoice_id = uuid.uuid4().hex
            sandbox_documents.inject(
                basware.state,
                basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid),
                SandboxDocument(
                    invoice_id=invoice_id,
                    company_code="BW00",
                    supplier_code="50012",
                    currency_code="NOK",
                    processing_status="WaitingForTransfer",
                    last_updated=basware.state.clock.utcnow(),
                ),
            )
            await basware.state.drain()

            supplier = next(iter(visma.state.company(company.company_id).table("supplier")))
            visma.state.webhooks.subscribe(
                VismaSubscription(
                    company_id=company.company_id,
                    url=f"{gateway.url}/webhooks/visma",
                    secrets=[SecretStr(SANDBOX_VISMA_SECRET)],
                )
            )
            number = (
                visma.state.company(company.company_id)
                .table("supplier")
                .spec.key_text(supplier.key)
            )
            visma.state.company(company.company_id).update(
                "supplier", number, {"name": "Renamed by the gateway test"}
            )

            basware_events = await events_until(
                kafka_settings,
                gateway.settings.topics.basware_events,
                lambda e: isinstance(e, BaswareNotification) and e.document_id == invoice_id,
            )
            visma_events = await events_until(
                kafka_settings,
                gateway.settings.topics.visma_notifications,
                lambda e: isinstance(e, VismaNotification),
            )

    attempts = [a.status_code for a in basware.state.webhook_log]
    assert attempts == [200]  # the task notification, answered at once (no retry needed)
    (notification,) = basware_events
    assert isinstance(notification, BaswareNotification)
    assert (notification.tenant, notification.task_type, notification.task_sub_type) == (
        company.company_id,
        "AccountingDocuments",
        "WaitingForTransfer",
    )
    (changed,) = visma_events
    assert isinstance(changed, VismaNotification)
    assert (changed.tenant, changed.entity, changed.event, changed.record_key) == (
        company.company_id,
        Entity.SUPPLIER,
        "Updated",
        number,
    )
