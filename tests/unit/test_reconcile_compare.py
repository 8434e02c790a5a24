"""The reconciler's comparison on its own, and the registry's sides of one record: what the
writer posts for a Visma record compares equal with itself as Basware lists it back."""

from __future__ import annotations

from datetime import UTC, datetime

from writer_changes import TO, invoice, order, supplier

from mlconnector.audit.status import RecordStatus
from mlconnector.basware.models import AccountingDocument, BaswareVendor, MatchingOrder
from mlconnector.contracts import ChangeEvent, PurchaseOrderChanged, SupplierInvoiceChanged
from mlconnector.mapping import InvoicePayload, OrderPayload, VendorPayload, map_change
from reconciler.compare import FieldDifference, Outcome, Side, compare
from reconciler.entities import PURCHASE_ORDERS, SUPPLIER_INVOICES, SUPPLIERS
from reconciler.uploads import upload_note

COMPANY = TO.company_code or ""


def side(key: str, **owned: object) -> Side:
    return Side(key=key, entity_id=key, owned=owned)


def test_each_outcome_is_counted_and_every_record_not_equal_is_listed() -> None:
    visma = [
        side("same", name="A"),
        side("renamed", name="Visma AS"),
        side("gone", name="C"),
        side("twice", name="D"),
        Side(key="bad", entity_id="bad", unmappable="name: too long"),
    ]
    basware = [
        side("same", name="A"),
        side("renamed", name="Basware AS"),
        Side(key="twice", owned={"name": "D"}, basware_id="1", status="New"),
        Side(key="twice", owned={"name": "D"}, basware_id="2", status="Paid"),
        Side(key="stray", owned={"name": "E"}, basware_id="9"),
    ]

    report = compare("supplier", visma, basware)

    t = report.totals
    assert (t.visma, t.basware, t.equal, t.different, t.missing, t.duplicate, t.extra) == (
        5, 5, 1, 1, 1, 1, 1,
    )  # fmt: skip
    assert t.unmappable == 1
    assert t.statuses == {"New": 1, "Paid": 1}
    assert not t.all_equal
    by_key = {d.key: d for d in report.differences}
    assert by_key["renamed"].fields == (
        FieldDifference(field="name", visma="Visma AS", basware="Basware AS"),
    )
    assert by_key["gone"].outcome is Outcome.MISSING
    assert by_key["twice"].outcome is Outcome.DUPLICATE
    assert by_key["twice"].basware_ids == ("1", "2")
    assert by_key["stray"].outcome is Outcome.EXTRA
    assert by_key["bad"].outcome is Outcome.UNMAPPABLE
    assert "same" not in by_key


def test_two_visma_records_of_one_key_pair_with_two_basware_records() -> None:
    # Two invoices of one supplier with the same supplier invoice number, each uploaded once.
    visma = [
        Side(key="S1/F-1", entity_id="Invoice/1", owned={"grossSum": 100.0}),
        Side(key="S1/F-1", entity_id="Invoice/2", owned={"grossSum": 250.0}),
    ]
    basware = [
        Side(key="S1/F-1", owned={"grossSum": 250.0}, basware_id="b"),
        Side(key="S1/F-1", owned={"grossSum": 100.0}, basware_id="a"),
    ]
    assert compare("supplier_invoice", visma, basware).totals.equal == 2

    # One of them missing: the other is still found equal.
    report = compare("supplier_invoice", visma, basware[:1])
    assert (report.totals.equal, report.totals.missing) == (1, 1)
    assert [d.entity_id for d in report.differences] == ["Invoice/1"]

    # A third document under that key is a second upload.
    extra = Side(key="S1/F-1", owned={"grossSum": 100.0}, basware_id="c")
    assert compare("supplier_invoice", visma, [*basware, extra]).totals.duplicate == 2


