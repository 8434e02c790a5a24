"""The writer's pure policy: who waits behind whom, how records fill requests, how changes of
one record travel together."""

from __future__ import annotations

from datetime import datetime

from basware_writer.changes import dump_changes, load_changes, per_record
from basware_writer.gating import parking_reason
from basware_writer.pending import Stage
from basware_writer.prepared import codes_at, pack
from mlconnector.contracts import PurchaseOrderChanged, SupplierChanged, change_from_record
from mlconnector.mapping import order_from_purchase_order
from mlconnector.visma.models import VismaPurchaseOrder, VismaSupplier


def reason(supplier: str, **state: set[str]) -> str | None:
    return parking_reason(
        supplier,
        accepted_vendors=state.get("accepted", set()),
        waiting_keys=state.get("waiting", set()),
        parked_keys=state.get("parked", set()),
    )


def test_a_dependent_goes_only_when_its_vendor_is_accepted_and_nothing_of_its_key_waits() -> None:
    assert reason("S1", accepted={"S1"}) is None
    assert "vendor S1 is not accepted" in (reason("S1", accepted={"S2"}) or "")
    assert "still processing" in (reason("S1", accepted={"S1"}, waiting={"S1"}) or "")
    # Behind parked changes of its key it queues, whatever else holds.
    assert "queues behind" in (reason("S1", accepted={"S1"}, parked={"S1"}) or "")
    # Other keys do not matter.
    assert reason("S1", accepted={"S1"}, waiting={"S2"}, parked={"S3"}) is None


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


def supplier(number: str, name: str) -> SupplierChanged:
    record = VismaSupplier(number=number, name=name, last_modified_date_time=datetime(2026, 11, 1))
    change = change_from_record("1000001", record)
    assert isinstance(change, SupplierChanged)
    return change


def test_changes_keep_their_type_through_postgresql() -> None:
    order = VismaPurchaseOrder.model_validate(
        {"orderNbr": "000123", "supplier": {"number": "S1"}, "lastModifiedDateTime": "2026-11-01"}
    )
    changes = (supplier("S1", "Bergen Trelast AS"), change_from_record("1000001", order))
    loaded = load_changes(dump_changes(changes))
    assert loaded == changes
    assert isinstance(loaded[1], PurchaseOrderChanged)


def test_superseded_changes_travel_with_the_last_one_of_their_record() -> None:
    old, other, new = supplier("S1", "Old AS"), supplier("S2", "Other AS"), supplier("S1", "New AS")
    assert per_record([old, other, new]) == [(other,), (old, new)]


def test_each_stage_names_the_codes_it_posts() -> None:
    order = VismaPurchaseOrder.model_validate(
        {
            "orderNbr": "000123",
            "orderType": "RegularOrder",
            "supplier": {"number": "S1"},
            "currency": "NOK",
            "lines": [{"lineNbr": 1, "orderQty": 1.0}, {"lineNbr": 2, "orderQty": 2.0}],
            "lastModifiedDateTime": "2026-11-01",
        }
    )
    payload = order_from_purchase_order(order, [], "BW00")
    assert codes_at(Stage.ORDER, payload) == ["RegularOrder-000123"]
    assert codes_at(Stage.LINES, payload) == ["RegularOrder-000123-1", "RegularOrder-000123-2"]
