"""Follows each uploaded invoice from Basware's notifications, Visma's changes and a periodic
check, and does the connector's part (`policy` decides what, `store` remembers it).

Fed by three sources, all idempotent:
- basware.events: a task notification names an accounting document; it is re-fetched.
- visma.changes: a supplier invoice as Visma has it now (its number, whether it is paid).
- basware.results: the writer's exception for an invoice changed in Visma after its upload,
  written back as a note.
- `check(tenant)`, periodically: invoices waiting for transfer (GET accountingDocuments),
  and GET accountingDocuments/status for every invoice still under way, so a lost webhook
  delays a step but never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from invoice_follow_up.policy import (
    WAITING_FOR_TRANSFER,
    FollowedInvoice,
    InvoiceOutcome,
    basware_identity,
    document_outcome,
    exception_note,
    exception_of,
    is_news,
    payment_response,
    should_post_payment,
    should_transfer,
    status_event,
    status_outcome,
    transfer_response,
    visma_identity,
    visma_note,
)
from invoice_follow_up.store import InvoiceStore, Step
from mlconnector.basware import AccountingDocument, BaswareClient, BaswareError
from mlconnector.contracts import (
    BaswareNotification,
    DeliveryResult,
    Event,
    InvoiceStatusChanged,
    SupplierInvoiceChanged,
    utcnow,
)
from mlconnector.visma import VismaClient, VismaError

log = logging.getLogger(__name__)

ACCOUNTING_DOCUMENTS = "AccountingDocuments"
Publish = Callable[[Sequence[Event]], Awaitable[None]]
# What one failed step may raise: logged, and the periodic check tries again.
STEP_ERRORS = (BaswareError, VismaError, OSError)


class TenantApis(BaseModel):
    """One tenant's API clients, and whether Basware outcomes are written back to Visma."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    basware: BaswareClient
    visma: VismaClient
    write_back: bool = False


