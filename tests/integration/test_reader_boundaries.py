"""visma-reader at the boundaries where pollers lose rows: the Visma sandbox over HTTP, the
real broker and PostgreSQL.

In each test every change reaches visma.changes at least once, and a consumer that drops
event ids it has seen keeps exactly one event per record version. Small page sizes make every
scan cross page boundaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from reader_support import (
    ReaderHarness,
    add_company,
    deduped,
    load_suppliers,
    reader_harness,
    seed_company,
)

from mlconnector.contracts import ChangeEvent, Entity, UnreadableRecord
from mlconnector.kafka import publish_events
from mlconnector.settings import KafkaSettings
from mlconnector.visma import VismaNotFoundError, VismaPage, VismaPurchaseOrder
from mlconnector.visma.client import read_rows
from visma_reader.cursor_store import CursorStore
from visma_reader.poller import Stream
from visma_reader.reader import Published
from visma_sandbox import (
    CompanyState,
    FaultRule,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    TimestampStyle,
    run_visma_sandbox,
)
from visma_sandbox.seed import demo_supplier

pytestmark = pytest.mark.integration

STAMP = datetime(2026, 11, 20, 8, 30, 0, 123000)


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_visma_sandbox(SandboxConfig(seed=SeedOptions(companies=0))) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    sandbox.state.settings = SandboxSettings()
    sandbox.state.faults.clear()


@pytest.fixture
async def harness(
    sandbox: RunningSandbox, kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[ReaderHarness]:
    async with reader_harness(
        sandbox, add_company(sandbox), kafka_settings, database_url
    ) as running:
        yield running


def ids(events: dict[str, ChangeEvent]) -> set[str]:
    return {event.event_id for event in events.values()}


async def add_page_hook(sandbox: RunningSandbox, company: CompanyState, hook: object) -> None:
    """Through the HTTP back door, as an out-of-process test tool would."""
    async with httpx.AsyncClient(base_url=sandbox.backdoor_url) as backdoor:
        answer = await backdoor.post(f"/companies/{company.company_id}/page-hooks", json=hook)
        assert answer.status_code == 201, answer.text


def new_supplier(company: CompanyState, number: str) -> dict[str, object]:
    record = demo_supplier(random.Random(number), company.info.country, 1)
    return record.model_copy(update={"number": number}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


async def test_500_rows_sharing_one_timestamp_cross_page_boundaries(
    harness: ReaderHarness,
) -> None:
    load_suppliers(harness.company, 500, at=STAMP)
    (backfill,) = await harness.poll(Entity.SUPPLIER, page_size=64)
    assert (backfill.pages, backfill.read, backfill.published) == (8, 500, 500)
    assert backfill.complete
    assert await harness.cursor(Stream.SUPPLIER) == STAMP

    # A row committed after the poll with the cursor's very timestamp: lost by a `>` cursor,
    # found by `>=` even with no overlap at all.
    load_suppliers(harness.company, 1, at=STAMP, start=501)
    (again,) = await harness.poll(Entity.SUPPLIER, page_size=64, overlap_seconds=0)
    assert (again.read, again.published) == (501, 1)

    events = await harness.events()
    expected = await harness.expected(Entity.SUPPLIER)
    assert len(events) == 501  # nothing published twice
    assert set(deduped(events)) == ids(expected)


async def test_rows_changed_created_and_deleted_while_the_reader_pages(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    company = harness.company
    numbers = load_suppliers(company, 120, at=STAMP)
    # After page 2 of 5: a row already read and one not yet read change, and a row on page 1
    # goes (every later row moves one place left). After page 3: a new row lands on page 1.
    await add_page_hook(
        sandbox,
        company,
        {
            "entity": "supplier",
            "afterPage": 2,
            "update": {
                numbers[0]: {"name": "Renamed Behind AS"},
                numbers[110]: {"name": "Ahead AS"},
            },
            "delete": [numbers[5]],
        },
    )
    await add_page_hook(
        sandbox,
        company,
        {"entity": "supplier", "afterPage": 3, "create": [new_supplier(company, numbers[2] + "A")]},
    )
    (first,) = await harness.poll(Entity.SUPPLIER)
    assert first.rescans == 1  # totalCount dropped between pages: the window is read again
    assert first.complete
    await harness.poll(Entity.SUPPLIER)  # finds what changed behind the first scan
    (third,) = await harness.poll(Entity.SUPPLIER)
    assert third.published == 0

    events = await harness.events()
    expected = await harness.expected(Entity.SUPPLIER)
    kept = deduped(events)
    assert ids(expected) <= set(kept)
    assert len(events) == len(kept)  # and nothing twice
    assert expected[numbers[0]].event_id in kept
    assert numbers[2] + "A" in expected


async def test_a_deletion_hidden_by_a_creation_is_caught_by_the_full_scan(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    company = harness.company
    old = datetime.now() - timedelta(days=3)
    numbers = load_suppliers(company, 60, at=old)
    # After page 1, a row on page 1 goes and a new one is appended: totalCount stays 60, and
    # the first row of page 2 slides onto page 1, behind the reader.
    await add_page_hook(
        sandbox,
        company,
        {
            "entity": "supplier",
            "afterPage": 1,
            "delete": [numbers[3]],
            "create": [new_supplier(company, "99999")],
        },
    )
    skipped = numbers[25]
    await harness.poll(Entity.SUPPLIER)
    await harness.poll(Entity.SUPPLIER)  # the window is younger than the skipped row
    published = {e.entity_id for e in await harness.events()}
    assert skipped not in published

    (full,) = await harness.poll(Entity.SUPPLIER, full_scan_interval_seconds=0.001)
    assert (full.full_scan, full.published) == (True, 1)
    kept = deduped(await harness.events())
    expected = await harness.expected(Entity.SUPPLIER)
    assert ids(expected) <= set(kept)
    # Besides, only the deleted row, read before it went.
    assert {e.entity_id for e in kept.values()} - set(expected) == {numbers[3]}


async def test_the_reader_killed_between_publishing_and_saving_its_cursor_loses_nothing(
    harness: ReaderHarness,
) -> None:
    load_suppliers(harness.company, 90, at=STAMP)
    parked = asyncio.Event()
    published_pages = 0

    async def publish_then_hang(events: Sequence[Published]) -> None:
        nonlocal published_pages
        await publish_events(harness.broker, harness.topic, events)
        published_pages += 1
        if published_pages == 4:  # the last page: acknowledged by Kafka, nothing saved yet
            parked.set()
            await asyncio.Event().wait()

    crashed = asyncio.create_task(
        harness.reader(publish=publish_then_hang).poll(
            harness.client, harness.tenant, Entity.SUPPLIER
        )
    )
    await parked.wait()
    crashed.cancel()  # the process dies here
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    assert await harness.cursor(Stream.SUPPLIER) is None

    (restart,) = await harness.poll(Entity.SUPPLIER)
    assert (restart.read, restart.published) == (90, 15)  # the last page again

    events = await harness.events()
    kept = deduped(events)
    assert set(kept) == ids(await harness.expected(Entity.SUPPLIER))
    assert len(events) == 90 + 15  # the republished events carry the same ids
    assert await harness.cursor(Stream.SUPPLIER) == STAMP


async def test_a_token_that_expires_mid_backfill_is_fetched_again(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    company = harness.company
    load_suppliers(company, 100, at=STAMP)

    def expire_tokens(_: CompanyState) -> None:
        sandbox.state.expire_tokens(tenant_id=company.info.tenant_id)

    company.after_page("supplier", 2, expire_tokens)
    mark = sandbox.state.log.last_seq
    (backfill,) = await harness.poll(Entity.SUPPLIER)
    assert (backfill.read, backfill.published, backfill.complete) == (100, 100, True)
    # A refused token names no company: the log shows the 401 between two pages.
    lists = sandbox.state.log.entries(since=mark, route="supplier.list")
    assert [e.status for e in lists] == [200, 200, 401, 200, 200]
    assert harness.calls("token") == 2

    events = await harness.events()
    assert set(deduped(events)) == ids(await harness.expected(Entity.SUPPLIER))


async def test_a_rate_limit_hit_mid_backfill_is_waited_out(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    company = harness.company
    load_suppliers(company, 100, at=STAMP)
    throttle = FaultRule(path="/v1/supplier*", status=429, retry_after=1, times=1)

    def throttle_from_now(_: CompanyState) -> None:
        sandbox.state.add_fault(throttle)

    company.after_page("supplier", 2, throttle_from_now)
    (backfill,) = await harness.poll(Entity.SUPPLIER)
    assert (backfill.read, backfill.published, backfill.complete) == (100, 100, True)
    lists = sandbox.state.log.entries(company_id=company.company_id, route="supplier.list")
    (refused,) = [i for i, e in enumerate(lists) if e.status == 429]
    retry = lists[refused + 1]
    assert retry.query == lists[refused].query  # the same page again...
    assert retry.at - lists[refused].at >= 1.0  # ...not before Retry-After

    events = await harness.events()
    assert set(deduped(events)) == ids(await harness.expected(Entity.SUPPLIER))


async def test_a_server_clock_ahead_of_its_filter_is_covered_by_the_overlap(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    # Shown timestamps run 10 minutes ahead of the values filters compare with, in every
    # shape Visma sends (naive, Z, offset).
    sandbox.state.settings = sandbox.state.settings.model_copy(
        update={"clock_skew_seconds": 600, "timestamp_style": TimestampStyle.MIXED}
    )
    numbers = load_suppliers(harness.company, 20)
    await harness.poll(Entity.SUPPLIER)
    harness.company.update("supplier", numbers[7], {"name": "Changed After The Poll AS"})

    (no_overlap,) = await harness.poll(Entity.SUPPLIER, overlap_seconds=0)
    assert no_overlap.published == 0  # the cursor is ahead of the change in the filter's frame
    (with_overlap,) = await harness.poll(Entity.SUPPLIER)
    assert with_overlap.published == 1

    events = await harness.events()
    assert set(deduped(events)) >= ids(await harness.expected(Entity.SUPPLIER))


async def test_an_incremental_poll_costs_at_most_two_calls_per_entity(
    sandbox: RunningSandbox, harness: ReaderHarness
) -> None:
    company = harness.company
    seed_company(company, SeedOptions(suppliers=15, purchase_orders=30, invoices=30))
    await harness.poll(page_size=100)  # the backfill, every entity in order
    routes = (
        *("supplier.list", "purchasereceipt.list", "purchaseorder.list"),
        *("supplierinvoice.list", "purchaseorder.get", "token"),
    )

    def calls() -> dict[str, int]:
        return {route: harness.calls(route) for route in routes}

    before = calls()
    reports = await harness.poll(page_size=100)
    after = calls()
    assert sum(r.published for r in reports) == 0
    spent = {route: after[route] - before[route] for route in routes}
    assert spent == {route: 1 if route.endswith(".list") else 0 for route in routes}

    # Ten changes: still one page per entity.
    suppliers, orders, invoices = (
        [company.table(name).spec.key_text(r.key) for r in company.table(name)]
        for name in ("supplier", "purchaseorder", "supplierinvoice")
    )
    for number in suppliers[:4]:
        company.update("supplier", number, {"status": "OnHold"})
    for number in orders[:3]:
        company.update("purchaseorder", number, {"description": "Changed"})
    for key in invoices[:3]:
        company.update("supplierinvoice", key, {"description": "Changed"})
    before = calls()
    reports = await harness.poll(page_size=100)
    after = calls()
    assert sum(r.published for r in reports) == 10
    assert all(after[route] - before[route] <= 2 for route in routes)
    assert after["purchaseorder.get"] == before["purchaseorder.get"]


async def test_ten_changes_in_a_company_of_thousands_cost_one_call(
    harness: ReaderHarness,
) -> None:
    company = harness.company
    # Rows modified over a month, a hundred a day, as in a company that has run for a while.
    now = datetime.now()
    for day in range(30, 0, -1):
        load_suppliers(company, 100, at=now - timedelta(days=day), start=1 + (30 - day) * 100)
    (backfill,) = await harness.poll(Entity.SUPPLIER, page_size=1000)
    assert (backfill.read, backfill.pages) == (3000, 3)

    numbers = [company.table("supplier").spec.key_text(r.key) for r in company.table("supplier")]
    for number in numbers[::300]:
        company.update("supplier", number, {"name": "Changed AS"})
    before = harness.calls("supplier.list")
    (incremental,) = await harness.poll(Entity.SUPPLIER, page_size=1000)
    assert harness.calls("supplier.list") - before == 1
    # The window: the day at the cursor (inside the overlap) and the ten changes.
    assert (incremental.read, incremental.published) == (110, 10)
    stored = await CursorStore(harness.pool).cursor(harness.tenant, Stream.SUPPLIER)
    assert stored.high_water is not None
    assert stored.high_water > now - timedelta(minutes=5)


class RowsSource:
    """A list of raw rows read as the Visma client reads them: rows that do not read as
    records come as unreadable rows of the page."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def _pages(self, model: type[Any]) -> AsyncIterator[VismaPage[Any]]:
        records, unreadable = read_rows(model, self.rows)
        yield VismaPage[Any](
            page_number=1, records=records, unreadable=unreadable, total_count=len(self.rows)
        )

    def iter_page_results(
        self, model: type[Any], *, modified_since: datetime | None = None, page_size: int = 1000
    ) -> AsyncIterator[VismaPage[Any]]:
        return self._pages(model)

    async def get_purchase_order(self, order_nbr: str) -> VismaPurchaseOrder:
        raise VismaNotFoundError("no orders here", status=404)