def test_without_extras_a_record_only_basware_has_is_not_reported() -> None:
    report = compare("supplier_invoice", [], [side("stray", name="E")], extras=False)
    assert report.differences == []
    assert report.totals.all_equal


def test_an_empty_list_and_no_value_are_the_same() -> None:
    report = compare(
        "supplier", [side("a", contacts=None)], [Side(key="a", owned={"contacts": []})]
    )
    assert report.totals.equal == 1


def vendor_as_listed(change: ChangeEvent) -> BaswareVendor:
    payload = map_change(change, COMPANY)
    assert isinstance(payload, VendorPayload)
    body = {**payload.vendor.payload(), "buvid": "b1", "lastUpdated": "2026-12-01T10:00:00Z"}
    return BaswareVendor.model_validate(body)


def test_a_vendor_as_the_writer_posts_it_is_equal_and_an_edit_names_its_field() -> None:
    change = supplier("S1", "Nordlys AS")
    listed = vendor_as_listed(change)
    expected = SUPPLIERS.visma_side(change.record, COMPANY)

    assert compare("supplier", [expected], [SUPPLIERS.held(listed)]).totals.equal == 1
    edited = listed.model_copy(update={"name": "Sørlys AS"})
    (difference,) = compare("supplier", [expected], [SUPPLIERS.held(edited)]).differences
    assert difference.fields == (
        FieldDifference(field="name", visma="Nordlys AS", basware="Sørlys AS"),
    )


def test_an_order_header_as_posted_is_equal() -> None:
    change = order("PO1", "S1")
    assert isinstance(change, PurchaseOrderChanged)
    payload = map_change(change, COMPANY)
    assert isinstance(payload, OrderPayload)
    listed = MatchingOrder.model_validate(
        {**payload.order.payload(), "lastUpdated": "2026-12-01T10:00:00Z"}
    )
    expected = PURCHASE_ORDERS.visma_side(change.record, COMPANY)
    assert compare("purchase_order", [expected], [PURCHASE_ORDERS.held(listed)]).totals.equal == 1


def test_an_invoice_is_found_by_supplier_and_number_and_its_sums_compared() -> None:
    change = invoice("INV1", "S1", amount=125.0, detailTotal=100.0, vatTotal=25.0)
    assert isinstance(change, SupplierInvoiceChanged)
    payload = map_change(change, COMPANY)
    assert isinstance(payload, InvoicePayload)
    embedded = payload.invoice
    document = AccountingDocument(
        invoice_id="doc1",
        processing_status="New",
        company_code=COMPANY,
        supplier_code=embedded.supplier_code,
        currency_code=embedded.currency_code,
        payment_block=False,
        invoice_number=embedded.invoice_number,
        invoice_date=datetime(2026, 10, 20, tzinfo=UTC),
        net_sum=100.0,
        tax_sum1=25.0,
        gross_sum=125.0,
    )
    expected = SUPPLIER_INVOICES.visma_side(change.record, COMPANY)

    report = compare("supplier_invoice", [expected], [SUPPLIER_INVOICES.held(document)])

    assert report.totals.equal == 1
    assert report.totals.statuses == {"New": 1}


def test_a_missing_invoice_says_whether_it_was_uploaded() -> None:
    def status(state: str) -> RecordStatus:
        return RecordStatus(
            tenant="1000001", entity="supplier_invoice", entity_id="Invoice/1",
            supplier_number="S1", state=state, latest_change_id="c", latest_change_at=None,
            latest_change_replay_of=None, content_hash=None, changes=1, replays=0,
            first_change_at=None, latest_result_id="r",
            latest_result_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC), result_change_id="c",
            outcome=state, reasons=(), attempts=1, region="EU", request_id=None, results=1,
        )  # fmt: skip

    assert upload_note(status("delivered")).startswith("uploaded (delivered 2026-12-01 09:30")
    assert upload_note(status("rejected")).startswith("not uploaded: rejected")
    assert upload_note(None).startswith("not uploaded: the audit log holds no change")
