"""Contract: ml-connector's Basware client against the Basware sandbox, over real HTTP.

Every request body the client sends and every answer the sandbox gives is checked against
Basware's own OpenAPI files (the copy in tests/contract/basware-openapi, or BASWARE_OPENAPI_DIR),
which the sandbox does not read: it validates with its own packaged copy of the schemas.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date, datetime

import httpx
import jwt
import pytest
from basware_reference import BASWARE_OPENAPI_DIR
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from basware_sandbox import (
    ApiClient,
    BaswareSandbox,
    FaultKind,
    FaultRule,
    Region,
    SandboxConfig,
    WebhookDelivery,
    run_basware_sandbox,
)
from basware_sandbox import documents as sandbox_documents
from basware_sandbox.openapi_contract import OpenApiContract
from basware_sandbox.records import AccountingDocument as SandboxDocument
from basware_sandbox.records import Workflow
from mlconnector.asgi import serve_asgi
from mlconnector.basware import (
    DEFAULT_SCOPES,
    BaswareAuthError,
    BaswareClient,
    BaswareCredentials,
    BaswareHost,
    BaswareHosts,
    BaswareRateLimited,
    BaswareRegion,
    BaswareRejected,
    BaswareUnavailable,
    BaswareVendor,
    GoodsReceipt,
    InvoiceState,
    ItemState,
    MatchingMode,
    MatchingOrder,
    MatchingOrderLine,
    PaymentResponse,
    PrebookResponse,
    RegionUnresolved,
    RequestState,
    Subscription,
    TransferResponse,
    VendorCompany,
    locate_region,
    probe_regions,
)
from mlconnector.basware.invoice_pdf import EmbeddedInvoice, render_invoice_pdf
from mlconnector.basware.models import InvoiceLine, OrderLineCoding, VendorPaymentTerms
from mlconnector.mapping import (
    CodingLayout,
    MasterDataRoute,
    SegmentTarget,
    account_from_gl_account,
    dimension_from_segment_value,
    payment_term_from_credit_term,
    tax_code_from_vat_category,
)
from mlconnector.problems import Problem
from mlconnector.visma.models import (
    VismaAccount,
    VismaCreditTerm,
    VismaDimensionValue,
    VismaVatCategory,
)

EU_CLIENT = ApiClient(
    client_id="contract-eu",
    client_secret=SecretStr("contract-eu-secret"),
    region=Region.EU,
    bwcid="EU-TENANT",
    company_codes=["BW00", "1010"],
)
US_CLIENT = ApiClient(
    client_id="contract-us",
    client_secret=SecretStr("contract-us-secret"),
    region=Region.US,
    bwcid="US-TENANT",
    company_codes=["US01"],
)
# Granted one scope only: fewer than the services ask for.
VENDOR_READER = ApiClient(
    client_id="contract-vendor-reader",
    client_secret=SecretStr("contract-vendor-reader-secret"),
    region=Region.EU,
    bwcid="EU-READER",
    company_codes=["BW00"],
    allowed_scopes=["vendors.read"],
)
WAIT = 10.0


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[BaswareSandbox]:
    config = SandboxConfig(
        clients=[EU_CLIENT, US_CLIENT, VENDOR_READER],
        processing_delay_seconds=0.01,
        webhook_delivery=WebhookDelivery(attempts=3, backoff_seconds=0.01, timeout_seconds=2),
    )
    async with run_basware_sandbox(config) as running:
        yield running


@pytest.fixture(scope="module")
def contract() -> OpenApiContract:
    return OpenApiContract(BASWARE_OPENAPI_DIR)


@pytest.fixture(scope="module")
async def http(contract: OpenApiContract) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(event_hooks=contract.hooks(), timeout=10) as client:
        yield client


def hosts_of(sandbox: BaswareSandbox) -> BaswareHosts:
    return BaswareHosts(
        hosts={
            BaswareRegion(region.value): BaswareHost(
                base_url=sandbox.base_url(region), issuer=sandbox.host(region).issuer
            )
            for region in Region
        }
    )


def credentials(client: ApiClient, *, region: BaswareRegion | None = None) -> BaswareCredentials:
    return BaswareCredentials(
        client_id=client.client_id, client_secret=client.client_secret, region=region
    )


@pytest.fixture
async def eu(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> AsyncIterator[BaswareClient]:
    contract.clear()
    async with BaswareClient(
        credentials(EU_CLIENT, region=BaswareRegion.EU), hosts_of(sandbox), http=http
    ) as client:
        yield client


def vendor(
    code: str, vendor_code: str, *, company: str = "BW00", name: str = "Acme"
) -> BaswareVendor:
    return BaswareVendor(
        external_code=code,
        vendor_code=vendor_code,
        name=name,
        companies=[VendorCompany(company_code=company, inherit_to_child_units=True)],
    )


def order(code: str, number: str, supplier: str) -> MatchingOrder:
    return MatchingOrder(
        external_code=code,
        order_number=number,
        source_system="ERP1",
        company_code="BW00",
        organization_element_code="1000",
        currency_code="EUR",
        supplier_code=supplier,
    )


def order_line(
    code: str, order_code: str, number: str, *, quantity: float, price: float, received: float
) -> MatchingOrderLine:
    return MatchingOrderLine(
        external_code=code,
        order_external_code=order_code,
        line_number=number,
        quantity=quantity,
        matching_mode=MatchingMode.STANDARD,
        net_price=price,
        net_sum=quantity * price,
        is_receipt_required=True,
        goods_receipts=[
            GoodsReceipt(
                external_code=f"{code}-GR", goods_receipt_number="5000001", quantity=received
            )
        ],
    )


async def accepted_all(client: BaswareClient, request_ids: list[str]) -> None:
    for request_id in request_ids:
        status = await client.wait_for_request_status(request_id, timeout=WAIT)
        assert status.request_status is RequestState.SUCCESS, status


def assert_contract_clean(contract: OpenApiContract) -> None:
    assert contract.problems() == []


async def test_vendors_are_batched_by_200_and_accepted(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    accepted = await eu.upsert_vendors([vendor(f"V-{i}", f"{1000 + i}") for i in range(450)])

    assert [len(a.external_codes) for a in accepted] == [200, 200, 50]
    statuses = [await eu.wait_for_request_status(a.request_id, timeout=WAIT) for a in accepted]
    assert {s.request_status for s in statuses} == {RequestState.SUCCESS}
    assert [i.external_code for s in statuses for i in s.items] == [f"V-{i}" for i in range(450)]
    landed = sandbox.state.records(Region.EU, "EU-TENANT", "vendors", accepted=True)
    assert {v["externalCode"] for v in landed} >= {f"V-{i}" for i in range(450)}
    stored = await eu.get_vendor("V-7")
    assert stored is not None
    assert stored.vendor_code == "1007"
    assert stored.buvid
    assert await eu.get_vendor("V-never-posted") is None
    assert_contract_clean(contract)


async def test_batches_stay_under_the_request_size_limit(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    contract.clear()
    sizes: list[int] = []

    async def measure(request: httpx.Request) -> None:
        if request.url.path == "/v1/vendors":
            sizes.append(len(request.content))

    http.event_hooks["request"] = [measure]
    try:
        async with BaswareClient(
            credentials(EU_CLIENT, region=BaswareRegion.EU),
            hosts_of(sandbox),
            http=http,
            max_request_bytes=20_000,
        ) as small:
            vendors = [vendor(f"BIG-{i}", f"B{i}", name="N" * 200) for i in range(150)]
            accepted = await small.upsert_vendors(vendors)
            await accepted_all(small, [a.request_id for a in accepted])
    finally:
        http.event_hooks["request"] = []
    assert len(accepted) > 1
    assert sizes
    assert max(sizes) <= 20_000
    assert sum(len(a.external_codes) for a in accepted) == 150
    assert_contract_clean(contract)


async def test_orders_then_lines_with_goods_receipts_are_accepted(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    await accepted_all(
        eu, [a.request_id for a in await eu.upsert_vendors([vendor("V-PO", "2000")])]
    )
    orders = await eu.upsert_matching_orders([order("PO-1", "4500001", "2000")])
    await accepted_all(eu, [a.request_id for a in orders])
    lines = [
        order_line(f"PO-1-{n}", "PO-1", str(n), quantity=2, price=10, received=2)
        for n in range(150)
    ]

    accepted = await eu.upsert_matching_order_lines(lines)

    assert [len(a.external_codes) for a in accepted] == [100, 50]
    await accepted_all(eu, [a.request_id for a in accepted])
    landed = sandbox.state.records(Region.EU, "EU-TENANT", "matchingOrderLines", accepted=True)
    assert {line["externalCode"] for line in landed} >= {f"PO-1-{n}" for n in range(150)}
    assert landed[0]["goodsReceipts"][0]["quantity"] == 2
    assert_contract_clean(contract)


async def test_vendors_and_matching_orders_are_listed_page_by_page_for_one_company(
    eu: BaswareClient, contract: OpenApiContract
) -> None:
    vendors = [vendor(f"LV-{i}", f"L{i}", company="1010") for i in range(5)]
    await accepted_all(eu, [a.request_id for a in await eu.upsert_vendors(vendors)])
    orders = [
        order(f"LPO-{i}", f"LPO{i}", "L0").model_copy(update={"company_code": "1010"})
        for i in range(3)
    ]
    await accepted_all(eu, [a.request_id for a in await eu.upsert_matching_orders(orders)])

    vendor_pages = [
        [v.external_code for v in page]
        async for page in eu.iter_vendor_pages(company_code="1010", page_size=2)
    ]
    order_pages = [
        [o.external_code for o in page]
        async for page in eu.iter_matching_order_pages(company_code="1010", page_size=2)
    ]
    nothing = [page async for page in eu.iter_vendor_pages(company_code="no-such-company")]

    # The continuation header carries on with the same query; the last page has none.
    assert [len(page) for page in vendor_pages] == [2, 2, 1]
    assert sorted(c for page in vendor_pages for c in page) == [f"LV-{i}" for i in range(5)]
    assert [len(page) for page in order_pages] == [2, 1]
    assert sorted(c for page in order_pages for c in page) == [f"LPO-{i}" for i in range(3)]
    # Basware's 404 is "no records".
    assert nothing == []
    assert_contract_clean(contract)


async def test_business_rules_fail_in_request_status(
    eu: BaswareClient, contract: OpenApiContract
) -> None:
    no_vendor = await eu.upsert_matching_orders([order("PO-ORPHAN", "4500002", "NOBODY")])
    lines_first = await eu.upsert_matching_order_lines(
        [order_line("PO-LATER-10", "PO-LATER", "10", quantity=1, price=1, received=1)]
    )
    wrong_company = await eu.upsert_vendors([vendor("V-XX", "3000", company="XX99")])

    for accepted, reason in (
        (no_vendor, "Vendor with code NOBODY"),
        (lines_first, "post the matching order before its lines"),
        (wrong_company, "CompanyCode"),
    ):
        status = await eu.wait_for_request_status(accepted[0].request_id, timeout=WAIT)
        assert status.request_status is RequestState.ERROR
        (item,) = status.items
        assert item.status is ItemState.ERROR
        assert item.errors
        assert item.errors[0].category == "DataValidation"
        assert reason in (item.errors[0].message or "")
    assert_contract_clean(contract)


def coded_line(code: str, order_code: str, coding: OrderLineCoding) -> MatchingOrderLine:
    return MatchingOrderLine(
        external_code=code,
        order_external_code=order_code,
        line_number="1",
        quantity=1,
        matching_mode=MatchingMode.STANDARD,
        net_price=10,
        net_sum=10,
        tax_code=coding.tax_code,
        order_line_coding=[coding],
    )


async def test_master_data_goes_first_and_codes_are_checked_in_request_status(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    """The mapping's master data and coded records, as the writer sends them: each valid for
    Basware's schema, and a line naming an inactive or unknown code refused by name."""
    seen = datetime(2026, 12, 1, 8, 0)
    layout = CodingLayout()
    master = [
        payment_term_from_credit_term(
            VismaCreditTerm(
                terms_id="C30", description="30 days", due_day1=30, last_modified_date_time=seen
            ),
            "BW00",
        ),
        tax_code_from_vat_category(
            VismaVatCategory.model_validate(
                {
                    "vatCategoryId": "C3",
                    "description": "Input VAT 25 %",
                    "vatCategoryLines": [{"vatId": "3", "vatRates": [{"vatRate": 25.0}]}],
                    "lastModifiedDateTime": "2026-12-01T08:00:00",
                }
            ),
            "BW00",
        ),
        *(
            account_from_gl_account(
                VismaAccount(
                    account_cd=number,
                    description="Purchases",
                    active=active,
                    last_modified_date_time=seen,
                ),
                "BW00",
            )
            for number, active in (("C4000", True), ("C4999", False))
        ),
        *(
            dimension_from_segment_value(
                VismaDimensionValue.model_validate(
                    {
                        "dimensionId": "SUBACCOUNT",
                        "segmentId": segment,
                        "valueId": value,
                        "description": "Purchasing",
                        "lastModified": "2026-12-01T08:00:00",
                    }
                ),
                "BW00",
                layout,
            )
            for segment, value in ((1, "C2"), (2, "C10"))
        ),
    ]
    for route in MasterDataRoute:
        kind = [p.record for p in master if p.route is route]
        await accepted_all(eu, [a.request_id for a in await eu.upsert_master_data(kind)])
    assert sandbox.state.records(Region.EU, "EU-TENANT", "accounts", accepted=True)[-1][
        "companies"
    ] == [{"companyCode": "BW00", "inherit": False, "active": False}]

    termed = vendor("V-TERMS", "2100").model_copy(
        update={"payment_terms": VendorPaymentTerms(payment_term_code="C30")}
    )
    await accepted_all(eu, [a.request_id for a in await eu.upsert_vendors([termed])])
    header = order("PO-CODED", "4500100", "2100").model_copy(update={"payment_term_code": "C30"})
    await accepted_all(eu, [a.request_id for a in await eu.upsert_matching_orders([header])])
    good = OrderLineCoding(
        external_code="PO-CODED-1-C0",
        row_index=0,
        allocated_quantity=1,
        account_code="C4000",
        cost_center_code="C2",
        project_code="C10",
        tax_code="C3",
    )
    coded = await eu.upsert_matching_order_lines([coded_line("PO-CODED-1", "PO-CODED", good)])
    await accepted_all(eu, [a.request_id for a in coded])

    bad = good.model_copy(update={"account_code": "C4999", "project_code": "NOPE"})
    refused = await eu.upsert_matching_order_lines([coded_line("PO-CODED-2", "PO-CODED", bad)])
    status = await eu.wait_for_request_status(refused[0].request_id, timeout=WAIT)
    assert status.request_status is RequestState.ERROR
    (item,) = status.items
    messages = [e.message or "" for e in item.errors or []]
    assert any("inactive AccountCode C4999" in m for m in messages), messages
    assert any("unknown ProjectCode NOPE" in m for m in messages), messages
    assert_contract_clean(contract)


