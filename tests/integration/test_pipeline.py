"""The walking skeleton end to end: Visma sandbox → visma-reader → Kafka → basware-writer →
Basware sandbox, on the real broker and database, with the services' own FastStream apps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import asyncpg
import pytest
from conftest import TopicNames
from pipeline_support import covers, latest_results, pipeline, read_events, until_logged
from pydantic import SecretStr
from sandbox_support import (
    BASWARE_CLIENT,
    VISMA_COMPANY,
    sandbox_connection,
    sandboxes,
    seeded_records,
    vendors,
)

from basware_sandbox import Region
from mlconnector.audit.lineage import Stage, record_lineage
from mlconnector.audit.status import RecordState, RecordStatus, StatusFilter, record_statuses
from mlconnector.contracts import (
    ChangeEvent,
    Entity,
    Outcome,
    change_from_record,
)
from mlconnector.kafka import make_broker, publish_events
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.visma.models import VismaSupplier, VismaSupplierInvoice
from visma_sandbox.config import SeedOptions

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=1, suppliers=6, purchase_orders=6, invoices=6)


async def test_seeded_records_and_a_new_supplier_reach_basware(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    async with sandboxes(seed=SEED) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        expected = seeded_records(visma)
        async with pipeline(kafka_settings, database_url, topics, connection):
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
            results = latest_results(events)
            assert {r.outcome for r in results.values()} == {Outcome.DELIVERED}, [
                (r.entity_id, r.reasons) for r in results.values() if r.outcome != "delivered"
            ]

            # A supplier created in Visma after the backfill becomes a Basware vendor.
            company = visma.state.company(VISMA_COMPANY)
            template = next(iter(company.table("supplier"))).record
            body = template.model_dump(by_alias=True, exclude_none=True)
            body.update(number="NEW-2026", name="Fjordkraft Leverandør AS")
            company.put("supplier", body)
            created = {(VISMA_COMPANY, Entity.SUPPLIER, "NEW-2026")}
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected | created)
            )
            new = latest_results(events)[(VISMA_COMPANY, Entity.SUPPLIER, "NEW-2026")]
            # Its change and its result are in the audit store, in order.
            await until_logged(database_url, {new.change_event_id, new.event_id})
            conn = await asyncpg.connect(database_url)
            try:
                lineage = await record_lineage(conn, Entity.SUPPLIER, "NEW-2026", VISMA_COMPANY)
            finally:
                await conn.close()

    assert new.outcome is Outcome.DELIVERED
    assert [(step.stage, step.event_id) for step in lineage] == [
        (Stage.VISMA_CHANGE, new.change_event_id),
        (Stage.BASWARE_RESULT, new.event_id),
    ]
    in_basware = vendors(basware)
    assert in_basware["NEW-2026"]["name"] == "Fjordkraft Leverandør AS"
    suppliers = {entity_id for _, entity, entity_id in expected if entity is Entity.SUPPLIER}
    assert suppliers <= set(in_basware)
    orders = basware.state.records(Region.EU, BASWARE_CLIENT.bwcid, "matchingOrders", accepted=True)
    assert len(orders) == SEED.purchase_orders
    # Each result names the change it answers, and the change is on the changes topic.
    changes = await read_events(
        kafka_settings,
        topics[Topic.VISMA_CHANGES],
        lambda found: len({e.event_id for e in found}) >= len(expected) + 1,
    )
    change_ids = {e.event_id for e in changes if isinstance(e, ChangeEvent)}
    assert {r.change_event_id for r in latest_results(events).values()} <= change_ids


def supplier_change(tenant: str, number: str, name: str) -> ChangeEvent:
    record = VismaSupplier(number=number, name=name, last_modified_date_time=datetime(2026, 11, 1))
    return change_from_record(tenant, record)


async def test_bad_input_is_answered_and_the_rest_keeps_flowing(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """A malformed message, a record Basware cannot take and a wrong Basware secret each
    end in a visible result or log, never a stalled partition."""
    async with sandboxes(
        seed=SeedOptions(companies=1, suppliers=0, purchase_orders=0, invoices=0)
    ) as (
        basware,
        visma,
    ):
        connection = sandbox_connection(basware, visma)
        tenant = connection.tenant
        broker = make_broker(kafka_settings, client_id="test-producer")
        async with broker:
            await broker.start()
            await broker.publish(b"{not json", topics[Topic.VISMA_CHANGES], key=b"x")
            await publish_events(
                broker,
                topics[Topic.VISMA_CHANGES],
                [
                    supplier_change(tenant, "LONG-1", "N" * 251),
                    supplier_change(tenant, "GOOD-1", "Bergen Trelast AS"),
                ],
            )
        async with pipeline(kafka_settings, database_url, topics, connection):
            expected = {(tenant, Entity.SUPPLIER, "LONG-1"), (tenant, Entity.SUPPLIER, "GOOD-1")}
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
        results = latest_results(events)
        assert results[(tenant, Entity.SUPPLIER, "GOOD-1")].outcome is Outcome.DELIVERED
        rejected = results[(tenant, Entity.SUPPLIER, "LONG-1")]
        assert rejected.outcome is Outcome.REJECTED
        assert rejected.reasons[0].field == "name"
        assert "LONG-1" not in vendors(basware)

        # A wrong Basware secret: every change fails, replayable, and says why.
        wrong = connection.model_copy(
            update={
                "basware": connection.basware.model_copy(
                    update={"client_secret": SecretStr("not-the-secret")}
                )
            }
        )
        async with pipeline(kafka_settings, database_url, topics, wrong):
            broker = make_broker(kafka_settings, client_id="test-producer")
            async with broker:
                await broker.start()
                await publish_events(
                    broker,
                    topics[Topic.VISMA_CHANGES],
                    [supplier_change(tenant, "AUTH-1", "Tromsø Fisk AS")],
                )
            expected = {(tenant, Entity.SUPPLIER, "AUTH-1")}
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
    failed = latest_results(events)[(tenant, Entity.SUPPLIER, "AUTH-1")]
    assert failed.outcome is Outcome.FAILED
    assert "not-the-secret" not in failed.model_dump_json()


def malformed_date_invoice(tenant: str) -> tuple[str, bytes]:
    """A supplier invoice change whose record carries the date 2026-13-45, as a producer
    that does not validate would send it: its id and its body."""
    record = VismaSupplierInvoice.model_validate(
        {
            "documentType": "Invoice",
            "referenceNumber": "001345",
            "supplier": {"number": "BAD-1"},
            "currencyId": "NOK",
            "date": "2026-10-20T00:00:00",
            "lastModifiedDateTime": "2026-11-01T00:00:00",
        }
    )
    change = change_from_record(tenant, record)
    body = change.model_dump_json().replace('"date":"2026-10-20T00:00:00"', '"date":"2026-13-45"')
    assert "2026-13-45" in body
    return change.entity_id, body.encode()


async def test_unreadable_messages_and_implausible_values_reach_a_visible_state(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """A garbage message, an invoice dated 2026-13-45 and a vendor whose IBAN fails its check
    digits: none stays pending, each shows in `audit status` with the fields that failed."""
    async with sandboxes(
        seed=SeedOptions(companies=1, suppliers=0, purchase_orders=0, invoices=0)
    ) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        tenant = connection.tenant
        invoice_id, bad_date = malformed_date_invoice(tenant)
        iban = VismaSupplier.model_validate(
            {
                "number": "IBAN-1",
                "name": "Nordlys Elektro AS",
                "supplierPaymentMethodDetails": [
                    {
                        "paymentMethodDetailDescription": "IBAN",
                        "paymentMethodDetailValue": "NO00 INVALID IBAN !!",
                    }
                ],
                "lastModifiedDateTime": "2026-11-01T00:00:00",
            }
        )
        changes = topics[Topic.VISMA_CHANGES]
        broker = make_broker(kafka_settings, client_id="test-producer")
        async with broker:
            await broker.start()
            garbage = await broker.publish(b"{not json", changes, key=b"x")
            await broker.publish(
                bad_date,
                changes,
                key=f"{tenant}:BAD-1".encode(),
                headers={"event-type": "SupplierInvoiceChanged"},
            )
            await publish_events(broker, changes, [change_from_record(tenant, iban)])
        async with pipeline(kafka_settings, database_url, topics, connection):
            message = await wait_for_status(
                database_url,
                StatusFilter(states=(RecordState.MALFORMED,)),
                lambda found: any(s.entity == "message" for s in found),
            )
            dated = await wait_for_status(
                database_url,
                StatusFilter(entity=Entity.SUPPLIER_INVOICE, entity_id=invoice_id),
                lambda found: bool(found) and found[0].state == RecordState.MALFORMED,
            )
            vendor = await wait_for_status(
                database_url,
                StatusFilter(entity=Entity.SUPPLIER, entity_id="IBAN-1"),
                lambda found: bool(found) and found[0].state == RecordState.REJECTED,
            )
    (stray,) = [s for s in message if s.entity == "message"]
    assert stray.entity_id == f"{changes}[{garbage.partition}]@{garbage.offset}"
    assert [r.category for r in stray.reasons] == ["Malformed"]
    (date_problem,) = dated[0].reasons
    assert (date_problem.category, date_problem.field) == ("Malformed", "record.date")
    assert date_problem.message.startswith(f"{changes}[")
    assert "2026-13-45" not in date_problem.message
    (iban_problem,) = vendor[0].reasons
    assert (
        iban_problem.field == "paymentMeans.0.financialAccounts.0.financialAccountIdentifiers.0.id"
    )
    assert "INVALID" not in iban_problem.message
    assert "IBAN-1" not in vendors(basware)


async def wait_for_status(
    database_url: str, query: StatusFilter, done: Callable[[list[RecordStatus]], bool]
) -> list[RecordStatus]:
    """Until the statuses the query finds satisfy `done`; the guard only stops a hang."""
    async with asyncio.timeout(60):
        while True:
            conn = await asyncpg.connect(database_url)
            try:
                if await conn.fetchval("SELECT to_regclass('audit_record_status') IS NOT NULL"):
                    found = await record_statuses(conn, query)
                    if done(found):
                        return found
            finally:
                await conn.close()
            await asyncio.sleep(0.1)
