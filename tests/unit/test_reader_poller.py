"""poll_stream on an offset-paged list that changes between pages, like Visma's
(docs/visma-net.md §6.2).

The source here is a list in memory; the boundary tests in tests/integration run the same
poller against the sandbox over HTTP, the real broker and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlconnector.visma.client import UnreadableRow, VismaPage, read_rows
from mlconnector.visma.models import VismaRecord, VismaSupplier, VismaSupplierInvoice
from mlconnector.visma.ratelimit import QuotaLane
from visma_reader.poller import PagedSource, PollCursor, PollReport, Stream, poll_stream

T0 = datetime(2026, 10, 1, 12, 0, 0)


def supplier(number: int, at: datetime = T0, name: str = "Nordisk Kontor AS") -> VismaSupplier:
    return VismaSupplier(number=f"{number:05d}", name=name, last_modified_date_time=at)


class ListSource:
    """Offset paging over a live list, ordered by key, filtered by `>= modified_since`."""

    def __init__(self, records: Sequence[VismaSupplier]) -> None:
        self.rows = {r.number: r for r in records}
        self.after_page: dict[int, Callable[[ListSource], object]] = {}
        self.requests: list[datetime | None] = []

    def iter_page_results(
        self, model: type[Any], *, modified_since: datetime | None = None, page_size: int = 1000
    ) -> AsyncIterator[VismaPage[Any]]:
        return self._pages(modified_since, page_size)

    async def _pages(
        self, since: datetime | None, page_size: int
    ) -> AsyncIterator[VismaPage[VismaSupplier]]:
        number = 1
        while True:
            self.requests.append(since)
            matching = [
                self.rows[k]
                for k in sorted(self.rows)
                if since is None or self.rows[k].last_modified_date_time >= since
            ]
            page = matching[(number - 1) * page_size : number * page_size]
            hook = self.after_page.pop(number, None)
            if hook is not None:
                hook(self)
            if not page:
                return
            yield VismaPage[VismaSupplier](
                page_number=number, records=page, total_count=len(matching), max_page_size=1000
            )
            if len(page) < page_size:
                return
            number += 1


class MemoryCursors:
    def __init__(
        self, high_water: datetime | None = None, full_scan_at: datetime | None = None
    ) -> None:
        self.value = high_water
        self.full_scan_at = full_scan_at or (datetime.now(UTC) if high_water else None)
        self.advanced = 0

    async def cursor(self, tenant: str, stream: str) -> PollCursor:
        return PollCursor(high_water=self.value, full_scan_at=self.full_scan_at)

    async def advance(
        self, tenant: str, stream: str, high_water: datetime, *, full_scan: bool = False
    ) -> None:
        self.value = high_water
        self.advanced += 1
        if full_scan:
            self.full_scan_at = datetime.now(UTC)


class Collected:
    def __init__(self) -> None:
        self.numbers: list[str] = []
        self.lanes: list[QuotaLane] = []

    async def __call__(self, records: Sequence[VismaRecord], lane: QuotaLane) -> int:
        self.lanes.append(lane)
        self.numbers.extend(r.record_id for r in records)
        return len(records)


async def poll(
    source: PagedSource, cursors: MemoryCursors, handle: Collected, **options: Any
) -> PollReport:
    return await poll_stream(
        source,
        cursors,
        handle,
        tenant="1000001",
        stream=Stream.SUPPLIER,
        overlap=options.pop("overlap", timedelta(hours=2)),
        page_size=options.pop("page_size", 10),
        **options,
    )


async def test_backfill_reads_every_page_and_moves_the_cursor_to_the_newest_row() -> None:
    rows = [supplier(n, T0 + timedelta(seconds=n % 7)) for n in range(1, 36)]
    source, cursors, handle = ListSource(rows), MemoryCursors(), Collected()
    report = await poll(source, cursors, handle)
    assert sorted(handle.numbers) == sorted(r.number for r in rows)
    assert (report.backfill, report.complete, report.pages, report.total) == (True, True, 4, 35)
    assert cursors.value == T0 + timedelta(seconds=6)
    assert source.requests[0] is None
    # A backfill's changes take the bulk share of Visma's quota downstream.
    assert set(handle.lanes) == {QuotaLane.BULK}


async def test_an_incremental_poll_starts_the_overlap_below_the_cursor() -> None:
    source, cursors = ListSource([supplier(1)]), MemoryCursors(T0)
    handle = Collected()
    report = await poll(source, cursors, handle, overlap=timedelta(minutes=5))
    assert source.requests == [T0 - timedelta(minutes=5)]
    assert not report.backfill
    assert handle.lanes == [QuotaLane.LIVE]  # what it finds is live work downstream
    assert cursors.advanced == 0  # nothing newer than the cursor: it stays


async def test_a_full_scan_reads_the_whole_list_again_once_it_is_due() -> None:
    rows = [supplier(n) for n in range(1, 31)]
    day = timedelta(days=1)
    last_full_scan = datetime.now(UTC) - 2 * day
    source, cursors = ListSource(rows), MemoryCursors(T0, full_scan_at=last_full_scan)
    report = await poll(source, cursors, Collected(), full_scan_every=day)
    assert (report.full_scan, report.backfill, report.read) == (True, False, 30)
    assert source.requests[0] is None
    assert cursors.full_scan_at is not None
    assert cursors.full_scan_at > last_full_scan
    source.requests.clear()
    again = await poll(source, cursors, Collected(), full_scan_every=day)
    assert not again.full_scan
    assert source.requests[0] == T0 - timedelta(hours=2)


async def test_a_row_deleted_behind_the_reader_makes_it_read_the_window_again() -> None:
    rows = [supplier(n) for n in range(1, 31)]
    source, cursors, handle = ListSource(rows), MemoryCursors(), Collected()
    # After page 1, a row on page 1 goes: every later row moves one place left, and the
    # first row of page 2 would be skipped by a reader that trusts offsets.
    source.after_page[1] = lambda s: s.rows.pop("00003")
    report = await poll(source, cursors, handle)
    assert report.rescans == 1
    assert report.complete
    assert set(handle.numbers) == {r.number for r in rows}
    assert cursors.value == T0


async def test_rows_that_keep_leaving_hold_the_cursor_for_the_next_poll() -> None:
    rows = [supplier(n) for n in range(1, 31)]
    source, cursors = ListSource(rows), MemoryCursors()

    def delete_one(s: ListSource) -> None:
        s.rows.pop(min(s.rows))
        s.after_page[1] = delete_one  # again on the next scan

    source.after_page[1] = delete_one
    report = await poll(source, cursors, Collected(), rescans=1)
    assert (report.complete, report.rescans) == (False, 1)
    assert cursors.value is None


async def test_rows_changed_or_added_while_paging_need_no_rescan() -> None:
    rows = [supplier(n) for n in range(1, 31)]
    source, cursors, handle = ListSource(rows), MemoryCursors(), Collected()

    def change(s: ListSource) -> None:
        later = T0 + timedelta(seconds=1)
        s.rows["00002"] = supplier(2, later, name="Renamed AS")  # already read: found next poll
        s.rows["00025"] = supplier(25, later, name="Renamed AS")  # not yet read
        s.rows["00004a"] = VismaSupplier(number="00004a", name="New", last_modified_date_time=later)

    source.after_page[1] = change
    report = await poll(source, cursors, handle)
    assert (report.complete, report.rescans) == (True, 0)
    # The new row pushed the last row of page 1 onto page 2: read twice, not lost.
    assert set(handle.numbers) == {r.number for r in rows}
    assert handle.numbers.count("00010") == 2
    assert cursors.value == T0 + timedelta(seconds=1)
    # What changed behind the reader is inside the next poll's window.
    handle.numbers.clear()
    await poll(source, cursors, handle)
    assert {"00002", "00004a"} <= set(handle.numbers)


async def test_a_failing_page_leaves_the_cursor_alone() -> None:
    source, cursors = ListSource([supplier(n) for n in range(1, 31)]), MemoryCursors()

    async def fail_on_second(records: Sequence[VismaRecord], lane: QuotaLane) -> int:
        if records[0].record_id == "00011":
            raise RuntimeError("Kafka is away")
        return len(records)

    with pytest.raises(RuntimeError):
        await poll_stream(
            source,
            cursors,
            fail_on_second,
            tenant="1000001",
            stream=Stream.SUPPLIER,
            overlap=timedelta(0),
            page_size=10,
        )
    assert cursors.value is None


INVOICE_ROW: dict[str, Any] = {
    "documentType": "Invoice",
    "referenceNumber": "000457",
    "supplier": {"number": "50012"},
    "date": "2026-10-16T00:00:00",
    "lastModifiedDateTime": "2026-10-14T09:21:07.31",
}


def test_a_row_that_fails_its_model_is_kept_aside_by_field_not_by_value() -> None:
    bad = {**INVOICE_ROW, "referenceNumber": "000458", "date": "2026-13-45"}
    records, unreadable = read_rows(VismaSupplierInvoice, [INVOICE_ROW, bad])
    assert [r.record_id for r in records] == ["Invoice/000457"]
    (row,) = unreadable
    assert (row.record_id, row.supplier_number) == ("Invoice/000458", "50012")
    assert row.last_modified == datetime(2026, 10, 14, 9, 21, 7, 310000)
    assert [p.field for p in row.problems] == ["date"]
    assert "2026-13-45" not in row.model_dump_json()
    _, again = read_rows(VismaSupplierInvoice, [dict(bad)])
    assert again[0].content_hash == row.content_hash


class OnePage:
    """One page: readable records and rows that are not."""

    def __init__(self, page: VismaPage[Any]) -> None:
        self.page = page

    async def _pages(self) -> AsyncIterator[VismaPage[Any]]:
        yield self.page

    def iter_page_results(
        self, model: type[Any], *, modified_since: datetime | None = None, page_size: int = 1000
    ) -> AsyncIterator[VismaPage[Any]]:
        return self._pages()


async def test_an_unreadable_row_is_handed_on_and_stops_neither_the_page_nor_the_cursor() -> None:
    late = T0 + timedelta(minutes=3)
    _, unreadable = read_rows(
        VismaSupplier, [{"number": "00002", "lastModifiedDateTime": late.isoformat()}]
    )
    source = OnePage(
        VismaPage[Any](page_number=1, records=[supplier(1)], unreadable=unreadable, total_count=2)
    )
    handed: list[UnreadableRow] = []

    async def keep(rows: Sequence[UnreadableRow]) -> int:
        handed.extend(rows)
        return len(rows)

    cursors, handle = MemoryCursors(), Collected()
    report = await poll(source, cursors, handle, handle_unreadable=keep)
    assert handle.numbers == ["00001"]
    assert [(r.record_id, [p.field for p in r.problems]) for r in handed] == [("00002", ["name"])]
    assert (report.read, report.published, report.complete) == (2, 2, True)
    assert cursors.value == late
