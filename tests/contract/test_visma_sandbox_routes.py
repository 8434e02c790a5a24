"""The Visma sandbox's remaining routes and switches over real HTTP: reference data, writes
with ETags, background jobs, the synchronous timeout, the repeat rules, per-route page sizes,
random faults, bulk touch, clock skew and https-only webhooks (docs/visma-net.md §12, points 4,
5, 10, 11, 13, 14, 15)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlconnector.asgi import serve_asgi
from mlconnector.contracts import utcnow
from visma_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ApiClient,
    FaultRule,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    run_visma_sandbox,
)
from visma_sandbox.webhooks import Subscription
from webhook_gateway.settings import VISMA_SCHEME
from webhook_gateway.verify import verify_signature

SEED = SeedOptions(companies=2, suppliers=12, purchase_orders=6, invoices=6, seed=5)
SECRET = SecretStr("background-secret")


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_visma_sandbox(SandboxConfig(seed=SEED)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(autouse=True)
def default_settings(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    state = sandbox.state
    state.settings = SandboxSettings()
    state.faults.clear()
    state.repeat_guard.clear()
    state.webhooks.subscriptions.clear()


def tenant(sandbox: RunningSandbox, number: int = 1) -> str:
    return sandbox.state.company(str(1_000_000 + number)).info.tenant_id


async def bearer(
    http: httpx.AsyncClient, sandbox: RunningSandbox, number: int = 1, scope: str = ""
) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "tenant_id": tenant(sandbox, number),
    }
    if scope:
        form["scope"] = scope
    answer = await http.post(sandbox.token_url, data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def assert_ipp(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["ExceptionType"] == "IPPException"
    assert body["ExceptionMessage"].startswith("VismaId: ")
    return body


# -- Visma Connect refusals not covered elsewhere (point 1) -------------------------------


async def test_an_unapproved_tenant_and_bad_basic_credentials_are_refused(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.clients["narrow-app"] = ApiClient(
        client_id="narrow-app",
        client_secret=SecretStr("narrow-secret"),
        approved_tenants=(tenant(sandbox, 2),),
    )
    form = {"grant_type": "client_credentials", "tenant_id": tenant(sandbox, 1)}
    unapproved = await http.post(
        sandbox.token_url, data=form, auth=httpx.BasicAuth("narrow-app", "narrow-secret")
    )
    assert (unapproved.status_code, unapproved.json()["error"]) == (400, "invalid_grant")
    wrong = await http.post(sandbox.token_url, data=form, auth=httpx.BasicAuth("narrow-app", "x"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    approved = await http.post(
        sandbox.token_url,
        data={**form, "tenant_id": tenant(sandbox, 2)},
        auth=httpx.BasicAuth("narrow-app", "narrow-secret"),
    )
    assert approved.status_code == 200
    assert "refresh_token" not in approved.json()


# -- reference data (point 4) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key_field", "key", "count"),
    [
        ("account", "accountCd", "4000", 13),
        ("subaccount", "subaccountNumber", "0-00", 5),
        ("branch", "number", "1", 1),
        ("currency", "id", "NOK", 5),
        ("vatCategory", "vatCategoryId", "3", 2),
    ],
)
async def test_reference_data_lists_and_gets(
    sandbox: RunningSandbox,
    http: httpx.AsyncClient,
    path: str,
    key_field: str,
    key: str,
    count: int,
) -> None:
    auth = await bearer(http, sandbox)
    listed = await http.get(f"{sandbox.api_base_url}{path}", headers=auth)
    rows = listed.json()
    assert isinstance(rows, list)
    assert len(rows) == count
    assert [r[key_field] for r in rows] == sorted(r[key_field] for r in rows)
    assert {json.dumps(r["metadata"]) for r in rows} == {
        json.dumps({"totalCount": count, "maxPageSize": 1000})
    }
    assert "etag" not in listed.headers
    single = await http.get(
        f"{sandbox.base_url}/API/controller/api/v1/{path.upper()}/{key}", headers=auth
    )
    assert single.status_code == 200
    assert single.json()[key_field] == key
    assert single.headers["etag"].strip('"') == single.json()["timeStamp"]
    assert "metadata" not in single.json()
    assert_ipp(await http.get(f"{sandbox.api_base_url}{path}/nope", headers=auth), 404)


async def test_reference_data_matches_what_the_records_name(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox, 2)
    base = sandbox.api_base_url
    account = (await http.get(base + "account/4000", headers=auth)).json()
    assert (account["type"], account["description"]) == ("Expense", "Purchases")
    assert account["accountClassDescription"] == "Cost of goods"  # a single GET shows all
    listed = "account?greaterThanValue=3999&pageSize=1"
    plain = (await http.get(base + listed, headers=auth)).json()
    described = (
        await http.get(base + listed + "&includeAccountClassDescription=true", headers=auth)
    ).json()
    assert [a["accountCd"] for a in plain] == ["4000"]
    assert "accountClassDescription" not in plain[0]
    assert described[0]["accountClassDescription"] == "Cost of goods"
    currencies = (await http.get(base + "currency", headers=auth)).json()
    assert [c["id"] for c in currencies if c["isBaseCurrency"]] == ["SEK"]  # company 2 is Swedish
    vat = (await http.get(base + "vatcategory/3", headers=auth)).json()
    assert vat["vatCategoryLines"][0]["vatRates"][0]["vatRate"] == 25.0
    liabilities = (
        await http.get(
            base + "ACCOUNT?Active=true&greaterThanValue=2000&type=Liability", headers=auth
        )
    ).json()
    assert [a["accountCd"] for a in liabilities] == ["2400", "2700", "2710"]
    branches = (await http.get(base + "branch", headers=auth)).json()
    expanded = (await http.get(base + "branch?expandAddress=true", headers=auth)).json()
    assert "mainAddress" not in branches[0]
    assert expanded[0]["mainAddress"]["city"] == "Stockholm"
    assert (await http.get(base + "branch/1", headers=auth)).json()["mainAddress"]
    future = await http.get(
        base + "currency?lastModifiedDateTime=2999-01-01&lastModifiedDateTimeCondition=>",
        headers=auth,
    )
    assert future.json() == []


async def test_dimensions_segments_and_values(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    base = sandbox.api_base_url
    assert (await http.get(base + "dimension", headers=auth)).json() == ["SUBACCOUNT"]
    dimension = await http.get(base + "Dimension/SUBACCOUNT", headers=auth)
    body = dimension.json()
    assert (body["id"], body["length"]) == ("SUBACCOUNT", 3)
    assert [s["description"] for s in body["segments"]] == ["Department", "Project"]
    assert body["segments"][0]["timeStamp"] == dimension.headers["etag"].strip('"')
    assert {v["valueId"] for v in body["segments"][1]["segmentValues"]} == {"00", "10"}
    bare = (
        await http.get(base + "dimension/SUBACCOUNT?expandSegmentsValues=false", headers=auth)
    ).json()
    assert all("segmentValues" not in s for s in bare["segments"])
    segment = await http.get(base + "dimension/SUBACCOUNT/2", headers=auth)
    assert (segment.json()["publicId"], segment.json()["length"]) == ("PROJ", 2)
    assert "lastModified" in segment.json()
    assert segment.headers["etag"]
    value = (await http.get(base + "dimension/SUBACCOUNT/2/10", headers=auth)).json()
    by_public = (await http.get(base + "dimension/SUBACCOUNT/2/publicid/10", headers=auth)).json()
    assert value == by_public
    assert (value["description"], value["segmentId"]) == ("Warehouse", 2)
    subaccount = (await http.get(base + "subaccount/2-10", headers=auth)).json()
    assert [s["segmentValue"] for s in subaccount["segments"]] == ["2", "10"]
    assert_ipp(await http.get(base + "dimension/SUBACCOUNT/9", headers=auth), 404)
    assert_ipp(await http.get(base + "dimension/SUBACCOUNT/2/99", headers=auth), 404)


async def test_invoice_lists_expand_notes_and_approval_on_request(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    company = sandbox.state.company("1000002")
    company.update(
        "supplierinvoice",
        "Invoice/000001",
        {"note": "Checked", "approvalDetails": {"approvalStatus": "SentToApproval"}},
    )
    auth = await bearer(http, sandbox, 2)
    listed = sandbox.api_base_url + "supplierInvoice?greaterThanValue=000000&pageSize=1"
    default = (await http.get(listed, headers=auth)).json()[0]
    expanded = (
        await http.get(listed + "&expandNote=false&expandApproval=true", headers=auth)
    ).json()[0]
    assert default["referenceNumber"] == expanded["referenceNumber"] == "000001"
    assert (default["note"], "approvalDetails" in default) == ("Checked", False)
    assert "note" not in expanded
    assert expanded["approvalDetails"] == {"approvalStatus": "SentToApproval"}


async def test_forged_tokens_and_missing_scopes_are_refused_on_the_new_routes(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    forged = await http.get(
        sandbox.api_base_url + "account", headers={"Authorization": "Bearer eyJhbGciOi.x.y"}
    )
    assert forged.status_code == 401
    assert set(forged.json()) == {"Message"}
    read_only = await bearer(http, sandbox, scope="vismanet_erp_service_api:read")
    post = await http.post(
        sandbox.api_base_url + "supplier", json={"name": {"value": "X"}}, headers=read_only
    )
    assert post.status_code == 403
    assert "create" in post.json()["Message"]
    assert (await http.get(sandbox.api_base_url + "currency", headers=read_only)).status_code == 200


async def rows(
    http: httpx.AsyncClient, url: str, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """A list's rows without their metadata (its totalCount differs between filters)."""
    answer = await http.get(url, params=params, headers=auth)
    assert answer.status_code == 200, answer.text
    return [{k: v for k, v in r.items() if k != "metadata"} for r in answer.json()]


