"""Event contracts: every message on Kafka is one of these versioned pydantic models.

The contracts know no Kafka and no PostgreSQL; `mlconnector.kafka` maps them to messages.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlconnector.field_problems import FieldProblem
from mlconnector.topics import message_key
from mlconnector.visma.models import (
    VismaAccount,
    VismaCreditTerm,
    VismaDimensionValue,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaRecord,
    VismaSupplier,
    VismaSupplierInvoice,
    VismaVatCategory,
)
from mlconnector.visma.ratelimit import QuotaLane

# Fixed namespace so event ids are the same on every machine and in every run.
EVENT_ID_NAMESPACE = uuid.UUID("3f1d8f0e-5b2a-4c55-9a0e-6c1f6d0b7a11")


class Entity(StrEnum):
    # Reference data: what vendors, orders and invoices name (their codes).
    CREDIT_TERM = "credit_term"
    VAT_CATEGORY = "vat_category"
    ACCOUNT = "account"
    DIMENSION_VALUE = "dimension_value"
    SUPPLIER = "supplier"
    PURCHASE_ORDER = "purchase_order"
    SUPPLIER_INVOICE = "supplier_invoice"


REFERENCE_ENTITIES = frozenset(
    {Entity.CREDIT_TERM, Entity.VAT_CATEGORY, Entity.ACCOUNT, Entity.DIMENSION_VALUE}
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _canonical(record: VismaRecord) -> dict[str, Any]:
    body = record.model_dump(mode="json", by_alias=True, exclude={"metadata"})
    body.pop("metadata", None)
    return body


def content_hash(record: VismaRecord, receipts: Sequence[VismaPurchaseReceipt] = ()) -> str:
    """sha256 of the record's canonical JSON, without the list metadata Visma adds per page.

    A purchase order's receipts are part of what Basware sees (goodsReceipts on its lines),
    so a new receipt changes the order's hash even when the order itself is unchanged.
    """
    body: Any = _canonical(record)
    if receipts:
        body = {"record": body, "receipts": [_canonical(r) for r in receipts]}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def change_event_id(tenant: str, entity: Entity, entity_id: str, digest: str) -> str:
    """The same unchanged record polled twice yields the same id, so consumers can dedupe."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant}|{entity.value}|{entity_id}|{digest}"))


class Event(BaseModel):
    """Fields and rules every event shares."""

    model_config = ConfigDict(frozen=True)

    event_type: ClassVar[str]
    schema_version: Literal[1] = 1
    event_id: str
    tenant: str
    occurred_at: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        raise NotImplementedError


class ChangeEvent(Event):
    """A Visma record as read, on visma.changes."""

    entity: Entity
    entity_id: str
    supplier_number: str
    last_modified: datetime
    content_hash: str
    # Basware was found to differ from this version (reconcile --heal): the writer sends it
    # even when Basware accepted the same content before.
    resend: bool = False

    # Set by `replay --force --reason`: why an operator sends this version whatever was
    # sent before. For an invoice uploaded before, it asks for a re-upload, which the writer
    # makes only once Basware's document is gone or rejected (docs/basware-p2p.md §10.8).
    force_reason: str | None = None

    # Which share of Visma's quota the writer's calls for this change take (an invoice's
    # attachment download): live for what an incremental poll found (a notification makes
    # one early), bulk for a backfill's or a full scan's records (docs/visma-net.md §8.3).
    quota_lane: QuotaLane = QuotaLane.LIVE

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.supplier_number)


class SupplierChanged(ChangeEvent):
    event_type: ClassVar[str] = "SupplierChanged"
    entity: Literal[Entity.SUPPLIER] = Entity.SUPPLIER
    record: VismaSupplier


class PurchaseOrderChanged(ChangeEvent):
    event_type: ClassVar[str] = "PurchaseOrderChanged"
    entity: Literal[Entity.PURCHASE_ORDER] = Entity.PURCHASE_ORDER
    record: VismaPurchaseOrder
    # Visma purchase receipts whose lines point at this order, for three-way matching.
    receipts: tuple[VismaPurchaseReceipt, ...] = ()


class SupplierInvoiceChanged(ChangeEvent):
    event_type: ClassVar[str] = "SupplierInvoiceChanged"
    entity: Literal[Entity.SUPPLIER_INVOICE] = Entity.SUPPLIER_INVOICE
    record: VismaSupplierInvoice


