"""The Visma sandbox's HTTP surface where the client does not reach: what the real API
refuses, its headers and shapes, Visma Connect's answers, and the back door."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest

from visma_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    run_visma_sandbox,
)

SEED = SeedOptions(companies=2, suppliers=25, purchase_orders=10, invoices=10, seed=3)
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-policy",
)


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
    sandbox.state.settings = SandboxSettings()
    sandbox.state.faults.clear()


def tenant(sandbox: RunningSandbox, number: int = 1) -> str:
    return sandbox.state.company(str(1_000_000 + number)).info.tenant_id


async def token(
    http: httpx.AsyncClient, sandbox: RunningSandbox, number: int = 1, **form: str
) -> dict[str, Any]:
    body = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "tenant_id": tenant(sandbox, number),
        **form,
    }
    response = await http.post(sandbox.token_url, data=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def bearer(
    http: httpx.AsyncClient, sandbox: RunningSandbox, number: int = 1
) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token(http, sandbox, number))['access_token']}"}


# -- Visma Connect -------------------------------------------------------------------------


async def test_a_token_is_a_jwt_for_one_tenant_without_refresh_token(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    answer = await token(http, sandbox, scope="vismanet_erp_service_api:read")
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600
    assert answer["scope"] == "vismanet_erp_service_api:read"
    assert "refresh_token" not in answer
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["tenant_id"] == tenant(sandbox)
    assert jwt.get_unverified_header(answer["access_token"])["alg"] == "RS256"


async def test_basic_client_authentication_and_the_configured_lifetime(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.token_lifetime_seconds = 120
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    response = await http.post(
        sandbox.token_url,
        data={"grant_type": "client_credentials", "tenant_id": tenant(sandbox)},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert response.json()["expires_in"] == 120


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "wrong"}, 400, "invalid_client"),
        ({"client_id": "someone-else"}, 400, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "vismanet_erp_interactive_api:read"}, 400, "invalid_scope"),
        ({"tenant_id": "11111111-2222-3333-4444-555555555555"}, 400, "invalid_tenant"),
    ],
)
async def test_visma_connect_refusals_use_identityserver_errors(
    sandbox: RunningSandbox, http: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    body = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "tenant_id": tenant(sandbox),
        **form,
    }
    response = await http.post(sandbox.token_url, data=body)
    assert (response.status_code, response.json()["error"]) == (status, error)


# -- authentication, headers and shapes ----------------------------------------------------


async def test_every_answer_carries_the_quota_headers_and_a_request_id(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    answers = [
        await http.get(sandbox.api_base_url + "supplier", headers=auth),
        await http.get(sandbox.api_base_url + "supplier/nope", headers=auth),
        await http.get(sandbox.api_base_url + "nothing-here", headers=auth),
        await http.get(sandbox.api_base_url + "supplier"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 404, 401]
    for answer in answers:
        assert all(answer.headers.get(name) for name in RATE_HEADERS)
        assert answer.headers["x-ratelimit-policy"] == "4-fixed-window"
        assert answer.headers["ipp-request-id"]
    remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers[:3]]
    assert remaining == sorted(remaining, reverse=True)
    assert answers[3].json() == {"Message": "Authorization has been denied for this request."}
    ipp = answers[1].json()
    assert ipp["ExceptionType"] == "IPPException"
    assert ipp["ExceptionMessage"].startswith("VismaId: ")
    assert ipp["ExceptionMessageID"].startswith(ipp["ExceptionFaultCode"] + "_")


async def test_an_expired_token_is_refused_with_a_message(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox, 2)
    assert sandbox.state.expire_tokens(tenant_id=tenant(sandbox, 2)) >= 1
    response = await http.get(sandbox.api_base_url + "supplier", headers=auth)
    assert response.status_code == 401
    assert "Message" in response.json()


async def test_paths_and_query_names_ignore_case_and_the_old_layout_works(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    urls = [
        sandbox.api_base_url + "supplier?pageSize=3&pageNumber=2",
        sandbox.base_url + "/V1/SUPPLIER?PAGESIZE=3&PageNumber=2",
        sandbox.base_url + "/API/controller/api/v1/Supplier?pagesize=3&pagenumber=2",
    ]
    bodies = [(await http.get(url, headers=auth)).json() for url in urls]
    assert bodies[0] == bodies[1] == bodies[2]
    assert [r["number"] for r in bodies[0]] == ["50004", "50005", "50006"]


async def test_lists_are_bare_arrays_with_metadata_on_every_element(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    page = await http.get(sandbox.api_base_url + "supplier?pageSize=10&pageNumber=1", headers=auth)
    rows = page.json()
    assert isinstance(rows, list)
    assert len(rows) == 10
    assert {json.dumps(r["metadata"]) for r in rows} == {'{"totalCount": 25, "maxPageSize": 1000}'}
    assert "etag" not in page.headers
    past_end = await http.get(
        sandbox.api_base_url + "supplier?pageSize=10&pageNumber=4", headers=auth
    )
    assert past_end.json() == []
    ignored = await http.get(
        sandbox.api_base_url + "supplier?pageSize=10&numberToRead=2&skipRecords=5&colour=red",
        headers=auth,
    )
    assert [r["number"] for r in ignored.json()] == [r["number"] for r in rows]


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01",
        "2026-01-01 10:00:00",
        "2026-01-01 10:00:00.5",
        "2026-01-01T10:00:00",
        "2026-01-01T10:00:00.123",
    ],
)
@pytest.mark.parametrize("condition", [">=", "%3E%3D"])
async def test_the_five_documented_filter_formats_are_accepted(
    sandbox: RunningSandbox, http: httpx.AsyncClient, value: str, condition: str
) -> None:
    auth = await bearer(http, sandbox)
    url = (
        f"{sandbox.api_base_url}supplier?lastModifiedDateTime={value}"
        f"&lastModifiedDateTimeCondition={condition}"
    )
    response = await http.get(url, headers=auth)
    assert response.status_code == 200
    assert len(response.json()) == 25


@pytest.mark.parametrize(
    "query",
    [
        "lastModifiedDateTime=2026-01-01T10:00:00Z&lastModifiedDateTimeCondition=%3E%3D",
        "lastModifiedDateTime=2026-01-01T10:00:00%2B02:00&lastModifiedDateTimeCondition=%3E%3D",
        "lastModifiedDateTime=2026-01-01T10:00:00.1234&lastModifiedDateTimeCondition=%3E%3D",
        "lastModifiedDateTime=2026-01-01T10:00:00",
        "lastModifiedDateTimeCondition=%3E",
        "lastModifiedDateTime=2026-01-01&lastModifiedDateTimeCondition=%3D%3D",
    ],
)
async def test_zones_odd_formats_and_half_filters_are_refused(
    sandbox: RunningSandbox, http: httpx.AsyncClient, query: str
) -> None:
    auth = await bearer(http, sandbox)
    response = await http.get(f"{sandbox.api_base_url}supplierInvoice?{query}", headers=auth)
    assert response.status_code == 400
    assert response.json()["ExceptionType"] == "IPPException"


async def test_filters_narrow_the_list(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    auth = await bearer(http, sandbox)
    company = sandbox.state.company("1000001")
    invoice = next(iter(company.table("supplierinvoice"))).record.model_dump(by_alias=True)
    supplier = invoice["supplier"]["number"]
    response = await http.get(
        f"{sandbox.api_base_url}supplierinvoice?supplier={supplier}&documentType=invoice",
        headers=auth,
    )
    rows = response.json()
    assert rows
    assert {r["supplier"]["number"] for r in rows} == {supplier}
    assert {r["documentType"] for r in rows} == {"Invoice"}
    after = await http.get(f"{sandbox.api_base_url}supplier?greaterThanValue=50020", headers=auth)
    assert [r["number"] for r in after.json()] == ["50021", "50022", "50023", "50024", "50025"]


async def test_invoice_expansions_add_and_omit_blocks(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    plain = (
        await http.get(sandbox.api_base_url + "supplierInvoice?pageSize=1", headers=auth)
    ).json()
    expanded = (
        await http.get(
            sandbox.api_base_url + "supplierInvoice?pageSize=1&expandAttachment=true", headers=auth
        )
    ).json()
    assert "attachments" not in plain[0]
    assert expanded[0]["attachments"][0]["name"].endswith(".pdf")


async def test_put_with_a_stale_etag_is_refused_and_a_fresh_one_wins(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox)
    url = sandbox.api_base_url + "supplierInvoice/Invoice/000003"
    current = await http.get(url, headers=auth)
    etag = current.headers["etag"]
    assert etag.strip('"') == current.json()["timeStamp"]
    body = {"note": {"value": "Disputed in Basware"}}
    written = await http.put(url, json=body, headers={**auth, "If-Match": etag})
    assert written.status_code == 204
    assert written.headers["etag"] != etag
    stale = await http.put(url, json=body, headers={**auth, "If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["ExceptionType"] == "IPPException"


async def test_legacy_mode_requires_ipp_company_id(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.state.settings.company_id_mode = "legacy"
    auth = await bearer(http, sandbox)
    missing = await http.get(sandbox.api_base_url + "supplier", headers=auth)
    named = await http.get(
        sandbox.api_base_url + "supplier", headers={**auth, "ipp-company-id": "1000001"}
    )
    assert missing.status_code == 400
    assert missing.json()["ExceptionFaultCode"] == "12002"
    assert named.status_code == 200


async def test_current_mode_binds_the_company_through_the_token(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    auth = await bearer(http, sandbox, 2)
    without_header = await http.get(sandbox.api_base_url + "supplier?pageSize=1", headers=auth)
    other = await http.get(
        sandbox.api_base_url + "supplier", headers={**auth, "ipp-company-id": "1000001"}
    )
    assert without_header.status_code == 200
    assert (other.status_code, other.json()["ExceptionFaultCode"]) == (401, "12002")


async def test_a_read_only_token_cannot_write(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    answer = await token(http, sandbox, scope="vismanet_erp_service_api:read")
    response = await http.put(
        sandbox.api_base_url + "supplierInvoice/Invoice/000001",
        json={"note": {"value": "x"}},
        headers={"Authorization": f"Bearer {answer['access_token']}"},
    )
    assert response.status_code == 403
    assert "update" in response.json()["Message"]


# -- the back door -------------------------------------------------------------------------


async def test_the_back_door_lists_companies_with_their_deterministic_ids(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    view = (await http.get(sandbox.backdoor_url + "/companies")).json()
    assert view["clients"] == [DEMO_CLIENT_ID]
    ids = [(c["companyId"], c["tenantId"]) for c in view["companies"]]
    assert ids[:2] == [
        ("1000001", "e5d8ab8d-e0ea-5e22-8ba6-92bc8b43aa63"),
        ("1000002", "86d2c36c-8361-575f-a27b-8d228c5f371d"),
    ]
    assert view["companies"][0]["recordCounts"]["supplier"] == 25


async def test_back_door_writes_are_stamped_by_the_server(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    records = sandbox.backdoor_url + "/companies/1000002/records/supplier"
    created = await http.post(records, json={"number": "60001", "name": "Bakdør AS"})
    assert created.status_code == 201
    stamp = created.json()["lastModifiedDateTime"]
    patched = await http.patch(records + "/60001", json={"status": "OnHold"})
    assert patched.json()["status"] == "OnHold"
    assert patched.json()["lastModifiedDateTime"] >= stamp
    refused = await http.post(records, json={"number": "60002", "name": "X", "paymentTerms": "30"})
    assert refused.status_code == 400
    touched = await http.post(
        sandbox.backdoor_url + "/companies/1000002/touch/supplier",
        json={
            "keys": ["50001", "50002", "60001"],
            "lastModifiedDateTime": "2026-05-01T08:00:00.123",
        },
    )
    assert touched.json() == {"lastModifiedDateTime": "2026-05-01T08:00:00.123", "touched": 3}
    auth = await bearer(http, sandbox, 2)
    shared = await http.get(
        sandbox.api_base_url
        + "supplier?lastModifiedDateTime=2026-05-01T08:00:00.123&lastModifiedDateTimeCondition=<=",
        headers=auth,
    )
    assert [r["number"] for r in shared.json()] == ["50001", "50002", "60001"]
    assert (await http.delete(records + "/60001")).status_code == 204
    assert (await http.get(records + "/60001")).status_code == 404


async def test_a_page_hook_changes_rows_between_two_page_requests(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    hook = {"entity": "supplier", "afterPage": 1, "delete": ["50001"]}
    assert (
        await http.post(sandbox.backdoor_url + "/companies/1000001/page-hooks", json=hook)
    ).status_code == 201
    auth = await bearer(http, sandbox)
    first = (
        await http.get(sandbox.api_base_url + "supplier?pageSize=5&pageNumber=1", headers=auth)
    ).json()
    second = (
        await http.get(sandbox.api_base_url + "supplier?pageSize=5&pageNumber=2", headers=auth)
    ).json()
    assert first[0]["number"] == "50001"
    assert first[0]["metadata"]["totalCount"] == 25
    assert second[0]["number"] == "50007"  # 50006 moved onto page 1 and was never served
    assert second[0]["metadata"]["totalCount"] == 24


async def test_faults_and_the_request_log_over_http(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    added = await http.post(
        sandbox.backdoor_url + "/faults",
        json={"path": "/v1/purchaseorder*", "status": 503, "times": 1},
    )
    assert added.status_code == 201
    auth = await bearer(http, sandbox)
    since = sandbox.state.log.last_seq
    first = await http.get(sandbox.api_base_url + "purchaseorder", headers=auth)
    second = await http.get(sandbox.api_base_url + "purchaseorder", headers=auth)
    assert (first.status_code, second.status_code) == (503, 200)
    log = (await http.get(sandbox.backdoor_url + f"/requests?since={since}")).json()
    assert [(e["route"], e["status"]) for e in log] == [
        ("purchaseorder.list", 503),
        ("purchaseorder.list", 200),
    ]
    assert all("authorization" not in {h.lower() for h in e["headers"]} for e in log)
    assert "Bearer" not in json.dumps(log)
    counters = (await http.get(sandbox.backdoor_url + "/counters")).json()
    assert counters["1000001 purchaseorder.list"] >= 2
