"""What one poll of one entity of one tenant does: which streams it reads, what it publishes.

Suppliers and supplier invoices are one stream each. A purchase-order poll reads purchase
receipts first (into the receipt index), then the orders, each published with the receipts
known at that moment; then every order still pending because one of its receipts changed is
fetched by number and published with its receipts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Protocol

from mlconnector.contracts import (
    EVENT_ID_NAMESPACE,
    ChangeEvent,
    Entity,
    UnreadableRecord,
    change_from_record,
)
from mlconnector.visma import (
    UnreadableRow,
    VismaNotFoundError,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaRecord,
)
from mlconnector.visma.ratelimit import QuotaLane
from visma_reader.cursor_store import CursorStore
from visma_reader.leases import LeaseLost, Tenure
from visma_reader.poll_gate import PollGate, PollInterrupted
from visma_reader.poller import (
    HandlePage,
    PagedSource,
    PollObserver,
    PollReport,
    Stream,
    poll_stream,
)
from visma_reader.receipt_index import ReceiptIndex
from visma_reader.settings import ReaderSettings

log = logging.getLogger(__name__)

# What a poll publishes: a change per record version, or a row of Visma that does not read.
Published = ChangeEvent | UnreadableRecord
Publish = Callable[[Sequence[Published]], Awaitable[None]]


def unreadable_record(tenant: str, stream: Stream, row: UnreadableRow) -> UnreadableRecord:
    """A Visma row that does not read, as the event that makes it a visible state: the same
    row read again has the same id."""
    entity_id = row.record_id or f"row-{row.content_hash[:16]}"
    return UnreadableRecord(
        event_id=str(
            uuid.uuid5(
                EVENT_ID_NAMESPACE, f"unreadable|{tenant}|{stream}|{entity_id}|{row.content_hash}"
            )
        ),
        tenant=tenant,
        entity=stream.value,
        entity_id=entity_id,
        supplier_number=row.supplier_number,
        content_hash=row.content_hash,
        problems=row.problems,
    )


class VismaSource(PagedSource, Protocol):
    async def get_purchase_order(self, order_nbr: str) -> VismaPurchaseOrder: ...


class Reader:
    def __init__(
        self,
        cursors: CursorStore,
        receipts: ReceiptIndex,
        publish: Publish,
        settings: ReaderSettings,
        observer: PollObserver | None = None,
        gate: PollGate | None = None,
    ) -> None:
        self._cursors = cursors
        self._receipts = receipts
        self._publish = publish
        self._settings = settings
        self._observer = observer
        self._gate = gate or PollGate(open_at_start=True)

    async def poll(
        self, source: VismaSource, tenant: str, entity: Entity, tenure: Tenure | None = None
    ) -> list[PollReport]:
        """One poll of the entity; PollInterrupted when a broker recovery stops it. With a
        `tenure` (several readers share the connections, leases.py), the poll stops with
        LeaseLost between two pages once the lease is no longer surely this reader's, and
        its cursors move only while the lease holds."""
        async with self._gate.passage():
            return await self._poll_entity(source, tenant, entity, tenure)

    async def _poll_entity(
        self, source: VismaSource, tenant: str, entity: Entity, tenure: Tenure | None
    ) -> list[PollReport]:
        if entity is not Entity.PURCHASE_ORDER:

            async def publish_records(records: Sequence[VismaRecord], lane: QuotaLane) -> int:
                return await self._publish_new(
                    [change_from_record(tenant, r, lane=lane) for r in records]
                )

            return [await self._poll(source, tenant, Stream(entity.value), publish_records, tenure)]

        async def index_receipts(records: Sequence[VismaRecord], lane: QuotaLane) -> int:
            receipts = [r for r in records if isinstance(r, VismaPurchaseReceipt)]
            await self._receipts.record(tenant, receipts)
            return 0

        async def publish_orders(records: Sequence[VismaRecord], lane: QuotaLane) -> int:
            orders = [r for r in records if isinstance(r, VismaPurchaseOrder)]
            return await self._publish_orders(tenant, orders, lane)

        receipts = await self._poll(source, tenant, Stream.PURCHASE_RECEIPT, index_receipts, tenure)
        orders = await self._poll(source, tenant, Stream.PURCHASE_ORDER, publish_orders, tenure)
        try:
            await self._republish_pending(source, tenant, orders)
        except Exception:
            if self._observer is not None:
                self._observer.poll_failed(tenant, Stream.PURCHASE_ORDER)
            raise
        return [receipts, orders]

    async def _poll(
        self,
        source: PagedSource,
        tenant: str,
        stream: Stream,
        handle_page: HandlePage,
        tenure: Tenure | None,
    ) -> PollReport:
        settings = self._settings

        async def between_pages(records: Sequence[VismaRecord], lane: QuotaLane) -> int:
            self._gate.check()
            if tenure is not None:
                tenure.check()
            return await handle_page(records, lane)

        try:
            return await poll_stream(
                source,
                self._cursors if tenure is None else self._cursors.fenced(tenure),
                between_pages,
                tenant=tenant,
                stream=stream,
                overlap=timedelta(seconds=settings.overlap_seconds),
                page_size=settings.page_size,
                rescans=settings.rescans,
                full_scan_every=(
                    timedelta(seconds=settings.full_scan_interval_seconds)
                    if settings.full_scan_interval_seconds
                    else None
                ),
                observer=self._observer,
                handle_unreadable=partial(self._publish_unreadable, tenant, stream),
            )
        except (PollInterrupted, LeaseLost):
            raise  # not a failure: the poll starts again after the recovery, or elsewhere
        except Exception:
            if self._observer is not None:
                self._observer.poll_failed(tenant, stream)
            raise

    async def _publish_unreadable(
        self, tenant: str, stream: Stream, rows: Sequence[UnreadableRow]
    ) -> int:
        events = [unreadable_record(tenant, stream, row) for row in rows]
        await self._publish(events)
        await self._cursors.forget(tenant, stream.value, [e.entity_id for e in events])
        return len(events)

    async def _publish_new(self, events: Sequence[ChangeEvent]) -> int:
        """Publishes the events whose content was not published yet; returns how many."""
        fresh = await self._cursors.unpublished(events)
        await self._publish(fresh)
        await self._cursors.remember_published(fresh)
        return len(fresh)

    async def _publish_orders(
        self, tenant: str, orders: Sequence[VismaPurchaseOrder], lane: QuotaLane
    ) -> int:
        numbers = [order.order_nbr for order in orders]
        receipts = await self._receipts.receipts_of(tenant, numbers)
        published = await self._publish_new(
            [
                change_from_record(tenant, o, receipts.get(o.order_nbr, ()), lane=lane)
                for o in orders
            ]
        )
        # Every order here is now on Kafka with the receipts the index holds.
        await self._receipts.settle(tenant, numbers)
        return published

    async def _republish_pending(
        self, source: VismaSource, tenant: str, report: PollReport
    ) -> None:
        """Orders whose receipts changed but that were not in this poll's window."""
        pending = await self._receipts.pending(tenant)
        size = self._settings.page_size
        for start in range(0, len(pending), size):
            orders: list[VismaPurchaseOrder] = []
            gone: list[str] = []
            for number in pending[start : start + size]:
                try:
                    orders.append(await source.get_purchase_order(number))
                except VismaNotFoundError:
                    gone.append(number)
            # Fetched one by one because a receipt of theirs changed: live work.
            published = await self._publish_orders(tenant, orders, QuotaLane.LIVE)
            if gone:
                log.info("%s: receipts point at orders Visma no longer has: %s", tenant, gone)
                await self._receipts.settle(tenant, gone)
            report.read += len(orders)
            report.published += published
            if self._observer is not None:
                self._observer.page_read(report, len(orders), published)