async def test_a_coding_dimension_goes_to_its_generic_list_and_lines_are_checked_by_it(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    """Segment values a layout makes dimCode3 are items of the generic list ACC_LIST_3
    (`/v1/lists/{listKey}`, valid for Basware's schema); a line's dimCode3 must be one."""
    layout = CodingLayout(segments={1: SegmentTarget.COST_CENTER, 2: SegmentTarget.DIM_CODE_3})
    items = [
        dimension_from_segment_value(
            VismaDimensionValue.model_validate(
                {
                    "dimensionId": "SUBACCOUNT",
                    "segmentId": 2,
                    "valueId": value,
                    "description": "Warehouse",
                    "active": active,
                    "lastModified": "2026-12-01T08:00:00",
                }
            ),
            "BW00",
            layout,
        )
        for value, active in (("L10", True), ("L99", False))
    ]
    assert {p.route for p in items} == {MasterDataRoute.LISTS}
    posted = await eu.upsert_master_data([p.record for p in items])
    await accepted_all(eu, [a.request_id for a in posted])
    listed = sandbox.state.records(Region.EU, "EU-TENANT", "lists/ACC_LIST_3", accepted=True)
    assert {(r["text_1"], r["companies"][0]["active"]) for r in listed} == {
        ("L10", True),
        ("L99", False),
    }

    header = order("PO-DIM", "4500200", "2200")
    await accepted_all(
        eu, [a.request_id for a in await eu.upsert_vendors([vendor("V-DIM", "2200")])]
    )
    await accepted_all(eu, [a.request_id for a in await eu.upsert_matching_orders([header])])
    good = OrderLineCoding(
        external_code="PO-DIM-1-C0", row_index=0, allocated_quantity=1, dim_code3="L10"
    )
    coded = await eu.upsert_matching_order_lines([coded_line("PO-DIM-1", "PO-DIM", good)])
    await accepted_all(eu, [a.request_id for a in coded])
    for code, said in (("L99", "inactive DimCode3 L99"), ("NOPE", "unknown DimCode3 NOPE")):
        bad = good.model_copy(update={"dim_code3": code})
        refused = await eu.upsert_matching_order_lines([coded_line("PO-DIM-2", "PO-DIM", bad)])
        status = await eu.wait_for_request_status(refused[0].request_id, timeout=WAIT)
        assert status.request_status is RequestState.ERROR
        (item,) = status.items
        messages = [e.message or "" for e in item.errors or []]
        assert any(said in m for m in messages), messages
    assert_contract_clean(contract)


async def test_identical_repost_is_not_processed(
    eu: BaswareClient, contract: OpenApiContract
) -> None:
    first = await eu.upsert_vendors([vendor("V-SAME", "4000")])
    await accepted_all(eu, [first[0].request_id])

    again = await eu.upsert_vendors([vendor("V-SAME", "4000")])

    status = await eu.wait_for_request_status(again[0].request_id, timeout=WAIT)
    assert status.request_status is RequestState.SUCCESS
    assert [i.status for i in status.items] == [ItemState.NOT_PROCESSED]
    await eu.acknowledge_request_status([first[0].request_id, again[0].request_id])
    acknowledged = await eu.get_request_status(first[0].request_id)
    assert acknowledged.request_status is RequestState.ACKNOWLEDGED_SUCCESS
    assert_contract_clean(contract)


async def test_repost_within_a_second_expires_the_older_post(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    sandbox.state.pause_processing()
    try:
        older = await eu.upsert_vendors([vendor("V-RACE", "5000", name="Old name")])
        newer = await eu.upsert_vendors([vendor("V-RACE", "5000", name="New name")])
    finally:
        sandbox.state.resume_processing()

    older_status = await eu.wait_for_request_status(older[0].request_id, timeout=WAIT)
    newer_status = await eu.wait_for_request_status(newer[0].request_id, timeout=WAIT)
    assert [i.status for i in older_status.items] == [ItemState.RECORD_EXPIRED]
    assert [i.status for i in newer_status.items] == [ItemState.SUCCESS]
    landed = sandbox.state.records(Region.EU, "EU-TENANT", "vendors", accepted=True)
    assert next(v for v in landed if v["externalCode"] == "V-RACE")["name"] == "New name"
    assert_contract_clean(contract)


async def test_schema_violation_is_rejected_with_basware_reasons(
    eu: BaswareClient, contract: OpenApiContract
) -> None:
    too_long = BaswareVendor.model_construct(
        external_code="V-BAD",
        vendor_code="6000",
        name="N" * 251,
        companies=[VendorCompany(company_code="BW00")],
    )

    good = [vendor(f"V-BEFORE-{i}", f"61{i:02d}") for i in range(200)]
    with pytest.raises(BaswareRejected) as caught:
        await eu.upsert_vendors([*good, too_long])

    assert caught.value.status == 400
    # The first batch went through before the second was refused; the error says so.
    assert [len(a.external_codes) for a in caught.value.accepted] == [200]
    (error,) = caught.value.errors
    assert (error.code, error.external_code, error.info) == (
        "SCHEMA_VALIDATION_ERROR",
        "V-BAD",
        "0/name",
    )
    # The contract checker sees the same fault in the request, and nothing wrong in the answer.
    assert [p for p in contract.problems() if "response" in p] == []
    assert any("0/name" in p and "too long" in p for p in contract.problems())
    contract.clear()


async def test_bearer_token_never_reaches_the_redirect_target(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    tenant = sandbox.state.tenant_of(Region.EU, "EU-TENANT")
    invoice_ids = [f"{n:032x}" for n in range(1, 4)]
    for invoice_id in invoice_ids:
        sandbox_documents.inject(
            sandbox.state,
            tenant,
            SandboxDocument(
                invoice_id=invoice_id,
                company_code="BW00",
                supplier_code="2000",
                currency_code="EUR",
                processing_status="WaitingForTransfer",
                last_updated=sandbox.state.clock.utcnow(),
            ),
        )
    since = sandbox.state.request_log[-1].seq

    listed = [d.invoice_id async for d in eu.iter_accounting_documents(page_size=2)]
    single = await eu.get_accounting_document(invoice_ids[0])

    assert set(invoice_ids) <= set(listed)
    assert single is not None
    assert single.processing_status == "WaitingForTransfer"
    log = [e for e in sandbox.state.request_log if e.seq > since]
    redirects = [e for e in log if e.path.startswith("/v1/accountingDocuments")]
    storage = [e for e in log if e.path.startswith("/_s3/")]
    assert redirects
    assert all(e.status == 302 and e.authorization for e in redirects)
    assert len(storage) == len(redirects)
    assert not any(e.authorization for e in storage)
    assert_contract_clean(contract)
    # A client that forwards its bearer token through the redirect is refused, as by S3.
    token = await eu.tokens.get()
    async with httpx.AsyncClient(follow_redirects=True) as naive:
        leaked = await naive.get(
            f"{sandbox.base_url()}/v1/accountingDocuments/{invoice_ids[0]}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert leaked.status_code == 400
    assert "InvalidArgument" in leaked.text


async def test_uploaded_invoice_is_matched_and_follows_the_status_machine(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    await accepted_all(
        eu, [a.request_id for a in await eu.upsert_vendors([vendor("V-3W", "7000")])]
    )
    await accepted_all(
        eu,
        [
            a.request_id
            for a in await eu.upsert_matching_orders([order("PO-3W", "4500003", "7000")])
        ],
    )
    await accepted_all(
        eu,
        [
            a.request_id
            for a in await eu.upsert_matching_order_lines(
                [
                    order_line("PO-3W-10", "PO-3W", "10", quantity=10, price=100, received=10),
                    order_line("PO-3W-20", "PO-3W", "20", quantity=5, price=50, received=2),
                ]
            )
        ],
    )

    def invoice(number: str, line: str, quantity: float, price: float) -> bytes:
        return render_invoice_pdf(
            EmbeddedInvoice(
                invoice_number=number,
                invoice_date=date(2024, 5, 20),
                company_code="BW00",
                supplier_code="7000",
                currency_code="EUR",
                net_sum=quantity * price,
                gross_sum=quantity * price,
                invoice_lines=[
                    InvoiceLine(
                        row_index=0,
                        order_number="4500003",
                        order_row_number=line,
                        quantity=quantity,
                        net_price=price,
                        net_sum=quantity * price,
                    )
                ],
            )
        )

    emails = {"receiving_email": "invoices@buyer.example", "notification_email": "ap@buyer.example"}
    matching = await eu.upload_invoice(invoice("INV-OK", "10", 10, 100), **emails)
    await eu.upload_invoice(invoice("INV-OVER", "20", 5, 50), **emails)
    await sandbox.state.drain()

    (ok,) = await eu.get_invoice_status("BW00", "INV-OK", date(2024, 5, 20))
    (over,) = await eu.get_invoice_status("BW00", "INV-OVER", date(2024, 5, 20))
    assert ok.status is InvoiceState.IN_APPROVAL
    assert ok.dispute_info is None
    assert over.status is InvoiceState.IN_APPROVAL
    assert over.dispute_info is not None
    assert over.dispute_info.is_disputed
    assert "exceeds received" in (over.dispute_info.dispute_reason or "")
    assert over.invoice_id is not None
    assert sandbox.state.find_document(over.invoice_id)[1].workflow is Workflow.MATCHING_EXCEPTION
    assert await eu.get_invoice_status("BW00", "INV-NONE", date(2024, 5, 20)) == []

    assert ok.invoice_id is not None
    sandbox_documents.approve(sandbox.state, ok.invoice_id)
    waiting = [
        d async for d in eu.iter_accounting_documents(processing_status="WaitingForTransfer")
    ]
    approved = next(d for d in waiting if d.invoice_id == ok.invoice_id)
    assert approved.bumid == matching.bum_id
    assert approved.invoice_number == "INV-OK"
    (ready,) = await eu.get_invoice_status("BW00", "INV-OK", date(2024, 5, 20))
    assert ready.status is InvoiceState.READY_FOR_PAYMENT

    assert await eu.acknowledge(ok.invoice_id) is True
    assert await eu.acknowledge(ok.invoice_id) is False
    transfer = await eu.post_transfer_response(
        ok.invoice_id,
        TransferResponse(
            external_code="TR-1",
            success=True,
            payment_block=False,
            response_message="Booked",
            voucher_number1="VN-1",
        ),
    )
    status = await eu.wait_for_request_status(transfer.request_id, timeout=WAIT)
    assert [(i.status, i.parent_external_code) for i in status.items] == [
        (ItemState.SUCCESS, ok.invoice_id)
    ]
    transferred = await eu.get_accounting_document(ok.invoice_id)
    assert transferred is not None
    assert (transferred.processing_status, transferred.voucher_number1) == ("Transferred", "VN-1")
    with pytest.raises(BaswareRejected) as closed:
        await eu.post_transfer_response(
            ok.invoice_id,
            TransferResponse(
                external_code="TR-2", success=True, payment_block=False, response_message="Again"
            ),
        )
    assert closed.value.status == 400

    await eu.post_payment_response(
        ok.invoice_id,
        PaymentResponse(external_code="PAY-1", success=True, payment_block=False, paid_total=1000),
    )
    (paid,) = await eu.get_invoice_status("BW00", "INV-OK", date(2024, 5, 20))
    assert paid.status is InvoiceState.PAID
    with pytest.raises(BaswareRejected) as duplicate:
        await eu.post_payment_response(
            ok.invoice_id, PaymentResponse(external_code="PAY-1", success=True, payment_block=False)
        )
    assert duplicate.value.status == 409

    (over_id,) = [
        s.invoice_id for s in await eu.get_invoice_status("BW00", "INV-OVER", date(2024, 5, 20))
    ]
    assert over_id is not None
    sandbox_documents.reject(sandbox.state, over_id, "Quantity not delivered")
    (rejected,) = await eu.get_invoice_status("BW00", "INV-OVER", date(2024, 5, 20))
    assert rejected.status is InvoiceState.REJECTED
    assert rejected.processing_status == "WaitingToBeRemoved"
    assert_contract_clean(contract)


async def test_prebook_flow(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    invoice_id = "b" * 32
    sandbox_documents.inject(
        sandbox.state,
        sandbox.state.tenant_of(Region.EU, "EU-TENANT"),
        SandboxDocument(
            invoice_id=invoice_id,
            company_code="BW00",
            supplier_code="2000",
            currency_code="EUR",
            processing_status="WaitingForPrebook",
            last_updated=sandbox.state.clock.utcnow(),
        ),
    )

    assert await eu.acknowledge(invoice_id) is True
    accepted = await eu.post_prebook_response(
        invoice_id,
        PrebookResponse(
            external_code="PB-1", success=True, payment_block=True, response_message="Prebooked"
        ),
    )

    await accepted_all(eu, [accepted.request_id])
    document = await eu.get_accounting_document(invoice_id)
    assert document is not None
    assert (document.processing_status, document.payment_block) == ("Prebooked", True)
    assert [r.external_code for r in document.prebook_responses or []] == ["PB-1"]
    assert_contract_clean(contract)


async def test_region_is_detected_and_cross_checked_with_the_issuer(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    contract.clear()
    hosts = hosts_of(sandbox)

    for client, region in ((EU_CLIENT, BaswareRegion.EU), (US_CLIENT, BaswareRegion.US)):
        probe = await probe_regions(http, credentials(client), hosts, DEFAULT_SCOPES)
        assert probe.region is region
    since = sandbox.state.request_log[-1].seq
    async with BaswareClient(credentials(US_CLIENT), hosts, http=http) as us:
        ping = await us.ping()
        await us.ping()
        assert us.tokens.fetch_count == 1
    assert (ping.region, ping.issuer, ping.tenant) == (
        BaswareRegion.US,
        "https://api.us.basware.com",
        "US-TENANT",
    )
    # Detection asked each region once, and its token served both pings.
    token_requests = [
        (e.region, e.status)
        for e in sandbox.state.request_log
        if e.seq > since and e.path == "/v1/tokens"
    ]
    assert sorted(token_requests) == [("AU", 401), ("CA", 401), ("EU", 401), ("US", 200)]

    stranger = BaswareCredentials(client_id="contract-eu", client_secret=SecretStr("wrong-secret"))
    with pytest.raises(BaswareAuthError) as nowhere:
        await probe_regions(http, stranger, hosts, DEFAULT_SCOPES)
    assert nowhere.value.reason == "no_region"
    assert "wrong-secret" not in str(nowhere.value)

    async with BaswareClient(
        credentials(EU_CLIENT, region=BaswareRegion.US), hosts, http=http
    ) as lost:
        with pytest.raises(BaswareAuthError) as wrong_region:
            await lost.ping()
    assert wrong_region.value.reason == "invalid_client"

    # A host answering for EU whose tokens carry the US issuer is not taken for EU.
    impostor = BaswareHosts(
        hosts={
            BaswareRegion.EU: BaswareHost(
                base_url=sandbox.base_url(Region.US), issuer=sandbox.host(Region.EU).issuer
            )
        }
    )
    async with BaswareClient(
        credentials(US_CLIENT, region=BaswareRegion.EU), impostor, http=http
    ) as odd:
        with pytest.raises(BaswareAuthError) as mismatch:
            await odd.ping()
    assert mismatch.value.reason == "issuer_mismatch"
    assert_contract_clean(contract)


async def test_the_client_and_connections_add_take_one_region_answer(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    """One detector: the client's own detection and `locate_region` (connections add, ping)
    agree, also where two detectors once answered differently: credentials granted fewer
    scopes than they are asked for, and a configured region they are not valid in."""
    contract.clear()
    hosts = hosts_of(sandbox)

    reader = credentials(VENDOR_READER)
    verdict = await locate_region(reader, hosts, http=http, scopes=DEFAULT_SCOPES)
    assert (verdict.region, verdict.problem) == (None, Problem.REFUSED)
    async with BaswareClient(reader, hosts, http=http) as client:
        with pytest.raises(RegionUnresolved) as unresolved:
            await client.region()
    assert unresolved.value.verdict.problem is Problem.REFUSED
    assert unresolved.value.verdict.detail == verdict.detail
    # Asked for the one scope it holds, the same credentials belong to EU, for both.
    narrow = ("vendors.read",)
    found = await locate_region(reader, hosts, http=http, scopes=narrow)
    assert (found.region, found.tenant) == (BaswareRegion.EU, "EU-READER")
    async with BaswareClient(reader, hosts, scopes=narrow, http=http) as client:
        assert await client.region() is BaswareRegion.EU

    # A configured region pins the answer: EU credentials configured as US are a wrong
    # region, never quietly taken for EU.
    pinned = credentials(EU_CLIENT, region=BaswareRegion.US)
    wrong = await locate_region(pinned, hosts, http=http, scopes=DEFAULT_SCOPES)
    assert (wrong.region, wrong.problem) == (None, Problem.WRONG_REGION)
    assert wrong.detail == "the credentials are valid in EU, not in the configured region US"
    with pytest.raises(RegionUnresolved) as pinned_refused:
        await probe_regions(http, pinned, hosts, DEFAULT_SCOPES)
    assert pinned_refused.value.verdict.problem is Problem.WRONG_REGION
    assert_contract_clean(contract)


async def test_rate_limits_and_outages_surface_as_typed_errors(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    batch = [vendor("V-FAULT", "8000")]

    def once(kind: FaultKind, retry_after: str | None = None) -> None:
        sandbox.state.add_fault(
            FaultRule(
                kind=kind,
                region=Region.EU,
                path_prefix="/v1/vendors",
                retry_after=retry_after,
                remaining=1,
            )
        )

    once(FaultKind.RATE_LIMIT, retry_after="7")
    with pytest.raises(BaswareRateLimited) as limited:
        await eu.upsert_vendors(batch)
    assert limited.value.retry_after == 7.0
    once(FaultKind.RATE_LIMIT)
    with pytest.raises(BaswareRateLimited) as bare:
        await eu.upsert_vendors(batch)
    assert bare.value.retry_after is None
    once(FaultKind.UNAVAILABLE, retry_after="3")
    with pytest.raises(BaswareUnavailable) as unavailable:
        await eu.upsert_vendors(batch)
    assert (unavailable.value.status, unavailable.value.retry_after) == (503, 3.0)
    once(FaultKind.SERVER_ERROR)
    with pytest.raises(BaswareUnavailable) as broken:
        await eu.upsert_vendors(batch)
    assert broken.value.status == 500
    once(FaultKind.DROP)
    with pytest.raises(BaswareUnavailable) as dropped:
        await eu.upsert_vendors(batch)
    assert dropped.value.status is None

    accepted = await eu.upsert_vendors(batch)
    await accepted_all(eu, [accepted[0].request_id])
    secret = EU_CLIENT.client_secret.get_secret_value()
    token = await eu.tokens.get()
    for error in (limited, bare, unavailable, broken, dropped):
        assert secret not in str(error.value)
        assert token not in str(error.value)
    # 429 and 503 are not declared in Basware's file (the sandbox answers them on request).
    undeclared = {p.split(": status ")[1].split()[0] for p in contract.problems()}
    assert undeclared == {"429", "503"}
    contract.clear()


async def test_expired_tokens_are_refused_and_fetched_again(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    await eu.get_vendor("V-7")
    fetched = eu.tokens.fetch_count

    sandbox.state.add_fault(FaultRule(kind=FaultKind.EXPIRED_TOKEN, region=Region.EU, remaining=1))
    assert await eu.get_vendor("V-7") is not None
    assert eu.tokens.fetch_count == fetched + 1

    # Past the token's lifetime by the sandbox clock: the sandbox refuses it, the client
    # (whose own clock says it is still good) fetches another on the 401 and carries on.
    sandbox.state.clock.advance(sandbox.state.config.token_lifetime_seconds + 1)
    assert await eu.get_vendor("V-7") is not None
    assert eu.tokens.fetch_count == fetched + 2
    assert_contract_clean(contract)


async def test_scopes_are_enforced(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    async with BaswareClient(
        credentials(EU_CLIENT, region=BaswareRegion.EU),
        hosts_of(sandbox),
        http=http,
        scopes=("vendors.read",),
    ) as reader:
        with pytest.raises(BaswareAuthError) as refused:
            await reader.upsert_vendors([vendor("V-SCOPE", "9000")])
    assert refused.value.status == 403
    contract.clear()


class WebhookReceiver:
    """A subscriber endpoint that records what it receives and can be told to fail."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures_left = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if self.failures_left:
            self.failures_left -= 1
            return Response(status_code=500)
        return Response(status_code=200)


async def test_webhooks_are_connection_tested_signed_and_retried(
    eu: BaswareClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    receiver = WebhookReceiver()
    secret = "hook-secret"
    async with serve_asgi(receiver.app) as url:
        subscription = Subscription(
            task_type="AccountingDocuments",
            task_sub_type="WaitingForTransfer",
            notification_webhook_url=f"{url}/hook",
            webhook_authentication_token=SecretStr(secret),
        )
        (saved,) = await eu.subscribe([subscription])
        assert saved.notification_webhook_url == f"{url}/hook"
        assert [s.task_type for s in await eu.list_subscriptions()] == ["AccountingDocuments"]

        receiver.failures_left = 1  # the ConnectionTest must be answered 200
        with pytest.raises(BaswareRejected) as refused:
            await eu.subscribe([subscription.model_copy(update={"task_sub_type": "Paid"})])
        assert refused.value.status == 400

        receiver.failures_left = 2
        invoice_id = "f" * 32
        sandbox_documents.inject(
            sandbox.state,
            sandbox.state.tenant_of(Region.EU, "EU-TENANT"),
            SandboxDocument(
                invoice_id=invoice_id,
                company_code="BW00",
                supplier_code="2000",
                currency_code="EUR",
                processing_status="WaitingForTransfer",
                last_updated=sandbox.state.clock.utcnow(),
            ),
        )
        await sandbox.state.drain()

    connection_test = json.loads(receiver.received[0][1])
    assert connection_test["taskType"] == "ConnectionTest"
    for headers, body in receiver.received:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-bwapi-signature-256"] == expected
    notifications = [json.loads(body) for _, body in receiver.received[2:]]
    assert len(notifications) == 3  # two refused, the third answered 200
    assert {n["taskId"] for n in notifications} == {notifications[0]["taskId"]}
    assert (notifications[0]["taskType"], notifications[0]["documentId"]) == (
        "AccountingDocuments",
        invoice_id,
    )
    for notification in notifications:
        assert contract.check_schema("push-notification", "NotificationPayload", notification) == []
    attempts = [a for a in sandbox.state.webhook_log if a.task_id == notifications[0]["taskId"]]
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert_contract_clean(contract)


async def test_token_endpoint_answers_as_documented(
    sandbox: BaswareSandbox, http: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    contract.clear()
    tokens = f"{sandbox.base_url()}/v1/tokens"
    good = httpx.BasicAuth(EU_CLIENT.client_id, EU_CLIENT.client_secret.get_secret_value())
    form = {"grant_type": "client_credentials", "scope": "vendors.read"}

    wrong = await http.post(tokens, data=form, auth=httpx.BasicAuth(EU_CLIENT.client_id, "nope"))
    no_scope = await http.post(tokens, data={"grant_type": "client_credentials"}, auth=good)
    no_grant = await http.post(tokens, data={"scope": "vendors.read"}, auth=good)
    no_auth = await http.post(tokens, data=form)
    other_region = await http.post(f"{sandbox.base_url(Region.US)}/v1/tokens", data=form, auth=good)
    issued = await http.post(tokens, data=form, auth=good)

    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    assert (no_scope.status_code, no_scope.json()["error"]) == (400, "invalid_request")
    assert (no_grant.status_code, no_grant.json()["error"]) == (400, "invalid_request")
    assert no_auth.status_code == 422
    assert other_region.status_code == 401
    assert issued.status_code == 200
    jwks = (await http.get(f"{sandbox.base_url()}/.well-known/jwks.json")).json()
    discovery = (await http.get(f"{sandbox.base_url()}/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == "https://api.basware.com"
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(
        issued.json()["access_token"],
        key,
        algorithms=["RS256"],
        audience="OpenAPI",
        issuer=discovery["issuer"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert {"sub", "scope", "iss", "aud", "iat", "exp", "jti", "bwcid"} <= set(claims)
    assert (claims["sub"], claims["bwcid"], claims["scope"]) == (
        "contract-eu",
        "EU-TENANT",
        "vendors.read",
    )
    assert claims["exp"] - claims["iat"] == issued.json()["expires_in"] == 3600
    assert jwt.get_unverified_header(issued.json()["access_token"])["typ"] == "at+jwt"
    # Only the two requests sent without a required field break Basware's file; no answer does.
    assert sorted(contract.problems()) == [
        "POST /v1/tokens -> 400: request: <root>: 'grant_type' is a required property",
        "POST /v1/tokens -> 400: request: <root>: 'scope' is a required property",
    ]
    contract.clear()


async def test_every_route_the_client_uses_was_checked(contract: OpenApiContract) -> None:
    used = {
        "POST /v1/tokens",
        "POST /v1/vendors",
        "GET /v1/vendors/{externalCode}",
        "POST /v1/matchingOrders",
        "POST /v1/matchingOrderLines",
        "POST /v1/paymentTerms",
        "POST /v1/taxCodes",
        "POST /v1/accounts",
        "POST /v1/costCenters",
        "POST /v2/projects",
        "POST /v1/lists/{listKey}",
        "GET /v1/requestStatus/{requestId}",
        "POST /v1/requestStatus/acknowledge",
        "POST /v2/smartpdf/invoiceUpload",
        "GET /v1/accountingDocuments",
        "GET /v1/accountingDocuments/{invoiceId}",
        "GET /v1/accountingDocuments/status",
        "POST /v1/accountingDocuments/{invoiceId}/acknowledge",
        "POST /v1/accountingDocuments/{invoiceId}/transferResponses",
        "POST /v1/accountingDocuments/{invoiceId}/paymentResponses",
        "POST /v1/accountingDocuments/{invoiceId}/prebookResponses",
        "POST /v1/subscriptions",
        "GET /v1/subscriptions",
        "GET /v1/vendors",
        "GET /v1/matchingOrders",
        "GET /.well-known/jwks.json",
        "GET /.well-known/openid-configuration",
    }
    assert used - contract.covered == set()
