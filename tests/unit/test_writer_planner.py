"""The writer's planner on its own: coalescing of versions, what needs no call, stage order
and parking, and batching to Basware's limits. No broker, database or HTTP."""

from __future__ import annotations

from writer_changes import TO, invoice, order, supplier

from basware_writer.domain import KnownState, PreparedRecord, Stage
from basware_writer.planner import (
    admit,
    codes_at,
    lines_step,
    pack,
    parked_in_kafka_order,
    parking_reason,
    per_record,
    plan,
    release_due,
    upload_step,
    upsert_step,
)
from basware_writer.stores.stored_changes import dump_changes, load_changes
from mlconnector.contracts import (
    Entity,
    Outcome,
    PurchaseOrderChanged,
)


def refs(records: tuple[PreparedRecord, ...] | list[PreparedRecord]) -> list[str]:
    return [r.change.entity_id for r in records]


# --- coalescing of versions ---


def test_superseded_changes_travel_with_the_last_one_of_their_record() -> None:
    old, other, new = supplier("S1", "Old AS"), supplier("S2", "Other AS"), supplier("S1", "New AS")
    assert per_record([old, other, new]) == [(other,), (old, new)]


def test_only_the_latest_version_of_a_record_is_sent_and_its_older_versions_share_it() -> None:
    first, second, third = (supplier("S1", f"Version {n} AS") for n in (1, 2, 3))
    planned = plan([first, supplier("S2"), second, third], KnownState(), TO)

    assert refs(planned.vendors.records) == ["S2", "S1"]
    sent = planned.vendors.records[1]
    assert sent.changes == (first, second, third)
    (batch,) = planned.vendors.batches
    assert [v.payload()["name"] for v in batch.records] == ["Leverandør S2", "Version 3 AS"]
    assert planned.finished == ()


# --- what needs no call ---


def test_a_record_basware_accepted_with_this_content_is_delivered_without_a_call() -> None:
    same, changed = supplier("S1"), supplier("S2")
    first = plan([same, changed], KnownState(), TO)
    hashes = {r.ref: r.payload_hash for r in first.vendors.records}
    known = KnownState(
        accepted={
            (Entity.SUPPLIER, "S1"): hashes[(Entity.SUPPLIER, "S1")],
            (Entity.SUPPLIER, "S2"): "the hash of an older payload",
        }
    )

    planned = plan([same, changed], known, TO)

    assert refs(planned.vendors.records) == ["S2"]
    (unchanged,) = planned.finished
    assert unchanged.change == same
    assert unchanged.verdict.outcome is Outcome.DELIVERED
    assert unchanged.verdict.attempts == 0
    assert unchanged.verdict.reasons[0].category == "Unchanged"


def test_a_change_reconcile_resends_goes_although_basware_accepted_its_content() -> None:
    healed = supplier("S1").model_copy(update={"resend": True})
    digest = plan([healed], KnownState(), TO).vendors.records[0].payload_hash
    known = KnownState(accepted={(Entity.SUPPLIER, "S1"): digest})

    planned = plan([healed], known, TO)

    assert refs(planned.vendors.records) == ["S1"]
    assert planned.finished == ()


def test_a_record_basware_is_processing_already_gets_no_outcome_here() -> None:
    change = supplier("S1")
    digest = plan([change], KnownState(), TO).vendors.records[0].payload_hash

    known = KnownState(in_flight=frozenset({((Entity.SUPPLIER, "S1"), digest)}))

    planned = plan([change], known, TO)

    assert planned.vendors.records == ()
    assert planned.finished == ()
    # Another version of it is not in flight: it goes.
    renamed = plan([supplier("S1", "Renamed AS")], known, TO)
    assert refs(renamed.vendors.records) == ["S1"]


