"""Purchase receipts ride on their purchase orders' events: the Visma sandbox over HTTP, the
real broker and PostgreSQL.

A purchase-order poll reads receipts first, then the orders; an order whose receipts changed
is published again with all of them, fetched by number when the order itself did not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

import pytest
from reader_support import (
    ReaderHarness,
    add_company,
    deduped,
    reader_harness,
    seed_company,
)

from mlconnector.contracts import ChangeEvent, Entity, PurchaseOrderChanged, content_hash
from mlconnector.settings import KafkaSettings
from visma_reader.poller import Stream
from visma_reader.reader import Published
from visma_sandbox import (
    CompanyState,
    RunningSandbox,
    SandboxConfig,
    SeedOptions,
    run_visma_sandbox,
)
from visma_sandbox.schemas import PurchaseOrder, PurchaseReceipt

pytestmark = pytest.mark.integration

SEED = SeedOptions(suppliers=6, purchase_orders=20, invoices=0)


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_visma_sandbox(SandboxConfig(seed=SeedOptions(companies=0))) as running:
        yield running


@pytest.fixture
async def harness(
    sandbox: RunningSandbox, kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[ReaderHarness]:
    company = add_company(sandbox)
    # Last touched days ago, except the newest order (the cursor lands there): an
    # incremental window holds that order and what changes in the test.
    now = datetime.now()
    seed_company(company, SEED, at=now - timedelta(days=3))
    orders = company.table("purchaseorder")
    newest = orders.spec.key_text(list(orders)[-1].key)
    company.touch("purchaseorder", [newest], at=now - timedelta(days=1))
    async with reader_harness(sandbox, company, kafka_settings, database_url) as running:
        yield running


def order(company: CompanyState, number: str) -> PurchaseOrder:
    stored = company.get("purchaseorder", number)
    assert stored is not None
    assert isinstance(stored.record, PurchaseOrder)
    return stored.record


def orders_without_receipts(company: CompanyState) -> list[str]:
    linked = {
        line.po_order_nbr
        for stored in company.table("purchasereceipt")
        if isinstance(stored.record, PurchaseReceipt)
        for line in stored.record.lines
    }
    return [r.key[0] for r in company.table("purchaseorder") if r.key[0] not in linked]


def receive(company: CompanyState, receipt_nbr: str, *order_numbers: str) -> None:
    """A goods receipt for the first line of each order, as the warehouse would post it."""
    supplier = order(company, order_numbers[0]).supplier
    lines: list[dict[str, object]] = []
    for number in order_numbers:
        line = order(company, number).lines[0]
        lines.append(
            {
                "lineNbr": len(lines) + 1,
                "transactionDescription": line.line_description,
                "orderQty": line.order_qty,
                "receiptQty": line.order_qty,
                "unitCost": line.unit_cost,
                "poOrderType": "RegularOrder",
                "poOrderNbr": number,
                "poOrderLineNbr": line.line_nbr,
            }
        )
    company.put(
        "purchasereceipt",
        {
            "receiptNbr": receipt_nbr,
            "supplier": supplier.model_dump(by_alias=True),
            "lines": lines,
        },
    )


def order_events(events: Sequence[ChangeEvent]) -> dict[str, list[PurchaseOrderChanged]]:
    by_order: dict[str, list[PurchaseOrderChanged]] = {}
    for event in deduped(events).values():
        assert isinstance(event, PurchaseOrderChanged)
        by_order.setdefault(event.entity_id, []).append(event)
    return by_order


def receipt_numbers(event: PurchaseOrderChanged) -> list[str]:
    return [r.receipt_nbr for r in event.receipts]


async def test_each_order_carries_the_receipts_that_point_at_it(harness: ReaderHarness) -> None:
    receipts, orders = await harness.poll(Entity.PURCHASE_ORDER)
    assert (receipts.stream, orders.stream) == (Stream.PURCHASE_RECEIPT, Stream.PURCHASE_ORDER)
    assert receipts.published == 0  # receipts have no events of their own
    assert orders.published == orders.read == 20
    assert await harness.cursor(Stream.PURCHASE_RECEIPT) is not None

    events = await harness.events()
    expected = await harness.expected(Entity.PURCHASE_ORDER)
    assert {e.event_id for e in events} == {e.event_id for e in expected.values()}
    carried = [e for e in events if isinstance(e, PurchaseOrderChanged) and e.receipts]
    assert carried  # the seed receives most orders
    for event in carried:
        for receipt in event.receipts:
            assert event.entity_id in {line.po_order_nbr for line in receipt.lines}
            assert "metadata" not in (receipt.model_extra or {})  # the page's, not the receipt's

    # Read again: nothing new, and no order fetched one by one.
    before = harness.calls("purchaseorder.get")
    again = await harness.poll(Entity.PURCHASE_ORDER)
    assert sum(r.published for r in again) == 0
    assert harness.calls("purchaseorder.get") == before


async def test_a_new_receipt_republishes_its_order_with_every_receipt(
    harness: ReaderHarness,
) -> None:
    company = harness.company
    await harness.poll(Entity.PURCHASE_ORDER)
    target = orders_without_receipts(company)[0]
    receive(company, "R-1", target)
    receive(company, "R-2", target)
    _, orders = await harness.poll(Entity.PURCHASE_ORDER)
    # The order did not change: it is fetched by number, once.
    assert orders.published == 1
    assert harness.calls("purchaseorder.get") == 1

    by_order = order_events(await harness.events())
    first, second = by_order[target]
    assert (receipt_numbers(first), receipt_numbers(second)) == ([], ["R-1", "R-2"])
    assert content_hash(second.record) == content_hash(first.record)  # the order, unchanged
    expected = await harness.expected(Entity.PURCHASE_ORDER)
    assert second.event_id == expected[target].event_id


async def test_a_receipt_line_moved_to_another_order_republishes_both(
    harness: ReaderHarness,
) -> None:
    company = harness.company
    first_order, second_order = orders_without_receipts(company)[:2]
    receive(company, "R-9", first_order)
    await harness.poll(Entity.PURCHASE_ORDER)
    receive(company, "R-9", second_order)  # the clerk corrects the order number
    _, orders = await harness.poll(Entity.PURCHASE_ORDER)
    assert orders.published == 2

    by_order = order_events(await harness.events())
    assert [receipt_numbers(e) for e in by_order[first_order]] == [["R-9"], []]
    assert [receipt_numbers(e) for e in by_order[second_order]] == [[], ["R-9"]]


async def test_receipts_are_read_before_orders_in_one_cycle(harness: ReaderHarness) -> None:
    company = harness.company
    await harness.poll(Entity.PURCHASE_ORDER)
    target = orders_without_receipts(company)[0]
    company.update("purchaseorder", target, {"description": "Received today"})
    receive(company, "R-5", target)
    before = harness.calls("purchaseorder.get")
    _, orders = await harness.poll(Entity.PURCHASE_ORDER)
    assert orders.published == 1  # one event: the changed order with its new receipt
    assert harness.calls("purchaseorder.get") == before

    (_, latest) = order_events(await harness.events())[target]
    assert (latest.record.description, receipt_numbers(latest)) == ("Received today", ["R-5"])


async def test_an_order_whose_receipt_changed_survives_a_crash_before_it_was_published(
    harness: ReaderHarness,
) -> None:
    company = harness.company
    await harness.poll(Entity.PURCHASE_ORDER)
    target = orders_without_receipts(company)[0]
    receive(company, "R-7", target)

    async def kafka_down(events: Sequence[Published]) -> None:
        if events:
            raise ConnectionError("broker unreachable")

    reader = harness.reader(publish=kafka_down)
    with pytest.raises(ConnectionError):
        await reader.poll(harness.client, harness.tenant, Entity.PURCHASE_ORDER)
    # The receipt was indexed and its cursor moved past it: only the pending mark remembers
    # that the order still has to go out.
    _, orders = await harness.poll(Entity.PURCHASE_ORDER)
    assert orders.published == 1

    (_, latest) = order_events(await harness.events())[target]
    assert receipt_numbers(latest) == ["R-7"]
