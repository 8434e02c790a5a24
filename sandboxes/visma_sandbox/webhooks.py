"""Webhook notifications as the Visma Webhook Dispatcher sends them (docs/visma-net.md §10).

Headers and signature follow the dispatcher: `x-vwd-signature-v1` is base64(HMAC-SHA256(secret,
raw body)), signed with the subscription's newest secret (a receiver keeps the old one during
rotation). The ERP body is not published; this one is INVENTED and thin on purpose:
    {"entity": "Supplier", "event": "Updated", "id": "50012", "tenantId": "...",
     "timestamp": "2026-11-25T10:00:00.123Z"}
(`id` of an AP invoice is "<documentType>/<referenceNumber>"). A receiver must re-fetch by GET.
Events: Supplier Created/Updated, Purchase Order Changed/Status Changed, AP Invoice Status
Changed only; receipts emit none. A background job started with `erp-api-background:
subscription[:k=v,...]` emits "Background API Operation / Response Ready" when it is finished,
its body adding `statusCode` and `stateLocation` (Visma's OpenAPI file: "a reference id,
status code and a details state location") and its request carrying the k=v pairs as
headers. Delivery is once without retry unless the settings say otherwise (retries,
duplicates, newest-first batches).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mlconnector.saved_state import SavedSecretStr
from visma_sandbox.config import WebhookDelivery

APPLICATION_VERSION = "1"


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    company_id: str
    url: str
    # Newest first: notifications are signed with secrets[0].
    secrets: list[SavedSecretStr] = Field(min_length=1, max_length=2)
    # "Supplier.Updated", "AP Invoice.Status Changed", ...; None: every event.
    events: list[str] | None = None
    application_id: str = "demo-visma-client"

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


class NotificationBody(BaseModel):
    """The invented thin body (see the module docstring)."""

    entity: str
    event: str
    id: str
    tenantId: str
    timestamp: str
    # Background API Operation / Response Ready only.
    statusCode: int | None = None
    stateLocation: str | None = None


class DeliveryAttempt(BaseModel):
    at: float
    status: int | None = None
    error: str | None = None


class Notification(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    subscription_id: str
    company_id: str
    tenant_id: str
    event_type: str
    body: str
    created_ms: int
    # Extra request headers (the name=value pairs of `erp-api-background: subscription:...`).
    headers: dict[str, str] = {}
    attempts: list[DeliveryAttempt] = []

    @property
    def delivered(self) -> bool:
        return any(a.status is not None and 200 <= a.status < 300 for a in self.attempts)


class WebhookFeedback(BaseModel):
    """What an integrator posts to /v1/webhooknotificationfeedback."""

    model_config = ConfigDict(extra="ignore")

    notificationId: str
    source: str | None = None
    description: str | None = None
    isSuccess: bool


class WebhookHub:
    def __init__(
        self, delivery: Callable[[], WebhookDelivery], delivered: Callable[[], None]
    ) -> None:
        self._delivery = delivery
        # Called after each delivery attempt: the attempt is part of the saved state.
        self._delivered = delivered
        self.subscriptions: dict[str, Subscription] = {}
        self.notifications: dict[str, Notification] = {}
        self.feedback: list[WebhookFeedback] = []
        self._pending: list[Notification] = []
        self._wakeup = asyncio.Event()

    def subscribe(self, subscription: Subscription) -> Subscription:
        self.subscriptions[subscription.id] = subscription
        return subscription

    def clear(self) -> None:
        self.subscriptions.clear()
        self.notifications.clear()
        self.feedback.clear()
        self._pending.clear()

    def emit(
        self,
        *,
        company_id: str,
        tenant_id: str,
        entity: str,
        event: str,
        key: str,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
        state_location: str | None = None,
    ) -> None:
        event_type = f"{entity}.{event}"
        now = datetime.now(UTC)
        for sub in self.subscriptions.values():
            if sub.company_id != company_id or not sub.wants(event_type):
                continue
            body = NotificationBody(
                entity=entity,
                event=event,
                id=key,
                tenantId=tenant_id,
                timestamp=now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                statusCode=status_code,
                stateLocation=state_location,
            )
            notification = Notification(
                subscription_id=sub.id,
                company_id=company_id,
                tenant_id=tenant_id,
                event_type=event_type,
                body=body.model_dump_json(exclude_none=True),
                created_ms=int(now.timestamp() * 1000),
                headers=headers or {},
            )
            self.notifications[notification.id] = notification
            self._pending.append(notification)
        if self._pending:
            self._wakeup.set()

    def resend(self, notification_id: str) -> Notification:
        notification = self.notifications[notification_id]
        self._pending.append(notification)
        self._wakeup.set()
        return notification

    async def run(self, http: httpx.AsyncClient) -> None:
        """Delivers pending notifications until cancelled (runs while the sandbox serves)."""
        while True:
            await self._wakeup.wait()
            delivery = self._delivery()
            if delivery.reorder:
                await asyncio.sleep(delivery.reorder_window_ms / 1000)
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if delivery.reorder:
                batch.reverse()
            for notification in batch:
                copies = 2 if delivery.duplicate else 1
                for _ in range(copies):
                    await self._deliver(http, notification, delivery)

    async def _deliver(
        self, http: httpx.AsyncClient, notification: Notification, delivery: WebhookDelivery
    ) -> None:
        subscription = self.subscriptions.get(notification.subscription_id)
        if subscription is None:
            return
        body = notification.body.encode()
        for attempt in range(delivery.retries + 1):
            if attempt:
                await asyncio.sleep(delivery.retry_delay_ms / 1000 * 2 ** (attempt - 1))
            secret = subscription.secrets[0].get_secret_value()
            # The caller's pairs first: they cannot replace the dispatcher's own headers.
            headers = {
                **notification.headers,
                "content-type": "application/json",
                "x-vwd-application-id": subscription.application_id,
                "x-vwd-application-version": APPLICATION_VERSION,
                "x-vwd-event-id": notification.event_type,
                "x-vwd-group-id": notification.id,
                "x-vwd-notification-id": notification.id,
                "x-vwd-notification-timestamp": str(notification.created_ms),
                "x-vwd-subscription-id": subscription.id,
                "x-vwd-tenant-id": notification.tenant_id,
                "x-vwd-webhook-timestamp": str(int(time.time() * 1000)),
                "x-vwd-signature-v1": signature(body, secret),
            }
            record = DeliveryAttempt(at=time.time())
            try:
                response = await http.post(
                    subscription.url,
                    content=body,
                    headers=headers,
                    timeout=delivery.timeout_seconds,
                )
                record.status = response.status_code
            except httpx.HTTPError as exc:
                record.error = type(exc).__name__
            notification.attempts.append(record)
            self._delivered()
            if record.status is not None and 200 <= record.status < 300:
                return
