"""basware-writer on private topics against the sandboxes, and Visma records that match up.

The records are built so that Basware's three-way match passes: each order line is received
in full and invoiced once at the order's price. A document in a matching exception therefore
means the invoice reached Basware before its order lines did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from conftest import TopicNames
from pipeline_support import latest_results, read_events
from sandbox_support import BASWARE_CLIENT, sandbox_connection, sandboxes

from basware_sandbox import BaswareSandbox, Region
from basware_sandbox.records import RequestLogEntry
from basware_writer.app import create_app
from basware_writer.settings import WriterSettings
from mlconnector.asgi import serve_asgi
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import ChangeEvent, DeliveryResult, Entity, Event, change_from_record
from mlconnector.kafka import make_broker, publish_events
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from mlconnector.visma.models import (
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaSupplier,
    VismaSupplierInvoice,
)
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox

MODIFIED = datetime(2026, 11, 2, 8, 30)
LINES_PER_ORDER = 2
EMPTY_VISMA = SeedOptions(companies=1, suppliers=0, purchase_orders=0, invoices=0)
# Quick to notice a killed writer, to follow up and to give up: tests only.
QUICK = {
    "batch_timeout_ms": 50,
    "backoff_base_seconds": 0.01,
    "backoff_cap_seconds": 0.2,
    "follow_up_interval_seconds": 0.2,
    "heartbeat_seconds": 0.2,
    "instance_timeout_seconds": 1.0,
    "upload_lookup_interval_seconds": 0.2,
}


def quick_settings(**overrides: Any) -> WriterSettings:
    return WriterSettings.model_validate({**QUICK, **overrides})


def vendor(tenant: str, number: str, name: str | None = None) -> ChangeEvent:
    record = VismaSupplier(
        number=number, name=name or f"Leverandør {number} AS", last_modified_date_time=MODIFIED
    )
    return change_from_record(tenant, record)


def order(tenant: str, number: str, supplier: str) -> ChangeEvent:
    """A purchase order of LINES_PER_ORDER lines, each received in full (10 at 100 NOK)."""
    lines = [
        {"lineNbr": n, "orderQty": 10.0, "unitCost": 100.0, "amount": 1000.0, "uom": "PCS"}
        for n in range(1, LINES_PER_ORDER + 1)
    ]
    record = VismaPurchaseOrder.model_validate(
        {
            "orderNbr": number,
            "orderType": "RegularOrder",
            "status": "Open",
            "supplier": {"number": supplier},
            "currency": "NOK",
            "date": "2026-10-01T00:00:00",
            "lines": lines,
            "lastModifiedDateTime": MODIFIED.isoformat(),
        }
    )
    receipt = VismaPurchaseReceipt.model_validate(
        {
            "receiptNbr": f"R{number}",
            "receiptType": "PoReceipt",
            "date": "2026-10-10T00:00:00",
            "supplier": {"number": supplier},
            "lines": [
                {
                    "lineNbr": n,
                    "receiptQty": 10.0,
                    "unitCost": 100.0,
                    "amount": 1000.0,
                    "poOrderNbr": number,
                    "poOrderLineNbr": n,
                }
                for n in range(1, LINES_PER_ORDER + 1)
            ],
            "lastModifiedDateTime": MODIFIED.isoformat(),
        }
    )
    return change_from_record(tenant, record, [receipt])


def invoice(tenant: str, reference: str, supplier: str, order_number: str) -> ChangeEvent:
    """An invoice of everything the order received, at the order's price."""
    record = VismaSupplierInvoice.model_validate(
        {
            "documentType": "Invoice",
            "referenceNumber": reference,
            "supplierReference": f"F-{reference}",
            "supplier": {"number": supplier},
            "currencyId": "NOK",
            "date": "2026-10-20T00:00:00",
            "amount": 1000.0 * LINES_PER_ORDER,
            "detailTotal": 1000.0 * LINES_PER_ORDER,
            "invoiceLines": [
                {
                    "lineNumber": n,
                    "quantity": 10.0,
                    "unitCost": 100.0,
                    "cost": 1000.0,
                    "poNumber": order_number,
                    "poLineNr": n,
                }
                for n in range(1, LINES_PER_ORDER + 1)
            ],
            "lastModifiedDateTime": MODIFIED.isoformat(),
        }
    )
    return change_from_record(tenant, record)


def supplier_story(tenant: str, number: str) -> tuple[ChangeEvent, ChangeEvent, ChangeEvent]:
    """A supplier's vendor, its order and the invoice of that order."""
    return (
        vendor(tenant, number),
        order(tenant, f"PO{number}", number),
        invoice(tenant, f"INV{number}", number, f"PO{number}"),
    )


async def publish(kafka: KafkaSettings, topic: str, events: Sequence[Event]) -> None:
    broker = make_broker(kafka, client_id="writer-test-producer")
    async with broker:
        await broker.start()
        await publish_events(broker, topic, events)


@contextlib.asynccontextmanager
async def running_writer(
    kafka: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    connection: Connection,
    settings: WriterSettings | None = None,
) -> AsyncIterator[Any]:
    """basware-writer's own app on the test's topics; yields the app (its broker inside)."""
    app = create_app(
        kafka,
        DatabaseSettings(database_url=database_url),
        settings or quick_settings(),
        connections=StaticConnectionSource([connection]),
        changes_topic=topics[Topic.VISMA_CHANGES],
        results_topic=topics[Topic.BASWARE_RESULTS],
    )
    async with serve_asgi(app):
        yield app


@contextlib.asynccontextmanager
async def writer_world(
    processing_delay_seconds: float | None = None,
) -> AsyncIterator[tuple[BaswareSandbox, RunningSandbox, Connection]]:
    async with sandboxes(seed=EMPTY_VISMA, processing_delay_seconds=processing_delay_seconds) as (
        basware,
        visma,
    ):
        yield basware, visma, sandbox_connection(basware, visma)


Key = tuple[Entity, str]


def keys(events: Sequence[ChangeEvent]) -> set[Key]:
    return {(e.entity, e.entity_id) for e in events}


def by_record(events: Sequence[Event]) -> dict[Key, DeliveryResult]:
    return {
        (entity, entity_id): r for (_, entity, entity_id), r in latest_results(list(events)).items()
    }


async def results_until(
    kafka: KafkaSettings, topics: TopicNames, done: Callable[[dict[Key, DeliveryResult]], bool]
) -> list[DeliveryResult]:
    """Every result on the results topic once `done` holds for the latest result per record."""
    events = await read_events(
        kafka, topics[Topic.BASWARE_RESULTS], lambda found: done(by_record(found))
    )
    return [e for e in events if isinstance(e, DeliveryResult)]


def all_final(
    expected: set[Key], outcome: str = "delivered"
) -> Callable[[dict[Key, DeliveryResult]], bool]:
    return lambda latest: all(k in latest and latest[k].outcome == outcome for k in expected)


def records(basware: BaswareSandbox, api: str, *, accepted: bool = True) -> list[dict[str, Any]]:
    return basware.state.records(Region.EU, BASWARE_CLIENT.bwcid, api, accepted=accepted)


def requests(basware: BaswareSandbox, method: str, path_prefix: str) -> list[RequestLogEntry]:
    return [
        e
        for e in basware.state.request_log
        if e.method == method and e.path.startswith(path_prefix) and e.status == 200
    ]


async def until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Waits for a condition of the sandbox's state; the guard only stops a hang."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
