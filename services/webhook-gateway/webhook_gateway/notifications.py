"""Pure mapping from verified webhook bodies to the events the gateway republishes.

Both senders' bodies are thin hints: whoever consumes the events re-fetches from the API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
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
from webhook_gateway.answers import Reason, Refused

CONNECTION_TEST = "ConnectionTest"
# Basware's own push-notification spec spells the type "AccoutingDocuments" in its example
# (docs/basware-api.md §8.1): consumers see one spelling.
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


ModelT = TypeVar("ModelT", bound=BaseModel)


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
    notification_id = headers.get(NOTIFICATION_ID_HEADER, "").strip()
    if not notification_id or len(notification_id) > 200:
        raise Refused(Reason.MISSING_NOTIFICATION_ID)
    return notification_id


def parse_visma_body(body: bytes) -> VismaWebhookBody:
    return _parse(VismaWebhookBody, body)


def visma_tenant_id(headers: Mapping[str, str]) -> str:
    """The Visma tenant id: picks the secrets (and, through the connection, the tenant)."""
    tenant_id = headers.get(TENANT_ID_HEADER, "").strip()
    if not tenant_id:
        raise Refused(Reason.MISSING_TENANT_ID)
    return tenant_id


def check_visma_tenant(header_tenant_id: str, body: VismaWebhookBody) -> None:
    """The header is not signed, the body is: when the body names a tenant, they must agree."""
    if body.tenant_id is not None and body.tenant_id != header_tenant_id:
        raise Refused(Reason.TENANT_MISMATCH)


def visma_notification(
    tenant: str, notification_id: str, body: VismaWebhookBody
) -> VismaNotification | None:
    """The event for visma-reader to poll on; None for an entity ml-connector does not sync."""
    entity = visma_entity(body.entity)
    if entity is None:
        return None
    return VismaNotification(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, f"visma-webhook|{tenant}|{notification_id}")),
        tenant=tenant,
        notification_id=notification_id,
        entity=entity,
        event=body.event,
        record_key=body.id,
    )
