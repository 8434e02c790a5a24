"""Entity order and dependencies on the real broker and PostgreSQL, against the Basware sandbox,
whose business rules refuse an order before its vendor and lines before their header, and put
an invoice that arrives before its order lines into a matching exception."""

from __future__ import annotations

import pytest
from conftest import TopicNames
from writer_support import (
    LINES_PER_ORDER,
    all_final,
    by_record,
    fetch,
    invoice,
    keys,
    order,
    publish,
    records,
    results_until,
    running_writer,
    supplier_story,
    vendor,
    writer_world,
)

from basware_sandbox.records import Workflow
from mlconnector.contracts import DeliveryResult, Entity, Outcome
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

pytestmark = pytest.mark.integration


async def test_orders_and_invoices_created_before_their_vendors_wait_for_them(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """Invoices, then orders, then vendors on Kafka: the dependents park (durably), and once
    the vendors are accepted they are delivered vendor → order → lines → invoice."""
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        tenant = connection.tenant
        stories = [supplier_story(tenant, f"S{n}") for n in range(1, 5)]
        vendors = [v for v, _, _ in stories]
        dependents = [i for _, _, i in stories] + [o for _, o, _ in stories]
        async with running_writer(kafka_settings, database_url, topics, connection):
            await publish(kafka_settings, changes, dependents)
            await results_until(kafka_settings, topics, all_final(keys(dependents), "parked"))
            parked = await fetch(database_url, "SELECT change_event_id FROM writer_parked")
            assert {r["change_event_id"] for r in parked} == {d.event_id for d in dependents}
            assert records(basware, "matchingOrders", accepted=False) == []

            await publish(kafka_settings, changes, vendors)
            found = await results_until(
                kafka_settings, topics, all_final(keys(vendors) | keys(dependents))
            )
        left = await fetch(database_url, "SELECT count(*) AS n FROM writer_parked")

    assert left[0]["n"] == 0
    parked_then_delivered = {
        (r.entity_id, r.outcome) for r in found if r.entity is not Entity.SUPPLIER
    }
    assert {(d.entity_id, Outcome.PARKED) for d in dependents} <= parked_then_delivered
    assert len(records(basware, "vendors")) == 4
    assert len(records(basware, "matchingOrders")) == 4
    assert len(records(basware, "matchingOrderLines")) == 4 * LINES_PER_ORDER
    documents = basware.state.documents()
    assert sorted(str(d.document.invoice_number) for d in documents) == [
        f"F-INVS{n}" for n in range(1, 5)
    ]
    # The sandbox matched every invoice against received order lines: none came too early.
    assert {d.workflow for d in documents} == {Workflow.IN_APPROVAL}


async def test_a_poison_supplier_parks_only_its_own_key(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """A vendor that cannot be valid holds back its own order and invoice; the other
    suppliers flow. The fixed vendor, when it comes, releases what waited."""
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        tenant = connection.tenant
        healthy = [e for n in range(1, 41) for e in supplier_story(tenant, f"H{n:02d}")]
        poison = vendor(tenant, "P1", "N" * 251)  # Basware allows 250
        held = [order(tenant, "POP1", "P1"), invoice(tenant, "INVP1", "P1", "POP1")]
        # The poison supplier comes first in Kafka, and shares partitions with others.
        async with running_writer(kafka_settings, database_url, topics, connection):
            await publish(kafka_settings, changes, [poison, *held, *healthy])

            def others_done_poison_waiting(
                latest: dict[tuple[Entity, str], DeliveryResult],
            ) -> bool:
                return all_final(keys(healthy))(latest) and all_final(keys(held), "parked")(latest)

            found = await results_until(kafka_settings, topics, others_done_poison_waiting)
            latest = by_record(found)
            refused = latest[(Entity.SUPPLIER, "P1")]
            assert refused.outcome is Outcome.REJECTED
            assert refused.reasons[0].field == "name"
            assert (
                "vendor P1 is not accepted"
                in latest[(Entity.PURCHASE_ORDER, "POP1")].reasons[0].message
            )
            assert len(records(basware, "matchingOrders")) == 40

            fixed = vendor(tenant, "P1", "Fjordkraft Leverandør AS")
            await publish(kafka_settings, changes, [fixed])
            await results_until(
                kafka_settings, topics, all_final(keys(held) | {(Entity.SUPPLIER, "P1")})
            )

    assert "POP1" in {o["orderNumber"] for o in records(basware, "matchingOrders")}
    assert len(basware.state.documents()) == 41


async def test_lines_are_not_sent_when_their_header_is_refused(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The writer believes the vendor accepted, Basware does not have it: the header ends in
    requestStatus Error, which becomes a rejected result with Basware's category and message,
    and the order's lines are never posted."""
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        tenant = connection.tenant
        ghost_order = order(tenant, "POG1", "GHOST")
        async with running_writer(kafka_settings, database_url, topics, connection):
            await fetch(
                database_url,
                "INSERT INTO writer_accepted (tenant, entity, entity_id, payload_hash) "
                "VALUES ($1, 'supplier', 'GHOST', 'not-in-basware')",
                tenant,
            )
            await publish(kafka_settings, changes, [ghost_order])
            found = await results_until(
                kafka_settings, topics, all_final(keys([ghost_order]), "rejected")
            )

    (reason,) = by_record(found)[(Entity.PURCHASE_ORDER, "POG1")].reasons
    assert reason.category == "DataValidation"
    assert reason.message == "Vendor with code GHOST does not exist for company BW00"
    assert records(basware, "matchingOrders", accepted=False) != []
    assert records(basware, "matchingOrderLines", accepted=False) == []
