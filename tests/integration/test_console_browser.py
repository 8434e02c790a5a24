"""The console in a real browser, on the stack `mlconnector run` starts: log in, add the demo
connection through the form, ping it, see the preview, watch the sync reach 100 %, find a
rejected record, fix it in the Visma sandbox, replay it, see it delivered; every page saved
as a screenshot. No secret is in any page or API answer along the way."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from browser_support import ARTIFACTS, chromium, require_chromium
from home_support import RunningStack, mlconnector, port_settings, until
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response

from mlconnector.connections import ALL_ENTITIES
from mlconnector.home import StackFile
from mlconnector_cli.connections import sandbox_demo

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "ann", "journey-password-1"
DEMO_VISMA_SECRET = "demo-visma-secret"
DEMO_BASWARE_SECRET = "demo-basware-secret"
DEMO_WEBHOOK_SECRET = "demo-visma-webhook-secret"
SECRETS = (DEMO_VISMA_SECRET, DEMO_BASWARE_SECRET, DEMO_WEBHOOK_SECRET, PASSWORD)
COMPANY = "1000001"
REJECTED = "50001"
TOO_LONG = "N" * 251


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class Answers:
    """Every HTML and JSON answer the browser received, to look for secrets in."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []
        # Answers the browser dropped before their body could be read: a page reloaded (the
        # Overview is reloaded every second while the sync runs) discards the one in flight.
        self.superseded: list[str] = []

    async def keep(self, response: Response) -> None:
        kind = response.headers.get("content-type", "")
        if kind.startswith(("text/html", "application/json")) and response.status != 303:
            try:
                self.bodies.append((response.url, await response.text()))
            except PlaywrightError:
                self.superseded.append(response.url)


