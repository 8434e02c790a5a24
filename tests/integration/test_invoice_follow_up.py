"""invoice-follow-up over the real broker and PostgreSQL, against both sandboxes: every
uploaded invoice followed through Basware's approval, from webhooks (through the gateway),
Visma's changes and the periodic check (webhook_support)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sandbox_support import BASWARE_CLIENT, VISMA_COMPANY, sandbox_connection, sandboxes
from webhook_support import (
    RunningFollowUp,
    events_until,
    running_follow_up,
    running_gateway,
    single_partition_topic,
    subscribe_gateway,
)

from basware_sandbox import BaswareSandbox, Region
from basware_sandbox import documents as sandbox_documents
from basware_sandbox.records import AccountingDocument as SandboxDocument
from invoice_follow_up.policy import visma_identity
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import (
    BaswareNotification,
    BaswareReason,
    DeliveryResult,
    Entity,
    Event,
    InvoiceStatusChanged,
    Outcome,
    change_from_record,
)
from mlconnector.kafka import make_broker, publish_events
from mlconnector.settings import KafkaSettings
from mlconnector.visma import VismaSupplierInvoice
from visma_sandbox.runner import RunningSandbox
from webhook_gateway.secret_source import ConfiguredSecrets, ConnectionSecrets

pytestmark = pytest.mark.integration


async def first_visma_invoice(
    connection: Connection, visma: RunningSandbox
) -> VismaSupplierInvoice:
    """A seeded supplier invoice, read through the Visma client like visma-reader reads it."""
    table = visma.state.company(VISMA_COMPANY).table("supplierinvoice")
    document_type, reference = table.spec.key_text(next(iter(table)).key).split("/")
    async with connection.visma_client() as client:
        return await client.get_supplier_invoice(document_type, reference)


async def publish_to(kafka: KafkaSettings, topic: str, event: Event) -> None:
    broker = make_broker(kafka, client_id="test-publisher")
    async with broker:
        await broker.start()
        await publish_events(broker, topic, [event])


async def publish_visma_change(
    kafka: KafkaSettings, topic: str, tenant: str, record: VismaSupplierInvoice
) -> None:
    """What visma-reader publishes when it polls a changed invoice."""
    await publish_to(kafka, topic, change_from_record(tenant, record))


def inject_basware_document(
    basware: BaswareSandbox, record: VismaSupplierInvoice, status: str
) -> str:
    """The accounting document Basware made of the uploaded invoice (the writer's upload)."""
    identity = visma_identity(record)
    invoice_id = uuid.uuid4().hex
    sandbox_documents.inject(
        basware.state,
        basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid),
        SandboxDocument(
            invoice_id=invoice_id,
            company_code="BW00",
            supplier_code=identity.supplier_code,
            invoice_number=identity.invoice_number,
            invoice_date=datetime(2026, 10, 16, tzinfo=UTC),
            currency_code="NOK",
            gross_sum=record.amount,
            processing_status=status,
            last_updated=basware.state.clock.utcnow(),
        ),
    )
    return invoice_id


