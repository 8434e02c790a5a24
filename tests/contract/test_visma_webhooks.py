"""Webhook notifications the Visma sandbox sends, checked by a tiny receiver in the test.

Signatures are verified as webhook-gateway verifies them, an independent implementation from
the sandbox's signer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlconnector.asgi import serve_asgi
from mlconnector.contracts import utcnow
from mlconnector.visma import VismaWebhookBody
from visma_sandbox import (
    CompanyState,
    EntityName,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    WebhookDelivery,
    run_visma_sandbox,
)
from visma_sandbox.webhooks import Notification, Subscription
from webhook_gateway.answers import Refused
from webhook_gateway.settings import VISMA_SCHEME
from webhook_gateway.verify import verify_signature

NEW_SECRET = SecretStr("rotated-secret-2026")
OLD_SECRET = SecretStr("original-secret-2025")


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    url: str
    answer_status: int = 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> list[Received]:
        while len(self.received) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=5)
        return self.received


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    seed = SeedOptions(companies=2, suppliers=5, purchase_orders=3, invoices=3, seed=11)
    async with run_visma_sandbox(SandboxConfig(seed=seed)) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def receive(request: Request) -> Response:
        target = holder[0]
        target.received.append(Received(await request.body(), dict(request.headers)))
        target.arrived.set()
        return Response(status_code=target.answer_status)

    app = Starlette(routes=[Route("/webhooks/visma", receive, methods=["POST"])])
    async with serve_asgi(app) as base_url:
        holder.append(Receiver(url=f"{base_url}/webhooks/visma"))
        yield holder[0]


@pytest.fixture(autouse=True)
def clean(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    sandbox.state.settings = SandboxSettings()
    sandbox.state.webhooks.subscriptions.clear()
    for company in sandbox.state.companies.values():
        company.info.webhooks_enabled = True


def subscribe(
    sandbox: RunningSandbox, receiver: Receiver, company: CompanyState, **kwargs: object
) -> Subscription:
    subscription = Subscription.model_validate(
        {
            "company_id": company.company_id,
            "url": receiver.url,
            "secrets": [NEW_SECRET, OLD_SECRET],
            **kwargs,
        }
    )
    return sandbox.state.webhooks.subscribe(subscription)


def sent(sandbox: RunningSandbox, subscription: Subscription) -> list[Notification]:
    return [
        n
        for n in sandbox.state.webhooks.notifications.values()
        if n.subscription_id == subscription.id
    ]


async def test_a_supplier_change_is_notified_signed_with_the_x_vwd_headers(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    company = sandbox.state.company("1000001")
    subscription = subscribe(sandbox, receiver, company)
    company.update(EntityName.SUPPLIER, "50002", {"status": "OnHold"})
    (delivery,) = await receiver.wait_for(1)
    old, new = OLD_SECRET.get_secret_value().encode(), NEW_SECRET.get_secret_value().encode()
    verify_signature(delivery.headers, delivery.body, [old, new], VISMA_SCHEME, utcnow())
    with pytest.raises(Refused):
        verify_signature(delivery.headers, delivery.body, [old], VISMA_SCHEME, utcnow())
    with pytest.raises(Refused):
        verify_signature(delivery.headers, delivery.body + b" ", [new], VISMA_SCHEME, utcnow())
    headers = delivery.headers
    assert headers["x-vwd-event-id"] == "Supplier.Updated"
    assert headers["x-vwd-tenant-id"] == company.info.tenant_id
    assert headers["x-vwd-subscription-id"] == subscription.id
    notified_at = int(headers["x-vwd-notification-timestamp"])
    assert int(headers["x-vwd-webhook-timestamp"]) >= notified_at
    body = VismaWebhookBody.model_validate_json(delivery.body)
    assert (body.entity, body.event, body.id, body.tenant_id) == (
        "Supplier",
        "Updated",
        "50002",
        company.info.tenant_id,
    )


async def test_only_companies_that_enabled_notifications_send_them(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    quiet, loud = sandbox.state.company("1000001"), sandbox.state.company("1000002")
    quiet.info.webhooks_enabled = False
    quiet_sub = subscribe(sandbox, receiver, quiet)
    subscribe(sandbox, receiver, loud)
    quiet.update(EntityName.SUPPLIER, "50001", {"name": "Stille AS"})
    loud.update(EntityName.SUPPLIER, "50001", {"name": "Høylytt AS"})
    (delivery,) = await receiver.wait_for(1)
    assert json.loads(delivery.body)["tenantId"] == loud.info.tenant_id
    assert sent(sandbox, quiet_sub) == []


async def test_invoices_notify_status_changes_only(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    company = sandbox.state.company("1000002")
    subscription = subscribe(sandbox, receiver, company)
    invoice = next(iter(company.table(EntityName.SUPPLIER_INVOICE))).record.model_dump(
        by_alias=True
    )
    key = f"{invoice['documentType']}/{invoice['referenceNumber']}"
    company.update(EntityName.SUPPLIER_INVOICE, key, {"note": "Only a note"})
    new_status = "Hold" if invoice["status"] != "Hold" else "Open"
    company.update(EntityName.SUPPLIER_INVOICE, key, {"status": new_status})
    company.update(
        EntityName.PURCHASE_RECEIPT, next(iter(company.table("purchasereceipt"))).key[0], {}
    )
    (delivery,) = await receiver.wait_for(1)
    assert delivery.headers["x-vwd-event-id"] == "AP Invoice.Status Changed"
    assert json.loads(delivery.body)["id"] == key
    await asyncio.sleep(0.2)
    assert len(sent(sandbox, subscription)) == 1


async def test_by_default_a_failed_delivery_is_not_retried(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.answer_status = 500
    company = sandbox.state.company("1000001")
    subscription = subscribe(sandbox, receiver, company)
    company.update(EntityName.PURCHASE_ORDER, "000001", {"description": "Changed"})
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    (notification,) = sent(sandbox, subscription)
    assert [a.status for a in notification.attempts] == [500]
    assert not notification.delivered
    assert len(receiver.received) == 1


async def test_retries_duplicates_and_resend_are_selectable(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.answer_status = 503
    sandbox.state.settings.webhook_delivery = WebhookDelivery(retries=2, retry_delay_ms=10)
    company = sandbox.state.company("1000001")
    subscription = subscribe(sandbox, receiver, company)
    company.update(EntityName.SUPPLIER, "50003", {"name": "Prøv igjen AS"})
    retried = await receiver.wait_for(3)
    assert len({r.headers["x-vwd-notification-id"] for r in retried}) == 1
    receiver.answer_status = 200
    sandbox.state.settings.webhook_delivery = WebhookDelivery(duplicate=True)
    sandbox.state.webhooks.resend(sent(sandbox, subscription)[0].id)
    duplicated = await receiver.wait_for(5)
    assert duplicated[3].body == duplicated[4].body == retried[0].body


async def test_reordering_sends_a_batch_newest_first(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    sandbox.state.settings.webhook_delivery = WebhookDelivery(reorder=True, reorder_window_ms=100)
    company = sandbox.state.company("1000002")
    subscribe(sandbox, receiver, company, events=["Supplier.Updated"])
    for number in ("50001", "50002", "50003"):
        company.update(EntityName.SUPPLIER, number, {"status": "Active"})
    deliveries = await receiver.wait_for(3)
    assert [json.loads(d.body)["id"] for d in deliveries] == ["50003", "50002", "50001"]