async def reload_until(page: Page, selector: str, text: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (await page.locator(selector).inner_text()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} never showed {text!r}: {await page.content()}")
        await asyncio.sleep(1.0)
        await page.reload()


async def synced(page: Page, *, entities: int, timeout: float) -> None:
    """Reloads the Overview until every entity's row says 100 %."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await page.locator("#sync tbody tr").all_inner_texts()
        if len(rows) == entities and all("100%" in row for row in rows):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the sync did not reach 100 %: {rows}")
        await asyncio.sleep(1.0)
        await page.reload()


async def reader_polls(stack: StackFile, entity: str) -> float:
    """When visma-reader last polled an entity of the demo company (its own metric)."""
    url = stack.service_url("visma-reader")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("mlc_reader_last_success_timestamp_seconds{") and (
            f'entity="{entity}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_an_operator_adds_pings_watches_and_fixes_in_the_browser(tmp_path: Path) -> None:
    require_chromium()
    stack = RunningStack(
        tmp_path,
        port_settings(),
        "--no-demo-connection",
        *("--suppliers", "12", "--purchase-orders", "10", "--invoices", "10"),
    )
    stack_file = await stack.start(timeout=120)
    try:
        added = await mlconnector(
            tmp_path, "users", "add", ADMIN, "--role", "admin", "--password-from-stdin",
            stdin=f"{PASSWORD}\n".encode(),
        )  # fmt: skip
        assert added.code == 0, added.stderr
        console = stack_file.service_url("console")
        assert console is not None
        visma_url = next(s.url for s in stack_file.sandboxes if s.name == "visma-sandbox")
        answers = Answers()
        async with chromium() as browser, httpx.AsyncClient(base_url=visma_url) as visma:
            page = await browser.new_page(base_url=console)
            page.on("response", answers.keep)

            await page.goto("/overview")
            assert "/login" in page.url
            await shot(page, "01-login")
            await page.fill("input[name=name]", ADMIN)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/overview")

            demo = sandbox_demo()
            await page.goto("/connections/new?preset=sandbox")
            for field, value in {
                "name": "demo",
                "visma_client_id": demo.visma_client_id,
                "visma_client_secret": DEMO_VISMA_SECRET,
                "visma_tenant_id": demo.visma_tenant_id,
                "visma_company_id": demo.visma_company_id,
                "visma_webhook_secret": DEMO_WEBHOOK_SECRET,
                "basware_client_id": demo.basware_client_id,
                "basware_client_secret": DEMO_BASWARE_SECRET,
                "basware_company_code": demo.basware_company_code,
                "basware_receiving_email": demo.basware_receiving_email,
            }.items():
                await page.fill(f"[name={field}]", value)
            await shot(page, "02-connection-form")
            await page.click("text=Check and add")
            await page.wait_for_url("**/connections/demo?**")
            assert "Added demo" in await page.inner_text(".notice")
            await shot(page, "03-connection")

            await page.click("text=Ping and preview")
            await page.click("text=Run the checks")
            assert "demo works." in await page.inner_text("#verdict")
            assert "supplier: 12 in Visma" in await page.inner_text("main")
            await shot(page, "04-ping-and-preview")

            await page.goto("/overview")
            await synced(page, entities=len(ALL_ENTITIES), timeout=180)
            assert "100% of 12" in await page.inner_text("#sync")
            # Each Visma company's quota window, counted by the reader and the writer.
            quota = await page.inner_text("#quota")
            assert COMPANY in quota
            assert "/15000" in quota
            await shot(page, "05-overview")

            # A supplier Basware cannot take: its name is over 250 characters.
            patched = await visma.patch(
                f"/_sandbox/companies/{COMPANY}/records/supplier/{REJECTED}",
                json={"name": TOO_LONG},
            )
            assert patched.status_code == 200, patched.text
            await page.goto("/records?states=rejected")
            await reload_until(page, "main", REJECTED, timeout=60)
            await shot(page, "06-records-rejected")
            await page.click(f"#records >> text={REJECTED}")
            assert "rejected" in await page.inner_text("#state")
            assert "name" in await page.inner_text("main")
            await shot(page, "07-lineage-rejected")

            # Suppliers polled once a day from now: only a replay brings the fix in.
            await page.goto("/connections/demo")
            schedule = page.locator("form[aria-label='schedule of supplier']")
            await schedule.locator("select[name=mode]").select_option("every")
            await schedule.locator("input[name=value]").fill("1d")
            await schedule.locator("button").click()
            assert "every 1d" in await page.inner_text("main")
            changed_at = time.time()
            # Two cycles that began after the change: no poll of the old schedule is left.
            for _ in range(2):
                seen = await reader_polls(stack_file, "supplier_invoice")

                async def cycled(seen: float = seen) -> bool:
                    last = await reader_polls(stack_file, "supplier_invoice")
                    return last > seen and last > changed_at

                await until(cycled, timeout=60, what="visma-reader ran a cycle on the new schedule")
            switched = await visma.put(
                f"/_sandbox/companies/{COMPANY}/webhooks", json={"enabled": False}
            )
            assert switched.status_code == 204
            fixed = await visma.patch(
                f"/_sandbox/companies/{COMPANY}/records/supplier/{REJECTED}",
                json={"name": "Fjordkraft Leverandør AS"},
            )
            assert fixed.status_code == 200

            await page.goto(f"/records/supplier/{REJECTED}?tenant={COMPANY}")
            assert "rejected" in await page.inner_text("#state")
            await page.click("text=Replay this record")
            await page.click("text=Dry run")
            assert "1 records would be read again" in await page.inner_text("#summary")
            await shot(page, "08-replay-dry-run")
            await page.fill("input[name=reason]", "name shortened in Visma")
            await page.click("button:has-text('Replay')")
            assert "are read again" in await page.inner_text("#summary")
            await shot(page, "09-replay-done")

            await page.goto(f"/records/supplier/{REJECTED}?tenant={COMPANY}")
            await reload_until(page, "#state", "delivered", timeout=60)
            assert "read again from Visma by ann" in await page.inner_text("#lineage")
            await shot(page, "10-lineage-delivered")

            await page.goto("/audit")
            await page.click("text=Verify the hash chains")
            assert "intact." in await page.inner_text("#verdict")
            actions = await page.inner_text("#actions")
            for said in ("login", "connection added", "schedule changed", "read again from Visma"):
                assert said in actions
            assert "name shortened in Visma" in actions
            await shot(page, "11-audit")
            await page.goto("/users")
            await shot(page, "12-users")

            for path in (
                "/api/connections",
                "/api/overview",
                "/api/records",
                f"/api/records/supplier/{REJECTED}",
                "/api/audit/actions",
                "/api/users",
            ):
                answer = await page.request.get(path)
                assert answer.ok, path
                answers.bodies.append((path, await answer.text()))  # fmt: skip
        assert len(answers.bodies) > 20
        # What a reload discarded was read on another load of the same page.
        assert set(answers.superseded) <= {url for url, _ in answers.bodies}, answers.superseded
        for url, body in answers.bodies:
            for secret in SECRETS:
                assert secret not in body, f"a secret in {url}"
    finally:
        await stack.interrupt()
