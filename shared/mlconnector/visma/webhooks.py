"""Visma webhook notifications as the Visma Webhook Dispatcher sends them (docs/visma-net.md §10).

The one model of a notification's body, and the names of the headers the connector reads.
`x-vwd-signature-v1` is base64(HMAC-SHA256(subscription secret, raw body)); webhook-gateway
verifies it with its signature scheme built on `SIGNATURE_HEADER`. The ERP body is not
published (docs/visma-net.md §10.3): `VismaWebhookBody` reads the thin hint the sandbox sends
and ignores anything else, and a receiver re-fetches the record by GET and trusts nothing in it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SIGNATURE_HEADER = "x-vwd-signature-v1"
NOTIFICATION_ID_HEADER = "x-vwd-notification-id"
TENANT_ID_HEADER = "x-vwd-tenant-id"


class VismaWebhookBody(BaseModel):
    """The body: entity ("Supplier", "Purchase Order", "AP Invoice"), event ("Updated",
    "Status Changed", ...), the record key and the tenant, each but the first two optional
    because the real body is unpublished. AP invoice keys are "<documentType>/<referenceNumber>"."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    entity: str = Field(min_length=1)
    event: str = Field(min_length=1)
    id: str | None = None
    tenant_id: str | None = Field(default=None, alias="tenantId")
    timestamp: str | None = None
