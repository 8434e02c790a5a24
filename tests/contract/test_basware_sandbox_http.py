"""The Basware sandbox over raw HTTP: the behaviour the client does not exercise, checked
against Basware's OpenAPI files where the files declare it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from basware_reference import BASWARE_OPENAPI_DIR
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from basware_sandbox import (
    ApiClient,
    BaswareSandbox,
    Region,
    SandboxConfig,
    WebhookDelivery,
    run_basware_sandbox,
)
from basware_sandbox import documents as sandbox_documents
from basware_sandbox.openapi_contract import OpenApiContract
from basware_sandbox.records import AccountingDocument as SandboxDocument
from mlconnector.asgi import serve_asgi

CLIENT = ApiClient(
    client_id="raw-eu",
    client_secret=SecretStr("raw-eu-secret"),
    region=Region.EU,
    bwcid="RAW",
    company_codes=["BW00"],
)
SCOPES = (
    "vendors.read vendors.write vendors.delete matchingOrderLines.read matchingOrderLines.write "
    "requestStatus.read accountingDocuments.read accountingDocuments.write subscriptions.write "
    "tasks.read accounts.read accounts.write"
)
CONTINUATION = "x-amz-meta-continuationtoken"


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[BaswareSandbox]:
    config = SandboxConfig(
        clients=[CLIENT],
        processing_delay_seconds=0.0,
        webhook_delivery=WebhookDelivery(attempts=2, backoff_seconds=0.0, timeout_seconds=2),
    )
    async with run_basware_sandbox(config) as running:
        yield running


@pytest.fixture(scope="module")
def contract() -> OpenApiContract:
    return OpenApiContract(BASWARE_OPENAPI_DIR)


@pytest.fixture
async def api(
    sandbox: BaswareSandbox, contract: OpenApiContract
) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client holding a bearer token for the EU host; every exchange is checked."""
    contract.clear()
    base = sandbox.base_url()
    async with httpx.AsyncClient(base_url=base, timeout=10) as plain:
        issued = await plain.post(
            "/v1/tokens",
            data={"grant_type": "client_credentials", "scope": SCOPES},
            auth=(CLIENT.client_id, CLIENT.client_secret.get_secret_value()),
        )
    token = issued.json()["access_token"]
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        event_hooks=contract.hooks(),
        timeout=10,
    ) as client:
        yield client


def vendors(prefix: str, count: int, company: str = "BW00") -> list[dict[str, object]]:
    return [
        {
            "externalCode": f"{prefix}-{i}",
            "vendorCode": f"{i}",
            "name": f"Vendor {i}",
            "companies": [{"companyCode": company}],
        }
        for i in range(count)
    ]