async def until(condition: Callable[[], bool]) -> None:
    """Waits for something another task does; the guard only stops a hang."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.02)


def basware_status(basware: BaswareSandbox, invoice_id: str) -> str:
    _, stored = basware.state.find_document(invoice_id)
    return stored.document.processing_status


async def invoice_statuses(follow_up: RunningFollowUp, last: str) -> list[str]:
    """The distinct InvoiceStatusChanged outcomes, in order, up to `last`."""
    events = await events_until(
        follow_up.kafka,
        follow_up.settings.topics.invoice_status,
        lambda e: isinstance(e, InvoiceStatusChanged) and e.basware_status == last,
    )
    unique = {e.event_id: e for e in events if isinstance(e, InvoiceStatusChanged)}
    return [e.basware_status for e in unique.values()]


async def test_approved_invoice_is_transferred_then_paid_and_written_back(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    async with sandboxes() as (basware, visma):
        connection = sandbox_connection(basware, visma, write_back=True)
        record = await first_visma_invoice(connection, visma)
        secrets = ConnectionSecrets(
            StaticConnectionSource([connection]).list,
            ConfiguredSecrets({}, {}),
            refresh=timedelta(minutes=1),
        )
        async with (
            running_gateway(kafka_settings, database_url, secrets=secrets) as gateway,
            running_follow_up(
                kafka_settings,
                database_url,
                [connection],
                basware_events=gateway.settings.topics.basware_events,
            ) as follow_up,
        ):
            await subscribe_gateway(connection, gateway)
            topic = follow_up.settings.topics.visma_changes
            await publish_visma_change(kafka_settings, topic, connection.tenant, record)
            # Basware approves: the webhook reaches the gateway, which republishes it; the
            # follow-up acknowledges the invoice and posts a transferResponse with the Visma
            # document number.
            invoice_id = inject_basware_document(basware, record, "WaitingForTransfer")
            await until(lambda: basware_status(basware, invoice_id) == "Transferred")

            # Visma shows it paid: the follow-up posts a paymentResponse.
            paid = record.model_copy(update={"status": "Closed", "balance": 0.0})
            await publish_visma_change(kafka_settings, topic, connection.tenant, paid)
            await until(lambda: basware_status(basware, invoice_id) == "Paid")
            statuses = await invoice_statuses(follow_up, "paid")

    _, stored = basware.state.find_document(invoice_id)
    (transfer,) = stored.document.transfer_responses or []
    assert (transfer["success"], transfer["voucherNumber1"]) == (True, record.reference_number)
    assert stored.document.voucher_number1 == record.reference_number
    (payment,) = stored.document.payment_responses or []
    assert (payment["success"], payment["paidTotal"]) == (True, record.amount)
    assert statuses == ["approved", "transferred", "paid"]
    # Write-back: the Visma invoice's note says where Basware is; nothing else changed.
    after = visma.state.company(VISMA_COMPANY).get(
        "supplierinvoice", f"{record.document_type}/{record.reference_number}"
    )
    assert after is not None
    note = after.record.model_dump(by_alias=True)["note"]
    assert note.splitlines()[-1].startswith("Basware: paid (")
    assert after.record.model_dump(by_alias=True)["amount"] == record.amount


async def test_periodic_check_finds_what_no_webhook_told(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    """No subscription at all: the check lists invoices waiting for transfer, and asks the
    status route about the ones under way."""
    async with sandboxes() as (basware, visma):
        connection = sandbox_connection(basware, visma)
        record = await first_visma_invoice(connection, visma)
        async with running_follow_up(
            kafka_settings,
            database_url,
            [connection],
            basware_events=await single_partition_topic(kafka_settings, "basware.events"),
            check_interval=timedelta(seconds=0.2),
        ) as follow_up:
            topic = follow_up.settings.topics.visma_changes
            await publish_visma_change(kafka_settings, topic, connection.tenant, record)
            invoice_id = inject_basware_document(basware, record, "WaitingForTransfer")
            await until(lambda: basware_status(basware, invoice_id) == "Transferred")
            # Paid in Basware itself (outside the connector): only the status route says so.
            sandbox_documents.mark_paid(basware.state, invoice_id)
            statuses = await invoice_statuses(follow_up, "paid")

    assert statuses == ["approved", "transferred", "paid"]
    assert not basware.state.webhook_log  # nothing was pushed: the check did it all


# A task about something the follow-up does not act on: read, and passed over.
NOTIFICATION = BaswareNotification(
    event_id=str(uuid.uuid4()), tenant="1000001", task_id="t-1", task_type="Vendors"
)


async def until_ready(follow_up: RunningFollowUp) -> None:
    """Waits for /readyz to say ready; the guard only stops a hang."""
    async with asyncio.timeout(30):
        while not (await follow_up.client.get("/readyz")).json()["ready"]:
            await asyncio.sleep(0.05)


async def until_lag_reported(follow_up: RunningFollowUp, topics: set[str]) -> set[str]:
    """The topics /metrics reports mlc_consumer_lag of the follow-up's group for, once all
    of `topics` are there (each process reports the partitions it fetched)."""
    async with asyncio.timeout(30):
        while True:
            text = (await follow_up.client.get("/metrics")).text
            reported = {
                sample.labels["topic"]
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "mlc_consumer_lag"
                and sample.labels.get("group") == follow_up.settings.group
            }
            if topics <= reported:
                return reported
            await asyncio.sleep(0.2)


async def test_follow_up_keeps_the_gateways_invoices_and_reports_ready_and_lag(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    """A database webhook-gateway's migrations set up (when the follow-up ran inside it)
    keeps its invoice_follow rows; the follow-up is ready once its broker, database and
    check run, and reports the lag of its own group."""
    migration = resources.files("invoice_follow_up").joinpath("migrations/001_invoice_follow.sql")
    conn = await asyncpg.connect(database_url)
    try:
        # The gateway's migration was this one without IF NOT EXISTS.
        await conn.execute(migration.read_text().replace(" IF NOT EXISTS", ""))
        await conn.execute(
            "INSERT INTO invoice_follow (tenant, supplier_code, invoice_number, outcome)"
            " VALUES ('1000001', '50012', 'F-2026-10-0042', 'approved')"
        )
        async with running_follow_up(
            kafka_settings,
            database_url,
            [],
            basware_events=await single_partition_topic(kafka_settings, "basware.events"),
        ) as follow_up:
            await until_ready(follow_up)
            topics = follow_up.settings.topics
            await publish_to(kafka_settings, topics.basware_events, NOTIFICATION)
            await publish_to(kafka_settings, topics.visma_changes, NOTIFICATION)
            lagging = await until_lag_reported(
                follow_up, {topics.basware_events, topics.visma_changes}
            )
            readiness = (await follow_up.client.get("/readyz")).json()
        kept = await conn.fetch("SELECT tenant, invoice_number, outcome FROM invoice_follow")
        applied = await conn.fetch(
            "SELECT version FROM schema_migrations WHERE owner = 'invoice-follow-up'"
        )
    finally:
        await conn.close()

    assert readiness == {
        "ready": True,
        "checks": {"broker": "ok", "database": "ok", "invoice check": "ok"},
    }
    assert lagging == {topics.basware_events, topics.visma_changes, topics.basware_results}
    assert [tuple(r) for r in kept] == [("1000001", "F-2026-10-0042", "approved")]
    assert [r["version"] for r in applied] == ["001_invoice_follow"]


def exception_result(tenant: str, record: VismaSupplierInvoice, state: str) -> DeliveryResult:
    """What basware-writer answers a change of an invoice uploaded before."""
    return DeliveryResult(
        event_id=uuid.uuid4().hex,
        tenant=tenant,
        change_event_id=uuid.uuid4().hex,
        entity=Entity.SUPPLIER_INVOICE,
        entity_id=record.record_id,
        supplier_number=record.supplier_number,
        content_hash="c1",
        outcome=Outcome.EXCEPTION,
        attempts=0,
        reasons=(
            BaswareReason(
                category="ChangedAfterUpload",
                message=f"changed in Visma after upload: Basware document D1 is in state {state}"
                ". Not uploaded again",
            ),
        ),
    )


async def test_an_invoice_changed_after_upload_is_written_back_to_its_note_once(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    """The writer's exception becomes a line of the Visma note; the same exception again (as
    the note's own new version brings) writes nothing, a new one replaces the line."""
    async with sandboxes() as (basware, visma):
        connection = sandbox_connection(basware, visma, write_back=True)
        record = await first_visma_invoice(connection, visma)
        key = f"{record.document_type}/{record.reference_number}"
        company = visma.state.company(VISMA_COMPANY)

        def note() -> str:
            stored = company.get("supplierinvoice", key)
            assert stored is not None
            return str(stored.record.model_dump(by_alias=True).get("note") or "")

        events = await single_partition_topic(kafka_settings, "basware.events")
        async with running_follow_up(
            kafka_settings, database_url, [connection], basware_events=events
        ) as follow_up:
            results = follow_up.settings.topics.basware_results
            line = "Basware exception: changed in Visma after upload: Basware document D1 is in"
            await publish_to(
                kafka_settings, results, exception_result(connection.tenant, record, "New")
            )
            await until(lambda: f"{line} state New" in note())
            writes = visma.state.log.count("supplierinvoice.put")
            await publish_to(
                kafka_settings, results, exception_result(connection.tenant, record, "New")
            )
            await publish_to(
                kafka_settings, results, exception_result(connection.tenant, record, "Paid")
            )
            await until(lambda: f"{line} state Paid" in note())
    assert visma.state.log.count("supplierinvoice.put") == writes + 1
    assert [x for x in note().splitlines() if x.startswith("Basware exception: ")] == [
        f"{line} state Paid"
    ]