def test_a_record_that_cannot_be_valid_is_rejected_naming_the_field_before_any_call() -> None:
    undated = invoice("INV1", "S1", date=None)
    planned = plan([undated, supplier("S1")], KnownState(), TO)

    (rejected,) = planned.finished
    assert rejected.change == undated
    assert rejected.verdict.outcome is Outcome.REJECTED
    assert rejected.verdict.reasons[0].field == "invoiceDate"
    assert planned.invoices == ()
    assert refs(planned.vendors.records) == ["S1"]


def test_without_a_company_code_every_change_is_rejected_as_configuration() -> None:
    changes = [supplier("S1"), order("PO1", "S1")]
    planned = plan(changes, KnownState(), TO.model_copy(update={"company_code": None}))

    assert [d.change for d in planned.finished] == changes
    assert {d.verdict.outcome for d in planned.finished} == {Outcome.REJECTED}
    assert "no Basware company code" in planned.finished[0].verdict.reasons[0].message
    assert planned.vendors.records == ()
    assert planned.orders == ()
    assert planned.invoices == ()


# --- stage order and parking ---


def test_vendors_go_first_and_dependents_wait_for_the_vendors_answer() -> None:
    changes = [invoice("INV1", "S1"), order("PO1", "S1"), supplier("S1")]
    planned = plan(changes, KnownState(), TO)

    assert refs(planned.vendors.records) == ["S1"]
    assert refs(planned.orders) == ["PO1"]
    assert refs(planned.invoices) == ["Invoice/INV1"]
    # The vendor accepted: its order and invoice go.
    going = admit(planned.orders, KnownState(), accepted_vendors={"S1"}, waiting_keys=set())
    assert len(going.going) == 1
    assert going.parked == ()
    # The vendor refused (or still processing): they park, saying why.
    waits = admit(planned.invoices, KnownState(), accepted_vendors=set(), waiting_keys=set())
    assert waits.going == ()
    assert "vendor S1 is not accepted" in waits.parked[0][1]


def test_a_dependent_goes_only_when_its_vendor_is_accepted_and_nothing_of_its_key_waits() -> None:
    def reason(supplier: str, **state: set[str]) -> str | None:
        return parking_reason(
            supplier,
            accepted_vendors=state.get("accepted", set()),
            waiting_keys=state.get("waiting", set()),
            parked_keys=state.get("parked", set()),
        )

    assert reason("S1", accepted={"S1"}) is None
    assert "vendor S1 is not accepted" in (reason("S1", accepted={"S2"}) or "")
    assert "still processing" in (reason("S1", accepted={"S1"}, waiting={"S1"}) or "")
    # Behind parked changes of its key it queues, whatever else holds.
    assert "queues behind" in (reason("S1", accepted={"S1"}, parked={"S1"}) or "")
    # Other keys do not matter.
    assert reason("S1", accepted={"S1"}, waiting={"S2"}, parked={"S3"}) is None


def test_a_parked_key_queues_even_what_basware_has_already_so_that_order_holds() -> None:
    change = order("PO1", "S4")
    digest = plan([change], KnownState(), TO).orders[0].payload_hash
    known = KnownState(
        accepted={(Entity.PURCHASE_ORDER, change.entity_id): digest},
        vendors=frozenset({"S4"}),
        parked=frozenset({"S4"}),
    )
    planned = plan([change], known, TO)

    admission = admit(planned.orders, known, accepted_vendors={"S4"}, waiting_keys=set())
    assert admission.finished == ()
    assert admission.going == ()
    assert "queues behind" in admission.parked[0][1]
    # Once the key is not parked, the same order is known unchanged and needs no call.
    free = known.model_copy(update={"parked": frozenset()})
    admission = admit(planned.orders, free, accepted_vendors={"S4"}, waiting_keys=set())
    assert admission.going == ()
    assert [d.verdict.outcome for d in admission.finished] == [Outcome.DELIVERED]


