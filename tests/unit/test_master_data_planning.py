"""Master data and coding in the pure parts: the mapping's codes and coding per layout, and
the planner's order (master data first, a vendor waits for its payment term, an order for
its codes). No broker, database or HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from writer_changes import TENANT, TO, invoice

from basware_writer.domain import KnownState, Stage
from basware_writer.planner import Destination, admit, admit_vendors, plan, refuse_inactive
from mlconnector.basware.models import GenericListItem
from mlconnector.contracts import ChangeEvent, Entity, Outcome, change_from_record
from mlconnector.mapping import (
    CodingLayout,
    MasterDataPayload,
    MasterDataRoute,
    NotSent,
    OrderPayload,
    SegmentTarget,
    code_deactivated,
    codes_named,
    map_change,
    placed_code,
    placed_code_of,
    recoded,
)
from mlconnector.visma.models import (
    VismaAccount,
    VismaDimensionValue,
    VismaPurchaseOrder,
    VismaSupplier,
)

SWAPPED = CodingLayout(segments={1: SegmentTarget.PROJECT, 2: SegmentTarget.COST_CENTER})
LINE: dict[str, Any] = {
    "lineNbr": 1,
    "orderQty": 2.0,
    "amount": 20.0,
    "account": {"number": "4000"},
    "taxCategory": {"number": "3"},
    "sub": {
        "subaccountNumber": "2-10",
        "segments": [
            {"segmentId": 1, "segmentValue": "2"},
            {"segmentId": 2, "segmentValue": "10"},
        ],
    },
}


def coded_order() -> ChangeEvent:
    record = VismaPurchaseOrder.model_validate(
        {
            "orderNbr": "PO1",
            "supplier": {"number": "S1"},
            "currency": "NOK",
            "terms": {"id": "30"},
            "lines": [LINE],
            "lastModifiedDateTime": "2026-11-01",
        }
    )
    return change_from_record(TENANT, record)


def termed_supplier() -> ChangeEvent:
    record = VismaSupplier(
        number="S1",
        name="Leverandør S1",
        credit_terms={"id": "30"},
        last_modified_date_time=datetime(2026, 11, 1),
    )
    return change_from_record(TENANT, record)


def segment_value(segment: int, value: str) -> ChangeEvent:
    record = VismaDimensionValue.model_validate(
        {
            "dimensionId": "SUBACCOUNT",
            "segmentId": segment,
            "valueId": value,
            "lastModified": "2026-11-01T00:00:00",
        }
    )
    return change_from_record(TENANT, record)


def test_an_order_line_carries_its_coding_placed_by_the_layout() -> None:
    payload = map_change(coded_order(), "BW00")
    assert isinstance(payload, OrderPayload)
    [coding] = payload.lines[0].order_line_coding or []
    assert (coding.account_code, coding.cost_center_code, coding.project_code) == (
        "4000",
        "2",
        "10",
    )
    assert coding.tax_code == "3"
    swapped = map_change(coded_order(), "BW00", SWAPPED)
    assert isinstance(swapped, OrderPayload)
    [moved] = swapped.lines[0].order_line_coding or []
    assert (moved.cost_center_code, moved.project_code) == ("10", "2")


def test_the_codes_an_order_names_are_basware_codes() -> None:
    assert codes_named(coded_order()) == {
        (Entity.CREDIT_TERM, "30"),
        (Entity.ACCOUNT, "4000"),
        (Entity.VAT_CATEGORY, "3"),
        placed_code(SegmentTarget.COST_CENTER, "2"),
        placed_code(SegmentTarget.PROJECT, "10"),
    }


def test_a_segment_the_layout_leaves_out_is_not_sent() -> None:
    only_cost_centers = CodingLayout(segments={1: SegmentTarget.COST_CENTER})
    with pytest.raises(NotSent, match="segment 2"):
        map_change(segment_value(2, "10"), "BW00", only_cost_centers)
    assert recoded(segment_value(1, "2"), "BW00", only_cost_centers, SWAPPED)
    assert not recoded(segment_value(2, "10"), "BW00", only_cost_centers, only_cost_centers)


def test_a_deactivated_account_is_inactive_for_the_company() -> None:
    record = VismaAccount(
        account_cd="4000", active=False, last_modified_date_time=datetime(2026, 11, 1)
    )
    payload = map_change(change_from_record(TENANT, record), "BW00")
    assert isinstance(payload, MasterDataPayload)
    assert payload.record.payload()["companies"] == [
        {"companyCode": "BW00", "inherit": False, "active": False}
    ]


def test_master_data_goes_first_and_a_vendor_waits_for_its_payment_term() -> None:
    planned = plan([termed_supplier(), segment_value(1, "2")], KnownState(), TO)
    assert [step.stage for step in planned.master] == [Stage.COST_CENTER]
    going, waits = admit_vendors(planned.vendors, set(), TO)
    assert going.records == ()
    [(_, why)] = waits
    assert "payment term 30" in why
    going, waits = admit_vendors(planned.vendors, {(Entity.CREDIT_TERM, "30")}, TO)
    assert waits == []
    assert len(going.records) == 1


def test_an_order_waits_for_every_code_it_names_that_the_connection_syncs() -> None:
    planned = plan([coded_order()], KnownState(vendors=frozenset({"S1"})), TO)
    admitted = admit(
        planned.orders,
        KnownState(),
        accepted_vendors={"S1"},
        waiting_keys=set(),
        accepted_codes={(Entity.CREDIT_TERM, "30"), (Entity.ACCOUNT, "4000")},
        destination=TO,
    )
    [(_, why)] = admitted.parked
    assert why == (
        "Basware has not accepted cost center 2, project 10, tax code 3 yet; sent once it has"
    )
    by_hand = Destination(**{**TO.model_dump(), "synced": frozenset({Entity.CREDIT_TERM})})
    admitted = admit(
        planned.orders,
        KnownState(),
        accepted_vendors={"S1"},
        waiting_keys=set(),
        accepted_codes={(Entity.CREDIT_TERM, "30")},
        destination=by_hand,
    )
    assert len(admitted.going) == 1
    assert {d.verdict.outcome for d in admitted.finished} <= {Outcome.DELIVERED}


def deactivated_account(number: str) -> ChangeEvent:
    record = VismaAccount(
        account_cd=number, active=False, last_modified_date_time=datetime(2026, 11, 1)
    )
    return change_from_record(TENANT, record)


def test_a_deactivation_is_known_by_its_change() -> None:
    assert code_deactivated(deactivated_account("4090"))
    assert not code_deactivated(segment_value(1, "2"))
    assert not code_deactivated(termed_supplier())


def test_an_invoice_naming_an_inactive_code_is_refused_and_names_it() -> None:
    coded = invoice(
        "000009",
        "S1",
        invoiceLines=[
            {
                "lineNumber": 1,
                "cost": 20.0,
                "account": {"number": "4090"},
                "vatCode": {"id": "3"},
                "subaccount": LINE["sub"],
            }
        ],
    )
    planned = plan([coded], KnownState(), TO)
    inactive = {(Entity.ACCOUNT, "4090"), placed_code(SegmentTarget.COST_CENTER, "2")}
    going, [refused] = refuse_inactive(planned.invoices, inactive, TO)
    assert going == []
    assert refused.verdict.outcome is Outcome.REJECTED
    [why] = refused.verdict.reasons
    assert why.category == "InactiveCode"
    assert "account 4090, cost center 2" in why.message
    # Codes active again (or never deactivated): it is uploaded.
    going, refused_none = refuse_inactive(planned.invoices, set(), TO)
    assert len(going) == 1
    assert refused_none == []


def test_a_segment_made_a_coding_dimension_is_an_item_of_its_list() -> None:
    layout = CodingLayout(
        segments={1: SegmentTarget.DIM_CODE_1, 2: SegmentTarget.DIM_CODE_3},
    )
    payload = map_change(segment_value(2, "10"), "BW00", layout)
    assert isinstance(payload, MasterDataPayload)
    assert payload.route is MasterDataRoute.LISTS
    assert payload.record.payload() == {
        "externalCode": "DIM3-10",
        "companies": [{"companyCode": "BW00", "active": True}],
        "text_1": "10",
        "text_2": "10",
    }
    assert placed_code_of(payload) == placed_code(SegmentTarget.DIM_CODE_3, "10")
    order = map_change(coded_order(), "BW00", layout)
    assert isinstance(order, OrderPayload)
    [coding] = order.lines[0].order_line_coding or []
    assert (coding.dim_code1, coding.dim_code3, coding.cost_center_code) == ("2", "10", None)
    # One POST per list: the list key is the route's.
    planned = plan([segment_value(1, "2"), segment_value(2, "10")], KnownState(), TO)
    assert [s.stage for s in planned.master] == [Stage.COST_CENTER, Stage.PROJECT]
    by_list = Destination(**{**TO.model_dump(), "layout": layout})
    planned = plan([segment_value(2, "10"), segment_value(1, "2")], KnownState(), by_list)
    keys = [
        [r.list_key for r in batch.records if isinstance(r, GenericListItem)]
        for step in planned.master
        for batch in step.batches
    ]
    assert keys == [["ACC_LIST_1"], ["ACC_LIST_3"]]
