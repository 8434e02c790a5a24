"""The Basware sandbox's --state-dir: what it held before a restart (SIGTERM or SIGKILL), it
holds after it, the request log included; without the option it writes nothing."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sandbox_processes import sandbox_process

from basware_sandbox import DEMO_CLIENT, ApiClient, Region, SandboxConfig, run_basware_sandbox
from basware_sandbox.config import DEFAULT_HOSTS
from basware_sandbox.records import Subscription
from mlconnector.asgi import listening_ports

SCOPES = "vendors.read vendors.write matchingOrders.read matchingOrders.write requestStatus.read"
SERVING = "Back door:"
TENANT = f"/_sandbox/tenants/EU/{DEMO_CLIENT.bwcid}"


def vendor(code: str, name: str) -> dict[str, Any]:
    return {
        "externalCode": f"V-{code}",
        "vendorCode": code,
        "name": name,
        "companies": [{"companyCode": "BW00"}],
    }


def order(number: str, vendor_code: str) -> dict[str, Any]:
    return {
        "externalCode": f"PO-{number}",
        "orderNumber": number,
        "companyCode": "BW00",
        "supplierCode": vendor_code,
        "currencyCode": "EUR",
        "organizationElementCode": "BW00",
        "sourceSystem": "Visma.net",
    }


async def bearer(http: httpx.AsyncClient, client: ApiClient = DEMO_CLIENT) -> dict[str, str]:
    issued = await http.post(
        "/v1/tokens",
        data={"grant_type": "client_credentials", "scope": SCOPES},
        auth=(client.client_id, client.client_secret.get_secret_value()),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def post(http: httpx.AsyncClient, auth: dict[str, str], api: str, body: Any) -> str:
    """POSTs records; the request id, once the request is decided (not InProgress)."""
    answer = await http.post(f"/v1/{api}", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    request_id = str(answer.headers["x-amzn-RequestId"])
    async with asyncio.timeout(10):
        while await request_status(http, request_id) == "InProgress":
            await asyncio.sleep(0.02)
    return request_id


async def request_status(http: httpx.AsyncClient, request_id: str) -> str | None:
    statuses = (await http.get(f"{TENANT}/requests")).json()
    return next((r["requestStatus"] for r in statuses if r["requestId"] == request_id), None)


def origin(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def test_a_restart_after_sigterm_resumes_records_statuses_and_the_request_log(
    tmp_path: Path,
) -> None:
    port = listening_ports(len(DEFAULT_HOSTS))
    args = ["--port", str(port), "--state-dir", str(tmp_path)]
    state_file = tmp_path / "basware.json"
    async with sandbox_process("basware-sandbox", *args, serving=SERVING) as first:
        assert f"State saved to {state_file}" in first.output
        async with origin(port) as http:
            auth = await bearer(http)
            vendor_request = await post(http, auth, "vendors", [vendor("7", "Kept Vendor")])
            vendors_before = (await http.get("/v1/vendors", headers=auth)).json()
            statuses_before = (await http.get(f"{TENANT}/requests")).json()
            log_before = (await http.get("/_sandbox/log")).json()
        assert await first.stop(signal.SIGTERM) == 0

    async with sandbox_process("basware-sandbox", *args, serving=SERVING) as second:
        assert f"State resumed from {state_file}" in second.output
        async with origin(port) as http:
            old_token = await http.get("/v1/vendors", headers=auth)
            auth = await bearer(http)
            vendors_after = (await http.get("/v1/vendors", headers=auth)).json()
            statuses_after = (await http.get(f"{TENANT}/requests")).json()
            # The vendor P2P accepted before the restart is what this order needs.
            order_request = await post(http, auth, "matchingOrders", [order("4500", "7")])
            order_status = await request_status(http, order_request)
            log_after = (await http.get("/_sandbox/log")).json()
        await second.stop(signal.SIGTERM)

    assert vendors_after == vendors_before
    assert [v["name"] for v in vendors_after["vendorEntities"]] == ["Kept Vendor"]
    assert statuses_after == statuses_before
    assert [s["requestId"] for s in statuses_after] == [vendor_request]
    assert order_status == "Success"
    assert order_request != vendor_request
    assert log_after[: len(log_before)] == log_before
    assert [(e["method"], e["path"]) for e in log_before] == [
        ("POST", "/v1/tokens"),
        ("POST", "/v1/vendors"),
        ("GET", "/v1/vendors"),
    ]
    new_entries = log_after[len(log_before) :]
    assert [e["seq"] for e in new_entries] == list(range(4, 4 + len(new_entries)))
    # Tokens are not saved: the new signing key does not know the old one.
    assert old_token.status_code == 401


async def until_saved(path: Path, text: str) -> None:
    """Waits until the saved state holds `text`; the guard only stops a hang."""
    async with asyncio.timeout(10):
        while not path.exists() or text not in path.read_text(encoding="utf-8"):
            await asyncio.sleep(0.05)


async def test_a_write_is_saved_within_a_second_so_sigkill_keeps_it(tmp_path: Path) -> None:
    port = listening_ports(len(DEFAULT_HOSTS))
    args = ["--port", str(port), "--state-dir", str(tmp_path)]
    name = "Survives A Kill"
    async with sandbox_process("basware-sandbox", *args, serving=SERVING) as first:
        async with origin(port) as http:
            await post(http, await bearer(http), "vendors", [vendor("9", name)])
        await until_saved(tmp_path / "basware.json", name)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    async with sandbox_process("basware-sandbox", *args, serving=SERVING) as second:
        async with origin(port) as http:
            vendors = (await http.get("/v1/vendors", headers=await bearer(http))).json()
        await second.stop(signal.SIGTERM)
    assert [v["name"] for v in vendors["vendorEntities"]] == [name]


async def test_without_a_state_dir_nothing_is_written(tmp_path: Path) -> None:
    port = listening_ports(len(DEFAULT_HOSTS))
    async with sandbox_process(
        "basware-sandbox", "--port", str(port), serving=SERVING, cwd=tmp_path
    ) as sandbox:
        async with origin(port) as http:
            await post(http, await bearer(http), "vendors", [vendor("1", "Fleeting")])
        assert await sandbox.stop(signal.SIGTERM) == 0
    assert "State" not in sandbox.output
    assert list(tmp_path.iterdir()) == []


async def test_unfinished_requests_are_processed_after_the_restart(tmp_path: Path) -> None:
    """A request still InProgress when the sandbox stops gets its verdict after the restart;
    a client and a subscription token added through the back door are still there."""
    added = ApiClient(
        client_id="added-later",
        client_secret=SecretStr("added-later-secret"),
        bwcid=DEMO_CLIENT.bwcid,
        company_codes=["BW00"],
    )
    config = SandboxConfig(clients=[DEMO_CLIENT])
    async with run_basware_sandbox(config, state_dir=tmp_path) as first:
        first.state.register_client(added)
        first.state.tenant_of(Region.EU, DEMO_CLIENT.bwcid).subscriptions.append(
            Subscription(
                task_type="AccountingDocuments",
                task_sub_type="All",
                subscription_type="Webhook",
                url="https://receiver.example/basware",
                token=SecretStr("subscription-token"),
                last_updated=datetime(2026, 1, 2, tzinfo=UTC),
            )
        )
        first.state.pause_processing()
        async with httpx.AsyncClient(base_url=first.base_url(), timeout=10) as http:
            answer = await http.post(
                "/v1/vendors", json=[vendor("3", "Waiting")], headers=await bearer(http, added)
            )
        request_id = answer.headers["x-amzn-RequestId"]
        tenant = first.state.tenant_of(Region.EU, DEMO_CLIENT.bwcid)
        assert tenant.requests[request_id].status == "InProgress"

    async with run_basware_sandbox(config, state_dir=tmp_path) as second:
        await second.state.drain()
        restored = second.state.tenant_of(Region.EU, DEMO_CLIENT.bwcid)
        async with httpx.AsyncClient(base_url=second.base_url(), timeout=10) as http:
            await bearer(http, added)  # the added client's credentials still work

    assert second.resumed
    (subscription,) = restored.subscriptions
    assert subscription.token.get_secret_value() == "subscription-token"
    assert subscription.last_updated == datetime(2026, 1, 2, tzinfo=UTC)
    assert restored.requests[request_id].status == "Success"
    assert [v["name"] for v in second.state.records(Region.EU, "DEMO-TENANT", "vendors")] == [
        "Waiting"
    ]
    assert second.state.records(Region.EU, "DEMO-TENANT", "vendors", accepted=True)