class InvoiceFollowUp:
    def __init__(
        self,
        *,
        store: InvoiceStore,
        apis: Mapping[str, TenantApis],
        publish: Publish,
        clock: Callable[[], datetime] = utcnow,
        lookups_per_second: float = 5.0,
    ) -> None:
        self._store = store
        self._apis = apis
        self._publish = publish
        self._clock = clock
        self._lookup_gap = 1.0 / lookups_per_second

    @property
    def tenants(self) -> list[str]:
        return sorted(self._apis)

    async def on_visma_invoice(self, change: SupplierInvoiceChanged) -> None:
        invoice = await self._store.upsert_visma(
            change.tenant, visma_identity(change.record), change.record
        )
        await self._advance(invoice)

    async def on_result(self, result: DeliveryResult) -> None:
        """An invoice changed in Visma after its upload: with write-back on, the exception
        goes into the Visma invoice's note (once: the same exception leaves it as it is)."""
        exception = exception_of(result)
        apis = self._apis.get(result.tenant)
        if exception is None or apis is None or not apis.write_back:
            return
        document_type, _, reference = result.entity_id.partition("/")
        invoice = await apis.visma.get_supplier_invoice(document_type, reference)
        note = exception_note(invoice.note, exception)
        if note == (invoice.note or ""):
            return
        try:
            await apis.visma.update_supplier_invoice_note(document_type, reference, note)
        except VismaError as error:
            # As for status notes: the result (and the audit trail) already hold it.
            log.warning("write-back to %s failed: %s", result.entity_id, type(error).__name__)
            return
        log.info("invoice %s of %s: exception written back", result.entity_id, result.tenant)

    async def on_basware_notification(self, notification: BaswareNotification) -> None:
        apis = self._apis.get(notification.tenant)
        if notification.task_type != ACCOUNTING_DOCUMENTS or not notification.document_id:
            return
        if apis is None:
            log.warning("basware notification for unknown tenant %s", notification.tenant)
            return
        document = await apis.basware.get_accounting_document(notification.document_id)
        if document is not None:
            await self.on_document(notification.tenant, document)

    async def on_document(self, tenant: str, document: AccountingDocument) -> None:
        identity = basware_identity(document)
        if identity is None:
            log.info("accounting document %s has no invoice number", document.invoice_id)
            return
        invoice = await self._store.upsert_basware(tenant, identity, document)
        outcome = document_outcome(document)
        if outcome is not None:
            invoice = await self._record(invoice, outcome, _document_detail(document, outcome))
        await self._advance(invoice)

    async def check(self, tenant: str) -> None:
        """The periodic safety net for one tenant (what a lost webhook would have told)."""
        basware = self._apis[tenant].basware
        async for document in basware.iter_accounting_documents(
            processing_status=WAITING_FOR_TRANSFER
        ):
            await self.on_document(tenant, document)
        next_lookup = time.monotonic()
        for invoice in await self._store.under_way(tenant):
            if invoice.company_code and invoice.invoice_date:
                # Paced: a tenant with thousands of invoices under way is not asked about
                # them dozens of times a second.
                await asyncio.sleep(max(0.0, next_lookup - time.monotonic()))
                next_lookup = max(next_lookup, time.monotonic()) + self._lookup_gap
                statuses = await basware.get_invoice_status(
                    invoice.company_code,
                    invoice.identity.invoice_number,
                    invoice.invoice_date.date(),
                )
                for status in statuses:
                    if status.invoice_id in (None, invoice.basware_invoice_id):
                        reason = status.dispute_info.dispute_reason if status.dispute_info else None
                        invoice = await self._record(invoice, status_outcome(status), reason)
            await self._advance(invoice)

    async def _advance(self, invoice: FollowedInvoice) -> None:
        """Does the connector's next step, if any: transfer, then payment."""
        apis = self._apis.get(invoice.tenant)
        if apis is None or invoice.basware_invoice_id is None:
            return
        invoice_id = invoice.basware_invoice_id
        if should_transfer(invoice) and await self._store.claim(invoice, Step.TRANSFER):
            try:
                # A 405 means it was acknowledged already (by us, before a crash): go on.
                await apis.basware.acknowledge(invoice_id)
                await apis.basware.post_transfer_response(
                    invoice_id, transfer_response(invoice, self._clock())
                )
            except BaseException:
                await self._store.release(invoice, Step.TRANSFER)
                raise
            invoice = await self._store.done(invoice, Step.TRANSFER)
            invoice = await self._record(invoice, InvoiceOutcome.TRANSFERRED, invoice.visma_key)
        if should_post_payment(invoice) and await self._store.claim(invoice, Step.PAYMENT):
            try:
                await apis.basware.post_payment_response(
                    invoice_id, payment_response(invoice, self._clock())
                )
            except BaseException:
                await self._store.release(invoice, Step.PAYMENT)
                raise
            invoice = await self._store.done(invoice, Step.PAYMENT)
            await self._record(invoice, InvoiceOutcome.PAID, invoice.visma_key)

    async def _record(
        self, invoice: FollowedInvoice, outcome: InvoiceOutcome, detail: str | None
    ) -> FollowedInvoice:
        """Publishes an outcome once (then remembers it) and writes it back when asked.

        Decided on the row as it is now, under its lock: the periodic check and a
        notification may hold the same invoice at once, each read before the other recorded
        anything, and a document read before the transfer may be handled after it."""
        async with self._store.locked(invoice) as locked:
            current = locked.invoice
            if not is_news(current, outcome):
                return current
            event: InvoiceStatusChanged = status_event(current, outcome, detail)
            await self._publish([event])
            recorded = await locked.record_outcome(outcome)
        log.info("invoice %s of %s: %s", event.entity_id, recorded.tenant, outcome.value)
        apis = self._apis.get(recorded.tenant)
        if apis is not None and apis.write_back:
            await self._write_back(apis.visma, current, outcome, detail)
        return recorded

    async def _write_back(
        self,
        visma: VismaClient,
        invoice: FollowedInvoice,
        outcome: InvoiceOutcome,
        detail: str | None,
    ) -> None:
        if invoice.visma_document_type is None or invoice.visma_reference_number is None:
            return  # not known from Visma yet: the next outcome writes the note
        note = visma_note(invoice.visma_note, outcome, self._clock(), detail)
        try:
            await visma.update_supplier_invoice_note(
                invoice.visma_document_type, invoice.visma_reference_number, note
            )
        except VismaError as error:
            # The note is a courtesy: the event (and the audit trail) already hold the outcome.
            log.warning("write-back to %s failed: %s", invoice.visma_key, type(error).__name__)


def _document_detail(document: AccountingDocument, outcome: InvoiceOutcome) -> str | None:
    if outcome is InvoiceOutcome.DISPUTED and document.dispute_info is not None:
        return document.dispute_info.dispute_reason
    if outcome is InvoiceOutcome.REJECTED:
        return document.removal_reason
    return None


async def check_periodically(follow_up: InvoiceFollowUp, interval: timedelta) -> None:
    """Runs until cancelled: every tenant's check, one failing tenant not stopping the rest."""
    while True:
        for tenant in follow_up.tenants:
            try:
                await follow_up.check(tenant)
            except STEP_ERRORS as error:
                log.warning("invoice check of %s failed: %s", tenant, type(error).__name__)
        await asyncio.sleep(interval.total_seconds())
