"""Push notifications: tasks for subscribed events, signed POSTs to the subscriber, retries.

The signing recipe is configuration (WebhookSignature) because Basware's is unverified; by
default the lowercase hex HMAC-SHA256 of the raw body, keyed by the subscription's
webhookAuthenticationToken, goes in x-bwapi-signature-256.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from basware_sandbox.config import WebhookSignature
from basware_sandbox.records import (
    RequestRecord,
    Subscription,
    Task,
    TaskHistory,
    WebhookAttempt,
    iso,
)

if TYPE_CHECKING:
    from basware_sandbox.state import SandboxState, Tenant

TASK_LIFETIME = timedelta(days=1)
# Default taskSubType of a subscription that names none, per Basware's push API.
DEFAULT_SUB_TYPE = {"RequestStatus": "Error"}


def signature_headers(
    settings: WebhookSignature, body: bytes, secret: str, timestamp: int
) -> dict[str, str]:
    signed = f"{timestamp}.".encode() + body if settings.timestamp_header else body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    encoded = digest.hex() if settings.encoding == "hex" else base64.b64encode(digest).decode()
    headers = {settings.header: settings.prefix + encoded}
    if settings.timestamp_header:
        headers[settings.timestamp_header] = str(timestamp)
    return headers


class Notifier:
    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._client: httpx.AsyncClient | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self._state.config.webhook_delivery.timeout_seconds
            self._client = httpx.AsyncClient(timeout=timeout)
        return self._client

    async def aclose(self) -> None:
        for delivery in self._deliveries:
            delivery.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def drain(self) -> None:
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def post(self, url: str, secret: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        settings = self._state.config.webhook_signature
        headers = {
            "Content-Type": "application/json",
            **signature_headers(settings, body, secret, int(self._state.clock.now())),
        }
        return await self._http().post(url, content=body, headers=headers)

    async def connection_test(self, subscription: Subscription) -> str | None:
        """Sends the ConnectionTest call; None when the receiver answered 200, else why not."""
        payload = {
            "taskId": str(uuid.uuid4()),
            "taskStatus": "New",
            "taskType": "ConnectionTest",
            "taskSubType": subscription.task_sub_type,
            "documentId": "ConnectionTest",
            "expirationTime": iso(self._state.clock.utcnow() + TASK_LIFETIME),
        }
        try:
            response = await self.post(
                subscription.url, subscription.token.get_secret_value(), payload
            )
        except httpx.HTTPError as exc:
            return f"ConnectionTest failed: {type(exc).__name__}"
        if response.status_code != 200:
            return f"ConnectionTest answered {response.status_code}, expected 200"
        return None

    def document_entered(self, tenant: Tenant, invoice_id: str, processing_status: str) -> None:
        self._raise(tenant, "AccountingDocuments", processing_status, invoice_id)

    def request_finished(self, tenant: Tenant, request: RequestRecord) -> None:
        self._raise(tenant, "RequestStatus", request.status, request.request_id)

    def complete_tasks(self, tenant: Tenant, document_id: str, task_type: str) -> None:
        now = self._state.clock.utcnow()
        for task in tenant.tasks.values():
            if (
                task.document_id == document_id
                and task.task_type == task_type
                and task.task_status == "New"
            ):
                task.task_status = "Completed"
                task.last_updated = now
                task.history.append(TaskHistory(action="Completed", timeStamp=iso(now)))

    def _raise(self, tenant: Tenant, task_type: str, sub_type: str, document_id: str) -> None:
        for subscription in tenant.subscriptions:
            if subscription.task_type != task_type or subscription.subscription_type != "Webhook":
                continue
            if subscription.task_sub_type not in ("All", sub_type):
                continue
            now = self._state.clock.utcnow()
            task = Task(
                task_id=str(uuid.uuid4()),
                task_type=task_type,
                task_sub_type=sub_type,
                document_id=document_id,
                expiration_time=now + TASK_LIFETIME,
                last_updated=now,
                history=[TaskHistory(action="Created", timeStamp=iso(now))],
            )
            tenant.tasks[task.task_id] = task
            delivery = asyncio.get_running_loop().create_task(self._deliver(task, subscription))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, task: Task, subscription: Subscription) -> None:
        settings = self._state.config.webhook_delivery
        for attempt in range(1, settings.attempts + 1):
            status: int | None = None
            error: str | None = None
            try:
                response = await self.post(
                    subscription.url, subscription.token.get_secret_value(), task.notification()
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            self._state.webhook_log.append(
                WebhookAttempt(
                    task_id=task.task_id,
                    task_type=task.task_type,
                    url=subscription.url,
                    attempt=attempt,
                    status_code=status,
                    error=error,
                    at=self._state.clock.now(),
                )
            )
            now = iso(self._state.clock.utcnow())
            outcome = f"answered {status}" if status is not None else f"failed: {error}"
            task.history.append(TaskHistory(action="Notified", timeStamp=now, messages=[outcome]))
            self._state.changed()
            if status is not None and 200 <= status < 300:
                return
            if attempt < settings.attempts:
                await asyncio.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        task.task_status = "Failed"
        self._state.changed()