async def test_lists_page_with_the_continuation_token_and_404_when_empty(
    api: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    assert (await api.get("/v1/vendors")).status_code == 404
    for start in (0, 150):
        chunk = vendors("PAGE", 250)[start : start + 150]
        assert (await api.post("/v1/vendors", json=chunk)).status_code == 200

    seen: list[str] = []
    headers: dict[str, str] = {}
    pages = 0
    while True:
        answer = await api.get("/v1/vendors", params={"pageSize": "100"}, headers=headers)
        assert answer.status_code == 200
        seen += [v["externalCode"] for v in answer.json()["vendorEntities"]]
        pages += 1
        if CONTINUATION not in answer.headers:
            break
        headers = {CONTINUATION: answer.headers[CONTINUATION]}

    assert pages == 3
    assert sorted(seen) == sorted(f"PAGE-{i}" for i in range(250))
    first = await api.get("/v1/vendors", params={"pageSize": "100"})
    other_query = await api.get(
        "/v1/vendors",
        params={"pageSize": "100", "companyCode": "BW00"},
        headers={CONTINUATION: first.headers[CONTINUATION]},
    )
    assert other_query.status_code == 400
    assert (await api.get("/v1/vendors", params={"pageSize": "101"})).status_code == 400
    assert (await api.get("/v1/matchingOrderLines")).status_code == 400
    # Basware's file declares no 400 on GET lists; the sandbox answers bad query parameters
    # with 400 PARAMETER_VALIDATION_ERROR as on POSTs (an assumption, see the README).
    assert len(contract.problems()) == 3
    assert all("status 400 is not declared" in p for p in contract.problems())


async def test_batch_and_size_limits_answer_400_with_basware_errors(
    api: httpx.AsyncClient, contract: OpenApiContract
) -> None:
    too_many = await api.post("/v1/vendors", json=vendors("MANY", 201))
    lines = [
        {
            "externalCode": f"L-{i}",
            "orderExternalCode": "PO",
            "lineNumber": str(i),
            "quantity": 1,
            "matchingMode": "Standard",
        }
        for i in range(101)
    ]
    too_many_lines = await api.post("/v1/matchingOrderLines", json=lines)
    huge = vendors("HUGE", 1)
    huge[0]["description"] = "x" * 250
    # Sent past the contract hooks: checking 30,000 records against the schema takes seconds.
    async with httpx.AsyncClient(base_url=api.base_url, headers=api.headers) as unchecked:
        oversized = await unchecked.post(
            "/v1/vendors",
            content=json.dumps(huge * 30_000).encode(),
            headers={"Content-Type": "application/json"},
        )

    for answer in (too_many, too_many_lines, oversized):
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "PARAMETER_VALIDATION_ERROR"
    assert "201" in too_many.json()["errors"][0]["message"]
    assert "6291456 bytes" in oversized.json()["errors"][0]["message"]
    assert contract.problems() == []


async def test_patch_keeps_what_is_null_and_delete_works_by_code_and_by_date(
    api: httpx.AsyncClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    originals = vendors("PATCH", 3)
    originals[0]["description"] = "Kept"
    await api.post("/v1/vendors", json=originals)
    change = {**originals[0], "name": "Renamed", "description": None}

    patched = await api.patch("/v1/vendors/PATCH-0", json=change)
    unknown = await api.patch("/v1/vendors/NOPE", json={**change, "externalCode": "NOPE"})
    mismatch = await api.patch("/v1/vendors/PATCH-0", json={**change, "externalCode": "OTHER"})
    partial = await api.patch("/v1/vendors/PATCH-0", json={"name": "Only a name"})

    assert patched.status_code == 200
    assert patched.headers["x-amzn-RequestId"]
    stored = (await api.get("/v1/vendors/PATCH-0")).json()
    assert (stored["name"], stored["description"]) == ("Renamed", "Kept")
    assert partial.status_code == 400
    assert unknown.status_code == 404
    assert (mismatch.status_code, mismatch.json()["errors"][0]["code"]) == (
        400,
        "EXTERNAL_CODE_MISMATCH",
    )

    by_code = await api.request("DELETE", "/v1/vendors", json={"externalCode": "PATCH-1"})
    assert by_code.status_code == 200
    assert (await api.get("/v1/vendors/PATCH-1")).status_code == 404
    everything = await api.request(
        "DELETE", "/v1/vendors", json={"lastUpdated": "0001-01-01T00:00:00Z"}
    )
    assert everything.status_code == 202
    task = await api.get(everything.json()["statusApiLink"])
    assert task.json()["taskStatus"] == "Completed"
    assert task.json()["recordCount"] >= 2
    assert (await api.get("/v1/vendors")).status_code == 404
    # Deleting is an API-layer cleanup: what P2P accepted stays.
    await sandbox.state.drain()
    assert sandbox.state.records(Region.EU, "RAW", "vendors", accepted=True)
    # Left: the deliberately partial PATCH body, and the delete-task link Basware's file omits.
    assert all(
        "PATCH /v1/vendors/PATCH-0 -> 400: request:" in p or "deleteTasks" in p
        for p in contract.problems()
    )
    assert [p for p in contract.problems() if ": response:" in p and "deleteTasks" not in p] == []


async def test_request_status_list_defaults_to_errors(
    api: httpx.AsyncClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    await api.post("/v1/vendors", json=vendors("OK", 1))
    await api.post("/v1/vendors", json=vendors("BADCO", 1, company="ZZ"))
    await sandbox.state.drain()

    errors_only = (await api.get("/v1/requestStatus")).json()["requestStatus"]
    by_type = (await api.get("/v1/requestStatus", params={"entityType": "Vendor"})).json()[
        "requestStatus"
    ]

    assert errors_only
    assert {r["requestStatus"] for r in errors_only} == {"Error"}
    assert {r["requestStatus"] for r in by_type} >= {"Error", "Success"}
    one = by_type[0]["requestId"]
    only_failures = await api.get(
        f"/v1/requestStatus/{one}", params={"ignoreSuccessfulItems": "true"}
    )
    assert all(
        i["status"] != "Success"
        for i in only_failures.json()["requestStatus"][0]["systems"][0]["items"]
    )
    assert contract.problems() == []


async def test_tasks_follow_notifications_to_completion(
    api: httpx.AsyncClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    answers = {"/ok": 200, "/broken": 500}

    async def hook(request: Request) -> Response:
        return Response(status_code=answers[request.url.path])

    receiver = Starlette(routes=[Route(path, hook, methods=["POST"]) for path in answers])
    tenant = sandbox.state.tenant_of(Region.EU, "RAW")
    async with serve_asgi(receiver) as url:
        subscribed = await api.post(
            "/v1/subscriptions",
            json=[
                {
                    "taskType": "AccountingDocuments",
                    "taskSubType": "WaitingForTransfer",
                    "subscriptionType": "Webhook",
                    "notificationWebhookURL": f"{url}/ok",
                    "webhookAuthenticationToken": "t",
                },
                {
                    "taskType": "RequestStatus",
                    "subscriptionType": "Webhook",
                    "notificationWebhookURL": f"{url}/ok",
                    "webhookAuthenticationToken": "t",
                },
            ],
        )
        assert subscribed.status_code == 200
        assert subscribed.json()[1]["taskSubType"] == "Error"  # RequestStatus's default
        answers["/ok"] = 500  # from now on every notification is refused
        await api.post("/v1/vendors", json=vendors("TASKCO", 1, company="ZZ"))
        await sandbox.state.drain()
        answers["/ok"] = 200
        invoice_id = "a" * 32
        sandbox_documents.inject(
            sandbox.state,
            tenant,
            SandboxDocument(
                invoice_id=invoice_id,
                company_code="BW00",
                supplier_code="1",
                currency_code="EUR",
                processing_status="WaitingForTransfer",
                last_updated=sandbox.state.clock.utcnow(),
            ),
        )
        await sandbox.state.drain()

        (new,) = (await api.get("/v1/tasks", params={"documentId": invoice_id})).json()[
            "taskStatus"
        ]
        assert (new["taskType"], new["taskStatus"]) == ("AccountingDocuments", "New")
        assert (
            await api.post(f"/v1/accountingDocuments/{invoice_id}/acknowledge")
        ).status_code == 200

    (done,) = (await api.get(f"/v1/tasks/{new['taskId']}")).json()["taskStatus"]
    assert done["taskStatus"] == "Completed"
    assert [h["action"] for h in done["taskHistory"]] == ["Created", "Notified", "Completed"]
    (failed,) = (await api.get("/v1/tasks", params={"taskType": "RequestStatus"})).json()[
        "taskStatus"
    ]
    assert failed["taskStatus"] == "Failed"
    assert [h["messages"] for h in failed["taskHistory"][1:]] == [["answered 500"]] * 2
    assert contract.problems() == []


async def test_host_header_selects_the_virtual_host(sandbox: BaswareSandbox) -> None:
    us_client = ApiClient(
        client_id="raw-us",
        client_secret=SecretStr("raw-us-secret"),
        region=Region.US,
        bwcid="RAW-US",
    )
    async with httpx.AsyncClient(base_url=sandbox.base_url(Region.EU), timeout=10) as plain:
        provisioned = {**us_client.model_dump(mode="json"), "client_secret": "raw-us-secret"}
        registered = await plain.post("/_sandbox/clients", json=provisioned)
        assert registered.status_code == 201
        form = {"grant_type": "client_credentials", "scope": "vendors.read"}
        auth = ("raw-us", "raw-us-secret")
        on_eu = await plain.post("/v1/tokens", data=form, auth=auth)
        as_us = await plain.post(
            "/v1/tokens", data=form, auth=auth, headers={"Host": "api.us.basware.com"}
        )
        discovery = await plain.get(
            "/.well-known/openid-configuration", headers={"Host": "api.us.basware.com"}
        )

    assert on_eu.status_code == 401
    assert as_us.status_code == 200
    assert discovery.json()["issuer"] == "https://api.us.basware.com"


async def test_back_door_drives_faults_latency_logs_and_reset(
    api: httpx.AsyncClient, sandbox: BaswareSandbox
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url(), timeout=10) as door:
        fault = await door.post(
            "/_sandbox/faults",
            json={
                "kind": "rate_limit",
                "region": "EU",
                "path_prefix": "/v1/vendors",
                "retry_after": "2",
                "remaining": 1,
            },
        )
        assert fault.status_code == 201
        limited = await api.get("/v1/vendors")
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
        assert (await door.get("/_sandbox/faults")).json() == []

        assert (
            await door.put("/_sandbox/latency", json={"ms": 40, "region": "EU"})
        ).status_code == 204
        await api.get("/v1/vendors/LATE")
        assert (
            await door.put("/_sandbox/latency", json={"ms": 0, "region": "EU"})
        ).status_code == 204
        log = (await door.get("/_sandbox/log")).json()
        slow = [e for e in log if e["path"] == "/v1/vendors/LATE"]
        assert slow[0]["duration_ms"] >= 40
        assert slow[0]["authorization"] is True
        assert all(e["auth_scheme"] in (None, "Bearer", "Basic") for e in log)
        text = json.dumps(log)
        assert "raw-eu-secret" not in text
        assert "eyJ" not in text  # no token ever lands in the log
        counters = (await door.get("/_sandbox/counters")).json()
        assert counters["GET /v1/vendors 429"] == 1
        assert counters["total"] == len(sandbox.state.request_log)

        assert (await door.post("/_sandbox/reset")).status_code == 204
        assert sandbox.state.request_log == type(sandbox.state.request_log)()
        assert sandbox.state.records(Region.EU, "RAW", "vendors") == []


async def test_basic_credentials_work_on_p2p_routes(sandbox: BaswareSandbox) -> None:
    auth = (CLIENT.client_id, CLIENT.client_secret.get_secret_value())
    async with httpx.AsyncClient(base_url=sandbox.base_url(), timeout=10) as plain:
        with_basic = await plain.post("/v1/vendors", json=vendors("BASIC", 1), auth=auth)
        wrong = await plain.get("/v1/vendors", auth=(CLIENT.client_id, "wrong"))
        missing = await plain.get("/v1/vendors")
    assert with_basic.status_code == 200
    assert (wrong.status_code, wrong.content) == (401, b"")
    assert (missing.status_code, missing.content) == (401, b"")


async def test_master_data_lines_receipts_and_the_status_switch(
    api: httpx.AsyncClient, sandbox: BaswareSandbox, contract: OpenApiContract
) -> None:
    accounts = await api.post(
        "/v1/accounts",
        json=[
            {
                "externalCode": "ACC-1",
                "accountCode": "4000",
                "accountNames": [{"language": "en-US", "translation": "Purchases"}],
                "companies": [{"companyCode": "BW00", "inherit": True, "active": True}],
            }
        ],
    )
    line = {
        "externalCode": "LINE-1",
        "orderExternalCode": "PO-X",
        "lineNumber": "10",
        "quantity": 5,
        "matchingMode": "Standard",
        "goodsReceipts": [{"externalCode": "GR-1", "goodsReceiptNumber": "1", "quantity": 3}],
    }
    await api.post("/v1/matchingOrderLines", json=[line])
    reversal = {
        "externalCode": "GR-2",
        "goodsReceiptNumber": "2",
        "quantity": -1,
        "referenceGRExternalCode": "GR-1",
    }
    patched = await api.patch(
        "/v1/matchingOrderLines/LINE-1", json={**line, "goodsReceipts": [reversal]}
    )
    listed = await api.get("/v1/matchingOrderLines", params={"orderExternalCode": "PO-X"})

    assert accounts.status_code == 200
    assert (await api.get("/v1/accounts/ACC-1")).json()["accountCode"] == "4000"
    assert patched.status_code == 200
    (stored,) = listed.json()["matchingOrderLines"]
    assert [gr["externalCode"] for gr in stored["goodsReceipts"]] == ["GR-1", "GR-2"]
    sandbox.state.config.invoice_status_enabled = False
    try:
        switched_off = await api.get(
            "/v1/accountingDocuments/status",
            params={
                "companyCode": "BW00",
                "invoiceNumber": "X",
                "invoiceDate": "2024-05-20T00:00:00Z",
            },
        )
    finally:
        sandbox.state.config.invoice_status_enabled = True
    assert switched_off.status_code == 404
    assert contract.problems() == []


def test_token_lifetime_is_configurable_within_5_minutes_and_24_hours() -> None:
    assert SandboxConfig(token_lifetime_seconds=300).token_lifetime_seconds == 300
    assert SandboxConfig(token_lifetime_seconds=86_400).token_lifetime_seconds == 86_400
    for outside in (299, 86_401):
        with pytest.raises(ValidationError):
            SandboxConfig(token_lifetime_seconds=outside)
