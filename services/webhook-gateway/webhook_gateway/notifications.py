"""Pure mapping from verified webhook bodies to the events the gateway republishes.

Both senders' bodies are thin hints: whoever consumes the events re-fetches from the API.
Every text taken from a body or a header must be printable: a control character (NUL above
all) in an id would reach PostgreSQL, which refuses it, and every consumer of the topic.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mlconnector.basware import Notification
from mlconnector.contracts import (
    EVENT_ID_NAMESPACE,
    BaswareNotification,
    Entity,
    VismaNotification,
)
from mlconnector.visma import NOTIFICATION_ID_HEADER, TENANT_ID_HEADER, VismaWebhookBody
from mlconnector.visma.datetimes import naive_utc, parse_visma_datetime
from webhook_gateway.answers import Reason, Refused

CONNECTION_TEST = "ConnectionTest"
# Basware's own push-notification spec spells the type "AccoutingDocuments" in its example
# (docs/basware-p2p.md §8.1): consumers see one spelling.
_BASWARE_TASK_TYPE_SPELLINGS = {"AccoutingDocuments": "AccountingDocuments"}

# Visma's event table names entities "Supplier", "Purchase Order", "AP Invoice"; compared
# with case, spaces and punctuation removed. Other entities (Account, Dimension, ...) are
# not synced by ml-connector.
_VISMA_ENTITIES: dict[str, Entity] = {
    "supplier": Entity.SUPPLIER,
    "purchaseorder": Entity.PURCHASE_ORDER,
    "apinvoice": Entity.SUPPLIER_INVOICE,
    "supplierinvoice": Entity.SUPPLIER_INVOICE,
}


# A tenant in a webhook path: what a Visma company id or a configured tenant name can be.
# It starts with a letter or digit, so "." and ".." are never tenants.
_PATH_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MAX_HEADER_ID = 200

ModelT = TypeVar("ModelT", bound=BaseModel)


def _printable(*texts: str | None) -> bool:
    return all(text is None or text.isprintable() for text in texts)


def path_tenant(value: str) -> str:
    """The tenant a Basware webhook's path names; anything that cannot be one is unknown."""
    if not _PATH_TENANT.fullmatch(value):
        raise Refused(Reason.UNKNOWN_TENANT)
    return value


def _header_id(headers: Mapping[str, str], name: str, missing: Reason) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise Refused(missing)
    if len(value) > _MAX_HEADER_ID or not (value.isascii() and value.isprintable()):
        raise Refused(Reason.BAD_HEADER)
    return value


def _parse(model: type[ModelT], body: bytes) -> ModelT:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        malformed = any(e["type"] in ("json_invalid", "json_type") for e in error.errors())
        raise Refused(Reason.MALFORMED_JSON if malformed else Reason.INVALID_PAYLOAD) from None


def parse_basware_task(body: bytes) -> Notification:
    """Basware's push-notification body (taskId, taskStatus, taskType, documentId required)."""
    task = _parse(Notification, body)
    if not (task.task_id.strip() and task.task_type.strip() and task.document_id.strip()):
        raise Refused(Reason.INVALID_PAYLOAD)
    if not _printable(
        task.task_id, task.task_status, task.task_type, task.document_id, task.task_sub_type
    ):
        raise Refused(Reason.INVALID_PAYLOAD)
    return task


def is_connection_test(task: Notification) -> bool:
    return task.task_type == CONNECTION_TEST


def basware_notification(tenant: str, task: Notification) -> BaswareNotification:
    return BaswareNotification(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, f"basware-webhook|{tenant}|{task.task_id}")),
        tenant=tenant,
        task_id=task.task_id,
        task_type=_BASWARE_TASK_TYPE_SPELLINGS.get(task.task_type, task.task_type),
        task_sub_type=task.task_sub_type,
        document_id=task.document_id,
        status=task.task_status,
    )


def visma_entity(name: str) -> Entity | None:
    return _VISMA_ENTITIES.get(re.sub(r"[^a-z]", "", name.lower()))


def visma_notification_id(headers: Mapping[str, str]) -> str:
    """Visma's id of the notification: unsigned, so carried along but never a dedupe key."""
    return _header_id(headers, NOTIFICATION_ID_HEADER, Reason.MISSING_NOTIFICATION_ID)


def parse_visma_body(body: bytes) -> VismaWebhookBody:
    parsed = _parse(VismaWebhookBody, body)
    if not _printable(parsed.entity, parsed.event, parsed.id, parsed.tenant_id, parsed.timestamp):
        raise Refused(Reason.INVALID_PAYLOAD)
    return parsed


def check_visma_body_time(body: VismaWebhookBody, now: datetime, window: timedelta) -> None:
    """A signed body that carries its own time must be recent: a replay of an old one is
    stale however fresh its unsigned headers. A body without a time is judged by its
    digest alone (dedupe)."""
    if body.timestamp is None:
        return
    sent = parse_visma_datetime(body.timestamp)
    if not isinstance(sent, datetime):
        raise Refused(Reason.BAD_TIMESTAMP)
    # Visma's zone-less values are taken as UTC, as the reader does (docs/visma-net.md §11).
    if abs(naive_utc(now) - sent) > window:
        raise Refused(Reason.STALE_TIMESTAMP)


def visma_tenant_id(headers: Mapping[str, str]) -> str:
    """The Visma tenant id: picks the secrets (and, through the connection, the tenant)."""
    return _header_id(headers, TENANT_ID_HEADER, Reason.MISSING_TENANT_ID)


def check_visma_tenant(header_tenant_id: str, body: VismaWebhookBody) -> None:
    """The header is not signed, the body is: when the body names a tenant, they must agree."""
    if body.tenant_id is not None and body.tenant_id != header_tenant_id:
        raise Refused(Reason.TENANT_MISMATCH)


def visma_notification(
    tenant: str, signed_digest: str, notification_id: str, body: VismaWebhookBody
) -> VismaNotification | None:
    """The event for visma-reader to poll on; None for an entity ml-connector does not sync.
    Its id follows the digest of what Visma signed, so a replayed body is the same event."""
    entity = visma_entity(body.entity)
    if entity is None:
        return None
    return VismaNotification(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, f"visma-webhook|{tenant}|{signed_digest}")),
        tenant=tenant,
        notification_id=notification_id,
        entity=entity,
        event=body.event,
        record_key=body.id,
    )