def test_parked_changes_keep_the_order_of_the_batch() -> None:
    first, other, second = order("PO1", "S1"), order("PO2", "S2"), invoice("INV1", "S1")
    batch = [first, other, second]
    planned = plan(batch, KnownState(), TO)
    waits = [(p, "why") for p in (*planned.invoices, *planned.orders)]

    assert [c for c, _ in parked_in_kafka_order(waits, batch)] == batch


def test_a_release_is_due_when_a_parked_key_has_its_vendor_and_nothing_pending() -> None:
    assert release_due({"S1"}, accepted_vendors={"S1"}, waiting_keys=set())
    assert not release_due({"S1"}, accepted_vendors={"S1"}, waiting_keys={"S1"})
    assert not release_due({"S1"}, accepted_vendors={"S2"}, waiting_keys=set())


def test_invoices_need_a_receiving_address() -> None:
    planned = plan([invoice("INV1", "S1", supplierReference="F-1")], KnownState(), TO)

    step = upload_step(planned.invoices, TO)
    (intent,) = step.intents
    assert intent.invoice_number == "F-1"
    assert step.finished == ()
    refused = upload_step(planned.invoices, TO.model_copy(update={"receiving_email": None}))
    assert refused.intents == ()
    assert refused.finished[0].verdict.outcome is Outcome.REJECTED
    assert "receiving address" in refused.finished[0].verdict.reasons[0].message


# --- batching to Basware's limits ---


def test_requests_are_filled_in_order_and_a_record_is_split_only_when_it_must_be() -> None:
    items = [(0, ["a"] * 60), (1, ["b"] * 30), (2, ["c"] * 20), (3, ["d"] * 250), (4, ["e"])]
    chunks = pack(items, 100)
    assert [[(i, len(r)) for i, r in chunk] for chunk in chunks] == [
        [(0, 60), (1, 30)],
        [(2, 20)],
        [(3, 100)],
        [(3, 100)],
        [(3, 50)],
        [(4, 1)],
    ]
    assert pack([], 100) == []


def test_each_stage_keeps_to_basware_s_record_limit_per_request() -> None:
    vendors = plan([supplier(f"S{n}") for n in range(450)], KnownState(), TO).vendors
    assert [len(b.records) for b in vendors.batches] == [200, 200, 50]
    assert [m for b in vendors.batches for m in b.members] == list(range(450))

    orders = plan([order(f"PO{n}", "S1", lines=1) for n in range(600)], KnownState(), TO).orders
    headers = upsert_step(Stage.ORDER, orders)
    assert [len(b.records) for b in headers.batches] == [500, 100]

    # 250 lines of one order span three requests, each naming the order.
    big = plan([order("BIG", "S1", lines=250), order("SMALL", "S1", lines=30)], KnownState(), TO)
    lines, without = lines_step(big.orders)
    assert without == []
    assert [(b.members, len(b.records)) for b in lines.batches] == [
        ((0,), 100),
        ((0,), 100),
        ((0,), 50),
        ((1,), 30),
    ]


def test_an_order_without_lines_is_done_with_its_header() -> None:
    planned = plan([order("PO1", "S1", lines=0), order("PO2", "S1")], KnownState(), TO)
    lines, without = lines_step(planned.orders)

    assert refs(without) == [planned.orders[0].change.entity_id]
    assert lines.records == (planned.orders[1],)


def test_each_stage_names_the_codes_it_posts() -> None:
    (prepared,) = plan([order("000123", "S1")], KnownState(), TO).orders
    assert codes_at(Stage.ORDER, prepared.payload) == ["RegularOrder-000123"]
    assert codes_at(Stage.LINES, prepared.payload) == [
        "RegularOrder-000123-1",
        "RegularOrder-000123-2",
    ]


def test_changes_keep_their_type_through_postgresql() -> None:
    changes = (supplier("S1", "Bergen Trelast AS"), order("000123", "S1"))
    loaded = load_changes(dump_changes(changes))
    assert loaded == changes
    assert isinstance(loaded[1], PurchaseOrderChanged)
