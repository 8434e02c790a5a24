"""Checking Visma webhook notifications (the Visma Webhook Dispatcher's format).

`x-vwd-signature-v1` is base64(HMAC-SHA256(subscription secret, raw body)). During a secret
rotation two secrets are valid, so verification accepts any of the configured ones. The ERP
body is not published: `VismaNotification` reads the thin hint the sandbox sends and keeps
anything else; a receiver must re-fetch the record by GET and trust nothing in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SIGNATURE_HEADER = "x-vwd-signature-v1"


def webhook_signature(body: bytes, secret: SecretStr) -> str:
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook_signature(
    body: bytes, signature: str | None, secrets: Iterable[SecretStr]
) -> bool:
    """True when `signature` is the body's HMAC under any of `secrets` (constant time)."""
    if not signature:
        return False
    presented = signature.strip().encode()
    return any(
        hmac.compare_digest(presented, webhook_signature(body, secret).encode())
        for secret in secrets
    )


class VismaNotificationHeaders(BaseModel):
    """The x-vwd-* headers of a notification."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    notification_id: str = Field(alias="x-vwd-notification-id")
    event_id: str = Field(alias="x-vwd-event-id")
    tenant_id: str = Field(alias="x-vwd-tenant-id")
    subscription_id: str | None = Field(default=None, alias="x-vwd-subscription-id")
    application_id: str | None = Field(default=None, alias="x-vwd-application-id")
    group_id: str | None = Field(default=None, alias="x-vwd-group-id")
    notification_timestamp: int | None = Field(default=None, alias="x-vwd-notification-timestamp")
    webhook_timestamp: int | None = Field(default=None, alias="x-vwd-webhook-timestamp")

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> VismaNotificationHeaders:
        return cls.model_validate({k.lower(): v for k, v in headers.items()})


class VismaNotification(BaseModel):
    """The notification body: entity ("Supplier", "Purchase Order", "AP Invoice"), event
    ("Updated", "Status Changed", ...), the record key and the tenant. AP invoice keys are
    "<documentType>/<referenceNumber>"."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    entity: str
    event: str
    id: str
    tenant_id: str = Field(alias="tenantId")
    timestamp: str | None = None
