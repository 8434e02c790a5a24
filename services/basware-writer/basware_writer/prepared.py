"""Changes mapped to what Basware receives, and what became of them: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from basware_writer.changes import RecordRef, ref_of
from basware_writer.outcomes import Verdict
from basware_writer.pending import Stage
from mlconnector.basware.models import BaswareModel
from mlconnector.contracts import (
    BaswareReason,
    ChangeEvent,
    DeliveryResult,
    Outcome,
    PurchaseOrderChanged,
    SupplierChanged,
    SupplierInvoiceChanged,
    result_event_id,
)
from mlconnector.mapping import (
    InvoicePayload,
    OrderPayload,
    Payload,
    VendorPayload,
    invoice_from_supplier_invoice,
    order_from_purchase_order,
    payload_hash,
    vendor_from_supplier,
)

T = TypeVar("T")


class Prepared(BaseModel):
    """A record's changes (Kafka order; the last is sent) and the payload Basware receives."""

    model_config = ConfigDict(frozen=True)

    changes: tuple[ChangeEvent, ...]
    payload: Payload
    payload_hash: str

    @property
    def change(self) -> ChangeEvent:
        return self.changes[-1]

    @property
    def ref(self) -> RecordRef:
        return ref_of(self.change)

    @property
    def supplier(self) -> str:
        return self.change.supplier_number


class Delivery(BaseModel):
    """A change and what became of it."""

    model_config = ConfigDict(frozen=True)

    change: ChangeEvent
    verdict: Verdict

    def result(self, region: str | None) -> DeliveryResult:
        change, verdict = self.change, self.verdict
        return DeliveryResult(
            event_id=result_event_id(change.event_id, verdict.outcome, verdict.attempts),
            tenant=change.tenant,
            change_event_id=change.event_id,
            entity=change.entity,
            entity_id=change.entity_id,
            supplier_number=change.supplier_number,
            content_hash=change.content_hash,
            outcome=verdict.outcome,
            attempts=verdict.attempts,
            region=region,
            request_id=verdict.request_id,
            reasons=verdict.reasons,
        )


def fan_out(changes: Sequence[ChangeEvent], verdict: Verdict) -> list[Delivery]:
    """Superseded changes of a record share the outcome of the change that was sent."""
    return [Delivery(change=change, verdict=verdict) for change in changes]


def reason(category: str, message: str) -> tuple[BaswareReason, ...]:
    return (BaswareReason(category=category, message=message),)


def map_change(change: ChangeEvent, company_code: str) -> Payload:
    if isinstance(change, SupplierChanged):
        return vendor_from_supplier(change.record, company_code)
    if isinstance(change, PurchaseOrderChanged):
        return order_from_purchase_order(change.record, change.receipts, company_code)
    if isinstance(change, SupplierInvoiceChanged):
        return invoice_from_supplier_invoice(change.record, company_code)
    raise TypeError(f"no Basware mapping for {type(change).__name__}")


def prepare(changes: Sequence[ChangeEvent], company_code: str) -> Prepared:
    """Raises Unmappable when the last change cannot become a valid Basware payload."""
    payload = map_change(changes[-1], company_code)
    return Prepared(changes=tuple(changes), payload=payload, payload_hash=payload_hash(payload))


def sent_at(stage: Stage, payload: Payload) -> list[BaswareModel]:
    """The Basware records a stage of a payload posts."""
    if stage is Stage.VENDOR and isinstance(payload, VendorPayload):
        return [payload.vendor]
    if stage is Stage.ORDER and isinstance(payload, OrderPayload):
        return [payload.order]
    if stage is Stage.LINES and isinstance(payload, OrderPayload):
        return list(payload.lines)
    raise TypeError(f"{type(payload).__name__} has no {stage.value} stage")


def codes_at(stage: Stage, payload: Payload) -> list[str]:
    """The external codes of the records a stage of a payload posts."""
    if stage is Stage.VENDOR and isinstance(payload, VendorPayload):
        return [payload.vendor.external_code]
    if stage is Stage.ORDER and isinstance(payload, OrderPayload):
        return [payload.order.external_code]
    if stage is Stage.LINES and isinstance(payload, OrderPayload):
        return [line.external_code for line in payload.lines]
    raise TypeError(f"{type(payload).__name__} has no {stage.value} stage")


def is_invoice(prepared: Prepared) -> bool:
    return isinstance(prepared.payload, InvoicePayload)


def pack(items: Sequence[tuple[int, list[T]]], limit: int) -> list[list[tuple[int, list[T]]]]:
    """Requests of at most `limit` records, filled in order; an item's records stay in one
    request unless they alone exceed the limit."""
    chunks: list[list[tuple[int, list[T]]]] = []
    current: list[tuple[int, list[T]]] = []
    size = 0
    for index, records in items:
        if current and size + len(records) > limit:
            chunks.append(current)
            current, size = [], 0
        if len(records) > limit:
            chunks += [[(index, records[i : i + limit])] for i in range(0, len(records), limit)]
            continue
        current.append((index, records))
        size += len(records)
    if current:
        chunks.append(current)
    return chunks


def unchanged() -> Verdict:
    return Verdict(
        outcome=Outcome.DELIVERED,
        attempts=0,
        reasons=reason("Unchanged", "Basware already has this content; not re-sent"),
    )


def parked(why: str) -> Verdict:
    return Verdict(outcome=Outcome.PARKED, attempts=0, reasons=reason("Dependency", why))
