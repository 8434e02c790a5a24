"""One incremental poll of one stream of one tenant: read the window, hand over each page, then
advance the cursor.

The order of the writes is the guarantee: a page's events are acknowledged by Kafka before
their hashes are remembered (in `handle_page`), and the cursor moves only after the whole
window was read. A crash between any two of them re-publishes (same event ids, deduped
downstream) and never skips. The cursor comes from the ERP's own timestamps, never from this
machine's clock, and each poll starts `overlap` below it with `>=`: rows that share the
cursor's timestamp, rows changed while the last poll paged, and a server clock in another
zone all fall inside the window again (the overlap must exceed the zone offset plus the
duration of one scan).

Paging is by offset over a live result (docs/visma-net.md §6.2). A row changed while the reader
pages stays in the `>= since` result (timestamps only grow) and shifts nothing; a row that
enters it shifts later rows right, so one is read twice and deduped. Only a row that leaves
the result (a deletion) shifts rows left, past the reader: totalCount then drops between two
pages, the window is scanned again, and the cursor stays where it was until a scan is clean.

What no window can see (a deletion and a creation between the same two pages, which hide
each other from totalCount; a zone offset or a scan longer than the overlap) is caught by a
periodic full scan: the whole list read again, where dedupe publishes only what differs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel

from mlconnector.visma import (
    UnreadableRow,
    VismaAccount,
    VismaCreditTerm,
    VismaDimensionValue,
    VismaPage,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaRecord,
    VismaSupplier,
    VismaSupplierInvoice,
    VismaVatCategory,
)
from mlconnector.visma.ratelimit import QuotaLane

log = logging.getLogger(__name__)

R = TypeVar("R", bound=VismaRecord)


class Stream(StrEnum):
    """What the reader polls, each with a cursor of its own. Receipts publish no events: they
    ride on their purchase orders' events."""

    CREDIT_TERM = "credit_term"
    VAT_CATEGORY = "vat_category"
    ACCOUNT = "account"
    DIMENSION_VALUE = "dimension_value"
    SUPPLIER = "supplier"
    PURCHASE_RECEIPT = "purchase_receipt"
    PURCHASE_ORDER = "purchase_order"
    SUPPLIER_INVOICE = "supplier_invoice"


MODEL_OF: dict[Stream, type[VismaRecord]] = {
    Stream.CREDIT_TERM: VismaCreditTerm,
    Stream.VAT_CATEGORY: VismaVatCategory,
    Stream.ACCOUNT: VismaAccount,
    Stream.DIMENSION_VALUE: VismaDimensionValue,
    Stream.SUPPLIER: VismaSupplier,
    Stream.PURCHASE_RECEIPT: VismaPurchaseReceipt,
    Stream.PURCHASE_ORDER: VismaPurchaseOrder,
    Stream.SUPPLIER_INVOICE: VismaSupplierInvoice,
}


class PagedSource(Protocol):
    def iter_page_results(
        self, model: type[R], *, modified_since: datetime | None = None, page_size: int = 1000
    ) -> AsyncIterator[VismaPage[R]]: ...


class PollCursor(BaseModel):
    # The newest lastModifiedDateTime fully read (zone-less, the ERP's frame); None: never.
    high_water: datetime | None = None
    # When a poll last read the whole list.
    full_scan_at: datetime | None = None

    def full_scan_due(self, every: timedelta | None, now: datetime) -> bool:
        if self.high_water is None:
            return True  # the first poll is a backfill
        if every is None:
            return False
        return self.full_scan_at is None or now - self.full_scan_at >= every


class Cursors(Protocol):
    async def cursor(self, tenant: str, stream: str) -> PollCursor: ...

    async def advance(
        self, tenant: str, stream: str, high_water: datetime, *, full_scan: bool = False
    ) -> None: ...


class PollReport(BaseModel):
    tenant: str
    stream: Stream
    backfill: bool  # the first poll: no cursor yet
    full_scan: bool = False  # the whole list is read: a backfill or a reconciliation
    since: datetime | None = None
    pages: int = 0
    read: int = 0  # rows read, rescans included
    published: int = 0
    scanned: int = 0  # rows read by the current scan: the progress of a backfill
    total: int | None = None  # totalCount of the current scan's latest page
    rescans: int = 0
    # The window was read without a row leaving it: the cursor may move.
    complete: bool = False
    high_water: datetime | None = None
    seconds: float = 0.0

    @property
    def lane(self) -> QuotaLane:
        """The share of Visma's quota what this poll found takes downstream: a whole list
        read (a backfill, a full scan) is bulk work, an incremental window live work."""
        return QuotaLane.BULK if self.full_scan else QuotaLane.LIVE