class CreditTermChanged(ChangeEvent):
    event_type: ClassVar[str] = "CreditTermChanged"
    entity: Literal[Entity.CREDIT_TERM] = Entity.CREDIT_TERM
    record: VismaCreditTerm


class VatCategoryChanged(ChangeEvent):
    event_type: ClassVar[str] = "VatCategoryChanged"
    entity: Literal[Entity.VAT_CATEGORY] = Entity.VAT_CATEGORY
    record: VismaVatCategory


class AccountChanged(ChangeEvent):
    event_type: ClassVar[str] = "AccountChanged"
    entity: Literal[Entity.ACCOUNT] = Entity.ACCOUNT
    record: VismaAccount


class DimensionValueChanged(ChangeEvent):
    event_type: ClassVar[str] = "DimensionValueChanged"
    entity: Literal[Entity.DIMENSION_VALUE] = Entity.DIMENSION_VALUE
    record: VismaDimensionValue


ReferenceChange = CreditTermChanged | VatCategoryChanged | AccountChanged | DimensionValueChanged

AnyChange = Annotated[
    SupplierChanged
    | PurchaseOrderChanged
    | SupplierInvoiceChanged
    | CreditTermChanged
    | VatCategoryChanged
    | AccountChanged
    | DimensionValueChanged,
    Field(discriminator="entity"),
]

_CHANGE_TYPES: dict[type[VismaRecord], tuple[Entity, type[ChangeEvent]]] = {
    VismaSupplier: (Entity.SUPPLIER, SupplierChanged),
    VismaPurchaseOrder: (Entity.PURCHASE_ORDER, PurchaseOrderChanged),
    VismaSupplierInvoice: (Entity.SUPPLIER_INVOICE, SupplierInvoiceChanged),
    VismaCreditTerm: (Entity.CREDIT_TERM, CreditTermChanged),
    VismaVatCategory: (Entity.VAT_CATEGORY, VatCategoryChanged),
    VismaAccount: (Entity.ACCOUNT, AccountChanged),
    VismaDimensionValue: (Entity.DIMENSION_VALUE, DimensionValueChanged),
}


# Every change event type visma.changes carries.
CHANGE_EVENTS: tuple[type[ChangeEvent], ...] = tuple(t for _, t in _CHANGE_TYPES.values())
# The Visma record each entity is read as.
MODEL_OF_ENTITY: dict[Entity, type[VismaRecord]] = {
    entity: model for model, (entity, _) in _CHANGE_TYPES.items()
}


def entity_of(model: type[VismaRecord]) -> Entity:
    return _CHANGE_TYPES[model][0]


def change_from_record(
    tenant: str,
    record: VismaRecord,
    receipts: Sequence[VismaPurchaseReceipt] = (),
    lane: QuotaLane = QuotaLane.LIVE,
) -> ChangeEvent:
    """Builds the change event for a record read from Visma, with its deterministic id (the
    lane is not part of it: one version is one event, however it was found)."""
    entity, event_type = _CHANGE_TYPES[type(record)]
    digest = content_hash(record, receipts)
    extra: dict[str, Any] = {"receipts": tuple(receipts)} if receipts else {}
    return event_type(
        event_id=change_event_id(tenant, entity, record.record_id, digest),
        tenant=tenant,
        entity=entity,
        entity_id=record.record_id,
        supplier_number=record.supplier_number,
        last_modified=record.last_modified_date_time,
        content_hash=digest,
        record=record,
        quota_lane=lane,
        **extra,
    )


class Outcome(StrEnum):
    DELIVERED = "delivered"  # requestStatus Success, or NotProcessed for an identical record
    REJECTED = "rejected"  # Basware said no (4xx or requestStatus Error), with its reasons
    FAILED = "failed"  # retries exhausted; replayable once the cause is fixed
    PARKED = "parked"  # waits behind an unaccepted prerequisite of the same key
    # Needs a person, and nothing is sent until one acts: an invoice changed in Visma after
    # its upload (Basware holds the earlier version as a document of its own).
    EXCEPTION = "exception"


