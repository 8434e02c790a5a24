"""The coding layout on the console's connection page, in a real browser, on the real broker
and database: the page shows the layout, refuses a segment the Visma company lacks (saying
so in the page, nothing changed), and a changed layout re-sends exactly what the CLI's
`connections coding` re-sends (the same functions, mlconnector.coding_change)."""

from __future__ import annotations

import pytest
from browser_support import ARTIFACTS, chromium, require_chromium
from conftest import TopicNames
from console_support import PASSWORD, USERS, console_keyring, running_console
from master_data_support import (
    assert_only_recoded_re_sent,
    basware_requests,
    reference_records,
    until_segment_1_is_projects,
)
from pipeline_support import covers, pipeline, read_events
from sandbox_support import sandbox_connection, sandboxes, seeded_records

from console.access import Role
from mlconnector.connection_store import ConnectionStore
from mlconnector.contracts import Entity
from mlconnector.mapping import CodingLayout, SegmentTarget
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from visma_sandbox.config import SeedOptions

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=1, suppliers=3, purchase_orders=3, invoices=0)


async def test_the_connection_page_shows_checks_and_changes_the_coding_layout(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    require_chromium()
    keyring = console_keyring()
    # Segment 1 is the cost center; segment 2 (the sandbox's project) is not sent.
    before = CodingLayout(segments={1: SegmentTarget.COST_CENTER})
    async with sandboxes(seed=SEED) as (basware, visma):
        connection = sandbox_connection(basware, visma).model_copy(update={"coding": before})
        expected = seeded_records(visma) | reference_records(visma)
        async with ConnectionStore.open(database_url, keyring) as store:
            await store.add(connection)
            async with (
                pipeline(kafka_settings, database_url, topics, source=store),
                running_console(
                    database_url,
                    kafka_settings,
                    keyring=keyring,
                    changes_topic=topics[Topic.VISMA_CHANGES],
                ) as console,
            ):
                await read_events(kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected))
                sent_before = len(basware_requests(basware))
                async with chromium() as browser:
                    page = await browser.new_page(base_url=console)
                    await page.goto("/login")
                    await page.fill("input[name=name]", USERS[Role.OPERATOR])
                    await page.fill("input[name=password]", PASSWORD)
                    await page.click("button[type=submit]")
                    await page.wait_for_url("**/overview")

                    await page.goto(f"/connections/{connection.name}")
                    shown = await page.inner_text("#coding")
                    assert "cost center\t1" in shown, shown
                    assert "project\tnot sent" in shown, shown
                    assert "dimCode1 (list ACC_LIST_1)\tnot sent" in shown, shown

                    form = page.locator("form[aria-label='coding layout']")
                    await form.locator("input[name=project]").fill("3")
                    await form.locator("button").click()
                    error = await page.inner_text(".error")
                    assert "no segment 3" in error, error
                    assert "project\tnot sent" in await page.inner_text("#coding")

                    await form.locator("input[name=cost_center]").fill("")
                    await form.locator("input[name=project]").fill("1")
                    await form.locator("button").click()
                    await page.wait_for_url(f"**/connections/{connection.name}?**")
                    orders = {r for r in expected if r[1] is Entity.PURCHASE_ORDER}
                    segment_1 = {
                        r for r in expected if r[1] is Entity.DIMENSION_VALUE and "/1/" in r[2]
                    }
                    notice = await page.inner_text(".notice")
                    assert f"{len(orders) + len(segment_1)} records re-sent" in notice, notice
                    shown = await page.inner_text("#coding")
                    assert "cost center\tnot sent" in shown, shown
                    assert "project\t1" in shown, shown
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "coding.png"), full_page=True)
                stored = await store.get(connection.name)
                assert stored.coding == CodingLayout(segments={1: SegmentTarget.PROJECT})

                await until_segment_1_is_projects(basware)
    assert_only_recoded_re_sent(basware, sent_before, len(orders))