class PollObserver(Protocol):
    """Metrics and progress logs: told about every page and how each poll ended."""

    def page_read(self, report: PollReport, rows: int, published: int) -> None: ...

    def poll_ended(self, report: PollReport) -> None: ...

    def poll_failed(self, tenant: str, stream: Stream) -> None: ...


# Publishes what is new on one page (acknowledged before it returns), its changes in the
# poll's quota lane; returns how many events.
HandlePage = Callable[[Sequence[VismaRecord], QuotaLane], Awaitable[int]]
# Publishes the rows of a page that do not read as records, so each reaches a visible state
# while the rest of the page and the cursor go on; returns how many events.
HandleUnreadable = Callable[[Sequence[UnreadableRow]], Awaitable[int]]


async def poll_stream(
    source: PagedSource,
    cursors: Cursors,
    handle_page: HandlePage,
    *,
    tenant: str,
    stream: Stream,
    overlap: timedelta,
    page_size: int = 1000,
    rescans: int = 2,
    full_scan_every: timedelta | None = None,
    observer: PollObserver | None = None,
    handle_unreadable: HandleUnreadable | None = None,
) -> PollReport:
    started = time.perf_counter()
    cursor = await cursors.cursor(tenant, stream)
    model = MODEL_OF[stream]
    # A list without a lastModifiedDateTime filter is read whole every time (dedupe keeps
    # what is published to what changed).
    full_scan = not model.filters_by_modified or cursor.full_scan_due(
        full_scan_every, datetime.now(UTC)
    )
    report = PollReport(
        tenant=tenant,
        stream=stream,
        backfill=cursor.high_water is None,
        full_scan=full_scan,
        since=None if full_scan or cursor.high_water is None else cursor.high_water - overlap,
        high_water=cursor.high_water,
    )
    for attempt in range(rescans + 1):
        if attempt:
            report.rescans += 1
            log.info("%s/%s: rows left the result while paging; reading it again", tenant, stream)
        report.complete = await _scan(
            source, model, (handle_page, handle_unreadable), report, page_size, observer
        )
        if report.complete:
            break
    if not report.complete:
        log.warning(
            "%s/%s: rows kept leaving the result while paging; the cursor stays for the next poll",
            tenant,
            stream,
        )
    elif report.high_water is not None and (full_scan or report.high_water != cursor.high_water):
        await cursors.advance(tenant, stream, report.high_water, full_scan=full_scan)
    report.seconds = time.perf_counter() - started
    if observer is not None:
        observer.poll_ended(report)
    return report


async def _scan(
    source: PagedSource,
    model: type[VismaRecord],
    handlers: tuple[HandlePage, HandleUnreadable | None],
    report: PollReport,
    page_size: int,
    observer: PollObserver | None,
) -> bool:
    """Reads the window once, page by page; False if a row left the result meanwhile."""
    handle_page, handle_unreadable = handlers
    report.scanned = 0
    largest_total = 0
    shrank = False
    async for result in source.iter_page_results(
        model, modified_since=report.since, page_size=page_size
    ):
        page, unreadable = result.records, result.unreadable
        if not page and not unreadable:
            break
        published = await handle_page(page, report.lane) if page else 0
        if unreadable:
            published += await _unreadable_rows(report, unreadable, handle_unreadable)
        stamps = [r.last_modified_date_time for r in page]
        stamps += [row.last_modified for row in unreadable if row.last_modified is not None]
        if stamps:
            page_high = max(stamp.replace(tzinfo=None) for stamp in stamps)
            report.high_water = max(page_high, report.high_water or page_high)
        rows = len(page) + len(unreadable)
        report.pages += 1
        report.read += rows
        report.scanned += rows
        report.published += published
        if result.total_count is not None:
            shrank = shrank or result.total_count < largest_total
            largest_total = max(largest_total, result.total_count)
            report.total = result.total_count
        if observer is not None:
            observer.page_read(report, rows, published)
    return not shrank


async def _unreadable_rows(
    report: PollReport, rows: Sequence[UnreadableRow], handle: HandleUnreadable | None
) -> int:
    for row in rows:
        log.warning(
            "%s/%s: record %s cannot be read (%s); recorded malformed",
            report.tenant,
            report.stream,
            row.record_id or "(no id)",
            "; ".join(f"{p.field}: {p.problem}" for p in row.problems),
        )
    return 0 if handle is None else await handle(rows)