async def test_a_row_that_does_not_read_is_published_as_unreadable_and_never_stalls(
    harness: ReaderHarness,
) -> None:
    """A Visma row whose field fails its model is an UnreadableRecord (a visible state) while
    the page and the cursor go on; when the same record reads again, even with the content
    published before it, it is published again."""
    good = {"number": "70001", "name": "Nordlys AS", "lastModifiedDateTime": "2026-10-14T09:21:07"}
    other = {**good, "number": "70002"}
    published: list[Published] = []

    async def collect(events: Sequence[Published]) -> None:
        published.extend(events)

    reader = harness.reader(publish=collect)
    await reader.poll(RowsSource([good]), harness.tenant, Entity.SUPPLIER)
    broken = {**good, "name": None, "lastModifiedDateTime": "2026-10-14T09:30:00"}
    await reader.poll(RowsSource([broken, other]), harness.tenant, Entity.SUPPLIER)
    await reader.poll(RowsSource([good, other]), harness.tenant, Entity.SUPPLIER)

    kinds = [(type(e).__name__, e.entity_id) for e in published]
    assert kinds == [
        ("SupplierChanged", "70001"),
        ("SupplierChanged", "70002"),
        ("UnreadableRecord", "70001"),
        ("SupplierChanged", "70001"),
    ]
    unreadable = published[2]
    assert isinstance(unreadable, UnreadableRecord)
    assert [p.field for p in unreadable.problems] == ["name"]
    assert await harness.cursor(Stream.SUPPLIER) == datetime(2026, 10, 14, 9, 30)