class BaswareReason(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str | None = None
    category: str | None = None
    message: str
    field: str | None = None


class DeliveryResult(Event):
    """What Basware did with one change event, on basware.results."""

    event_type: ClassVar[str] = "DeliveryResult"
    change_event_id: str
    entity: Entity
    entity_id: str
    supplier_number: str
    content_hash: str
    outcome: Outcome
    attempts: int = 1
    region: str | None = None
    request_id: str | None = None
    reasons: tuple[BaswareReason, ...] = ()

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.supplier_number)


def result_event_id(change_event_id: str, outcome: Outcome, attempts: int) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"result|{change_event_id}|{outcome}|{attempts}"))


class MalformedMessage(Event):
    """A message on visma.changes that the writer could not read, on basware.results: where it
    is and the parse error by field. When its body still names a change of a record that the
    log holds, that record's state is `malformed`; else the message is a state of its own."""

    event_type: ClassVar[str] = "MalformedMessage"
    topic: str
    partition: int
    offset: int
    message_event_id: str | None = None
    message_event_type: str | None = None
    # What the body names, as far as it can be read (all None for garbage).
    entity: str | None = None
    entity_id: str | None = None
    supplier_number: str | None = None
    change_event_id: str | None = None
    content_hash: str | None = None
    problems: tuple[FieldProblem, ...] = ()

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.supplier_number or "malformed")


def malformed_message_id(topic: str, partition: int, offset: int) -> str:
    """One id per message: read twice (a rewound batch), it is logged once."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"malformed|{topic}|{partition}|{offset}"))


class UnreadableRecord(Event):
    """A Visma record visma-reader could not read (a field that fails its model, such as a
    date 2026-13-45), on visma.changes instead of a change: the record's state is
    `malformed`, with the fields that failed, until Visma holds a version that reads."""

    event_type: ClassVar[str] = "UnreadableRecord"
    entity: str
    entity_id: str
    supplier_number: str | None = None
    # sha256 of the row as Visma sent it: the same unreadable row read again has the same id.
    content_hash: str
    problems: tuple[FieldProblem, ...] = ()

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.supplier_number or "unreadable")


class VismaNotification(Event):
    """A verified Visma webhook: a hint to poll now, never trusted for data."""

    event_type: ClassVar[str] = "VismaNotification"
    notification_id: str
    entity: Entity | None
    event: str
    record_key: str | None = None

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.entity.value if self.entity else 'all'}"


class BaswareNotification(Event):
    """A verified Basware webhook (a thin task notification), on basware.events."""

    event_type: ClassVar[str] = "BaswareNotification"
    task_id: str
    task_type: str
    task_sub_type: str | None = None
    document_id: str | None = None
    status: str | None = None

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.document_id or self.task_id}"


class InvoiceStatusChanged(Event):
    """An uploaded invoice reached a new state in Basware (approval, exception, payment)."""

    event_type: ClassVar[str] = "InvoiceStatusChanged"
    supplier_number: str
    entity_id: str
    basware_status: str
    detail: str | None = None

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.supplier_number)


class OperatorAction(Event):
    """Something a person did to the connector, in the console or with the CLI: who did
    what to what, and why. Never carries a secret. `tenant` is the connection's Visma
    company id when the action concerns one, else empty."""

    event_type: ClassVar[str] = "OperatorAction"
    actor: str
    role: str | None = None
    action: str
    target: str | None = None
    reason: str | None = None
    detail: str | None = None
    succeeded: bool = True
    # The record an action concerns (a replay of one record), so it shows in its lineage.
    entity: Entity | None = None
    entity_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.actor}"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (
        SupplierChanged,
        PurchaseOrderChanged,
        SupplierInvoiceChanged,
        CreditTermChanged,
        VatCategoryChanged,
        AccountChanged,
        DimensionValueChanged,
        DeliveryResult,
        VismaNotification,
        BaswareNotification,
        InvoiceStatusChanged,
        OperatorAction,
        MalformedMessage,
        UnreadableRecord,
    )
}


def parse_event(event_type: str, body: bytes | str | dict[str, Any]) -> Event:
    """Reads any event from its JSON body and the event-type header."""
    model = EVENT_TYPES[event_type]
    if isinstance(body, dict):
        return model.model_validate(body)
    return model.model_validate_json(body)
