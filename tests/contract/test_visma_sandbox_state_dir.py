"""The Visma sandbox's --state-dir: what it held before a restart (SIGTERM or SIGKILL), it
holds after it; without the option it writes nothing."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sandbox_processes import sandbox_process

from mlconnector.asgi import listening_ports
from visma_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    CompanyInfo,
    EntityName,
    SandboxConfig,
    SeedOptions,
    run_visma_sandbox,
)
from visma_sandbox.webhooks import Subscription, WebhookFeedback

COMPANY = CompanyInfo.demo(1)
SMALL_SEED = ("--companies", "1", "--suppliers", "4", "--purchase-orders", "2", "--invoices", "2")
SERVING = "Client credentials"


def visma_args(port: int, *extra: str) -> list[str]:
    return ["--port", str(port), "--connect-port", str(port + 1), *SMALL_SEED, *extra]


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "tenant_id": COMPANY.tenant_id,
    }
    answer = await http.post("/connect/token", data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def create_supplier(http: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    """POSTs a supplier without a number; the number the sandbox gave it."""
    created = await http.post("/v1/supplier", json={"name": {"value": name}}, headers=auth)
    assert created.status_code == 201, created.text
    return str(created.headers["Location"].rsplit("/", 1)[1])


async def supplier(http: httpx.AsyncClient, number: str) -> dict[str, Any]:
    answer = await http.get(f"/_sandbox/companies/{COMPANY.company_id}/records/supplier/{number}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def request_log(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await http.get("/_sandbox/requests")).json()
    return entries


def origin(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def test_a_restart_after_sigterm_resumes_records_stamps_and_the_request_log(
    tmp_path: Path,
) -> None:
    port = listening_ports(2)
    args = visma_args(port, "--state-dir", str(tmp_path))
    state_file = tmp_path / "visma.json"
    async with sandbox_process("visma-sandbox", *args, serving=SERVING) as first:
        assert f"seeded, saved to {state_file}" in first.output
        async with origin(port) as http:
            auth = await bearer(http)
            number = await create_supplier(http, auth, "Lagret Leverandør AS")
            touched = await http.post(
                f"/_sandbox/companies/{COMPANY.company_id}/touch/supplier",
                json={"keys": [number], "lastModifiedDateTime": "2021-03-04T05:06:07.089"},
            )
            assert touched.status_code == 200
            before = await supplier(http, number)
            log_before = await request_log(http)
        assert await first.stop(signal.SIGTERM) == 0

    async with sandbox_process("visma-sandbox", *args, serving=SERVING) as second:
        assert f"resumed from {state_file}" in second.output
        async with origin(port) as http:
            after = await supplier(http, number)
            old_token = await http.get("/v1/supplier", headers=auth)
            new_number = await create_supplier(http, await bearer(http), "Ny Leverandør AS")
            log_after = await request_log(http)
        await second.stop(signal.SIGTERM)

    assert after == before
    assert after["lastModifiedDateTime"] == "2021-03-04T05:06:07.089"
    assert log_after[: len(log_before)] == log_before
    assert [e["route"] for e in log_before] == ["token", "supplier.post"]
    # Tokens are not saved: the old one is unknown to the new signing key.
    assert old_token.status_code == 401
    assert int(new_number) == int(number) + 1
    assert [e["seq"] for e in log_after[len(log_before) :]] == [3, 4, 5]


async def test_a_write_is_saved_within_a_second_so_sigkill_keeps_it(tmp_path: Path) -> None:
    port = listening_ports(2)
    args = visma_args(port, "--state-dir", str(tmp_path))
    state_file = tmp_path / "visma.json"
    name = "Overlever Kill AS"
    async with sandbox_process("visma-sandbox", *args, serving=SERVING) as first:
        async with origin(port) as http:
            number = await create_supplier(http, await bearer(http), name)
        await until_saved(state_file, name)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    async with sandbox_process("visma-sandbox", *args, serving=SERVING) as second:
        assert "resumed from" in second.output
        async with origin(port) as http:
            assert (await supplier(http, number))["name"] == name
        await second.stop(signal.SIGTERM)


async def until_saved(path: Path, text: str) -> None:
    """Waits until the saved state holds `text`; the guard only stops a hang."""
    async with asyncio.timeout(10):
        while not path.exists() or text not in path.read_text(encoding="utf-8"):
            await asyncio.sleep(0.05)


async def test_without_a_state_dir_nothing_is_written(tmp_path: Path) -> None:
    port = listening_ports(2)
    async with sandbox_process(
        "visma-sandbox", *visma_args(port), serving=SERVING, cwd=tmp_path
    ) as sandbox:
        async with origin(port) as http:
            await create_supplier(http, await bearer(http), "Flyktig AS")
        assert await sandbox.stop(signal.SIGTERM) == 0
    assert "State" not in sandbox.output
    assert list(tmp_path.iterdir()) == []


async def test_in_process_state_dir_keeps_subscriptions_notifications_and_counters(
    tmp_path: Path,
) -> None:
    config = SandboxConfig(seed=SeedOptions(companies=1, suppliers=3, purchase_orders=1))
    async with run_visma_sandbox(config, state_dir=tmp_path) as first:
        assert (first.state_file, first.resumed) == (tmp_path / "visma.json", False)
        state = first.state
        subscription = state.webhooks.subscribe(
            Subscription(
                company_id=COMPANY.company_id,
                url="http://127.0.0.1:9/unreachable",
                secrets=[SecretStr("kept-secret"), SecretStr("older-secret")],
            )
        )
        company = state.company(COMPANY.company_id)
        written = company.update(EntityName.SUPPLIER, "50001", {"status": "OnHold"})
        state.webhooks.feedback.append(WebhookFeedback(notificationId="n-1", isSuccess=False))
        notifications = dict(state.webhooks.notifications)
        async with asyncio.timeout(10):  # the failed delivery attempt is saved too
            while not all(n.attempts for n in notifications.values()):
                await asyncio.sleep(0.01)
        counters = state.log.counters()
        row_version = company.row_version

    other_seed = SandboxConfig(seed=SeedOptions(companies=3))
    async with run_visma_sandbox(other_seed, state_dir=tmp_path) as second:
        restored = second.state
        restored_company = restored.company(COMPANY.company_id)
        kept = restored.webhooks.subscriptions[subscription.id]
        stored = restored_company.get(EntityName.SUPPLIER, "50001")
        restored_notifications = dict(restored.webhooks.notifications)
        next_write = restored_company.update(EntityName.SUPPLIER, "50001", {"status": "Active"})

    assert second.resumed
    assert list(restored.companies) == [COMPANY.company_id]  # the seed options are ignored
    assert [s.get_secret_value() for s in kept.secrets] == ["kept-secret", "older-secret"]
    assert restored_notifications == notifications
    assert [len(n.attempts) for n in notifications.values()] == [1]
    assert restored.webhooks.feedback == [WebhookFeedback(notificationId="n-1", isSuccess=False)]
    assert restored.log.counters() == counters
    assert stored is not None
    assert (stored.record, stored.last_modified, stored.created, stored.row_version) == (
        written.record,
        written.last_modified,
        written.created,
        written.row_version,
    )
    assert next_write.row_version == row_version + 1


async def test_a_given_state_and_a_state_dir_exclude_each_other(tmp_path: Path) -> None:
    async with run_visma_sandbox(SandboxConfig(seed=SeedOptions(companies=0))) as running:
        with pytest.raises(ValueError, match="state or state_dir"):
            async with run_visma_sandbox(state=running.state, state_dir=tmp_path):
                pass