def field_of(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize(
    ("route", "parameter", "path"),
    [
        ("supplier", "status", "status"),
        ("supplier", "name", "name"),
        ("supplier", "vatRegistrationId", "vatRegistrationId"),
        ("supplier", "corporateId", "corporateId"),
        ("purchaseorder", "orderStatus", "status"),
        ("purchaseorder", "orderType", "orderType"),
        ("purchaseorder", "supplier", "supplier.number"),
        ("purchaseorder", "branch", "branch.number"),
        ("supplierInvoice", "supplier", "supplier.number"),
        ("supplierInvoice", "documentType", "documentType"),
        ("supplierInvoice", "status", "status"),
        ("supplierInvoice", "financialPeriod", "financialPeriod"),
        ("supplierInvoice", "branch", "branchNumber.number"),
    ],
)
async def test_every_documented_filter_matches_a_scan_of_the_full_list(
    sandbox: RunningSandbox, http: httpx.AsyncClient, route: str, parameter: str, path: str
) -> None:
    auth = await bearer(http, sandbox)
    everything = await rows(http, f"{sandbox.api_base_url}{route}", auth)
    wanted = field_of(everything[1], path)
    filtered = await rows(http, f"{sandbox.api_base_url}{route}", auth, **{parameter: wanted})
    expected = [r for r in everything if str(field_of(r, path)).lower() == str(wanted).lower()]
    assert filtered == expected
    assert expected


@pytest.mark.parametrize(
    ("route", "parameter", "path"),
    [
        ("supplierInvoice", "dueDate", "dueDate"),
        ("supplierInvoice", "docDate", "date"),
        ("purchaseorder", "orderDate", "date"),
        ("purchaseorder", "deliveryDate", "promisedOn"),
    ],
)
@pytest.mark.parametrize("condition", [">", ">=", "<", "<="])
async def test_date_filters_compare_like_their_condition(
    sandbox: RunningSandbox,
    http: httpx.AsyncClient,
    route: str,
    parameter: str,
    path: str,
    condition: str,
) -> None:
    auth = await bearer(http, sandbox)
    everything = await rows(http, f"{sandbox.api_base_url}{route}", auth)
    pivot = sorted(r[path] for r in everything)[len(everything) // 2]
    filter_params = {parameter: pivot.replace("T", " "), f"{parameter}Condition": condition}
    filtered = await rows(http, f"{sandbox.api_base_url}{route}", auth, **filter_params)
    compare = {
        ">": str.__gt__,
        ">=": str.__ge__,
        "<": str.__lt__,
        "<=": str.__le__,
    }[condition]
    assert filtered == [r for r in everything if compare(r[path], pivot)]


async def test_balance_created_and_released_filters(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplierInvoice"
    everything = await rows(http, url, auth)
    pivot = sorted(r["balance"] for r in everything)[len(everything) // 2]
    above = await rows(http, url, auth, balance=pivot, balanceCondition=">")
    assert above == [r for r in everything if r["balance"] > pivot]
    created = min(r["createdDateTime"] for r in everything)
    not_before = await rows(http, url, auth, createdDateTime=created, createdDateTimeCondition=">=")
    assert not_before == everything
    released = await rows(http, url, auth, released="true")
    unreleased = await rows(http, url, auth, released="false")
    assert {r["status"] for r in released} <= {"Open", "Closed", "Reserved"}
    assert not {r["status"] for r in unreleased} & {"Open", "Closed", "Reserved"}
    assert len(released) + len(unreleased) == len(everything)
    refused = await http.get(url + "?released=maybe", headers=auth)
    assert_ipp(refused, 400)


# -- writes (point 10) ---------------------------------------------------------------------


async def test_post_answers_201_with_location_and_etag(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox, 2)
    body = {
        "name": {"value": "Nytt Leverandør AS"},
        "status": {"value": "Active"},
        "mainAddress": {"value": {"city": {"value": "Bergen"}, "postalCode": {"value": "5003"}}},
    }
    created = await http.post(sandbox.api_base_url + "supplier", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.content == b""
    number = created.headers["location"].rsplit("/", 1)[1]
    assert number == "50013"  # one past the 12 seeded suppliers
    fetched = await http.get(created.headers["location"], headers=auth)
    assert fetched.json()["name"] == "Nytt Leverandør AS"
    assert fetched.json()["mainAddress"]["city"] == "Bergen"
    assert fetched.headers["etag"] == created.headers["etag"]
    named = await http.post(
        sandbox.api_base_url + "supplier",
        json={"number": {"value": "61000"}, "name": {"value": "Nummerert AS"}},
        headers=auth,
    )
    assert named.headers["location"].endswith("/v1/supplier/61000")
    duplicate = await http.post(
        sandbox.api_base_url + "supplier",
        json={"number": {"value": "61000"}, "name": {"value": "Igjen AS"}},
        headers=auth,
    )
    assert assert_ipp(duplicate, 409)["ExceptionFaultCode"] == "409"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Uten innpakning AS"},  # a bare scalar: {"value": ...} is required
        {"name": {"value": "X"}, "status": {"value": "Sleeping"}},  # not an enum value
        {"name": {"value": "X"}, "paymentTerms": {"value": "30"}},  # it is creditTerms
        {},  # no name
    ],
)
async def test_a_post_the_api_would_refuse_is_a_400(
    sandbox: RunningSandbox, http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    auth = await bearer(http, sandbox, 2)
    assert_ipp(await http.post(sandbox.api_base_url + "supplier", json=body, headers=auth), 400)


async def test_put_with_if_match_answers_204_and_a_new_etag_or_412(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplier/50002"
    etag = (await http.get(url, headers=auth)).headers["etag"]
    change = {"status": {"value": "OnHold"}}
    written = await http.put(url, json=change, headers={**auth, "If-Match": etag})
    assert written.status_code == 204
    after = await http.get(url, headers=auth)
    assert after.json()["status"] == "OnHold"
    assert after.headers["etag"] == written.headers["etag"] != etag
    assert after.json()["timeStamp"] == written.headers["etag"].strip('"')
    assert_ipp(await http.put(url, json=change, headers={**auth, "If-Match": etag}), 412)
    unconditional = await http.put(url, json={"status": {"value": "Active"}}, headers=auth)
    assert unconditional.status_code == 204
    renumber = {"number": {"value": "59999"}}
    assert_ipp(await http.put(url, json=renumber, headers=auth), 400)
    assert_ipp(
        await http.put(sandbox.api_base_url + "supplier/77777", json=change, headers=auth), 404
    )


# -- background mode (point 14) ------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        while len(self.received) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=5)
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def receive(request: Request) -> Response:
        holder[0].received.append((await request.body(), dict(request.headers)))
        holder[0].arrived.set()
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])
    async with serve_asgi(app) as base_url:
        holder.append(Receiver(url=f"{base_url}/hooks"))
        yield holder[0]


async def finished(http: httpx.AsyncClient, url: str, auth: dict[str, str]) -> dict[str, Any]:
    for _ in range(100):
        state: dict[str, Any] = (await http.get(url, headers=auth)).json()
        if state["status"] == "Finished":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"background job {url} did not finish")


async def test_a_background_call_answers_202_then_exposes_state_and_content(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplier?pageSize=5"
    synchronous = (await http.get(url, headers=auth)).json()
    sandbox.state.add_fault(FaultRule(path="/v1/supplier", delay_ms=400, times=1))
    accepted = await http.get(url, headers={**auth, "erp-api-background": "none"})
    assert accepted.status_code == 202
    job = accepted.json()
    assert set(job) == {"id", "stateLocation"}
    assert job["stateLocation"] == f"{sandbox.api_base_url}background/{job['id']}"
    running = (await http.get(job["stateLocation"], headers=auth)).json()
    assert running["status"] == "Processing"
    assert_ipp(await http.get(job["stateLocation"] + "/content", headers=auth), 404)
    state = await finished(http, job["stateLocation"], auth)
    assert state["statusCode"] == 200
    assert state["originalUri"] == url
    assert state["hasResponseContent"] is True
    assert state["webhookAddress"] is None
    assert state["receivedUtc"] <= state["startedUtc"] <= state["finishedUtc"]
    content = await http.get(state["contentLocation"], headers=auth)
    assert content.json() == synchronous
    other_company = await bearer(http, sandbox, 2)
    assert_ipp(await http.get(job["stateLocation"], headers=other_company), 404)


async def test_a_subscription_job_notifies_with_the_name_value_headers(
    sandbox: RunningSandbox, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    company = sandbox.state.company("1000001")
    sandbox.state.webhooks.subscribe(
        Subscription(
            company_id=company.company_id,
            url=receiver.url,
            secrets=[SECRET],
            events=["Background API Operation.Response Ready"],
        )
    )
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplierInvoice/Invoice/000002"
    etag = (await http.get(url, headers=auth)).headers["etag"]
    accepted = await http.put(
        url,
        json={"note": {"value": "Approved in Basware"}},
        headers={
            **auth,
            "If-Match": etag,
            "erp-api-background": "subscription:x-correlation=run-7,x-batch=3",
        },
    )
    assert accepted.status_code == 202
    [(body, headers)] = await receiver.wait_for(1)
    notification = json.loads(body)
    assert notification["entity"] == "Background API Operation"
    assert notification["event"] == "Response Ready"
    assert notification["id"] == accepted.json()["id"]
    assert notification["statusCode"] == 204
    assert notification["stateLocation"] == accepted.json()["stateLocation"]
    assert (headers["x-correlation"], headers["x-batch"]) == ("run-7", "3")
    assert headers["x-vwd-event-id"] == "Background API Operation.Response Ready"
    verify_signature(headers, body, [SECRET.get_secret_value().encode()], VISMA_SCHEME, utcnow())
    state = (await http.get(accepted.json()["stateLocation"], headers=auth)).json()
    assert (state["statusCode"], state["webhookAddress"]) == (204, "subscription")
    assert state["hasRequestContent"] is True
    assert state["responseHeaders"]["etag"] != etag
    assert (await http.get(url, headers=auth)).json()["note"] == "Approved in Basware"
    stale = await http.put(
        url,
        json={"note": {"value": "Too late"}},
        headers={**auth, "If-Match": etag, "erp-api-background": "none"},
    )
    failed = await finished(http, stale.json()["stateLocation"], auth)
    assert failed["statusCode"] == 412
    assert "ETag mismatch" in failed["errorMessage"]


@pytest.mark.parametrize("value", ["https://example.com/hook", "sometimes", "subscription:=x"])
async def test_retired_and_malformed_background_values_are_refused(
    sandbox: RunningSandbox, http: httpx.AsyncClient, value: str
) -> None:
    auth = await bearer(http, sandbox)
    refused = await http.get(
        sandbox.api_base_url + "supplier", headers={**auth, "erp-api-background": value}
    )
    assert_ipp(refused, 400)


# -- faults and switches (points 5, 11, 13, 15) --------------------------------------------


async def test_a_synchronous_call_times_out_and_the_background_one_does_not(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.sync_timeout_seconds = 0.1
    sandbox.state.add_fault(FaultRule(path="/v1/currency*", delay_ms=300))
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "currency"
    timed_out = await http.get(url, headers=auth)
    assert timed_out.status_code == 504
    assert timed_out.json()["statusCode"] == 504
    assert "erp-api-background" in timed_out.json()["message"]
    assert timed_out.headers["x-ratelimit-policy"] == "4-fixed-window"
    accepted = await http.get(url, headers={**auth, "erp-api-background": "none"})
    state = await finished(http, accepted.json()["stateLocation"], auth)
    assert state["statusCode"] == 200


async def test_the_same_request_rule_stops_a_naive_retry_loop(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.same_request_limit = 3
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplier?pageSize=2&pageNumber=1"
    answers = [await http.get(url, headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["message"].startswith("Same request made too many times.")
    assert refused.headers["x-ratelimit-policy"] == "4-fixed-window"
    other_page = await http.get(url.replace("pageNumber=1", "pageNumber=2"), headers=auth)
    assert other_page.status_code == 200
    other_company = await bearer(http, sandbox, 2)
    assert (await http.get(url, headers=other_company)).status_code == 200


async def test_the_same_failing_request_rule_refuses_a_third_try(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.failing_request_limit = 2
    auth = await bearer(http, sandbox)
    missing = sandbox.api_base_url + "supplier/99999"
    statuses = [(await http.get(missing, headers=auth)).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    assert (
        await http.get(sandbox.api_base_url + "supplier/50001", headers=auth)
    ).status_code == 200


async def test_max_page_size_is_set_per_route(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.max_page_sizes = {"supplierinvoice": 4}
    auth = await bearer(http, sandbox)
    invoices = (
        await http.get(sandbox.api_base_url + "supplierInvoice?pageSize=100", headers=auth)
    ).json()
    suppliers = (
        await http.get(sandbox.api_base_url + "supplier?pageSize=100", headers=auth)
    ).json()
    assert len(invoices) == 4
    assert invoices[0]["metadata"] == {"totalCount": 6, "maxPageSize": 4}
    assert len(suppliers) >= 12
    assert suppliers[0]["metadata"]["maxPageSize"] == 1000


async def test_random_faults_hit_some_requests_of_one_route_only(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    added = await http.post(
        sandbox.backdoor_url + "/faults",
        json={"path": "/v1/currency", "status": 500, "probability": 0.5},
    )
    assert added.status_code == 201
    auth = await bearer(http, sandbox)
    statuses = [
        (await http.get(sandbox.api_base_url + "currency", headers=auth)).status_code
        for _ in range(24)
    ]
    assert set(statuses) == {200, 500}
    failure = await http.get(sandbox.api_base_url + "currency", headers=auth)
    while failure.status_code != 500:
        failure = await http.get(sandbox.api_base_url + "currency", headers=auth)
    assert_ipp(failure, 500)
    assert (await http.get(sandbox.api_base_url + "branch", headers=auth)).status_code == 200


async def test_a_bulk_touch_stamps_every_row_and_skew_moves_only_what_is_shown(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    touched = await http.post(
        sandbox.backdoor_url + "/companies/1000002/touch/purchaseorder",
        json={"keys": None, "lastModifiedDateTime": "2026-06-01T08:00:00"},
    )
    assert touched.json() == {"lastModifiedDateTime": "2026-06-01T08:00:00", "touched": 6}
    sandbox.state.settings.clock_skew_seconds = 7200
    auth = await bearer(http, sandbox, 2)
    url = (
        sandbox.api_base_url
        + "purchaseorder?lastModifiedDateTime=2026-06-01 08:00:00&lastModifiedDateTimeCondition=<="
    )
    orders = (await http.get(url, headers=auth)).json()
    assert len(orders) == 6
    assert {o["lastModifiedDateTime"] for o in orders} == {"2026-06-01T10:00:00"}


async def test_webhook_urls_must_be_https_outside_test_mode(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.allow_http_webhooks = False
    url = sandbox.backdoor_url + "/companies/1000001/subscriptions"
    plain = await http.post(url, json={"url": "http://example.com/hook", "secrets": ["s"]})
    secure = await http.post(url, json={"url": "https://example.com/hook", "secrets": ["s"]})
    assert plain.status_code == 400
    assert "https" in plain.json()["error"]
    assert secure.status_code == 201
