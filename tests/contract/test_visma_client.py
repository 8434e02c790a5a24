"""The Visma client against the Visma sandbox over real HTTP on loopback.

Every route the client uses, the token life cycle, paging, the quota and the errors. The
sandbox's request log is the witness for call counts and waiting times.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pypdf
import pytest
from pydantic import SecretStr

from mlconnector.retry import Backoff
from mlconnector.visma import (
    CREATE_SCOPE,
    READ_SCOPE,
    UPDATE_SCOPE,
    VismaAuthError,
    VismaClient,
    VismaClientSettings,
    VismaCompanyError,
    VismaCredentials,
    VismaEndpoints,
    VismaForbiddenError,
    VismaNoLicenceError,
    VismaNotFoundError,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaRecord,
    VismaServerError,
    VismaSupplier,
    VismaSupplierInvoice,
)
from mlconnector.visma.ratelimit import QuotaLane, QuotaSpent
from visma_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    CompanyInfo,
    CompanyState,
    EntityName,
    FaultRule,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    TimestampStyle,
    run_visma_sandbox,
)
from visma_sandbox.schemas import Supplier

FAST_RETRIES = Backoff(base_seconds=0.01, cap_seconds=0.05, max_attempts=4)
SMALL_SEED = SeedOptions(companies=2, suppliers=40, purchase_orders=30, invoices=30, seed=7)


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_visma_sandbox(SandboxConfig(seed=SMALL_SEED)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox: RunningSandbox) -> Iterator[None]:
    """Each test starts with default settings, no faults and fresh quota windows."""
    yield
    state = sandbox.state
    state.settings = SandboxSettings()
    state.faults.clear()
    state.rate_limits.clear()


_extra_companies = iter(range(10, 100))


def fresh_company(sandbox: RunningSandbox) -> CompanyState:
    """An empty company of its own: its own tenant, token and quota window."""
    return sandbox.state.add_company(CompanyInfo.demo(next(_extra_companies)))


def first_company(sandbox: RunningSandbox) -> CompanyState:
    return sandbox.state.company("1000001")


def credentials(
    company: CompanyState,
    *,
    secret: str = DEMO_CLIENT_SECRET,
    tenant_id: str | None = None,
    company_id: str | None = None,
    scopes: tuple[str, ...] = (READ_SCOPE,),
) -> VismaCredentials:
    return VismaCredentials(
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretStr(secret),
        tenant_id=tenant_id or company.info.tenant_id,
        company_id=company_id or company.company_id,
        scopes=scopes,
    )


def client_for(sandbox: RunningSandbox, creds: VismaCredentials, **settings: object) -> VismaClient:
    options = VismaClientSettings.model_validate({"backoff": FAST_RETRIES, **settings})
    endpoints = VismaEndpoints(token_url=sandbox.token_url, api_base_url=sandbox.api_base_url)
    return VismaClient(creds, endpoints, options)


async def read_all(
    client: VismaClient, model: type[VismaRecord], **kwargs: object
) -> list[VismaRecord]:
    records: list[VismaRecord] = []
    async for page in client.iter_pages(model, **kwargs):  # type: ignore[arg-type]
        records.extend(page)
    return records


def load_suppliers(company: CompanyState, count: int, *, at: datetime | None = None) -> None:
    company.load(
        EntityName.SUPPLIER,
        (Supplier(number=f"{70_000 + i}", name=f"Leverandør {i} AS") for i in range(count)),
        at=at,
    )


# -- tokens and the company --------------------------------------------------------------


async def test_ping_fetches_a_token_and_names_the_company_on_every_call(
    sandbox: RunningSandbox,
) -> None:
    company = first_company(sandbox)
    since = sandbox.state.log.last_seq
    async with client_for(sandbox, credentials(company)) as client:
        ping = await client.ping()
        await client.get_supplier("50001")
    assert ping.company_id == company.company_id
    assert ping.rate_limit is not None
    assert ping.rate_limit.remaining < ping.rate_limit.limit
    log = sandbox.state.log.entries(since=since)
    assert [e.route for e in log] == ["token", "supplier.list", "supplier.get"]
    for entry in log[1:]:
        assert entry.status == 200
        assert entry.headers.get("ipp-company-id") == company.company_id
        assert "authorization" not in {name.lower() for name in entry.headers}


async def test_concurrent_calls_share_one_token_request(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    since = sandbox.state.log.last_seq
    async with client_for(sandbox, credentials(company)) as client:
        suppliers = await asyncio.gather(*(client.get_supplier(f"{50001 + i}") for i in range(10)))
    assert len({s.number for s in suppliers}) == 10
    assert len(sandbox.state.log.entries(since=since, route="token")) == 1


async def test_basic_client_authentication_gets_a_token(sandbox: RunningSandbox) -> None:
    async with client_for(
        sandbox, credentials(first_company(sandbox)), client_auth="basic"
    ) as client:
        assert (await client.get_supplier("50002")).number == "50002"


async def test_a_revoked_token_is_replaced_once_after_the_401(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    async with client_for(sandbox, credentials(company)) as client:
        await client.get_supplier("50001")
        since = sandbox.state.log.last_seq
        assert sandbox.state.revoke_tokens(tenant_id=company.info.tenant_id) >= 1
        supplier = await client.get_supplier("50003")
    assert supplier.number == "50003"
    log = sandbox.state.log.entries(since=since)
    assert [(e.route, e.status) for e in log] == [
        ("supplier.get", 401),
        ("token", 200),
        ("supplier.get", 200),
    ]


async def test_a_token_that_expires_mid_iteration_is_replaced_before_it_runs_out(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    load_suppliers(company, 40)
    sandbox.state.settings.token_lifetime_seconds = 2
    sandbox.state.add_fault(FaultRule(path="/v1/supplier", delay_ms=300))
    since = sandbox.state.log.last_seq
    async with client_for(
        sandbox, credentials(company), token_refresh_margin_seconds=1.0
    ) as client:
        records = await read_all(client, VismaSupplier, page_size=5)
    assert len({r.record_id for r in records}) == 40
    log = sandbox.state.log.entries(since=since)
    assert len([e for e in log if e.route == "token"]) >= 2
    assert [e for e in log if e.status == 401] == []


async def test_a_wrong_secret_is_named_without_the_secret(sandbox: RunningSandbox) -> None:
    creds = credentials(first_company(sandbox), secret="not-the-secret-4711")
    async with client_for(sandbox, creds) as client:
        with pytest.raises(VismaAuthError, match="invalid_client") as caught:
            await client.ping()
    assert "not-the-secret-4711" not in str(caught.value)
    assert "not-the-secret-4711" not in repr(caught.value)
    assert "not-the-secret-4711" not in repr(creds)


async def test_an_unknown_tenant_is_refused_by_visma_connect(sandbox: RunningSandbox) -> None:
    creds = credentials(first_company(sandbox), tenant_id="00000000-0000-0000-0000-000000000000")
    async with client_for(sandbox, creds) as client:
        with pytest.raises(VismaAuthError, match="invalid_tenant"):
            await client.ping()


async def test_the_customer_tenant_gets_a_token_but_no_licence(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    creds = credentials(company, tenant_id=company.info.customer_tenant_id)
    async with client_for(sandbox, creds) as client:
        with pytest.raises(VismaNoLicenceError, match="12027") as caught:
            await client.get_supplier("50001")
    assert caught.value.fault_code == "12027"
    assert "tenant" in str(caught.value)


async def test_another_companys_id_is_refused(sandbox: RunningSandbox) -> None:
    creds = credentials(first_company(sandbox), company_id="1000002")
    async with client_for(sandbox, creds) as client:
        with pytest.raises(VismaCompanyError, match="12002"):
            await client.get_supplier("50001")


async def test_legacy_mode_accepts_the_header_the_client_always_sends(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.settings.company_id_mode = "legacy"
    company = first_company(sandbox)
    async with client_for(sandbox, credentials(company)) as client:
        assert (await client.get_supplier("50001")).number == "50001"
    async with client_for(sandbox, credentials(company, company_id="1000002")) as client:
        with pytest.raises(VismaCompanyError) as caught:
            await client.get_supplier("50001")
    assert caught.value.status == 400


async def test_a_write_without_the_update_scope_is_forbidden(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox, credentials(first_company(sandbox))) as client:
        with pytest.raises(VismaForbiddenError, match="update"):
            await client.update_supplier_invoice_note("Invoice", "000001", "Approved in Basware")


async def test_a_missing_record_raises_not_found(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox, credentials(first_company(sandbox))) as client:
        with pytest.raises(VismaNotFoundError) as caught:
            await client.get_supplier("99999")
    assert caught.value.status == 404
    assert caught.value.request_id


# -- paging and incremental reads --------------------------------------------------------


async def test_paging_reads_2500_records_once_each_in_key_order(sandbox: RunningSandbox) -> None:
    company = fresh_company(sandbox)
    load_suppliers(company, 2500)
    since = sandbox.state.log.last_seq
    async with client_for(sandbox, credentials(company)) as client:
        sizes: list[int] = []
        numbers: list[str] = []
        async for page in client.iter_pages(VismaSupplier, page_size=1000):
            sizes.append(len(page))
            numbers.extend(r.number for r in page)
    assert sizes == [1000, 1000, 500]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 2500
    assert sandbox.state.log.count("supplier.list", company_id=company.company_id) == 3
    assert sandbox.state.log.entries(since=since, route="token")


async def test_a_page_size_over_the_maximum_is_clamped(sandbox: RunningSandbox) -> None:
    company = fresh_company(sandbox)
    load_suppliers(company, 2500)
    sandbox.state.settings.max_page_size = 300
    async with client_for(sandbox, credentials(company)) as client:
        pages = [page async for page in client.iter_page_results(VismaSupplier, page_size=1000)]
    assert {p.max_page_size for p in pages} == {300}
    assert [len(p.records) for p in pages] == [300] * 8 + [100]
    assert sum(len(p.records) for p in pages) == 2500
    assert sandbox.state.log.count("supplier.list", company_id=company.company_id) == 9


async def test_records_sharing_one_timestamp_are_all_read_across_pages(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    load_suppliers(company, 2500, at=datetime(2026, 1, 1))
    shared = company.touch(EntityName.SUPPLIER, [f"{70_000 + i}" for i in range(500, 2000)])
    async with client_for(sandbox, credentials(company)) as client:
        touched = await read_all(client, VismaSupplier, modified_since=shared, page_size=400)
        after = await read_all(
            client, VismaSupplier, modified_since=shared + timedelta(milliseconds=1)
        )
    assert len({r.record_id for r in touched}) == 1500
    assert {r.last_modified_date_time for r in touched} == {shared}
    assert after == []


async def test_an_incremental_read_of_100000_records_with_10_changes_costs_one_call(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    backfilled = datetime(2026, 6, 1, 12, 0, 0)
    load_suppliers(company, 100_000, at=backfilled)
    changed = {f"{70_000 + i * 9_999}" for i in range(10)}
    for number in changed:
        company.update(EntityName.SUPPLIER, number, {"status": "OnHold"})
    async with client_for(sandbox, credentials(company)) as client:
        await client.ping()
        before = sandbox.state.log.count("supplier.list", company_id=company.company_id)
        records = await read_all(
            client, VismaSupplier, modified_since=backfilled + timedelta(seconds=1)
        )
    calls = sandbox.state.log.count("supplier.list", company_id=company.company_id) - before
    assert {r.record_id for r in records} == changed
    assert calls == 1


async def test_rows_changed_while_paging_are_caught_by_the_overlap_re_read(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    start = datetime(2026, 3, 1)
    load_suppliers(company, 30, at=start)
    later = company.touch(
        EntityName.SUPPLIER, [f"{70_000 + i}" for i in range(11, 30)], at=start + timedelta(hours=1)
    )

    def change_between_pages(target: CompanyState) -> None:
        target.update(EntityName.SUPPLIER, "70001", {"name": "Endret etter side 1 AS"})
        target.delete(EntityName.SUPPLIER, "70005")

    company.after_page(EntityName.SUPPLIER, 1, change_between_pages)
    async with client_for(sandbox, credentials(company)) as client:
        first_pass = await read_all(client, VismaSupplier, modified_since=start, page_size=10)
        high_water = max(r.last_modified_date_time for r in first_pass)
        from_cursor = await read_all(client, VismaSupplier, modified_since=high_water)
        overlap = await read_all(client, VismaSupplier, modified_since=start)
    first_ids = {r.record_id for r in first_pass}
    # The delete shifted 70010 from page 2 onto page 1 after page 1 was read: offset paging
    # skips a row nobody touched, and a read from the cursor cannot see it either. Only
    # re-reading an overlap below the cursor (what the reader does) finds it.
    assert "70010" not in first_ids
    assert len(first_ids) == 29
    assert high_water == later
    cursor_ids = {r.record_id for r in from_cursor}
    assert "70010" not in cursor_ids
    assert "70001" in cursor_ids
    renamed = next(r for r in from_cursor if r.record_id == "70001")
    assert isinstance(renamed, VismaSupplier)
    assert renamed.name == "Endret etter side 1 AS"
    assert "70010" in {r.record_id for r in overlap}
    assert len(overlap) == 29  # 70005 is gone


@pytest.mark.parametrize("style", list(TimestampStyle))
async def test_every_timestamp_shape_parses_to_the_stored_naive_value(
    sandbox: RunningSandbox, style: TimestampStyle
) -> None:
    company = first_company(sandbox)
    sandbox.state.settings.timestamp_style = style
    async with client_for(sandbox, credentials(company)) as client:
        records = await read_all(client, VismaSupplierInvoice)
    stored = {
        "/".join(reversed(r.key)): r.last_modified
        for r in company.table(EntityName.SUPPLIER_INVOICE)
    }
    assert {r.record_id: r.last_modified_date_time for r in records} == stored
    assert all(r.last_modified_date_time.tzinfo is None for r in records)


# -- the quota and transient failures ----------------------------------------------------


async def test_a_call_that_may_not_wait_for_the_quota_raises_instead_of_retrying(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    sandbox.state.settings.rate_limit = 1
    since = sandbox.state.log.last_seq
    async with client_for(sandbox, credentials(company)) as client:
        await client.ping()
        with pytest.raises(QuotaSpent) as spent:
            await client.get_attachment("any", lane=QuotaLane.BULK, wait_for_quota=False)
    assert spent.value.lane is QuotaLane.BULK
    assert spent.value.resumes_at > datetime.now(UTC)
    # Answered 429 once, and not tried again: the caller puts the work aside.
    assert [e.status for e in sandbox.state.log.entries(since=since)][-1:] == [429]


async def test_a_429_storm_is_waited_out_as_retry_after_says(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    async with client_for(sandbox, credentials(company)) as client:
        await client.ping()
        sandbox.state.add_fault(
            FaultRule(path="/v1/supplier/*", status=429, retry_after=1, times=2)
        )
        since = sandbox.state.log.last_seq
        supplier = await client.get_supplier("50004")
    assert supplier.number == "50004"
    log = sandbox.state.log.entries(since=since)
    assert [e.status for e in log] == [429, 429, 200]
    for refused, following in itertools.pairwise(log):
        assert refused.retry_after == 1
        assert following.at >= refused.at + refused.retry_after


async def test_an_exhausted_quota_answers_429_and_the_client_waits_for_the_window(
    sandbox: RunningSandbox,
) -> None:
    company = fresh_company(sandbox)
    load_suppliers(company, 3)
    sandbox.state.settings.rate_limit = 2
    sandbox.state.settings.rate_limit_window_seconds = 2
    async with httpx.AsyncClient() as http:
        token = (
            await http.post(
                sandbox.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEMO_CLIENT_ID,
                    "client_secret": DEMO_CLIENT_SECRET,
                    "tenant_id": company.info.tenant_id,
                },
            )
        ).json()["access_token"]
        for _ in range(2):  # another process of the same application uses up the quota
            await http.get(
                sandbox.api_base_url + "supplier", headers={"Authorization": f"Bearer {token}"}
            )
    since = sandbox.state.log.last_seq
    async with client_for(sandbox, credentials(company)) as client:
        supplier = await client.get_supplier("70001")
    assert supplier.number == "70001"
    calls = [e for e in sandbox.state.log.entries(since=since) if e.route == "supplier.get"]
    assert [e.status for e in calls] == [429, 200]
    assert calls[0].retry_after is not None
    assert calls[1].at >= calls[0].at + calls[0].retry_after


async def test_server_errors_are_retried_then_reported(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    async with client_for(sandbox, credentials(company)) as client:
        await client.ping()
        sandbox.state.add_fault(FaultRule(path="/v1/supplier/*", status=503, times=1))
        sandbox.state.add_fault(FaultRule(path="/v1/supplier/*", status=500, times=1))
        assert (await client.get_supplier("50005")).number == "50005"
        sandbox.state.add_fault(FaultRule(path="/v1/purchaseorder/*", status=500))
        since = sandbox.state.log.last_seq
        with pytest.raises(VismaServerError, match="500"):
            await client.get_purchase_order("000001")
    refused = sandbox.state.log.entries(since=since, route="purchaseorder.get")
    assert len(refused) == FAST_RETRIES.max_attempts


# -- resources ---------------------------------------------------------------------------


async def test_single_gets_return_what_the_lists_return(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox, credentials(first_company(sandbox))) as client:
        order = (await read_all(client, VismaPurchaseOrder))[0]
        receipt = (await read_all(client, VismaPurchaseReceipt))[0]
        invoice = (await read_all(client, VismaSupplierInvoice))[0]
        supplier = (await read_all(client, VismaSupplier))[0]
        assert isinstance(order, VismaPurchaseOrder)
        assert isinstance(receipt, VismaPurchaseReceipt)
        assert isinstance(invoice, VismaSupplierInvoice)
        assert isinstance(supplier, VismaSupplier)
        singles = [
            await client.get_supplier(supplier.number),
            await client.get_purchase_order(order.order_nbr),
            await client.get_purchase_receipt(receipt.receipt_nbr),
            await client.get_supplier_invoice(invoice.document_type, invoice.reference_number),
        ]
    for listed, single in zip((supplier, order, receipt, invoice), singles, strict=True):
        assert single.record_id == listed.record_id
        assert single.time_stamp == listed.time_stamp
        assert single.last_modified_date_time == listed.last_modified_date_time


async def test_the_demo_data_hangs_together(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox, credentials(first_company(sandbox))) as client:
        suppliers = {r.record_id: r for r in await read_all(client, VismaSupplier)}
        orders = {r.record_id: r for r in await read_all(client, VismaPurchaseOrder)}
        receipts = {r.record_id: r for r in await read_all(client, VismaPurchaseReceipt)}
        invoices = await read_all(client, VismaSupplierInvoice)
    for record in [*orders.values(), *receipts.values(), *invoices]:
        assert record.supplier_number in suppliers
    po_lines = {(o.order_nbr, line.line_nbr) for o in orders.values() for line in o.lines}  # type: ignore[attr-defined]
    for receipt in receipts.values():
        assert isinstance(receipt, VismaPurchaseReceipt)
        for line in receipt.lines:
            assert (line.po_order_nbr, line.po_order_line_nbr) in po_lines
    linked = 0
    for invoice in invoices:
        assert isinstance(invoice, VismaSupplierInvoice)
        assert invoice.attachments, "every demo invoice has its PDF"
        for invoice_line in invoice.invoice_lines:
            if invoice_line.po_number is not None:
                linked += 1
                assert (invoice_line.po_number, invoice_line.po_line_nr) in po_lines
    assert linked > 0
    supplier = next(iter(suppliers.values()))
    assert isinstance(supplier, VismaSupplier)
    assert supplier.vat_registration_id
    assert supplier.supplier_payment_method_details


async def test_an_attachment_downloads_as_the_invoices_pdf(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox, credentials(first_company(sandbox))) as client:
        invoice = (await read_all(client, VismaSupplierInvoice))[0]
        assert isinstance(invoice, VismaSupplierInvoice)
        content = await client.get_attachment(invoice.attachments[0].id)
    text = pypdf.PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert content.startswith(b"%PDF")
    assert invoice.supplier_reference
    assert invoice.supplier_reference in text


async def test_a_note_is_written_back_with_if_match(sandbox: RunningSandbox) -> None:
    company = first_company(sandbox)
    creds = credentials(company, scopes=(READ_SCOPE, UPDATE_SCOPE))
    async with client_for(sandbox, creds) as client:
        before = await client.get_supplier_invoice("Invoice", "000002")
        since = sandbox.state.log.last_seq
        etag = await client.update_supplier_invoice_note("Invoice", "000002", "Approved in Basware")
        after = await client.get_supplier_invoice("Invoice", "000002")
    assert after.note == "Approved in Basware"
    assert after.amount == before.amount
    assert after.status == before.status
    assert etag.strip('"') == after.time_stamp != before.time_stamp
    put = sandbox.state.log.entries(since=since, route="supplierinvoice.put")
    assert [(e.status, e.headers.get("if-match")) for e in put] == [(204, f'"{before.time_stamp}"')]


async def test_webhook_feedback_reaches_the_erp(sandbox: RunningSandbox) -> None:
    creds = credentials(first_company(sandbox), scopes=(READ_SCOPE, CREATE_SCOPE))
    async with client_for(sandbox, creds) as client:
        await client.post_webhook_feedback(
            "3f5e0c1a-0000-4000-8000-000000000001", is_success=True, description="Polled"
        )
    feedback = sandbox.state.webhooks.feedback[-1]
    assert feedback.notificationId == "3f5e0c1a-0000-4000-8000-000000000001"
    assert feedback.isSuccess
    assert feedback.source == "ml-connector"
